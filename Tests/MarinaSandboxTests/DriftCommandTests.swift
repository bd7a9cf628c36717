import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Testing

/// (code, instance) pairs `marina drift --json` reports now.
func driftPairs(_ sandbox: SandboxState, _ options: [String]) throws -> Set<String> {
    let result = try runMarina(["drift", "--json", "--etcd", sandbox.etcd.url] + options)
    guard result.status == 0 || result.status == 6 else {
        Issue.record("marina drift exited \(result.status): \(result.stderr)")
        return []
    }
    let findings = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]) ?? []
    return Set(findings.map { "\($0["code"] as? String ?? "?") \($0["instance"] as? String ?? "-")" })
}

/// Waits until drift reports exactly `expected` (each "CODE instance"), or fails showing what it saw.
func expectDrift(
    _ sandbox: SandboxState, _ expected: Set<String>, options: [String] = ["--max-lag", "2", "--heartbeat-stale", "3"],
    seconds: Double = 25, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    var seen = Set<String>()
    while Date() < deadline {
        seen = try driftPairs(sandbox, options)
        if seen == expected { return }
        try await Task.sleep(for: .milliseconds(250))
    }
    Issue.record("expected drift \(expected.sorted()), saw \(seen.sorted())", sourceLocation: sourceLocation)
}

/// A sandbox of s1 (db1001 primary, db1002, db1003) with an agent probing every 0.5 s.
func driftSandbox(_ name: String) async throws -> SandboxState {
    let sandbox = try await TestServers.privateSandbox(name, replicas: 2)
    do {
        try await Sandbox.startAgent(directory: sandbox.directory, executable: marinaExecutable(), interval: 0.5, leaseTTL: 3)
        try await expectDrift(sandbox, [])
    } catch {
        TestServers.stop(sandbox)
        throw error
    }
    return sandbox
}

func replicationUser(_ sandbox: SandboxState) throws -> (user: String, password: String) {
    (Sandbox.replicationUser, try Credentials.load(from: sandbox.credentialsFile).replicationPassword)
}

@Suite("marina drift against real servers: each situation caused for real, then fixed")
struct DriftCommandTests {
    @Test("replication threads: stopped, SQL error, not using GTID")
    func replication() async throws {
        let sandbox = try await driftSandbox("drift-replication")
        defer { TestServers.stop(sandbox) }
        let primary = try await sandbox.root("db1001")
        let replica = try await sandbox.root("db1002")
        try await replica.execute("STOP SLAVE")
        try await expectDrift(sandbox, ["REPLICATION_STOPPED db1002"])
        try await replica.execute("START SLAVE")
        try await expectDrift(sandbox, [])

        // MariaDB replicates DDL idempotently by default, so conflict on a row: a duplicate key stops the SQL thread.
        try await primary.execute("CREATE DATABASE conflict_here")
        try await primary.execute("CREATE TABLE conflict_here.t (id INT PRIMARY KEY)")
        let position = try #require(try await primary.query("SELECT @@gtid_binlog_pos AS p").first?["p"])
        #expect(try await replica.query("SELECT MASTER_GTID_WAIT(?, 20) AS w", .string(position)).first?.int("w") == 0)
        try await replica.execute("SET SESSION sql_log_bin = 0")
        try await replica.execute("INSERT INTO conflict_here.t VALUES (1)")
        try await primary.execute("INSERT INTO conflict_here.t VALUES (1)")
        try await expectDrift(sandbox, ["REPLICATION_ERROR db1002"], options: ["--max-lag", "1000"])
        try await replica.execute("DELETE FROM conflict_here.t")
        try await replica.execute("START SLAVE")
        try await expectDrift(sandbox, [])

        try await replica.execute("STOP SLAVE")
        try await replica.execute("CHANGE MASTER TO MASTER_USE_GTID = no")
        try await replica.execute("START SLAVE")
        try await expectDrift(sandbox, ["GTID_NOT_USED db1002"])
        try await replica.execute("STOP SLAVE")
        try await replica.execute("CHANGE MASTER TO MASTER_USE_GTID = slave_pos")
        try await replica.execute("START SLAVE")
        try await expectDrift(sandbox, [])
        await primary.close()
        await replica.close()
    }

