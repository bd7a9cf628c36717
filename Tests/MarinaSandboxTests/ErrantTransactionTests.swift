import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Testing

/// Errant transactions on real servers: a transaction written directly on a replica, then
/// hidden from `gtid_binlog_pos` by the primary's later transactions (possible with
/// `gtid_strict_mode` OFF), must still refuse the switchover, whether it is on the candidate
/// or on a replica that would move under it. Each test has its own sandbox (db1001 primary,
/// db1002 and db1003 replicas, an agent writing the heartbeat, a controller).
@Suite("Errant transactions", .serialized)
struct ErrantTransactionTests {
    @Test("an errant transaction on the candidate, hidden from gtid_binlog_pos, refuses the switchover")
    func errantOnCandidate() async throws {
        let sandbox = try await TestServers.privateSandbox("errant-candidate", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let errant = try await writeHiddenErrantTransaction(sandbox, on: "db1002")
        try await expectRefused(sandbox, to: "db1002", "db1002 has errant transactions \(errant)")
    }

    @Test("an errant transaction on a replica that would move under the candidate refuses the switchover")
    func errantOnMovingReplica() async throws {
        let sandbox = try await TestServers.privateSandbox("errant-replica", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let errant = try await writeHiddenErrantTransaction(sandbox, on: "db1003")
        try await expectRefused(sandbox, to: "db1002", "db1003 has errant transactions \(errant)")
    }

    @Test("a candidate started with log_slave_updates OFF is refused (the variable is read-only at runtime)")
    func candidateWithoutLogSlaveUpdates() async throws {
        let sandbox = try await TestServers.privateSandbox("errant-log-slave-updates", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        await #expect(throws: MariaDBError.self) { try await execute(sandbox, "db1002", "SET GLOBAL log_slave_updates = OFF") }

        // Restart db1002 with the option off; it resumes replicating from db1001.
        let member = try #require(sandbox.instance(named: "db1002"))
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1002")
        let options = try String(contentsOfFile: member.optionFile, encoding: .utf8)
        #expect(options.contains("log_slave_updates=ON"))
        try options.replacingOccurrences(of: "log_slave_updates=ON", with: "log_slave_updates=OFF")
            .write(toFile: member.optionFile, atomically: true, encoding: .utf8)
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1002")
        #expect(try await variable(sandbox, "db1002", "@@GLOBAL.log_slave_updates") == "0")
        try await waitUntilReplicating(sandbox, "db1002")

        try await expectRefused(sandbox, to: "db1002", "db1002 has log_slave_updates OFF")
    }
}

/// Writes a transaction directly on the replica `instance` (its own server id in domain 0,
/// with `gtid_strict_mode` OFF there so that replication goes on), then on the primary until
/// the replica's `gtid_binlog_pos` shows the primary's GTID again in that domain. Checks that
/// the errant GTID is gone from `gtid_binlog_pos` but kept in `gtid_binlog_state`; gives it.
private func writeHiddenErrantTransaction(
    _ sandbox: SandboxState, on instance: String,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> String {
    let client = try await sandbox.root(instance)
    try await client.execute("SET GLOBAL gtid_strict_mode = OFF")
    try await client.execute("CREATE DATABASE errant_x")
    let errant = try await client.query("SELECT @@last_gtid AS gtid").first?["gtid"] ?? ""
    await client.close()
    let serverID = try #require(sandbox.instance(named: instance)?.serverID)
    #expect(errant.hasPrefix("0-\(serverID)-"), "errant GTID \(errant)", sourceLocation: sourceLocation)

    try await execute(sandbox, "db1001", "CREATE DATABASE after_errant", "DROP DATABASE after_errant")
    var position = ""
    for _ in 0..<200 {
        position = try await variable(sandbox, instance, "@@GLOBAL.gtid_binlog_pos")
        if position.hasPrefix("0-1001-") { break }
        try await Task.sleep(for: .milliseconds(25))
    }
    // The scenario: gtid_binlog_pos no longer shows the errant GTID, gtid_binlog_state does.
    #expect(position.hasPrefix("0-1001-") && !position.contains(errant), "gtid_binlog_pos \(position)", sourceLocation: sourceLocation)
    let state = try await variable(sandbox, instance, "@@GLOBAL.gtid_binlog_state")
    #expect(state.split(separator: ",").contains { $0 == errant }, "gtid_binlog_state \(state)", sourceLocation: sourceLocation)
    try await waitUntilReplicating(sandbox, instance)
    return errant
}

/// `marina switchover s1 --to <candidate> --yes` is refused (exit 2) for one reason, `message`,
/// and neither the servers nor the source of truth changed.
private func expectRefused(
    _ sandbox: SandboxState, to candidate: String, _ message: String,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let commits = try await commitCount(sandbox)
    let before = try await serverTopology(sandbox)
    let result = try switchover(sandbox, ["s1", "--to", candidate, "--yes"])
    #expect(result.status == 2, "\(result.stdout)\(result.stderr)", sourceLocation: sourceLocation)
    let refusals = result.stdout.components(separatedBy: "\n").filter { $0.hasPrefix("  - ") }
    #expect(
        result.stdout.contains("Refused, nothing changed") && refusals.count == 1 && refusals.allSatisfy { $0.contains(message) },
        "\(result.stdout)", sourceLocation: sourceLocation)
    #expect(try await serverTopology(sandbox) == before, sourceLocation: sourceLocation)
    #expect(try await commitCount(sandbox) == commits, sourceLocation: sourceLocation)
}

/// One global variable (or any expression) of an instance, as text.
private func variable(_ sandbox: SandboxState, _ instance: String, _ expression: String) async throws -> String {
    let client = try await sandbox.root(instance)
    let value = try await client.query("SELECT \(expression) AS v").first?["v"] ?? ""
    await client.close()
    return value
}

/// Waits until both replication threads of `instance` run.
private func waitUntilReplicating(_ sandbox: SandboxState, _ instance: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    var view: ServerView?
    for _ in 0..<200 {
        view = try await serverTopology(sandbox)[instance]
        if view?.running == true { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    Issue.record("\(instance) does not replicate: \(view.map(\.description) ?? "no view")", sourceLocation: sourceLocation)
}
