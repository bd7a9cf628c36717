import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Testing
import Topology
import TopologyStore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The repository's sample topology file.
func examplePath() -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("config/topology.example.yaml").path
}

/// Every key under /marina/v1/ with its mod revision.
func marinaKeys(_ sandbox: SandboxState) async throws -> [String: Int64] {
    let range = try await sandbox.etcdClient.get("/marina/v1/", prefix: true, keysOnly: true)
    return Dictionary(uniqueKeysWithValues: range.kvs.map { ($0.key, $0.modRevision) })
}

@Suite("The source of truth through the marina command line")
struct SourceOfTruthCommandTests {
    @Test("the sandbox registered and committed its own topology")
    func sandboxRegistered() async throws {
        let sandbox = try await TestServers.shared()
        let store = TopologyStore(etcd: sandbox.etcdClient)
        let (staged, committed) = try await store.read()
        #expect(staged.topology == Sandbox.topology(of: sandbox))
        let ports = sandbox.instances.map(\.port)
        #expect(committed.configs["dc1"]?.sectionLoads["s1"] == [["db1001": 0], ["db1002": 100, "db1003": 100]])
        #expect(committed.configs["dc1"]?.hostsByName["db1002"] == "127.0.0.1:\(ports[1])")
        #expect(try await store.history().first?.author == "marina-sandbox")
    }

    @Test("import, export, diff, commit, v2 mirror, history and restore, all through the CLI")
    func wholeWorkflow() async throws {
        let sandbox = try await TestServers.privateSandbox("cli-workflow", sections: 1, replicas: 1)
        defer { TestServers.stop(sandbox) }
        let etcd = ["--etcd", sandbox.etcd.url]
        let original = try runMarina(["config", "export"] + etcd).stdout

        let imported = try runMarina(["config", "import", examplePath()] + etcd)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.hasPrefix("Imported 2 datacenters, 6 sections and 15 instances"))
        // Import then export round-trips the example exactly, through etcd.
        #expect(try runMarina(["config", "export"] + etcd).stdout == String(contentsOfFile: examplePath(), encoding: .utf8))

        let diff = try runMarina(["config", "diff", "--json"] + etcd)
        #expect(diff.status == 6)
        let changes = try JSONDecoder().decode(DiffJSON.self, from: Data(diff.stdout.utf8)).changes
        #expect(changes.contains { $0.datacenter == "eqiad" && $0.key == "sectionLoads" && $0.entry == "s1" })
        #expect(changes.contains { $0.datacenter == "dc1" && $0.key == "sectionLoads" && $0.after == nil })

        let commit = try runMarina(["config", "commit", "--yes", "-m", "import the example", "--mirror-v2", "--author", "carol"] + etcd)
        #expect(commit.status == 0, "\(commit.stderr)")
        #expect(commit.stdout.contains("Committed #2 at revision"))
        #expect(try runMarina(["config", "diff"] + etcd).status == 0)

        // MediaWiki's EtcdConfig: one recursive GET of the v2 directory; every leaf is {"val": ...}.
        let v2 = try await v2Configs(sandbox.etcd.url)
        let committed = try await TopologyStore(etcd: sandbox.etcdClient).read().committed.configs
        #expect(v2["eqiad"] == committed["eqiad"])
        #expect(v2["codfw"] == committed["codfw"])
        #expect(v2["eqiad"]?.sectionLoads["DEFAULT"] == [["db1010": 0], ["db1011": 500]])
        #expect(try etcdctlV2Get(sandbox.etcd.url, "/conftool/v1/mediawiki-config/codfw/dbconfig").contains(#""s2":[{"db2001":0},{"db2002":100}]"#))