    @Test("writability and settings: two writers, a read-only primary, strict mode off, a candidate's binlog format, binlog off")
    func settings() async throws {
        let sandbox = try await driftSandbox("drift-settings")
        defer { TestServers.stop(sandbox) }
        let primary = try await sandbox.root("db1001")
        let replica = try await sandbox.root("db1002")
        let other = try await sandbox.root("db1003")
        try await replica.execute("SET GLOBAL read_only = 0")
        try await expectDrift(sandbox, ["TWO_WRITERS db1002"])
        try await replica.execute("SET GLOBAL read_only = 1")
        try await expectDrift(sandbox, [])
        try await primary.execute("SET GLOBAL read_only = 1")
        try await expectDrift(sandbox, ["PRIMARY_READ_ONLY db1001"])
        try await primary.execute("SET GLOBAL read_only = 0")
        try await expectDrift(sandbox, [])
        try await other.execute("SET GLOBAL gtid_strict_mode = 0")
        try await expectDrift(sandbox, ["GTID_STRICT_MODE_OFF db1003"])
        try await other.execute("SET GLOBAL gtid_strict_mode = 1")
        try await expectDrift(sandbox, [])
        try await other.execute("SET GLOBAL binlog_format = 'STATEMENT'")
        try await expectDrift(sandbox, ["BINLOG_FORMAT_MISMATCH db1003"])
        try await other.execute("SET GLOBAL binlog_format = 'ROW'")
        try await expectDrift(sandbox, [])
        for client in [primary, replica, other] { await client.close() }

        // log_bin cannot change at run time: restart db1003 without it, then with it again.
        let member = try #require(sandbox.instance(named: "db1003"))
        let original = try String(contentsOfFile: member.optionFile, encoding: .utf8)
        let withoutBinlog =
            original.split(separator: "\n").filter { !$0.hasPrefix("log_bin=") && !$0.hasPrefix("log_slave_updates") }
            .joined(separator: "\n") + "\n"
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1003")
        try withoutBinlog.write(toFile: member.optionFile, atomically: true, encoding: .utf8)
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1003")
        try await expectDrift(sandbox, ["BINLOG_OFF db1003"])
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1003")
        try original.write(toFile: member.optionFile, atomically: true, encoding: .utf8)
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1003")
        try await expectDrift(sandbox, [])
    }

    @Test("sources: a replica under another replica, a replica with no source, an errant transaction")
    func sources() async throws {
        let sandbox = try await driftSandbox("drift-sources")
        defer { TestServers.stop(sandbox) }
        let (user, password) = try replicationUser(sandbox)
        let replica = try await sandbox.root("db1002")
        let other = try await sandbox.root("db1003")
        let port = { (name: String) in Int64(sandbox.instance(named: name)!.port) }
        func point(_ client: MariaDBClient, at source: String) async throws {
            try await client.execute("STOP SLAVE")
            try await client.execute(
                "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos",
                .integer(port(source)), .string(user), .string(password))
            try await client.execute("START SLAVE")
        }
        try await point(other, at: "db1002")
        try await expectDrift(sandbox, ["WRONG_SOURCE db1003"])
        try await point(other, at: "db1001")
        try await expectDrift(sandbox, [])

        try await other.execute("STOP SLAVE")
        try await other.execute("RESET SLAVE ALL")
        try await expectDrift(sandbox, ["NO_SOURCE db1003"])
        try await point(other, at: "db1001")
        try await expectDrift(sandbox, [])

        // root bypasses read_only: a write on the replica is a GTID the primary never had. In strict mode it also
        // breaks replication at the primary's next event (pt-heartbeat writes every 0.5 s): both are reported.
        try await replica.execute("CREATE DATABASE errant_write")
        try await expectDrift(sandbox, ["ERRANT_GTID db1002", "REPLICATION_ERROR db1002"], options: ["--max-lag", "1000"])
        try await replica.execute("SET SESSION sql_log_bin = 0")
        try await replica.execute("DROP DATABASE errant_write")
        try await replica.execute("STOP SLAVE")
        try await replica.execute("RESET MASTER")  // the DBA's fix once the errant data is gone
        try await replica.execute("START SLAVE")
        try await expectDrift(sandbox, [])
        await replica.close()
        await other.close()
    }

