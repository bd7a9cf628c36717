import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Operations
import Testing
import TopologyStore

/// The switchover when the world is unkind: a controller frozen past its lease, a shutdown in
/// the middle, a statement stuck behind a lock, writers that ignore read_only, a connection the
/// server closed, a crash in the middle of a step, replication set up with another address.
@Suite("Switchover safety", .serialized)
struct SwitchoverSafetyTests {
    @Test("a leader SIGSTOPped inside the flip past its lease sends nothing after SIGCONT: never two writers, the standby's rollback stands")
    func frozenLeaderIsFenced() async throws {
        let sandbox = try await TestServers.privateSandbox("fence-stop", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await restartController(sandbox, pauseBefore: "candidate-writable")
        let leader = try controllerPID(sandbox)
        let standby = try startStandby(sandbox)
        defer { kill(standby, SIGKILL) }
        let id = try await requestSwitchover(sandbox, to: "db1002")
        try await waitForOperation(sandbox, id) { $0.pausedBefore != nil }

        let sampler = ReadOnlySampler(sandbox)
        await sampler.start()
        kill(leader, SIGSTOP)
        let rolledBack = try await waitForOperation(sandbox, id, seconds: 40) { $0.state.isFinished }
        #expect(rolledBack.state == .rolledBack, "\(rolledBack.state) \(rolledBack.attention)")
        #expect(rolledBack.controller == "standby")

        // The frozen leader would go on past its pause at once: it must find its fence closed.
        try await resume(sandbox, id)
        kill(leader, SIGCONT)
        let log = sandbox.directory + "/controller.log"
        // It stops at its fence, or at the etcd request it had sent when it froze (timed out
        // meanwhile: the pause reads its resume and abort keys).
        let fenced = try await eventually(15) {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return text.contains("operation \(id): this controller lost the lead") || text.contains("operation \(id): etcd request to ")
                || text.contains("operation \(id): etcd unavailable")
        }
        #expect(fenced, "the resumed controller did not report that it stopped")
        // A window for anything it might still send, counted in looks at the servers rather than in time.
        let sampled = await sampler.samples
        #expect(try await eventually(15) { await sampler.samples >= sampled + 20 }, "the sampler stopped reading the servers")
        let report = await sampler.stop()
        #expect(report.samples > 0, "the sampler never read the servers")
        #expect(report.twoWriters == 0, "\(report.twoWriters) of \(report.samples) samples saw two writable instances")
        try await expectPrimary("db1001", sandbox)
        let final = try await operation(sandbox, id)
        #expect(
            final?.state == .rolledBack && final?.controller == "standby", "the old leader rewrote the journal: \(String(describing: final?.state))")
    }

