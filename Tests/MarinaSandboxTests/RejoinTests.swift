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

/// `marina instance rejoin` and `marina instance move` on real servers: an old primary killed
/// with SIGKILL, failed over, restarted and rejoined (or refused when it holds writes nobody
/// else has); a replica moved under another. Each test checks what a DBA would: the servers'
/// `read_only` and replication, the committed topology in etcd, and the journal.
@Suite("Rejoin and move", .serialized)
struct RejoinTests {
    @Test(
        """
        a clean old primary rejoins: after kill -9, failover and restart (writable, as its option file says, until its \
        agent, seeing another primary committed, makes it read-only), \
        `instance rejoin` makes it read-only, replicating from the new primary from its own last GTID; the mark is \
        cleared, it stays depooled, and the new primary's writes reach it
        """)
    func cleanOldPrimaryRejoins() async throws {
        let sandbox = try await TestServers.privateSandbox("rejoin-clean", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let (promoted, final) = try await killAndFailOver(sandbox)
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1001")
        // Back as it died (writable, as its option file says), then read-only: its agent held the
        // primary lease when a commit named another primary, and fences it. No channel, its binary log whole.
        #expect(try await eventually(20) { try await readOnly(sandbox, "db1001") == true }, "db1001's agent left it writable")
        #expect(try await channel(sandbox, "db1001") == nil)
        #expect(try await binlogPosition(sandbox, "db1001") == final)

        let result = try instanceRejoin(sandbox, ["db1001", "--yes"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("✓ db1001 read-only"))
        #expect(result.stdout.contains("✓ db1001 replicates from \(promoted)"))
        #expect(result.stdout.contains("✓ clear db1001's needs_rejoin mark"))
        #expect(result.stdout.contains("`marina instance pool db1001 --section s1`"))

        // On the servers: read-only, replicating from the new primary (by its server_id), with GTID.
        #expect(try await readOnly(sandbox, "db1001"))
        let row = try #require(try await channel(sandbox, "db1001"))
        #expect(row["Master_Server_Id"] == (try await serverID(sandbox, promoted)))
        #expect(row["Slave_IO_Running"] == "Yes" && row["Slave_SQL_Running"] == "Yes")
        #expect(row["Using_Gtid"] == "Slave_Pos")
        // Every member follows the new primary, db1001 included.
        try await expectPrimary(promoted, sandbox)

        // In etcd: the mark cleared by the controller, still depooled.
        let committed = try await TopologyStore(etcd: sandbox.etcdClient).committedTopology()
        let membership = try #require(committed?.instances["db1001"]?.sections["s1"])
        #expect(membership.needsRejoin == nil)
        #expect(membership.pooled == false)
        let record = try #require(try await lastOperation(sandbox, kind: "rejoin"))
        #expect(record.state == .done && record.finalPosition == final, "\(record.state) \(record.finalPosition ?? "-")")

        // The new primary's writes reach it.
        try await execute(
            sandbox, promoted, "CREATE DATABASE rejoined", "CREATE TABLE rejoined.t (id INT PRIMARY KEY)", "INSERT INTO rejoined.t VALUES (1), (2)")
        #expect(try await waitFor(try await binlogPosition(sandbox, promoted), on: "db1001", sandbox))
        let client = try await sandbox.root("db1001")
        #expect(try await client.query("SELECT COUNT(*) AS n FROM rejoined.t").first?["n"] == "2")
        await client.close()

        // Rejoined once: a second request is refused, nothing changed.
        let commits = try await commitCount(sandbox)
        let again = try instanceRejoin(sandbox, ["db1001", "--section", "s1", "--yes"])
        #expect(again.status == 2, "\(again.stdout)\(again.stderr)")
        #expect(again.stdout.contains("db1001 has no needs_rejoin mark in s1"))
        #expect(try await commitCount(sandbox) == commits)
    }

    @Test(
        """
        diverged: a transaction that never left the old primary (every replica's IO thread stopped) is named by its GTID \
        range; the rejoin is refused (exit 2), db1001 is untouched: no channel, its binary log as it was, still marked
        """)
    func divergedOldPrimaryIsRefused() async throws {
        let sandbox = try await TestServers.privateSandbox("rejoin-diverged", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        for replica in ["db1002", "db1003"] { try await execute(sandbox, replica, "STOP SLAVE IO_THREAD") }
        try await execute(sandbox, "db1001", "CREATE DATABASE lost", "CREATE TABLE lost.t (id INT PRIMARY KEY)", "INSERT INTO lost.t VALUES (1)")
        let (promoted, final) = try await killAndFailOver(sandbox, waitForReplicas: false)
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1001")

        // What db1001 wrote that the new primary never received: its own origin, from after the
        // new primary's last GTID of it to db1001's last.
        let last = try #require(GTIDPosition(parsing: final)[0])
        let state = try GTIDState(parsing: try await binlogState(sandbox, promoted))
        let received = state[domain: 0, server: 1001]?.sequence ?? 0
        #expect(received < last.sequence)
        let first = GTID(domain: 0, server: 1001, sequence: received + 1)
        let range = first == last ? "\(last)" : "\(first)..\(last)"

        let commits = try await commitCount(sandbox)
        let result = try instanceRejoin(sandbox, ["db1001", "--yes"])
        #expect(result.status == 2, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("db1001 holds transactions the primary \(promoted) never received: \(range)."), "\(result.stdout)")
        #expect(result.stdout.contains("rebuild it or to undo those transactions (flashback)"))
        #expect(result.stdout.contains("Refused, nothing changed"))

        // Untouched by the rejoin: no channel, nothing applied, still marked and depooled; read-only
        // since its agent saw another primary committed (it came back writable, diverged).
        #expect(try await channel(sandbox, "db1001") == nil)
        #expect(try await binlogPosition(sandbox, "db1001") == final)
        #expect(try await eventually(20) { try await readOnly(sandbox, "db1001") == true })
        #expect(try await commitCount(sandbox) == commits)
        let membership = try await TopologyStore(etcd: sandbox.etcdClient).committedTopology()?.instances["db1001"]?.sections["s1"]
        #expect(membership?.needsRejoin != nil && membership?.pooled == false)
        let record = try #require(try await lastOperation(sandbox, kind: "rejoin"))
        #expect(record.state == .refused && record.steps.isEmpty)
    }

    @Test(
        """
        a rejoin rolled back: db1001 takes a write of its own after the preflight (as root, through read_only); the \
        replicate step compares again and fails; no channel is left, db1001 stays read-only and marked (exit 1)
        """)
    func rejoinRolledBack() async throws {
        let sandbox = try await TestServers.privateSandbox("rejoin-rollback", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let (promoted, _) = try await killAndFailOver(sandbox)
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1001")
        try await restartController(sandbox, pauseBefore: "old-primary-replicates")
        let id = try await requestInstanceOperation(sandbox, kind: "rejoin", candidate: "db1001")
        try await waitForOperation(sandbox, id) { $0.pausedBefore != nil }
        #expect(try await readOnly(sandbox, "db1001"))
        try await execute(sandbox, "db1001", "CREATE DATABASE late", "CREATE TABLE late.t (id INT PRIMARY KEY)")
        try await resume(sandbox, id)

        let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        #expect(record.state == .rolledBack, "\(record.state) \(record.attention) \(record.failure.map { "\($0)" } ?? "")")
        #expect(record.state.exitCode == 4)
        #expect(record.failure?.host == "db1001")
        #expect(record.failure?.error.contains("holds transactions the primary \(promoted) never received") == true)
        #expect(record.steps.map(\.state) == [.undone, .undone, .pending])
        #expect(try await channel(sandbox, "db1001") == nil)
        #expect(try await readOnly(sandbox, "db1001"))
        let membership = try await TopologyStore(etcd: sandbox.etcdClient).committedTopology()?.instances["db1001"]?.sections["s1"]
        #expect(membership?.needsRejoin != nil && membership?.pooled == false)
    }

    @Test(
        """
        the controller killed after db1001 started replicating, before the journal says so: the next leader runs the \
        step again (the channel is there: only checked) and clears the mark
        """)
    func rejoinFinishedByNextLeader() async throws {
        let sandbox = try await TestServers.privateSandbox("rejoin-killed", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let (promoted, _) = try await killAndFailOver(sandbox)
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1001")
        try await restartController(sandbox, pauseAfter: "old-primary-replicates")
        let id = try await requestInstanceOperation(sandbox, kind: "rejoin", candidate: "db1001")
        #expect(try await pausedAfter(sandbox, id) == "db1001 replicates from \(promoted)")
        try await restartController(sandbox, kill: true)

        let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        #expect(record.state == .done, "\(record.state) \(record.attention) \(record.failure.map { "\($0)" } ?? "")")
        try await expectPrimary(promoted, sandbox)
        let membership = try await TopologyStore(etcd: sandbox.etcdClient).committedTopology()?.instances["db1001"]?.sections["s1"]
        #expect(membership?.needsRejoin == nil && membership?.pooled == false)
    }

    @Test(
        """
        move: under itself refused; db1003 under db1002 (which waits for db1003's position first), the primary's \
        writes reaching it through db1002; the cycle back refused; back under the primary; under db1002 with \
        log_slave_updates OFF refused, nothing changed
        """)
    func moveReplica() async throws {
        let sandbox = try await TestServers.privateSandbox("rejoin-move", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let itself = try instanceMove(sandbox, ["db1003", "--under", "db1003", "--yes"])
        #expect(itself.status == 2, "\(itself.stdout)\(itself.stderr)")
        #expect(itself.stdout.contains("db1003 cannot replicate from itself"))

        let moved = try instanceMove(sandbox, ["db1003", "--under", "db1002", "--yes"])
        #expect(moved.status == 0, "\(moved.stdout)\(moved.stderr)")
        #expect(moved.stdout.contains("✓ move db1003 under db1002"))
        #expect(moved.stdout.contains("Done: db1003 replicates from db1002."))
        try await expectSource(sandbox, "db1003", "db1002")
        try await expectSource(sandbox, "db1002", "db1001")
        try await execute(sandbox, "db1001", "CREATE DATABASE moved", "CREATE TABLE moved.t (id INT PRIMARY KEY)", "INSERT INTO moved.t VALUES (1)")
        #expect(try await waitFor(try await binlogPosition(sandbox, "db1001"), on: "db1003", sandbox))
        #expect(try await readOnly(sandbox, "db1003"))

        let cycle = try instanceMove(sandbox, ["db1002", "--under", "db1003", "--yes"])
        #expect(cycle.status == 2, "\(cycle.stdout)\(cycle.stderr)")
        #expect(cycle.stdout.contains("db1003 replicates from db1002: moving db1002 under it would make a replication cycle"))
        try await expectSource(sandbox, "db1002", "db1001")

        let back = try instanceMove(sandbox, ["db1003", "--under", "db1001", "--yes"])
        #expect(back.status == 0, "\(back.stdout)\(back.stderr)")
        try await expectPrimary("db1001", sandbox)

        // db1002 stops logging what it replicates: nothing may replicate from it.
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1002")
        let options = try #require(sandbox.instance(named: "db1002")).optionFile
        try String(contentsOfFile: options, encoding: .utf8).replacingOccurrences(of: "log_slave_updates=ON", with: "log_slave_updates=OFF")
            .write(toFile: options, atomically: true, encoding: .utf8)
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1002")
        let commits = try await commitCount(sandbox)
        let refused = try instanceMove(sandbox, ["db1003", "--under", "db1002", "--yes"])
        #expect(refused.status == 2, "\(refused.stdout)\(refused.stderr)")
        #expect(refused.stdout.contains("db1002 is not the primary and has log_slave_updates OFF"))
        try await expectSource(sandbox, "db1003", "db1001")
        #expect(try await commitCount(sandbox) == commits)
        let moves = try await operations(sandbox).filter { $0.kind == "move" }.map(\.state)
        #expect(moves.filter { $0 == .done }.count == 2 && moves.filter { $0 == .refused }.count == 3, "\(moves)")
    }

    @Test("the controller killed after the move, before the journal says so: the next leader finds it done and checks it")
    func moveFinishedByNextLeader() async throws {
        let sandbox = try await TestServers.privateSandbox("rejoin-move-killed", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await restartController(sandbox, pauseAfter: "move-replicas")
        let id = try await requestInstanceOperation(
            sandbox, kind: "move", candidate: "db1003", newSource: "db1002")
        #expect(try await pausedAfter(sandbox, id) == "move db1003 under db1002")
        try await restartController(sandbox, kill: true)

        let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        #expect(record.state == .done, "\(record.state) \(record.attention) \(record.failure.map { "\($0)" } ?? "")")
        try await expectSource(sandbox, "db1003", "db1002")
        try await expectSource(sandbox, "db1002", "db1001")
    }

    @Test("a move whose new source dies after the preflight is rolled back: the replica replicates from its original source again (exit 4)")
    func moveRolledBack() async throws {
        let sandbox = try await TestServers.privateSandbox("rejoin-move-rollback", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await restartController(sandbox, pauseBefore: "move-replicas")
        let id = try await requestInstanceOperation(
            sandbox, kind: "move", candidate: "db1003", newSource: "db1002")
        try await waitForOperation(sandbox, id) { $0.pausedBefore != nil }
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1002", kill: true)
        try await resume(sandbox, id)

        let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        #expect(record.state == .rolledBack, "\(record.state) \(record.attention) \(record.failure.map { "\($0)" } ?? "")")
        #expect(record.state.exitCode == 4)
        #expect(record.failure?.host == "db1002", "\(record.failure.map { "\($0)" } ?? "")")
        #expect(record.steps.map(\.state) == [.undone])
        try await expectSource(sandbox, "db1003", "db1001")
        try await execute(sandbox, "db1001", "CREATE DATABASE after", "CREATE TABLE after.t (id INT PRIMARY KEY)")
        #expect(try await waitFor(try await binlogPosition(sandbox, "db1001"), on: "db1003", sandbox))
    }
}

// MARK: Helpers

/// `marina instance rejoin` against the sandbox.
func instanceRejoin(_ sandbox: SandboxState, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    try runMarina(["instance", "rejoin"] + arguments, environment: ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"])
}

/// `marina instance move` against the sandbox.
func instanceMove(_ sandbox: SandboxState, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    try runMarina(["instance", "move"] + arguments, environment: ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"])
}

/// Writes a rejoin or move request as the CLI does, without following it.
func requestInstanceOperation(_ sandbox: SandboxState, kind: String, candidate: String, newSource: String? = nil) async throws -> String {
    let id = "test-\(kind)-\(UInt32.random(in: 0...UInt32.max))"
    var record = OperationRecord(id: id, kind: kind, section: "s1", candidate: candidate, reason: "test", requestedBy: "test", requestedAt: Date())
    record.newSource = newSource
    let keys = StoreKeys()
    _ = try await sandbox.etcdClient.transaction(
        Transaction(compares: [], success: [.put(keys.operation(id), try OperationJSON.encode(record)), .put(keys.request(id), id)]))
    return id
}

/// Kills db1001 with SIGKILL and fails s1 over with `marina failover`. Unless told otherwise,
/// nothing is in flight: db1001 is set read-only first (the agent's heartbeat stops) and every
/// replica applies its last position. Gives the new primary and db1001's last position.
private func killAndFailOver(_ sandbox: SandboxState, waitForReplicas: Bool = true) async throws -> (promoted: String, final: String) {
    try await execute(sandbox, "db1001", "SET GLOBAL read_only = ON")
    let final = try await binlogPosition(sandbox, "db1001")
    if waitForReplicas {
        for replica in ["db1002", "db1003"] { #expect(try await waitFor(final, on: replica, sandbox), "\(replica) did not apply \(final)") }
    }
    try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1001", kill: true)
    try await waitUntilReplicasLost(sandbox, ["db1002", "db1003"])
    let result = try failover(sandbox, ["s1", "--yes"])
    guard result.status == 0, let record = try await lastOperation(sandbox, kind: "failover") else {
        throw SandboxError.invalidArgument("the failover did not run: \(result.stdout)\(result.stderr)")
    }
    return (record.candidate, final)
}

/// The replication channel of an instance (`SHOW SLAVE STATUS`), nil when it has none.
private func channel(_ sandbox: SandboxState, _ instance: String) async throws -> [String: String]? {
    let client = try await sandbox.root(instance)
    let result = try await client.query("SHOW SLAVE STATUS")
    await client.close()
    guard let row = result.rows.first else { return nil }
    return Dictionary(uniqueKeysWithValues: result.columns.compactMap { column in row[column].map { (column, $0) } })
}

private func serverID(_ sandbox: SandboxState, _ instance: String) async throws -> String? {
    let client = try await sandbox.root(instance)
    let id = try await client.query("SELECT @@GLOBAL.server_id AS id").first?["id"]
    await client.close()
    return id
}

private func binlogState(_ sandbox: SandboxState, _ instance: String) async throws -> String {
    let client = try await sandbox.root(instance)
    let state = try await client.query("SELECT @@GLOBAL.gtid_binlog_state AS state").first?["state"] ?? ""
    await client.close()
    return state
}

/// Expects `replica` to replicate from `source` (by server_id) with both threads running, within 5 s.
private func expectSource(_ sandbox: SandboxState, _ replica: String, _ source: String, sourceLocation: SourceLocation = #_sourceLocation)
    async throws
{
    let id = try await serverID(sandbox, source)
    var row: [String: String]?
    let connected = try await eventually(5) {
        row = try await channel(sandbox, replica)
        return row?["Master_Server_Id"] == id && row?["Slave_IO_Running"] == "Yes" && row?["Slave_SQL_Running"] == "Yes"
    }
    let seen = "server_id \(row?["Master_Server_Id"] ?? "none") (IO \(row?["Slave_IO_Running"] ?? "-"), SQL \(row?["Slave_SQL_Running"] ?? "-"))"
    #expect(connected, "\(replica) replicates from \(seen), expected \(source) (server_id \(id ?? "?"))", sourceLocation: sourceLocation)
}