        // Staged edit, then history and restore of the sandbox's own first commit.
        #expect(try runMarina(["instance", "depool", "db1003", "--section", "s1"] + etcd).status == 0)
        #expect(try runMarina(["config", "commit", "--yes", "-m", "depool db1003"] + etcd).status == 0)
        let history =
            try JSONSerialization.jsonObject(with: Data(try runMarina(["config", "history", "--json"] + etcd).stdout.utf8)) as? [[String: Any]]
        #expect(history?.compactMap { $0["message"] as? String } == ["depool db1003", "import the example", "sandbox up"])
        #expect(history?[1]["author"] as? String == "carol")
        #expect(history?[2]["author"] as? String == "marina-sandbox")
        let firstRevision = try #require(history?.last?["revision"] as? Int)
        let restore = try runMarina(["config", "restore", String(firstRevision), "-m", "back to the sandbox"] + etcd)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try runMarina(["config", "export"] + etcd).stdout == original)
        #expect(try await TopologyStore(etcd: sandbox.etcdClient).read().committed.configs == Sandbox.topology(of: sandbox).generatedConfigs())
    }

    @Test("bad input: one message naming the field, a non-zero exit, and etcd exactly as it was")
    func badInput() async throws {
        let sandbox = try await TestServers.privateSandbox("cli-bad-input", sections: 1, replicas: 2)
        defer { TestServers.stop(sandbox) }
        let etcd = ["--etcd", sandbox.etcd.url]
        let before = try await marinaKeys(sandbox)
        let typo = TestServers.root + "/typo.yaml"
        try String(contentsOfFile: examplePath(), encoding: .utf8).replacingOccurrences(of: "    weight: 500", with: "    wieght: 500")
            .write(toFile: typo, atomically: true, encoding: .utf8)

        let cases: [([String], Int32, String)] = [
            (
                ["instance", "set-weight", "db1002", "--weight", "-5", "--section", "s1"], 2,
                "instances.db1002.sections.s1.weight: must not be negative (is -5)"
            ),
            (
                ["instance", "set-percentage", "db1002", "--percentage", "150", "--section", "s1"], 2,
                "instances.db1002.sections.s1.percentage: must be within 0-100 (is 150)"
            ),
            (["instance", "depool", "db1001", "--section", "s1"], 2, "sections.s1.primary: the primary db1001 must stay pooled"),
            (["instance", "pool", "db9999", "--section", "s1"], 1, "marina: unknown instance db9999"),
            (["section", "set-primary", "s1", "db9999"], 1, "marina: unknown instance db9999"),
            (["section", "readonly", "s9", "--reason", "x"], 1, "marina: unknown section s9"),
            (["config", "import", typo], 1, "typo.yaml.instances.db1011.sections.s3.wieght: unknown field \"wieght\""),
            (["config", "restore", "999999", "-m", "x"], 1, "no commit at revision 999999"),
            (
                ["instance", "add", "db1004", "--host", "not-an-ip", "--datacenter", "dc1"], 2,
                "instances.db1004.host: \"not-an-ip\" is not an IP address"
            ),
        ]
        for (arguments, status, message) in cases {
            let result = try runMarina(arguments + etcd)
            #expect(result.status == status, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        #expect(try await marinaKeys(sandbox) == before)

        // Garbage in etcd: every command that reads it names the key and stops.
        try await sandbox.etcdClient.put("/marina/v1/instances/db1002", "{garbage")
        let garbled = try await marinaKeys(sandbox)
        for arguments in [["instance", "list"], ["config", "diff"], ["config", "commit", "--yes", "-m", "x"]] {
            let result = try runMarina(arguments + etcd)
            #expect(result.status != 0)
            #expect(result.stderr.contains("etcd key /marina/v1/instances/db1002 holds an invalid value"), "\(arguments): \(result.stderr)")
        }
        #expect(try await marinaKeys(sandbox) == garbled)
    }

    @Test("a commit whose mirror cannot be written stands, and says so with exit 6")
    func mirrorFailure() async throws {
        let sandbox = try await TestServers.privateSandbox("cli-mirror", sections: 1, replicas: 2)
        defer { TestServers.stop(sandbox) }
        let etcd = ["--etcd", sandbox.etcd.url]
        let blocker = sandbox.directory + "/not-a-directory"
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8)))
        #expect(try runMarina(["instance", "depool", "db1003", "--section", "s1"] + etcd).status == 0)
        let result = try runMarina(["config", "commit", "--yes", "-m", "depool db1003", "--mirror-dir", blocker + "/mirror"] + etcd)
        #expect(result.status == 6, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("marina: committed, but a mirror was not written"))
        #expect(result.stdout.contains("Committed #2"))
        #expect(try runMarina(["config", "diff"] + etcd).status == 0)  // the commit stands
    }
}

struct DiffJSON: Decodable {
    var changes: [ConfigChange]
}

/// The configurations as MediaWiki's EtcdConfig reads them: GET /v2/keys/<dir>/?recursive=true.
func v2Configs(_ etcdURL: String) async throws -> [String: GeneratedConfig] {
    let url = URL(string: "\(etcdURL)/v2/keys/conftool/v1/mediawiki-config/?recursive=true")!
    let (data, _) = try await URLSession.shared.data(from: url)
    struct Node: Decodable {
        var key: String
        var value: String?
        var nodes: [Node]?
    }
    struct Answer: Decodable { var node: Node }
    struct Wrapped: Decodable { var val: GeneratedConfig }
    var configs = [String: GeneratedConfig]()
    func walk(_ node: Node) throws {
        if let value = node.value, node.key.hasSuffix("/dbconfig") {
            let datacenter = node.key.split(separator: "/").dropLast().last.map(String.init) ?? ""
            configs[datacenter] = try JSONDecoder().decode(Wrapped.self, from: Data(value.utf8)).val
        }
        try node.nodes?.forEach(walk)
    }
    try walk(try JSONDecoder().decode(Answer.self, from: data).node)
    return configs
}

/// `etcdctl get` through the v2 API.
func etcdctlV2Get(_ etcdURL: String, _ key: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try Toolchain.find("etcdctl", package: "etcd-client", in: Toolchain.defaultSearchPath))
    process.arguments = ["--endpoints", etcdURL, "get", key]
    process.environment = ["ETCDCTL_API": "2", "PATH": "/usr/bin:/bin"]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