    @Test("SIGTERM in the middle of a switchover longer than the lease: the lease is kept until it is done, then handed over")
    func gracefulShutdownKeepsTheLease() async throws {
        let sandbox = try await TestServers.privateSandbox("fence-term", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await restartController(sandbox, pauseBefore: "old-primary-read-only")
        let leader = try controllerPID(sandbox)
        let standby = try startStandby(sandbox)
        defer { kill(standby, SIGKILL) }
        let id = try await requestSwitchover(sandbox, to: "db1002")
        try await waitForOperation(sandbox, id) { $0.pausedBefore != nil }

        kill(leader, SIGTERM)
        // Seven seconds, longer than the 5 s lease: the leader must keep it all along.
        let start = Date()
        while Date().timeIntervalSince(start) < 7 {
            #expect(try await leaderName(sandbox) == "sandbox-controller")
            #expect(try await operation(sandbox, id)?.state == .running)
            try await Task.sleep(for: .milliseconds(250))
        }
        try await resume(sandbox, id)
        let done = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        #expect(done.state == .done, "\(done.state) \(done.attention)")
        #expect(done.controller == "sandbox-controller")
        #expect(try await eventually(15) { !ChildProcess.isRunning(leader, marker: sandbox.directory) }, "the controller did not exit")
        #expect(try await eventually(10) { try await leaderName(sandbox) == "standby" })
        try await expectPrimary("db1002", sandbox)
    }

    @Test("read_only = ON stuck behind LOCK TABLES: killed at its timeout, rolled back, and it never applies once the lock is gone")
    func stuckStatementIsKilled() async throws {
        let sandbox = try await TestServers.privateSandbox("kill-stuck", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await execute(sandbox, "db1001", "CREATE DATABASE locked", "CREATE TABLE locked.t (i INT PRIMARY KEY)")
        let id = try await switchoverPaused(sandbox, before: "old-primary-read-only", to: "db1002")
        let locker = try await sandbox.root("db1001", readTimeout: 60)
        try await locker.execute("LOCK TABLES locked.t WRITE")
        try await resume(sandbox, id)

        let record = try await waitForOperation(sandbox, id, seconds: 40) { $0.state.isFinished }
        #expect(record.state == .rolledBack, "\(record.state) \(record.attention)")
        #expect(record.failure?.step == "db1001 read-only")
        #expect(record.failure?.error.contains("the statement was killed before it completed") == true, "\(record.failure?.error ?? "")")
        // The rollback did not wait for the lock; releasing it now must not let the abandoned statement apply.
        #expect(try await readOnly(sandbox, "db1001") == false)
        try await locker.execute("UNLOCK TABLES")
        await locker.close()
        // Once no session runs the abandoned statement any more, it either applied or never will.
        #expect(
            try await eventually(15) { try await sessions(sandbox, "db1001", running: "read_only") == 0 },
            "the abandoned SET GLOBAL read_only is still running")
        #expect(try await readOnly(sandbox, "db1001") == false, "db1001 went read-only after the lock was released")
        try await expectPrimary("db1001", sandbox)
    }

    @Test(
        "preflight refuses an old primary running a long transaction, naming the thread; forced, the privileged session is killed and never commits")
    func longTransactionRefused() async throws {
        let sandbox = try await TestServers.privateSandbox("long-trx", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await execute(sandbox, "db1001", "CREATE DATABASE longtx", "CREATE TABLE longtx.t (i INT PRIMARY KEY)")
        let holder = try await sandbox.root("db1001", readTimeout: 60)
        let thread = holder.threadID
        try await holder.execute("BEGIN")
        try await holder.execute("INSERT INTO longtx.t VALUES (1)")
        let old = try await eventually(10) {
            let client = try await sandbox.root("db1001")
            defer { Task { await client.close() } }
            let age = try await client.query(
                "SELECT TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS age FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = \(thread)")
            return Int(age.first?["age"] ?? "") ?? 0 >= 4
        }
        #expect(old)
        let commits = try await commitCount(sandbox)
        let before = try await serverTopology(sandbox)
        let refused = try switchover(sandbox, ["s1", "--to", "db1002", "--yes"])
        #expect(refused.status == 2, "\(refused.stdout)\(refused.stderr)")
        #expect(refused.stdout.contains("the primary db1001 has a transaction open for"), "\(refused.stdout)")
        #expect(refused.stdout.contains("in thread \(thread) (root@"), "\(refused.stdout)")
        #expect(try await serverTopology(sandbox) == before)
        #expect(try await commitCount(sandbox) == commits)

        // Forced: the switch goes through. The transaction's owner is root, an account that writes
        // through read_only, so its session is killed in the flip: it never commits on the old primary.
        let forced = try switchover(sandbox, ["s1", "--to", "db1002", "--force-long-transactions", "--yes"])
        #expect(forced.status == 0, "\(forced.stdout)\(forced.stderr)")
        await #expect(throws: MariaDBError.self) { try await holder.execute("COMMIT") }
        await holder.close()
        try await expectPrimary("db1002", sandbox)
        let newPrimary = try await sandbox.root("db1002")
        #expect(try await newPrimary.query("SELECT COUNT(*) AS n FROM longtx.t").first?["n"] == "0")
        await newPrimary.close()
    }

    @Test("a privileged writer (root) on the old primary is killed after read_only = ON: every write it was told succeeded is on the new primary")
    func privilegedWriterKilled() async throws {
        let sandbox = try await TestServers.privateSandbox("priv-kill", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await PrivilegedWriter.createTable(sandbox, on: "db1001")
        let writer = PrivilegedWriter(sandbox, on: "db1001", reconnect: false)
        await writer.start()
        #expect(try await eventually(10) { await writer.acknowledged.count >= 50 })
        let result = try switchover(sandbox, ["s1", "--to", "db1002", "--yes"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        // Killed, its next write fails (the writer may not have tried one yet on a busy machine).
        #expect(try await eventually(10) { await writer.errors == 1 }, "the writer's session was not killed")
        let report = await writer.stop()
        let missing = try await PrivilegedWriter.missing(report.acknowledged, on: "db1002", sandbox)
        #expect(missing.isEmpty, "\(missing.count) acknowledged writes are not on the new primary: \(missing.prefix(10))")
        try await expectPrimary("db1002", sandbox)
    }

    @Test("a privileged writer that reconnects and writes after the final position: refused before the point of no return, rolled back, nothing lost")
    func privilegedWriterAfterFinalPosition() async throws {
        let sandbox = try await TestServers.privateSandbox("priv-late", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await PrivilegedWriter.createTable(sandbox, on: "db1001")
        try await restartController(sandbox, pauseAfter: "read-final-position")
        let writer = PrivilegedWriter(sandbox, on: "db1001", reconnect: true)
        await writer.start()
        let id = try await requestSwitchover(sandbox, to: "db1002")
        #expect(try await pausedAfter(sandbox, id) == "read db1001's final position")
        let acknowledgedAtPause = await writer.acknowledged.count
        #expect(try await eventually(10) { await writer.acknowledged.count >= acknowledgedAtPause + 20 })
        try await resume(sandbox, id)
        let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        let report = await writer.stop()
        #expect(record.state == .rolledBack, "\(record.state) \(record.attention)")
        #expect(record.failure?.error.contains("took writes after its final position") == true, "\(record.failure?.error ?? "")")
        let missing = try await PrivilegedWriter.missing(report.acknowledged, on: "db1001", sandbox)
        #expect(missing.isEmpty, "\(missing.count) acknowledged writes lost")
        try await expectPrimary("db1001", sandbox)
    }

    @Test("connections the server closed between operations are reopened: the next switchover does not fail at its first statement")
    func closedConnectionsReopened() async throws {
        let sandbox = try await TestServers.privateSandbox("closed-conn", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let first = try switchover(sandbox, ["s1", "--to", "db1002", "--yes"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        var killed = 0
        for instance in ["db1001", "db1002", "db1003"] {
            let client = try await sandbox.root(instance)
            for row in try await client.query("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = 'marina_controller'").rows {
                try await client.execute("KILL CONNECTION \(row["id"] ?? "0")")
                killed += 1
            }
            await client.close()
        }
        #expect(killed >= 3, "the controller kept no connection to kill")
        let second = try switchover(sandbox, ["s1", "--to", "db1001", "--yes"])
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        try await expectPrimary("db1001", sandbox)
    }

    @Test("the controller killed in the middle of each step (its SQL done, the journal not yet written): converges, never two writers")
    func killedDuringEveryStep() async throws {
        let sandbox = try await TestServers.privateSandbox("crash-during", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let actions: [StepAction] = [
            .moveReplicas, .sectionReadOnly, .oldPrimaryReadOnly, .readFinalPosition, .waitCatchUp, .detachCandidate,
            .commitPrimary, .candidateWritable, .oldPrimaryReplicates, .resetCandidateReplication, .sectionReadWrite,
        ]
        let sampler = ReadOnlySampler(sandbox)
        await sampler.start()
        var primary = "db1001"
        for action in actions {
            let candidate = primary == "db1001" ? "db1002" : "db1001"
            // The last round's convergence (a rollback keeps the primary read-only for a while) stalls
            // the heartbeat; on a loaded machine the preflight could then refuse the candidate's lag.
            #expect(try await eventually(20) { try await heartbeatAge(sandbox, on: candidate) < 2 }, "no fresh heartbeat on \(candidate)")
            try await restartController(sandbox, pauseAfter: action.rawValue)
            let id = try await requestSwitchover(sandbox, to: candidate)
            _ = try await pausedAfter(sandbox, id)
            try await restartController(sandbox, kill: true)
            let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
            let forward = actions.firstIndex(of: action)! >= actions.firstIndex(of: .candidateWritable)!
            #expect(record.state == (forward ? .done : .rolledBack), "killed during \(action.rawValue): \(record.state) \(record.attention)")
            if record.state == .done { primary = candidate }
            try await expectPrimary(primary, sandbox)
            #expect(try await sandbox.etcdClient.value(StoreKeys().lock("s1")) == nil, "the lock is released after \(action.rawValue)")
        }
        let report = await sampler.stop()
        #expect(report.twoWriters == 0, "\(report.twoWriters) of \(report.samples) samples saw two writable instances")
    }

    @Test("replication set up with another address of the primary (127.1): a rollback past detach verifies by server_id and succeeds")
    func identityByServerID() async throws {
        let sandbox = try await TestServers.privateSandbox("server-id", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        for replica in ["db1002", "db1003"] {
            try await execute(sandbox, replica, "STOP SLAVE", "CHANGE MASTER TO MASTER_HOST = '127.1'", "START SLAVE")
        }
        #expect(try await eventually(10) { try await serverTopology(sandbox).values.filter(\.running).count == 2 })
        let id = try await switchoverPaused(sandbox, before: "commit-primary", to: "db1002")
        // A writer that ignores the section's lock (the CLI refuses while it is held).
        try await rogueCommit(sandbox, .setWeight(instance: "db1003", section: "s1", group: nil, weight: 50))
        try await resume(sandbox, id)
        let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        #expect(record.state == .rolledBack, "\(record.state) \(record.attention)")
        #expect(record.steps.contains { $0.name == "detach db1002" && $0.state == .undone })
        try await expectPrimary("db1001", sandbox)
    }
}
