import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Observation
import StoredRecords
import Testing
import Topology
import TopologyStore

/// The agent's managed option file on real servers: committed variables, a `SET GLOBAL`
/// standing in for the controller's sync, a read-only variable, restarts.
@Suite("Managed variables: the agent's option file", .serialized)
struct VariableFileTests {
    /// One finding of `marina drift --json`.
    struct Finding: Decodable, Equatable {
        var code: String
        var instance: String?
        var expected: String
        var observed: String
    }

    @Test(
        "a value goes to the option file once applied at runtime, a read-only one at once (pending a restart); restarted, the server has both and drift clears"
    )
    func optionFile() async throws {
        let sandbox = try await TestServers.privateSandbox("variables", replicas: 1, agent: true)
        defer { TestServers.stop(sandbox) }
        let files = try ["db1001", "db1002"].reduce(into: [String: String]()) { files, name in
            files[name] = MariaDBServer.managedOptionFile(try #require(sandbox.instance(named: name)).directory)
        }
        #expect(try String(contentsOfFile: try #require(sandbox.instance(named: "db1002")).optionFile, encoding: .utf8).contains("!includedir "))
        // back_log is settable only at start (READ_ONLY = YES on 10.11): the replicas want 7 more.
        let backLog = try #require(try await globalValue(sandbox, "db1002", "back_log").flatMap { Int($0) }) + 7
        let readOnly = try await sandbox.root("db1002")
        let flags = try await readOnly.query(
            "SELECT VARIABLE_NAME AS n, READ_ONLY AS r FROM information_schema.SYSTEM_VARIABLES WHERE VARIABLE_NAME IN ('BACK_LOG', 'LONG_QUERY_TIME')"
        )
        await readOnly.close()
        #expect(Dictionary(uniqueKeysWithValues: flags.rows.map { ($0["n"] ?? "", $0["r"] ?? "") }) == ["BACK_LOG": "YES", "LONG_QUERY_TIME": "NO"])

        let store = TopologyStore(etcd: sandbox.etcdClient)
        var topology = try #require(try await store.committedTopology())
        topology.variables["s1"] = ManagedVariables(all: ["long_query_time": "2"], replica: ["back_log": "\(backLog)"])
        _ = try await store.replaceStaged(with: topology, by: ChangeAuthor(author: "test", now: Date()), change: "managed variables")
        _ = try await store.commit(message: "long_query_time 2, back_log on replicas", by: ChangeAuthor(author: "test", now: Date()))

        // Not applied yet: drift shows the mismatch of each variable on each instance; nothing is in a
        // file (the read-only one included): a commit alone releases nothing to the option files.
        let before = try await drift(sandbox) { findings in findings.filter { $0.code.hasPrefix("VARIABLE_") }.count == 3 }
        let variableFindings = before.filter { $0.code.hasPrefix("VARIABLE_") }
        #expect(
            variableFindings.map { "\($0.instance ?? "") \($0.code) \($0.expected.prefix { $0 != "=" })" }.sorted()
                == [
                    "db1001 VARIABLE_MISMATCH long_query_time", "db1002 VARIABLE_MISMATCH back_log", "db1002 VARIABLE_MISMATCH long_query_time",
                ], "\(before)")
        let mismatch = try #require(variableFindings.first { $0.instance == "db1001" })
        #expect(mismatch.expected == "long_query_time=2 (committed for a primary)")
        #expect(mismatch.observed == "long_query_time=10.000000 at runtime: `marina variable sync s1` sets it")
        let replica = try await observation(sandbox, "db1002") { $0.variables?["back_log"] != nil }
        #expect(replica.variables?["long_query_time"] == "10.000000")
        #expect(replica.variables?["back_log"] == "\(backLog - 7)")
        #expect(replica.pendingRestart == [])
        #expect(replica.optionFile == files["db1002"] && replica.optionFileError == nil)
        #expect(try options(files["db1002"]!).isEmpty && options(files["db1001"]!).isEmpty, "a commit alone wrote an option file")

        // The controller's sync, by hand: applied, then released; each agent writes the applied value
        // and the read-only one (pending a restart) to its file.
        try await execute(sandbox, "db1001", "SET GLOBAL long_query_time = 2")
        try await execute(sandbox, "db1002", "SET GLOBAL long_query_time = 2")
        try await release(sandbox, ManagedVariables(all: ["long_query_time": "2"], replica: ["back_log": "\(backLog)"]))
        #expect(
            try await eventually(10) {
                try options(files["db1001"]!) == ["long_query_time": "2"]
                    && options(files["db1002"]!) == ["back_log": "\(backLog)", "long_query_time": "2"]
            }, "\((try? options(files["db1001"]!)) ?? [:]) \((try? options(files["db1002"]!)) ?? [:])")
        let header = try String(contentsOfFile: files["db1001"]!, encoding: .utf8)
        #expect(header.hasPrefix("# Managed by the marina agent for db1001"))
        let applied = try await drift(sandbox) { findings in findings.filter { $0.code.hasPrefix("VARIABLE_") }.count == 1 }
        #expect(applied.filter { $0.code.hasPrefix("VARIABLE_") }.map(\.code) == ["VARIABLE_PENDING_RESTART"], "\(applied)")

