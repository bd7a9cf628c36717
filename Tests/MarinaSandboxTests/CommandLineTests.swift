import Foundation
import MarinaSandbox
import MarinaTestSupport
import Operations
import Testing
import TopologyStore

@Suite("The marina command line")
struct CommandLineTests {
    @Test("sandbox status --json lists every instance and the etcd URL")
    func statusJSON() async throws {
        let sandbox = try await TestServers.shared()
        let result = try runMarina(["sandbox", "status", "--json", "--dir", sandbox.directory])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect((json["etcd"] as? [String: Any])?["url"] as? String == sandbox.etcd.url)
        let instances = try #require(json["instances"] as? [[String: Any]])
        #expect(instances.compactMap { $0["name"] as? String } == ["db1001", "db1002", "db1003"])
        #expect(instances.compactMap { $0["role"] as? String } == ["primary", "replica", "replica"])
        #expect(instances.compactMap { $0["section"] as? String } == ["s1", "s1", "s1"])
        #expect(instances.compactMap { $0["port"] as? Int } == sandbox.instances.map(\.port))
        #expect(instances.compactMap { $0["socket"] as? String } == sandbox.instances.map(\.socket))
    }

    @Test("human status draws the replication tree read from the servers")
    func statusText() async throws {
        let sandbox = try await TestServers.shared()
        let result = try runMarina(["sandbox", "status", "--dir", sandbox.directory])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("db1001  127.0.0.1:\(sandbox.instances[0].port)  read_only=OFF  writable primary"))
        #expect(result.stdout.contains("└─ db1002"))
        #expect(result.stdout.contains("replica of db1001 io=Yes sql=Yes"))
    }

    @Test("an unknown flag is refused with ArgumentParser's message and a non-zero exit")
    func unknownFlag() throws {
        let result = try runMarina(["sandbox", "up", "--no-such-flag"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("Unknown option '--no-such-flag'"))
    }

    @Test("status without a sandbox says so and exits 1")
    func statusWithoutSandbox() throws {
        let directory = TestServers.root + "/nothing-here"
        let result = try runMarina(["sandbox", "status", "--dir", directory])
        #expect(result.status == 1)
        #expect(result.stderr == "marina: no sandbox is running in \(directory): start one with `marina sandbox up --dir \(directory)`\n")
    }

    @Test("up on a port in use names the port, exits 1 and leaves no process")
    func portInUse() throws {
        let base = try Ports.findFreeBlock(count: 5)
        let blocker = try ListeningSocket(port: base)
        defer { blocker.close() }
        let directory = TestServers.root + "/cli-port"
        let result = try runMarina(["sandbox", "up", "--dir", directory, "--base-port", String(base)])
        #expect(result.status == 1)
        #expect(result.stderr.contains("port \(base) (for etcd clients) is already in use"))
        #expect(processes(containing: directory + "/").isEmpty)
    }

    @Test("up with too many sections is refused before anything starts")
    func badSections() throws {
        let directory = TestServers.root + "/cli-sections"
        let result = try runMarina(["sandbox", "up", "--dir", directory, "--sections", "12"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("--sections must be between 1 and 9 (got 12)"))
        #expect(processes(containing: directory + "/").isEmpty)
    }

    @Test("version names marina and both C libraries")
    func version() throws {
        let result = try runMarina(["version"])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("marina "))
        #expect(result.stdout.contains("libmariadb 3."))
        #expect(result.stdout.contains("libcurl/"))
    }
}

