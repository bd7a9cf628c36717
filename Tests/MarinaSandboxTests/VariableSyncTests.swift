import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Operations
import Testing
import Topology
import TopologyStore

/// `marina variable sync` on real servers: the values read back from every instance, the
/// replication-thread variable set with the SQL thread cycled, a restart that keeps the value
/// (the agent's option file), and a rollback that puts every instance back.
@Suite("Variable sync", .serialized)
struct VariableSyncTests {
    @Test(
        """
        long_query_time on every instance and slave_parallel_threads on the replicas: set by the sync (the SQL thread \
        stopped and started around the second), read back; a read-only variable is left pending a restart; restarted, \
        a replica keeps long_query_time from its option file and takes the read-only one
        """)
    func applyThenRestart() async throws {
        let sandbox = try await TestServers.privateSandbox("variable-sync", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        func marina(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try runMarina(arguments, environment: ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"])
        }
        let backLog = try #require(Int(try await variable(sandbox, "db1002", "back_log"))) + 7
        for arguments in [
            ["variable", "set", "s1", "long_query_time", "2"], ["variable", "set", "s1", "slave_parallel_threads", "4", "--role", "replica"],
            ["variable", "set", "s1", "back_log", "\(backLog)", "--role", "replica"],
            ["config", "commit", "--yes", "-m", "slow log, parallel replication"],
        ] {
            let result = try marina(arguments)
            #expect(result.status == 0, "\(arguments): \(result.stdout)\(result.stderr)")
        }
        let sync = try marina(["variable", "sync", "s1", "--yes"])
        #expect(sync.status == 0, "\(sync.stdout)\(sync.stderr)")
        for instance in ["db1001", "db1002", "db1003"] {
            #expect(try await variable(sandbox, instance, "long_query_time") == "2.000000", "\(instance)")
            #expect(try await variable(sandbox, instance, "slave_parallel_threads") == (instance == "db1001" ? "0" : "4"), "\(instance)")
        }
        let record = try #require(try await lastOperation(sandbox, kind: "variable-sync"))
        let replicaStep = try #require(record.steps.first { $0.subject == "db1002" })
        #expect(
            replicaStep.statements == [
                "SET GLOBAL long_query_time = 2", "STOP SLAVE SQL_THREAD", "SET GLOBAL slave_parallel_threads = 4", "START SLAVE SQL_THREAD",
                "-- at the next restart (option file): back_log = \(backLog), now \(backLog - 7)",
            ], "\(replicaStep.statements)")
        for replica in ["db1002", "db1003"] {
            let client = try await sandbox.root(replica)
            let running = try? await client.query("SHOW SLAVE STATUS").first?["Slave_SQL_Running"]
            await client.close()
            #expect(running == "Yes", "\(replica)'s SQL thread was left stopped")
        }
        // back_log cannot change at runtime: untouched by the sync, pending a restart in drift.
        #expect(try await variable(sandbox, "db1002", "back_log") == String(backLog - 7))
        let pending = try await driftOutput(sandbox, seconds: 20) { $0.contains("VARIABLE_PENDING_RESTART") && $0.contains("db1002") }
        #expect(pending.contains("VARIABLE_PENDING_RESTART") && pending.contains("back_log"), "\(pending)")
        let status = try marina(["status"])
        #expect(status.stdout.contains("pending restart: back_log"), "\(status.stdout)")

        // Restarted: the option file the agent keeps gives both values back.
        let file = sandbox.directory + "/db1002/conf.d/99-marina.cnf"
        #expect(try await eventually(20) { ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").contains("long_query_time") })
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1002")
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1002")
        #expect(try await variable(sandbox, "db1002", "long_query_time") == "2.000000")
        #expect(try await variable(sandbox, "db1002", "slave_parallel_threads") == "4")
        #expect(try await variable(sandbox, "db1002", "back_log") == String(backLog))
        let clean = try await driftOutput(sandbox, seconds: 20) { !($0.contains("VARIABLE_") && $0.contains("db1002")) }
        #expect(!(clean.contains("VARIABLE_") && clean.contains("db1002")), "\(clean)")
    }

    @Test("one replica refuses SET GLOBAL (the settings account lost SUPER there): every instance gets its value back, exit 4 names it")
    func oneReplicaRefuses() async throws {
        let sandbox = try await TestServers.privateSandbox("variable-refuse", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        func marina(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try runMarina(arguments, environment: ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"])
        }
        #expect(try marina(["variable", "set", "s1", "long_query_time", "3"]).status == 0)
        #expect(try marina(["config", "commit", "--yes", "-m", "slow log at 3 s"]).status == 0)
        try await execute(sandbox, "db1003", "SET SESSION sql_log_bin = 0", "REVOKE SUPER ON *.* FROM '\(Sandbox.adminUser)'@'127.0.0.1'")
        let sync = try marina(["variable", "sync", "s1", "--yes"])
        #expect(sync.status == 4, "\(sync.stdout)\(sync.stderr)")
        #expect(sync.stdout.contains("Failed at apply-variables db1003 on db1003"), "\(sync.stdout)")
        #expect(sync.stdout.contains("↺ undid apply-variables db1002"), "\(sync.stdout)")
        for instance in ["db1001", "db1002", "db1003"] {
            #expect(try await variable(sandbox, instance, "long_query_time") == "10.000000", "\(instance)")
        }
        #expect(try await lastOperation(sandbox, kind: "variable-sync")?.state == .rolledBack)
    }

    private func variable(_ sandbox: SandboxState, _ instance: String, _ name: String) async throws -> String {
        let client = try await sandbox.root(instance)
        let value = try? await client.query("SELECT @@GLOBAL.\(name) AS v").first?["v"]
        await client.close()
        return value ?? ""
    }
}