    @Test("lag and heartbeat: a pooled replica lagging, a stale and a missing heartbeat on the primary")
    func lagAndHeartbeat() async throws {
        let sandbox = try await driftSandbox("drift-lag")
        defer { TestServers.stop(sandbox) }
        let replica = try await sandbox.root("db1002", readTimeout: 60)
        try await replica.execute("FLUSH TABLES WITH READ LOCK")  // the SQL thread waits; threads still run
        try await expectDrift(sandbox, ["POOLED_REPLICA_LAGGING db1002"])
        try await replica.execute("UNLOCK TABLES")
        try await expectDrift(sandbox, [])

        let lenient = ["--max-lag", "1000", "--heartbeat-stale", "3"]
        try await Sandbox.stopHeartbeat(directory: sandbox.directory, section: "s1")
        try await expectDrift(sandbox, ["HEARTBEAT_STALE db1001"], options: lenient)
        let primary = try await sandbox.root("db1001")
        try await primary.execute("DELETE FROM heartbeat.heartbeat")
        try await expectDrift(sandbox, ["HEARTBEAT_MISSING db1001"], options: lenient)
        try await Sandbox.startHeartbeat(directory: sandbox.directory, section: "s1")
        try await expectDrift(sandbox, [])
        await replica.close()
        await primary.close()
    }

    @Test("agents and the source of truth: unreachable instances, a vanished agent, an unknown instance, an uncommitted change")
    func agentsAndSourceOfTruth() async throws {
        let sandbox = try await driftSandbox("drift-agents")
        defer { TestServers.stop(sandbox) }
        let etcd = ["--etcd", sandbox.etcd.url]
        let lenient = ["--max-lag", "1000", "--heartbeat-stale", "1000"]
        let replicaPID = try #require(sandbox.instance(named: "db1003")).pid
        kill(replicaPID, SIGSTOP)
        try await expectDrift(sandbox, ["REPLICA_UNREACHABLE db1003"], options: lenient)
        kill(replicaPID, SIGCONT)
        try await expectDrift(sandbox, [])
        let primaryPID = try #require(sandbox.instance(named: "db1001")).pid
        kill(primaryPID, SIGSTOP)
        try await expectDrift(sandbox, ["PRIMARY_UNREACHABLE db1001"], options: lenient)
        kill(primaryPID, SIGCONT)
        try await expectDrift(sandbox, [])

        #expect(try runMarina(["instance", "depool", "db1003", "--section", "s1"] + etcd).status == 0)
        try await expectDrift(sandbox, ["UNCOMMITTED_CHANGE -", "UNCOMMITTED_CHANGE db1003"])
        #expect(try runMarina(["config", "commit", "--yes", "-m", "depool db1003"] + etcd).status == 0)
        try await expectDrift(sandbox, [])

        #expect(try runMarina(["instance", "remove", "db1003"] + etcd).status == 0)
        #expect(try runMarina(["config", "commit", "--yes", "-m", "retire db1003"] + etcd).status == 0)
        try await expectDrift(sandbox, ["UNKNOWN_INSTANCE db1003"])
        let port = try #require(sandbox.instance(named: "db1003")).port
        #expect(
            try runMarina(
                [
                    "instance", "add", "db1003", "--host", "127.0.0.1", "--port", String(port), "--datacenter", "dc1",
                    "--section", "s1", "--weight", "100",
                ] + etcd
            ).status == 0)
        #expect(try runMarina(["config", "commit", "--yes", "-m", "db1003 back"] + etcd).status == 0)
        try await expectDrift(sandbox, [])

        let agent = try #require(try Sandbox.state(directory: sandbox.directory).agent).pid
        kill(agent, SIGKILL)
        try await expectDrift(sandbox, ["NO_OBSERVATION db1001", "NO_OBSERVATION db1002", "NO_OBSERVATION db1003"])
        try await Sandbox.startAgent(directory: sandbox.directory, executable: marinaExecutable(), interval: 0.5, leaseTTL: 3)
        try await expectDrift(sandbox, [])
    }

    @Test("exit 1 when drift cannot be computed (etcd down)")
    func etcdDown() async throws {
        let port = try Ports.findFreeBlock(count: 1)
        let result = try runMarina(["drift", "--etcd", "http://127.0.0.1:\(port)"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("marina: drift could not be computed: etcd unavailable"))
    }
}