@Suite("marina status")
struct StatusCommandTests {
    @Test("shows each instance as configured and as its agent observes it, from etcd only")
    func status() async throws {
        let sandbox = try await TestServers.shared()
        let result = try runMarina(["status", "s1", "--json", "--etcd", sandbox.etcd.url])
        #expect(result.status == 0, "\(result.stderr)")
        let sections = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        let members = try #require(sections.first?["members"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: members.compactMap { member in (member["name"] as? String).map { ($0, member) } })
        #expect(byName["db1001"]?["configuredRole"] as? String == "primary")
        #expect(byName["db1001"]?["observedRole"] as? String == "primary")
        #expect(byName["db1002"]?["observedRole"] as? String == "replica")
        #expect(byName["db1002"]?["source"] as? String == "db1001")
        #expect(byName["db1003"]?["sqlThread"] as? String == "Yes")
        #expect(byName["db1003"]?["heartbeatLag"] as? Double != nil)
        let text = try runMarina(["status", "--etcd", sandbox.etcd.url]).stdout
        #expect(text.contains("└─ db1002  configured replica  observed replica  read_only=ON  from db1001 io=Yes sql=Yes"))
        #expect(try runMarina(["status", "s9", "--etcd", sandbox.etcd.url]).stderr == "marina: unknown section s9\n")
    }
}

