import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Operations
import Testing
import TopologyStore

/// Switchovers on real servers: each test has its own sandbox (db1001 primary, db1002 and
/// db1003 replicas, an agent writing the heartbeat, a controller) and checks the result on the
/// servers themselves and in the source of truth.
@Suite("Switchover", .serialized)
struct SwitchoverTests {
    @Test("a switchover and back: each step printed, the servers and the source of truth follow, the heartbeat moves")
    func switchoverAndBack() async throws {
        let sandbox = try await TestServers.privateSandbox("switch", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }

        let there = try switchover(sandbox, ["s1", "--to", "db1002", "--reason", "kernel upgrade", "--yes"])
        #expect(there.status == 0, "\(there.stdout)\(there.stderr)")
        for step in [
            "move db1003 under db1002", "db1001 read-only", "db1002 catches up", "commit db1002 as primary of s1",
            "db1002 writable  (point of no return)", "db1001 replicates from db1002", "section s1 read-write",
        ] {
            #expect(there.stdout.contains("✓ \(step)"), "\(step) missing from:\n\(there.stdout)")
        }
        #expect(there.stdout.contains("Done: db1002 is the primary of s1"))
        try await expectPrimary("db1002", sandbox)

        // The agent's heartbeat writer moved to the new primary: db1002's row gets fresh.
        let newPrimary = try await sandbox.root("db1002")
        var fresh = false
        for _ in 0..<60 where !fresh {
            fresh =
                try await newPrimary.query(
                    """
                    SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) < 1500000 AS fresh FROM heartbeat.heartbeat
                    WHERE server_id = 1002 AND shard = 's1'
                    """
                ).first?["fresh"] == "1"
            if !fresh { try await Task.sleep(for: .milliseconds(100)) }
        }
        await newPrimary.close()
        #expect(fresh, "no fresh heartbeat row written on db1002")

        let back = try switchover(sandbox, ["s1", "--to", "db1001", "--yes"])
        #expect(back.status == 0, "\(back.stdout)\(back.stderr)")
        try await expectPrimary("db1001", sandbox)

        let journal = try runMarina(["operation", "list"], environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
        #expect(journal.stdout.components(separatedBy: "\n").filter { $0.contains(" done ") }.count == 2, "\(journal.stdout)")
    }

    @Test("under 200 writes/s, 10 switchovers lose no acknowledged write and never show two writable instances")
    func underLoad() async throws {
        let sandbox = try await TestServers.privateSandbox("switch-load", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let load = try LoadGenerator(state: sandbox, rate: 200)
        await load.start()
        // Before each switchover, and after the last, the load writes to the primary of the moment: a write newer than
        // everything the primary held once it took writes.
        func loadWrites(to primary: String) async throws -> Bool {
            let before = try await newestLoadWrite(sandbox, on: primary)
            return try await eventually(10) { try await newestLoadWrite(sandbox, on: primary) > before }
        }
        #expect(try await loadWrites(to: "db1001"), "the load never wrote")
        let targets = ["db1002", "db1003", "db1001"]
        for round in 0..<10 {
            let result = try switchover(sandbox, ["s1", "--to", targets[round % 3], "--yes"])
            #expect(result.status == 0, "round \(round): \(result.stdout)\(result.stderr)")
            #expect(try await loadWrites(to: targets[round % 3]), "round \(round): no write reached the new primary")
        }
        let report = await load.stop()
        let finalPrimary = targets[9 % 3]
        try await expectPrimary(finalPrimary, sandbox)

        // Every replica catches up with the final primary, then every acknowledged id is on every instance.
        let primary = try await sandbox.root(finalPrimary)
        let position = try await primary.query("SELECT @@gtid_binlog_pos AS pos").first?["pos"] ?? ""
        await primary.close()
        for instance in sandbox.instances(in: "s1") {
            if instance.name != finalPrimary {
                let client = try await sandbox.root(instance.name)
                #expect(try await client.query("SELECT MASTER_GTID_WAIT(?, 10) AS w", .string(position)).first?["w"] == "0")
                await client.close()
            }
            let missing = try await LoadGenerator.missing(report.acknowledged, on: instance, state: sandbox)
            #expect(missing.isEmpty, "\(missing.count) acknowledged writes missing on \(instance.name)")
        }
        #expect(report.acknowledged.count > 200)  // about 200/s for 3 s or more; less under a loaded CI
        #expect(report.samples > 100)  // every 5 ms when the machine is idle; fewer while the whole suite runs
        #expect(report.twoWritersSamples == 0)
        #expect(report.outages.count >= 1)
    }

    @Test("preflight refusals change nothing: non-candidate, stopped replica, lagging candidate, busy section, errant GTID")
    func refusals() async throws {
        let sandbox = try await TestServers.privateSandbox("switch-refuse", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"]
        func expectRefused(_ to: String, _ message: String, compareServers: Bool = true, sourceLocation: SourceLocation = #_sourceLocation)
            async throws
        {
            let commits = try await commitCount(sandbox)
            let before = compareServers ? try await serverTopology(sandbox) : [:]
            let result = try switchover(sandbox, ["s1", "--to", to, "--yes"])
            #expect(result.status == 2, "\(result.stdout)\(result.stderr)", sourceLocation: sourceLocation)
            #expect(
                result.stdout.contains("Refused, nothing changed") && result.stdout.contains(message), "\(result.stdout)",
                sourceLocation: sourceLocation)
            if compareServers { #expect(try await serverTopology(sandbox) == before, sourceLocation: sourceLocation) }
            #expect(try await commitCount(sandbox) == commits, sourceLocation: sourceLocation)
        }

        // Not a candidate.
        #expect(try runMarina(["instance", "set-candidate", "db1003", "false"], environment: environment).status == 0)
        #expect(try runMarina(["config", "commit", "--yes", "-m", "db1003 may not be primary"], environment: environment).status == 0)
        try await expectRefused("db1003", "db1003 is not a configured candidate primary")

        // A stopped replica.
        try await execute(sandbox, "db1003", "STOP SLAVE")
        try await expectRefused("db1002", "db1003 replication is stopped")
        try await execute(sandbox, "db1003", "START SLAVE")

        // A lagging candidate (a playbook allowing 1 s): its SQL thread waits behind a read lock.
        try await restartController(sandbox, playbooks: try playbooks(replacing: [("max_lag: 5", "max_lag: 1")]))
        let candidate = try await sandbox.root("db1002", readTimeout: 30)
        try await candidate.execute("FLUSH TABLES WITH READ LOCK")
        try await execute(sandbox, "db1001", "CREATE DATABASE lagging", "DROP DATABASE lagging")
        #expect(try await eventually(15) { try await secondsBehindMaster(sandbox, "db1002") ?? 0 >= 2 }, "db1002 does not lag")
        try await expectRefused("db1002", "db1002 lags")
        try await candidate.execute("UNLOCK TABLES")
        await candidate.close()

        // A busy section: a switchover paused before its flip holds the lock.
        let first = try await switchoverPaused(sandbox, before: "old-primary-read-only", to: "db1002")
        let busy = try switchover(sandbox, ["s1", "--to", "db1002", "--yes"])
        #expect(busy.status == 3 && busy.stdout.contains("section s1 is busy: operation \(first) holds its lock"), "\(busy.stdout)")
        try await resume(sandbox, first)
        #expect(try await waitForOperation(sandbox, first) { $0.state.isFinished }.state == .done)
        try await expectPrimary("db1002", sandbox)
        try await restartController(sandbox)

        // An errant transaction on the candidate, written by hand on what is now a replica (strict
        // mode then soon breaks its replication, so only the source of truth is compared).
        try await execute(sandbox, "db1001", "CREATE DATABASE errant_test")
        try await expectRefused("db1001", "db1001 has errant transactions 0-1001-", compareServers: false)
    }

    @Test("two controllers: only the leader acts, and killing it hands over within the lease TTL")
    func twoControllers() async throws {
        let sandbox = try await TestServers.privateSandbox("switch-leader", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let configFile = sandbox.directory + "/standby.yaml"
        let playbooks = try Sandbox.locatePlaybooks(from: marinaExecutable())
        try Sandbox.controllerConfiguration(for: sandbox, playbooks: playbooks, id: "standby", leaseTTL: 5)
            .write(toFile: configFile, atomically: true, encoding: .utf8)
        let standby = try ChildProcess.spawn(marinaExecutable(), ["controller", "--config", configFile], logFile: sandbox.directory + "/standby.log")
        defer { kill(standby, SIGKILL) }
        #expect(
            try await eventually(15) {
                (try? String(contentsOfFile: sandbox.directory + "/standby.log", encoding: .utf8))?.contains("controller standby started") == true
            }, "the standby did not start")

        let first = try await requestSwitchover(sandbox, to: "db1002")
        let done = try await waitForOperation(sandbox, first) { $0.state.isFinished }
        #expect(done.state == .done)
        #expect(done.controller == "sandbox-controller")

        try await Sandbox.stopController(directory: sandbox.directory, kill: true)
        let killedAt = Date()
        var leader = ""
        while Date().timeIntervalSince(killedAt) < 15 && !leader.contains("\"standby\"") {
            leader = try await sandbox.etcdClient.value(StoreKeys().leader).map { String(decoding: $0.value, as: UTF8.self) } ?? ""
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(leader.contains("\"standby\""))
        #expect(Date().timeIntervalSince(killedAt) < 5 + 2, "took \(Date().timeIntervalSince(killedAt)) s")

        let second = try await requestSwitchover(sandbox, to: "db1001")
        let handled = try await waitForOperation(sandbox, second) { $0.state.isFinished }
        #expect(handled.state == .done)
        #expect(handled.controller == "standby")
        try await expectPrimary("db1001", sandbox)
    }
}

/// Failures before the point of no return roll back to the original topology, verified on
/// the servers; a controller killed at any step is finished or rolled back by the next one.
@Suite("Switchover rollback and recovery", .serialized)
struct SwitchoverRollbackTests {
    @Test("the candidate killed during the flip: rolled back, db1001 writable, db1003 back under it")
    func candidateKilled() async throws {
        let sandbox = try await TestServers.privateSandbox("switch-kill", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let id = try await switchoverPaused(sandbox, before: "wait-catch-up", to: "db1002")
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1002", kill: true)
        try await resume(sandbox, id)
        let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        #expect(record.state == .rolledBack)
        #expect(record.failure?.host == "db1002")
        #expect(record.attention.contains { $0.hasPrefix("db1002 could not be reached to verify the rollback") })
        let views = try await serverTopology(sandbox.withoutInstance("db1002"))
        #expect(views["db1001"] == ServerView(readOnly: false, source: nil, running: false))
        #expect(views["db1003"] == ServerView(readOnly: true, source: "db1001", running: true))
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1002")
        try await expectPrimary("db1001", sandbox)
    }

    @Test("a replica that refuses to move: the one already moved goes back, exit 4 naming the host")
    func replicaRefuses() async throws {
        let sandbox = try await TestServers.privateSandbox("switch-refuse-move", replicas: 3, controller: true)
        defer { TestServers.stop(sandbox) }
        try await execute(sandbox, "db1004", "SET sql_log_bin = 0", "REVOKE REPLICATION SLAVE ADMIN ON *.* FROM marina_controller@'127.0.0.1'")
        let result = try switchover(sandbox, ["s1", "--to", "db1002", "--yes"])
        #expect(result.status == 4, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("Failed at move db1004 under db1002 on db1004"), "\(result.stdout)")
        #expect(result.stdout.contains("↺ undid move db1003 under db1002"))
        #expect(result.stdout.contains("Rolled back and verified"))
        try await expectPrimary("db1001", sandbox)
    }

    @Test("a lost compare-and-swap on the source of truth: rolled back, the other writer's commit stands")
    func lostCompareAndSwap() async throws {
        let sandbox = try await TestServers.privateSandbox("switch-cas", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let id = try await switchoverPaused(sandbox, before: "commit-primary", to: "db1002")
        // A writer that ignores the section's lock (the CLI refuses while it is held).
        try await rogueCommit(sandbox, .setWeight(instance: "db1003", section: "s1", group: nil, weight: 50))
        try await resume(sandbox, id)
        let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        #expect(record.state == .rolledBack)
        #expect(record.failure?.host == "etcd")
        #expect(record.failure?.error.contains("lost compare-and-swap") == true)
        try await expectPrimary("db1001", sandbox)
        let committed = try await TopologyStore(etcd: sandbox.etcdClient).committedTopology()
        #expect(committed?.instances["db1003"]?.sections["s1"]?.weight == 50)
    }

    @Test("the catch-up wait timing out: rolled back, the old primary writable again")
    func catchUpTimesOut() async throws {
        let sandbox = try await TestServers.privateSandbox("switch-timeout", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        // A site's hook before the flip (as one stopping pt-heartbeat would be): run, then undone by the rollback.
        let hookFile = sandbox.directory + "/hook-ran"
        let shortWait = try playbooks(replacing: [
            ("  - action: wait-catch-up\n    timeout: 5", "  - action: wait-catch-up\n    timeout: 1"),
            (
                "  # Phase 2, the flip",
                "  - action: exec\n    name: site hook\n    command: [touch, \"\(hookFile)\"]\n    undo: [rm, \"\(hookFile)\"]\n  # Phase 2, the flip"
            ),
        ])
        let id = try await switchoverPaused(sandbox, before: "old-primary-read-only", to: "db1002", playbooks: shortWait)
        let candidate = try await sandbox.root("db1002", readTimeout: 30)
        try await candidate.execute("FLUSH TABLES WITH READ LOCK")  // its SQL thread waits: it cannot catch up
        try await execute(sandbox, "db1001", "CREATE DATABASE behind", "DROP DATABASE behind")
        try await resume(sandbox, id)
        // The rollback goes on while the candidate is still stuck: a step is undone before the lock is released.
        try await waitForOperation(sandbox, id) { $0.state == .rollingBack && $0.steps.contains { $0.state == .undone } }
        try await candidate.execute("UNLOCK TABLES")
        await candidate.close()
        let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        #expect(record.state == .rolledBack, "\(record.attention)")
        #expect(record.failure?.error.contains("did not apply") == true)
        #expect(record.steps.first { $0.name == "site hook" }?.state == .undone)
        #expect(!FileManager.default.fileExists(atPath: hookFile), "the hook's undo did not run")
        try await expectPrimary("db1001", sandbox)
    }

    @Test("--skip-replica leaves out an unreachable replica and depools it; the switchover completes")
    func skipReplica() async throws {
        let sandbox = try await TestServers.privateSandbox("switch-skip", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1003")
        let refused = try switchover(sandbox, ["s1", "--to", "db1002", "--yes"])
        #expect(refused.status == 2 && refused.stdout.contains("db1003 is unreachable"), "\(refused.stdout)")
        let result = try switchover(sandbox, ["s1", "--to", "db1002", "--skip-replica", "db1003", "--yes"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let committed = try await TopologyStore(etcd: sandbox.etcdClient).committedTopology()
        #expect(committed?.sections["s1"]?.primary == "db1002")
        #expect(committed?.instances["db1003"]?.sections["s1"]?.pooled == false)
        let config = try await TopologyStore(etcd: sandbox.etcdClient).read().committed.configs[sandbox.datacenter]
        #expect(config?.sectionLoads["s1"]?.last?["db1003"] == nil)
        let views = try await serverTopology(sandbox.withoutInstance("db1003"))
        #expect(views["db1002"] == ServerView(readOnly: false, source: nil, running: false))
        #expect(views["db1001"] == ServerView(readOnly: true, source: "db1002", running: true))
    }

    @Test("an undo that fails leaves both read-only for a human (exit 5), and drift reports it")
    func undoFails() async throws {
        let sandbox = try await TestServers.privateSandbox("switch-human", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let id = try await switchoverPaused(sandbox, before: "candidate-writable", to: "db1002")
        // The candidate dies after it was detached: the flip fails, and re-attaching it cannot be undone.
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1002", kill: true)
        try await resume(sandbox, id)
        let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        #expect(record.state == .needsHuman)
        #expect(record.state.exitCode == 5)
        #expect(record.steps.contains { $0.name == "detach db1002" && $0.state == .undoFailed })
        let views = try await serverTopology(sandbox.withoutInstance("db1002"))
        #expect(views["db1001"]?.readOnly == true)
        let committed = try await TopologyStore(etcd: sandbox.etcdClient).committedTopology()
        #expect(committed?.sections["s1"]?.primary == "db1001")
        #expect(committed?.sections["s1"]?.readOnly == true)
        #expect(committed?.sections["s1"]?.readOnlyReason.contains("could not roll back") == true)
        let drift = try await driftOutput(sandbox) { $0.contains("PRIMARY_READ_ONLY") && $0.contains("db1001") }
        #expect(drift.contains("PRIMARY_READ_ONLY") && drift.contains("db1001"), "\(drift)")
        let shown = try runMarina(["operation", "show", id], environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
        #expect(shown.stdout.contains("COULD NOT ROLL BACK: section s1 is left read-only for a human"), "\(shown.stdout)")
        // Exit 5 (left for a human) from a command, as a DBA following it would see it.
        let followed = try runMarina(["operation", "follow", id], environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
        #expect(followed.status == 5 && followed.stdout.contains("COULD NOT ROLL BACK"), "\(followed.stdout)\(followed.stderr)")
    }

    @Test("the old primary refusing to replicate after the point of no return: done, exit 6, it stays read-only and depooled")
    func attentionAfterPointOfNoReturn() async throws {
        let sandbox = try await TestServers.privateSandbox("switch-attention", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await execute(sandbox, "db1001", "SET sql_log_bin = 0", "REVOKE REPLICATION SLAVE ADMIN ON *.* FROM marina_controller@'127.0.0.1'")
        let result = try switchover(sandbox, ["s1", "--to", "db1002", "--yes"])
        #expect(result.status == 6, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("Done: db1002 is the primary of s1, but a host needs attention"), "\(result.stdout)")
        #expect(result.stdout.contains("db1001 is left read-only and depooled"), "\(result.stdout)")
        let views = try await serverTopology(sandbox)
        #expect(views["db1002"] == ServerView(readOnly: false, source: nil, running: false))
        #expect(views["db1001"]?.readOnly == true)
        #expect(views["db1003"] == ServerView(readOnly: true, source: "db1002", running: true))
        let committed = try await TopologyStore(etcd: sandbox.etcdClient).committedTopology()
        #expect(committed?.sections["s1"]?.primary == "db1002")
        #expect(committed?.sections["s1"]?.readOnly == false)
        #expect(committed?.instances["db1001"]?.sections["s1"]?.pooled == false)
        let drift = try await driftOutput(sandbox) { $0.contains("db1001") }
        #expect(drift.contains("db1001"), "\(drift)")
    }

    @Test("etcd stopping during the flip: no writer while the journal cannot be written, then rolled back once etcd answers")
    func etcdStopsDuringFlip() async throws {
        let sandbox = try await TestServers.privateSandbox("switch-etcd", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let id = try await switchoverPaused(sandbox, before: "commit-primary", to: "db1002")
        try await Sandbox.stopEtcd(directory: sandbox.directory)
        // The controller finds etcd gone (its wait for the resume fails, and the operation stops where it is, for
        // recovery); etcd returns well within the lease, so the same controller still leads after.
        let log = sandbox.directory + "/controller.log"
        #expect(
            try await eventually(3) {
                (try? String(contentsOfFile: log, encoding: .utf8))?.contains("operation \(id): ") == true
            }, "the controller did not notice that etcd is gone")
        let meanwhile = try await serverTopology(sandbox)
        #expect(meanwhile["db1001"]?.readOnly == true && meanwhile["db1002"]?.readOnly == true && meanwhile["db1003"]?.readOnly == true)
        try await Sandbox.startEtcd(directory: sandbox.directory)
        let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        #expect(record.state == .rolledBack, "\(record.state) \(record.attention)")
        #expect(record.controller == "sandbox-controller")
        try await expectPrimary("db1001", sandbox)
        #expect(try await sandbox.etcdClient.value(StoreKeys().lock("s1")) == nil)
    }

    @Test("the controller killed before each step: the next one finishes it or rolls it back, consistently")
    func killedAtEveryStep() async throws {
        let sandbox = try await TestServers.privateSandbox("switch-crash", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let actions: [StepAction] = [
            .moveReplicas, .sectionReadOnly, .waitPropagation, .oldPrimaryReadOnly, .readFinalPosition, .waitCatchUp,
            .detachCandidate, .commitPrimary, .candidateWritable, .oldPrimaryReplicates, .resetCandidateReplication,
            .sectionReadWrite,
        ]
        var primary = "db1001"
        for action in actions {
            let candidate = primary == "db1001" ? "db1002" : "db1001"
            let id = try await switchoverPaused(sandbox, before: action.rawValue, to: candidate)
            try await restartController(sandbox, kill: true)
            let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
            let pastPointOfNoReturn = actions.firstIndex(of: action)! > actions.firstIndex(of: .candidateWritable)!
            #expect(
                record.state == (pastPointOfNoReturn ? .done : .rolledBack), "killed before \(action.rawValue): \(record.state) \(record.attention)")
            if record.state == .done { primary = candidate }
            try await expectPrimary(primary, sandbox)
            #expect(try await sandbox.etcdClient.value(StoreKeys().lock("s1")) == nil, "the lock is released after \(action.rawValue)")
        }
    }
}

/// The newest id the load generator wrote on `instance` (0 when none).
func newestLoadWrite(_ sandbox: SandboxState, on instance: String) async throws -> Int {
    let client = try await sandbox.root(instance)
    let newest = try await client.query("SELECT COALESCE(MAX(id), 0) AS n FROM \(Sandbox.loadDatabase).writes").first?.int("n")
    await client.close()
    return newest ?? 0
}

/// `Seconds_Behind_Master` of a replica, nil when it shows none.
func secondsBehindMaster(_ sandbox: SandboxState, _ instance: String) async throws -> Int? {
    let client = try await sandbox.root(instance)
    let behind = try await client.query("SHOW SLAVE STATUS").first?["Seconds_Behind_Master"]
    await client.close()
    return behind.flatMap { Int($0) }
}

extension SandboxState {
    func withoutInstance(_ name: String) -> SandboxState {
        var copy = self
        copy.instances.removeAll { $0.name == name }
        return copy
    }
}
