import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Observation
import Operations
import Testing
import Topology
import TopologyStore

/// Unplanned failovers on real servers: the primary killed with SIGKILL (its connections close
/// at once, as when a host loses power with the network up), then `marina failover` or the
/// controller on its own. Each test checks the servers, the source of truth and the journal.
@Suite("Failover", .serialized)
struct FailoverTests {
    @Test(
        """
        refused while the primary lives; after kill -9, the only eligible replica is promoted although its SQL thread was \
        stopped during the writes (its relay log applied first, nothing received lost); the errant and the \
        log_slave_updates=OFF replicas are rejected with their reasons; the errant one is left where it is for a human
        """)
    func manualFailover() async throws {
        let sandbox = try await TestServers.privateSandbox("failover-manual", replicas: 3, controller: true)
        defer { TestServers.stop(sandbox) }

        // Alive: refused, pointing at switchover, nothing changed.
        let commits = try await commitCount(sandbox)
        let alive = try failover(sandbox, ["s1", "--yes"])
        #expect(alive.status == 2, "\(alive.stdout)\(alive.stderr)")
        #expect(alive.stdout.contains("the primary db1001 is alive (the controller reaches it): use `marina switchover`"))
        #expect(try await commitCount(sandbox) == commits)

        // db1004 logs nothing it replicates; db1002 carries a transaction of its own.
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1004")
        let options = try #require(sandbox.instance(named: "db1004")).optionFile
        try String(contentsOfFile: options, encoding: .utf8).replacingOccurrences(of: "log_slave_updates=ON", with: "log_slave_updates=OFF")
            .write(toFile: options, atomically: true, encoding: .utf8)
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1004")
        // In a domain of its own, so that its replication goes on (in domain 0, strict mode would stop it).
        try await execute(
            sandbox, "db1002", "SET SESSION gtid_domain_id = 9", "CREATE DATABASE errant", "CREATE TABLE errant.t (id INT PRIMARY KEY)",
            "INSERT INTO errant.t VALUES (1)")

        // db1003's SQL thread stops while the application writes: what it receives waits in its relay log.
        try await execute(sandbox, "db1003", "STOP SLAVE SQL_THREAD")
        let load = try LoadGenerator(state: sandbox, rate: 200)
        await load.start()
        #expect(try await eventually(20) { try await newestLoadWrite(sandbox, on: "db1001") > 0 }, "the load never wrote")
        try await Task.sleep(for: .seconds(30))  // 30 s of writes db1003 receives and does not apply: a duration, not a wait for a state
        let report = await load.stop()
        // Lagging that far behind, db1003 was depooled by the controller's automatic depool.
        let store = TopologyStore(etcd: sandbox.etcdClient)
        #expect(try await store.committedTopology()?.instances["db1003"]?.sections["s1"]?.pooled == false, "db1003 was not depooled")
        // Every replica received all of it, then the primary dies.
        let final = try GTIDPosition(parsing: try await binlogPosition(sandbox, "db1001"))
        #expect(try await eventually(20) { try await receivedPosition(sandbox, "db1003").contains(final) })
        let applied = try await sandbox.root("db1003")
        let unapplied = try await applied.query("SELECT @@GLOBAL.gtid_slave_pos AS pos").first?["pos"] ?? ""
        await applied.close()
        #expect(!(try GTIDPosition(parsing: unapplied).contains(final)), "db1003 applied everything already: the test shows nothing")
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1001", kill: true)
        try await waitUntilReplicasLost(sandbox, ["db1002", "db1003", "db1004"])

        let result = try failover(sandbox, ["s1", "--yes"])
        #expect(result.status == 6, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("✓ db1003 applies what it received"))
        #expect(result.stdout.contains("Done: db1003 is the primary of s1, but a host needs attention:"))
        #expect(result.stdout.contains("db1002 is not repointed: errant transactions 9-1002-3"))

        try await expectPrimary("db1003", sandbox, except: ["db1001", "db1002"])
        #expect(try await serverTopology(sandbox, except: ["db1001"])["db1002"]?.source == "db1001", "db1002 was moved")
        let record = try #require(try await lastOperation(sandbox, kind: "failover"))
        let details = try #require(record.failover)
        #expect(details.rejected["db1002"]?.contains("errant transactions 9-1002-3") == true, "\(details.rejected)")
        #expect(details.rejected["db1004"] == "log_slave_updates is OFF", "\(details.rejected)")
        #expect(details.witnesses.first == "the controller cannot reach db1001 over SQL")
        // At least the load's last write (the agent's heartbeat may have written once more before the kill).
        #expect(try details.lastKnownPosition.map { try GTIDPosition(parsing: $0).contains(final) } == true, "\(details.lastKnownPosition ?? "-")")
        #expect(details.forkPoint != nil)

        // Nothing db1003 received was lost: it applied the primary's final position, and holds every acknowledged write.
        #expect(try GTIDPosition(parsing: try await binlogPosition(sandbox, "db1003")).contains(final))
        let missing = try await LoadGenerator.missing(report.acknowledged, on: try #require(sandbox.instance(named: "db1003")), state: sandbox)
        #expect(missing.isEmpty, "\(missing.count) acknowledged writes missing on db1003")
        #expect(report.acknowledged.count > 1000)  // about 6,000 at 200/s; fewer on a loaded machine

        // The old primary is out of the generated configuration.
        let committed = try await TopologyStore(etcd: sandbox.etcdClient).committedTopology()
        // The automatic depool's replica is pooled again as the primary, in the commit that names it.
        #expect(committed?.instances["db1003"]?.sections["s1"]?.pooled == true)
        let membership = committed?.instances["db1001"]?.sections["s1"]
        #expect(membership?.pooled == false)
        #expect(membership?.needsRejoin?.forkPoint == details.forkPoint && membership?.needsRejoin?.operation == record.id)
        // The history entry of that commit shows the mark, which the generated configuration cannot
        // (the automatic depool may have committed after it: the entry is looked for among the last).
        let entries = try await TopologyStore(etcd: sandbox.etcdClient).history(limit: 5)
        #expect(
            entries.contains { entry in entry.changes.contains { $0.key == "needs_rejoin" && $0.entry == "db1001 in s1" && $0.after != nil } },
            "\(entries.map(\.changes))")
        // Status shows the mark beside the dead old primary.
        let status = try runMarina(["status"], environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
        #expect(status.stdout.contains("DEPOOLED  NEEDS REJOIN: needs rejoin since failover \(record.id)"), "\(status.stdout)")
        // Drift says what the dead old primary is: one to rejoin, not an unreachable replica.
        let drift = try await driftOutput(sandbox) { $0.contains("NEEDS_REJOIN") }
        #expect(drift.contains("db1001    NEEDS_REJOIN") && !drift.contains("REPLICA_UNREACHABLE"), "\(drift)")
    }

    @Test("lost writes after a failover: only one final block of the dead primary's may be missing")
    func holes() {
        let acknowledged: [UInt64] = [1, 2, 3, 4, 5, 6, 7]
        #expect(LoadGenerator.holes(acknowledged: acknowledged, missing: []) == [])
        #expect(LoadGenerator.holes(acknowledged: acknowledged, missing: [4, 5]) == [])  // the tail before the new primary's 6, 7
        #expect(LoadGenerator.holes(acknowledged: acknowledged, missing: [2, 5]) == [2, 5])  // 3 and 4 present between them
    }

    @Test("the preferred replica behind another: it catches up from the most advanced first, then is promoted; no replica is lost")
    func twoPhases() async throws {
        let sandbox = try await TestServers.privateSandbox("failover-two-phase", replicas: 3, controller: true)
        defer { TestServers.stop(sandbox) }
        try await execute(sandbox, "db1002", "STOP SLAVE IO_THREAD")
        try await execute(sandbox, "db1001", "CREATE DATABASE late", "CREATE TABLE late.t (id INT PRIMARY KEY)", "INSERT INTO late.t VALUES (1), (2)")
        let primaryPosition = try await binlogPosition(sandbox, "db1001")
        for replica in ["db1003", "db1004"] { #expect(try await waitFor(primaryPosition, on: replica, sandbox)) }
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1001", kill: true)
        try await waitUntilReplicasLost(sandbox, ["db1002", "db1003", "db1004"])

        let result = try failover(sandbox, ["s1", "--to", "db1002", "--yes"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("✓ db1002 catches up from db1003"))
        try await expectPrimary("db1002", sandbox, except: ["db1001"])
        #expect(try GTIDPosition(parsing: try await binlogPosition(sandbox, "db1002")).contains(try GTIDPosition(parsing: primaryPosition)))
        let rows = try await sandbox.root("db1002")
        #expect(try await rows.query("SELECT COUNT(*) AS n FROM late.t").first?["n"] == "2")
        await rows.close()
        let record = try #require(try await lastOperation(sandbox, kind: "failover"))
        #expect(record.failover?.catchUpFrom == "db1003")
    }

    @Test("the controller killed right after the promotion: the next leader finishes the failover, with no second promotion")
    func controllerKilledAfterPromotion() async throws {
        let sandbox = try await TestServers.privateSandbox("failover-killed", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await restartController(sandbox, pauseAfter: "candidate-writable")
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1001", kill: true)
        try await waitUntilReplicasLost(sandbox, ["db1002", "db1003"])
        let id = try await requestFailover(sandbox)
        let paused = try await pausedAfter(sandbox, id)
        #expect(paused == "db1002 writable")
        #expect(try await readOnly(sandbox, "db1002") == false)
        try await restartController(sandbox, kill: true)

        let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        #expect(record.state == .done, "\(record.state) \(record.attention)")
        #expect(record.candidate == "db1002")
        try await expectPrimary("db1002", sandbox, except: ["db1001"])
        let failovers = try await operations(sandbox).filter { $0.kind == "failover" }
        #expect(failovers.count == 1, "\(failovers.map(\.id))")
    }

    @Test(
        """
        automatic: kill -9 of the primary under load is failed over by the controller alone (one writer, every replica \
        under it, the generated configuration follows, no write lost that a replica received); the new primary killed \
        inside the block is not failed over until `marina failover ack`
        """)
    func automaticUnderLoadThenBlocked() async throws {
        let sandbox = try await TestServers.privateSandbox(
            "failover-auto", replicas: 3, controller: true, failover: .automatic, agentInterval: 0.5)
        defer { TestServers.stop(sandbox) }
        let load = try LoadGenerator(state: sandbox, rate: 200)
        await load.start()
        #expect(try await eventually(20) { try await newestLoadWrite(sandbox, on: "db1001") > 0 }, "the load never wrote")
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1001", kill: true)

        let first = try await waitForFailovers(sandbox, count: 1)[0]
        #expect(first.state == .done, "\(first.state): \(first.refusals) \(first.attention) \(first.failure.map { "\($0)" } ?? "")")
        #expect(first.failover?.automatic == true && first.requestedBy == "marina-controller (automatic)")
        let promoted = first.candidate
        #expect(try await eventually(20) { try await newestLoadWrite(sandbox, on: promoted) > 0 }, "no write reached \(promoted)")
        let report = await load.stop()
        try await expectPrimary(promoted, sandbox, except: ["db1001"])
        // Acknowledged writes the new primary lacks are at most the dead primary's last ones, in
        // one block (never received by any replica): no write a replica had received is lost.
        let missing = try await LoadGenerator.missing(report.acknowledged, on: try #require(sandbox.instance(named: promoted)), state: sandbox)
        #expect(LoadGenerator.holes(acknowledged: report.acknowledged, missing: missing) == [], "lost writes: \(missing)")
        #expect(report.twoWritersSamples == 0)

        // Blocked: the new primary dies too, and nothing is promoted until a human acknowledges.
        let block = try await sandbox.etcdClient.value(StoreKeys().failoverBlock("s1"))
        #expect(block != nil, "no block written after an automatic failover")
        let replicas = sandbox.instances(in: "s1").map(\.name).filter { $0 != "db1001" && $0 != promoted }
        try await Sandbox.stopInstance(directory: sandbox.directory, name: promoted, kill: true)
        try await waitUntilReplicasLost(sandbox, replicas)
        let log = try #require(sandbox.controller).logFile
        #expect(
            try await eventually(20) { (try? String(contentsOfFile: log, encoding: .utf8))?.contains("automatic failover of s1 is blocked") == true },
            "the controller never said the section is blocked")
        #expect(try await operations(sandbox).filter { $0.kind == "failover" }.count == 1)

        let ack = try failover(sandbox, ["ack", "s1"])
        #expect(ack.status == 0, "\(ack.stdout)\(ack.stderr)")
        #expect(ack.stdout.contains("Acknowledged failover \(first.id)"))
        let second = try await waitForFailovers(sandbox, count: 2)[1]
        #expect(second.state == .done, "\(second.state): \(second.refusals) \(second.attention)")
        try await expectPrimary(second.candidate, sandbox, except: ["db1001", promoted])
    }

    @Test("the controller cannot reach a healthy primary while a replica still replicates from it: unreachable, no failover")
    func unreachableIsNotDead() async throws {
        let sandbox = try await TestServers.privateSandbox(
            "failover-unreachable", replicas: 2, controller: true, failover: .automatic, agentInterval: 0.5)
        defer { TestServers.stop(sandbox) }
        // The controller's path to db1001 is cut, the replicas' is not: the source of truth (which
        // the controller connects by) names an address of db1001's port nothing listens on
        // (mariadbd binds 127.0.0.1), so the controller's connections are refused at TCP level while
        // the replicas keep replicating over 127.0.0.1 and db1001's agent probes it by its socket.
        let store = TopologyStore(etcd: sandbox.etcdClient)
        var moved = try #require(try await store.committedTopology())
        moved.instances["db1001"]?.host = "127.0.0.9"
        _ = try await store.replaceStaged(with: moved, by: ChangeAuthor(author: "test", now: Date()), change: "cut the controller's path")
        _ = try await store.commit(message: "cut the controller's path to db1001", by: ChangeAuthor(author: "test", now: Date()))
        #expect(try await store.committedTopology()?.instances["db1001"]?.host == "127.0.0.9")
        // A sign of trouble that makes the controller look: db1003's IO thread stops. db1002 still replicates.
        try await execute(sandbox, "db1003", "STOP SLAVE IO_THREAD")
        let log = try #require(sandbox.controller).logFile
        #expect(
            try await eventually(20) {
                (try? String(contentsOfFile: log, encoding: .utf8))?.contains("the primary db1001 of s1 is unreachable, not dead") == true
            }, "the controller never judged db1001")
        let drift = try await driftOutput(sandbox) { $0.contains("PRIMARY_UNREACHABLE_FROM_CONTROLLER") }
        #expect(drift.contains("db1001    PRIMARY_UNREACHABLE_FROM_CONTROLLER"), "\(drift)")
        #expect(try await operations(sandbox).filter { $0.kind == "failover" }.isEmpty)
        #expect(try await readOnly(sandbox, "db1001") == false)
        #expect(try await store.committedTopology()?.sections["s1"]?.primary == "db1001")
    }
}

// MARK: Helpers

func failover(_ sandbox: SandboxState, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    try runMarina(["failover"] + arguments, environment: ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"])
}

/// Writes a failover request as the CLI does, without following it.
func requestFailover(_ sandbox: SandboxState, section: String = "s1") async throws -> String {
    let id = "test-failover-\(UInt32.random(in: 0...UInt32.max))"
    var record = OperationRecord(id: id, kind: "failover", section: section, candidate: "", reason: "test", requestedBy: "test", requestedAt: Date())
    record.failover = FailoverDetails(automatic: false)
    let keys = StoreKeys()
    _ = try await sandbox.etcdClient.transaction(
        Transaction(compares: [], success: [.put(keys.operation(id), try OperationJSON.encode(record)), .put(keys.request(id), id)]))
    return id
}

/// Every operation journal.
func operations(_ sandbox: SandboxState) async throws -> [OperationRecord] {
    try await sandbox.etcdClient.get(StoreKeys().operations, prefix: true).kvs.map { try OperationJSON.decode($0.value) }
}

/// The operation of `kind` requested last.
func lastOperation(_ sandbox: SandboxState, kind: String) async throws -> OperationRecord? {
    try await operations(sandbox).filter { $0.kind == kind && !$0.dryRun }.max { $0.requestedAt < $1.requestedAt }
}

/// Waits until none of `replicas` has its IO thread connected (the primary is gone).
func waitUntilReplicasLost(_ sandbox: SandboxState, _ replicas: [String]) async throws {
    let lost = try await eventually(20) {
        for replica in replicas {
            let client = try await sandbox.root(replica)
            let io = try await client.query("SHOW SLAVE STATUS").first?["Slave_IO_Running"]
            await client.close()
            if io == "Yes" { return false }
        }
        return true
    }
    #expect(lost, "the replicas still show their IO thread connected")
}

func receivedPosition(_ sandbox: SandboxState, _ instance: String) async throws -> GTIDPosition {
    let client = try await sandbox.root(instance)
    let text = try await client.query("SHOW SLAVE STATUS").first?["Gtid_IO_Pos"] ?? ""
    await client.close()
    return try GTIDPosition(parsing: text)
}

func binlogPosition(_ sandbox: SandboxState, _ instance: String) async throws -> String {
    let client = try await sandbox.root(instance)
    let position = try await client.query("SELECT @@GLOBAL.gtid_binlog_pos AS pos").first?["pos"] ?? ""
    await client.close()
    return position
}

/// Whether `instance` applies `position` within 20 s.
func waitFor(_ position: String, on instance: String, _ sandbox: SandboxState) async throws -> Bool {
    let client = try await sandbox.root(instance)
    let waited = try await client.query("SELECT MASTER_GTID_WAIT(?, 20) AS w", .string(position)).first?["w"]
    await client.close()
    return waited == "0"
}

/// Waits until `count` failovers have finished; gives them, oldest first.
func waitForFailovers(_ sandbox: SandboxState, count: Int, seconds: Double = 30) async throws -> [OperationRecord] {
    var finished = [OperationRecord]()
    _ = try await eventually(seconds) {
        finished = try await operations(sandbox).filter { $0.kind == "failover" && $0.state.isFinished }.sorted { $0.requestedAt < $1.requestedAt }
        return finished.count >= count
    }
    guard finished.count >= count else {
        throw SandboxError.invalidArgument("\(finished.count) failovers finished within \(seconds) s, expected \(count)")
    }
    return finished
}