/// Bad input on the command line: one message naming the flag (or the stored key), a non-zero
/// exit, nothing changed, never a trap. Each case runs `marina` as a child process, so that a
/// trap shows as a signal status instead of crashing the test process.
@Suite("Bad input on the command line")
struct BadInputCommandLineTests {
    @Test(
        "an etcd endpoint list with no endpoint is refused naming where it came from",
        arguments: [
            (["status", "--etcd", ""], [String: String](), "--etcd must list at least one URL (such as http://127.0.0.1:2379)"),
            (["status", "--etcd", ","], [:], "--etcd must list at least one URL (such as http://127.0.0.1:2379)"),
            (["operation", "list", "--etcd", " , "], [:], "--etcd must list at least one URL (such as http://127.0.0.1:2379)"),
            (["instance", "list"], ["MARINA_ETCD": ","], "MARINA_ETCD must list at least one URL (such as http://127.0.0.1:2379)"),
            (["status", "--etcd", "127.0.0.1:2379"], [:], "--etcd endpoint \"127.0.0.1:2379\" must start with http:// or https://"),
            (["status", "--etcd", "http://"], [:], "--etcd endpoint \"http://\" must name a host, as in http://127.0.0.1:2379"),
        ])
    func emptyEndpoints(arguments: [String], environment: [String: String], message: String) throws {
        let result = try runMarina(arguments, environment: environment)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr == "marina: \(message)\n")
    }

    @Test(
        "a numeric flag that is not a finite number in its range is refused naming the flag",
        arguments: [
            (
                ["switchover", "s1", "--to", "db1002", "--yes", "--timeout", "nan"],
                "--timeout must be a positive number of seconds, at most 86400 (got nan)"
            ),
            (
                ["switchover", "s1", "--to", "db1002", "--yes", "--timeout", "inf"],
                "--timeout must be a positive number of seconds, at most 86400 (got inf)"
            ),
            (
                ["switchover", "s1", "--to", "db1002", "--yes", "--timeout=-1"],
                "--timeout must be a positive number of seconds, at most 86400 (got -1.0)"
            ),
            (
                ["switchover", "s1", "--to", "db1002", "--yes", "--timeout", "1e300"],
                "--timeout must be a positive number of seconds, at most 86400 (got 1e+300)"
            ),
            (["sandbox", "load", "--seconds", "nan"], "--seconds must be a positive number of seconds, at most 86400 (got nan)"),
            (["sandbox", "load", "--seconds", "1e30"], "--seconds must be a positive number of seconds, at most 86400 (got 1e+30)"),
            (["sandbox", "load", "--rate", "nan"], "--rate must be above 0 and at most 5000 (got nan)"),
            (["operation", "list", "--limit=-1"], "--limit must be 1 or more (got -1)"),
        ])
    func nonFiniteFlags(arguments: [String], message: String) throws {
        // An etcd nobody listens on: whatever happens, nothing can be written.
        let result = try runMarina(
            arguments + (arguments[0] == "sandbox" ? ["--dir", TestServers.root + "/no-sandbox"] : ["--etcd", "http://127.0.0.1:9"]))
        #expect(result.status == 64, "\(result.status): \(result.stderr)")
        #expect(result.stderr.hasPrefix("Error: \(message)\n"), "\(result.stderr)")
    }

    @Test(
        "sandbox up with a count or port too large to compute with is refused before anything starts",
        arguments: [
            (["--sections", "9223372036854775807"], "--sections must be between 1 and 9 (got 9223372036854775807)"),
            (["--replicas", "9223372036854775807"], "--replicas must be between 0 and 9 (got 9223372036854775807)"),
            (["--base-port", "9223372036854775807"], "--base-port must be between 1024 and 65535 (got 9223372036854775807)"),
            (["--base-port=-5"], "--base-port must be between 1024 and 65535 (got -5)"),
        ])
    func sandboxOverflow(flag: [String], message: String) throws {
        let directory = TestServers.root + "/cli-overflow"
        let result = try runMarina(["sandbox", "up", "--dir", directory] + flag)
        #expect(result.status == 1, "\(result.status): \(result.stderr)")
        #expect(result.stderr == "marina: \(message)\n")
        #expect(processes(containing: directory + "/").isEmpty)
    }

    @Test("a weight too large to compute a load with is refused, and the staged topology is unchanged")
    func hugeWeight() async throws {
        let sandbox = try await TestServers.privateSandbox("cli-huge-weight", sections: 0)
        defer { TestServers.stop(sandbox) }
        let etcd = ["--etcd", sandbox.etcd.url]
        #expect(try runMarina(["config", "import", examplePath()] + etcd).status == 0)
        let before = try runMarina(["config", "export"] + etcd).stdout
        let result = try runMarina(["instance", "set-weight", "db1002", "--section", "s1", "--weight", String(Int.max)] + etcd)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("instances.db1002.sections.s1.weight: must be at most 1000000 (is \(Int.max))"), "\(result.stderr)")
        #expect(try runMarina(["config", "export"] + etcd).stdout == before)
        // What would have computed the loads: it answers (6, differences to commit) instead of trapping.
        #expect(try runMarina(["config", "diff"] + etcd).status == 6)
    }

    @Test("an undecodable journal is listed as unreadable among the others; showing it is one error")
    func unreadableJournal() async throws {
        let sandbox = try await TestServers.privateSandbox("cli-unreadable-journal", sections: 0)
        defer { TestServers.stop(sandbox) }
        let keys = StoreKeys()
        let good = OperationRecord(
            id: "20250101-000000-s1-beef", section: "s1", candidate: "db1002", reason: "test", requestedBy: "test",
            requestedAt: Date())
        let goodJSON = String(decoding: try OperationJSON.encode(good), as: UTF8.self)
        try await sandbox.etcdClient.put(keys.operation(good.id), goodJSON)
        try await sandbox.etcdClient.put(keys.operation("garbage"), "not json {")
        try await sandbox.etcdClient.put(keys.operation("empty"), [UInt8]())
        try await sandbox.etcdClient.put(keys.operation("odd-state"), goodJSON.replacingOccurrences(of: "\"requested\"", with: "\"exploded\""))
        let etcd = ["--etcd", sandbox.etcd.url]

        let list = try runMarina(["operation", "list"] + etcd)
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains(good.id))
        #expect(list.stdout.contains("unreadable  \(keys.operation("garbage")): not JSON: not json {\n"), "\(list.stdout)")
        #expect(list.stdout.contains("unreadable  \(keys.operation("empty")): the value is empty\n"), "\(list.stdout)")
        #expect(list.stdout.contains("unreadable  \(keys.operation("odd-state")): state: "), "\(list.stdout)")

        let json = try runMarina(["operation", "list", "--json"] + etcd)
        #expect(json.status == 0, "\(json.stderr)")
        let records = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(records.compactMap { $0["id"] as? String } == [good.id])
        #expect(json.stderr.contains("marina: warning: unreadable: \(keys.operation("garbage")): not JSON: not json {\n"), "\(json.stderr)")

        let show = try runMarina(["operation", "show", "garbage"] + etcd)
        #expect(show.status == 1)
        #expect(show.stderr == "marina: the operation record at \(keys.operation("garbage")) cannot be read: not JSON: not json {\n")
        #expect(try runMarina(["operation", "show", good.id] + etcd).status == 0)
    }
}