        // A value set by hand, against the committed one, is not written: the file keeps 2.
        try await execute(sandbox, "db1002", "SET GLOBAL long_query_time = 7")
        _ = try await observation(sandbox, "db1002") { $0.variables?["long_query_time"] == "7.000000" }
        #expect(try options(files["db1002"]!)["long_query_time"] == "2")
        try await execute(sandbox, "db1002", "SET GLOBAL long_query_time = 2")

        // A restart of the replica reads the file: both values are there, nothing is pending, drift is clean.
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1002")
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1002")
        #expect(try await globalValue(sandbox, "db1002", "long_query_time") == "2.000000")
        #expect(try await globalValue(sandbox, "db1002", "back_log") == "\(backLog)")
        let restarted = try await observation(sandbox, "db1002") { $0.reachable && $0.pendingRestart == [] }
        #expect(restarted.variables == ["long_query_time": "2.000000", "back_log": "\(backLog)"])
        let after = try await drift(sandbox) { findings in !findings.contains { $0.code.hasPrefix("VARIABLE_") } }
        #expect(!after.contains { $0.code.hasPrefix("VARIABLE_") || $0.code == "OPTION_FILE_UNWRITABLE" }, "\(after)")

        // Dropped from the committed variables: it leaves the files.
        topology = try #require(try await store.committedTopology())
        topology.variables["s1"] = ManagedVariables(all: ["long_query_time": "2"])
        _ = try await store.replaceStaged(with: topology, by: ChangeAuthor(author: "test", now: Date()), change: "drop back_log")
        _ = try await store.commit(message: "back_log no longer managed", by: ChangeAuthor(author: "test", now: Date()))
        try await release(sandbox, ManagedVariables(all: ["long_query_time": "2"]))
        #expect(try await eventually(10) { try options(files["db1002"]!) == ["long_query_time": "2"] })
    }

    /// What a variable sync that finished writes: the section's variables released to the option files.
    func release(_ sandbox: SandboxState, _ variables: ManagedVariables) async throws {
        _ = try await sandbox.etcdClient.put(
            StoreKeys().syncedVariables("s1"), try StoredJSON.encode(CommittedVariables(section: "s1", sequence: 0, variables: variables)))
    }

    /// The `[mariadbd]` options of a file the agent keeps; empty when there is none.
    func options(_ path: String) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var options = [String: String]()
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("[") {
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { options[parts[0]] = parts[1] }
        }
        return options
    }

    func globalValue(_ sandbox: SandboxState, _ instance: String, _ name: String) async throws -> String? {
        let client = try await sandbox.root(instance)
        let value = try await client.query("SELECT @@GLOBAL.\(name) AS v").first?["v"]
        await client.close()
        return value
    }

    /// `marina drift --json` once `condition` holds (or its last answer after 20 s, its
    /// output recorded as an issue if it is not findings).
    func drift(_ sandbox: SandboxState, until condition: ([Finding]) -> Bool) async throws -> [Finding] {
        var findings: [Finding]?
        var output = ""
        _ = try await eventually(20) {
            let result = try runMarina(["drift", "--json"], environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
            output = result.stdout + result.stderr
            findings = try? JSONDecoder().decode([Finding].self, from: Data(result.stdout.utf8))
            return findings.map(condition) ?? false
        }
        return try #require(findings, "marina drift --json: \(output)")
    }

    /// The published observation of `instance` once `condition` holds (or the last one after 20 s).
    func observation(_ sandbox: SandboxState, _ instance: String, until condition: (Observation) -> Bool) async throws -> Observation {
        var latest: Observation?
        _ = try await eventually(20) {
            latest = try await sandbox.etcdClient.value("/marina/v1/observed/\(instance)").map { try ObservationJSON.decode($0.value) }
            return latest.map(condition) ?? false
        }
        return try #require(latest)
    }
}
