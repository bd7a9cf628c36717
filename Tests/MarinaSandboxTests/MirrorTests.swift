import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Operations
import Testing
import Topology
import TopologyStore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The configuration at `<prefix>/<datacenter>/dbconfig` through etcd's v2 API, or nil when absent.
func v2Config(_ sandbox: SandboxState, prefix: String = ConfigMirror.mediaWikiPrefix, datacenter: String? = nil) async throws -> GeneratedConfig? {
    let path = ConfigMirror.v2Path(prefix: prefix, datacenter: datacenter ?? sandbox.datacenter)
    guard let value = try await sandbox.etcdClient.v2Get(path)?.value else { return nil }
    return try ConfigMirror.decodeV2Value(value)
}

/// What is committed for the sandbox's datacenter.
func committedConfig(_ sandbox: SandboxState) async throws -> GeneratedConfig? {
    try await TopologyStore(etcd: sandbox.etcdClient).read().committed.configs[sandbox.datacenter]
}

/// Makes etcd refuse every mirror write under `prefix`: a v2 *file* where the datacenter's
/// directory must be, so that `PUT <prefix>/<dc>/dbconfig` fails (v2 error 104, "Not a directory").
func blockMirror(_ sandbox: SandboxState, prefix: String) async throws {
    try await sandbox.etcdClient.v2Put("\(prefix)/\(sandbox.datacenter)", "a file in the way")
}

/// Removes what `blockMirror` put, as a DBA fixing etcd would (`DELETE /v2/keys/...`).
func unblockMirror(_ sandbox: SandboxState, prefix: String) async throws {
    var request = URLRequest(url: URL(string: "\(sandbox.etcd.url)/v2/keys/\(prefix)/\(sandbox.datacenter)")!)
    request.httpMethod = "DELETE"
    let (_, response) = try await URLSession.shared.data(for: request)
    #expect((response as? HTTPURLResponse)?.statusCode == 200)
}

/// (code, section or instance) of each `marina drift --json` finding with that code.
func driftFindings(_ sandbox: SandboxState, code: String, options: [String] = []) throws -> [[String: Any]] {
    let result = try runMarina(["drift", "--json"] + options, environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
    #expect(result.status == 0 || result.status == 6, "\(result.stderr)")
    let findings = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]) ?? []
    return findings.filter { $0["code"] as? String == code }
}

@Suite("The site mirror: every commit writes MediaWiki's etcd v2 keys, and a failure is an error", .serialized)
struct MirrorTests {
    @Test(
        "a plain `config commit` and `config restore`, with no mirror flag, update MediaWiki's v2 key; `config mirror` shows, moves and turns it off")
    func plainCommitUpdatesTheMirror() async throws {
        let sandbox = try await TestServers.privateSandbox("mirror-plain", sections: 1, replicas: 2)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "dba"]
        func marina(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try runMarina(arguments, environment: environment)
        }
        #expect(try await v2Config(sandbox) == committedConfig(sandbox))  // the sandbox set the site mirror before its first commit
        let shown = try marina(["config", "mirror"])
        #expect(shown.status == 0 && shown.stdout.contains("/v2/keys/conftool/v1/mediawiki-config/<datacenter>/dbconfig"), "\(shown)")

        #expect(try marina(["instance", "depool", "db1003", "--section", "s1"]).status == 0)
        let commit = try marina(["config", "commit", "--yes", "-m", "depool db1003"])
        #expect(commit.status == 0, "\(commit.stderr)")
        #expect(commit.stdout.contains("mirrored to etcd v2 /v2/keys/conftool/v1/mediawiki-config/dc1/dbconfig"), "\(commit.stdout)")
        let mirrored = try #require(try await v2Config(sandbox))
        #expect(mirrored == (try await committedConfig(sandbox)))
        #expect(mirrored.sectionLoads["s1"]?.last?["db1003"] == nil)

        let first = try #require(try await TopologyStore(etcd: sandbox.etcdClient).history().last?.revision)
        #expect(try marina(["config", "restore", String(first), "-m", "undo"]).status == 0)
        #expect(try await v2Config(sandbox)?.sectionLoads["s1"]?.last?["db1003"] == 100)

        // Moved: written there at once, and by the next commit; the old keys stay as they were.
        let other = "marina-tests/moved-\(UInt32.random(in: 0...UInt32.max))"
        let moved = try marina(["config", "mirror", "--v2-prefix", other])
        #expect(moved.status == 0 && moved.stdout.contains("wrote etcd v2 /v2/keys/\(other)/dc1/dbconfig"), "\(moved)")
        #expect(try await v2Config(sandbox, prefix: other) == committedConfig(sandbox))
        #expect(try marina(["instance", "set-weight", "db1002", "--section", "s1", "--weight", "70"]).status == 0)
        #expect(try marina(["config", "commit", "--yes", "-m", "weight"]).status == 0)
        #expect(try await v2Config(sandbox, prefix: other)?.sectionLoads["s1"]?.last?["db1002"] == 70)
        #expect(try await v2Config(sandbox)?.sectionLoads["s1"]?.last?["db1002"] == 100)
        let json = try marina(["config", "mirror", "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])?["v2_prefix"] as? String == other)

        // Off: commits write no v2 mirror.
        #expect(try marina(["config", "mirror", "--off"]).status == 0)
        #expect(try marina(["config", "mirror"]).stdout.hasPrefix("Site mirror: off"))
        #expect(try marina(["instance", "set-weight", "db1002", "--section", "s1", "--weight", "80"]).status == 0)
        #expect(try marina(["config", "commit", "--yes", "-m", "weight again"]).status == 0)
        #expect(try await v2Config(sandbox, prefix: other)?.sectionLoads["s1"]?.last?["db1002"] == 70)

        // Bad input: one line naming the problem, nothing changed.
        let hidden = try marina(["config", "mirror", "--v2-prefix", "conftool/_hidden"])
        #expect(hidden.status == 1 && hidden.stderr.contains("etcd v2 hides"), "\(hidden)")
        let both = try marina(["config", "mirror", "--off", "--sync"])
        #expect(both.status == 64 && both.stderr.contains("give one of --v2-prefix, --off and --sync"), "\(both)")
        let noMirror = try marina(["config", "mirror", "--sync"])
        #expect(noMirror.status == 1 && noMirror.stderr.contains("no site mirror is set"), "\(noMirror)")
    }

    @Test("a mirror etcd refuses: `config commit` commits, exits 6 naming the v2 key; drift reports MIRROR_STALE; `config mirror --sync` fixes it")
    func refusedMirror() async throws {
        let sandbox = try await TestServers.privateSandbox("mirror-refused", sections: 1, replicas: 2)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "dba"]
        func marina(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try runMarina(arguments, environment: environment)
        }
        let prefix = "marina-tests/refused-\(UInt32.random(in: 0...UInt32.max))"
        let key = "etcd v2 /v2/keys/\(prefix)/dc1/dbconfig"
        try await blockMirror(sandbox, prefix: prefix)
        let set = try marina(["config", "mirror", "--v2-prefix", prefix])
        #expect(set.status == 6, "\(set)")  // the setting is saved; the committed configuration could not be written there
        #expect(set.stderr.hasPrefix("marina: the committed configuration stands, but a mirror was not written: \(key): "), "\(set.stderr)")

        #expect(try marina(["instance", "depool", "db1003", "--section", "s1"]).status == 0)
        let commit = try marina(["config", "commit", "--yes", "-m", "depool db1003"])
        #expect(commit.status == 6, "\(commit)")
        #expect(commit.stdout.contains("Committed #2"), "\(commit.stdout)")
        #expect(commit.stderr.hasPrefix("marina: committed, but a mirror was not written: \(key): "), "\(commit.stderr)")
        #expect(commit.stderr.contains("Not a directory"), "\(commit.stderr)")
        #expect(commit.stderr.contains("MediaWiki (everything reading the etcd v2 mirror) still sees the previous configuration"))
        #expect(commit.stderr.contains("`marina config mirror --sync`"))
        #expect(try marina(["config", "diff"]).status == 0)  // the commit stands
        let json = try marina([
            "config", "restore", String(try #require(try await TopologyStore(etcd: sandbox.etcdClient).history().last?.revision)),
            "-m", "undo", "--json",
        ])
        #expect(json.status == 6)
        let output = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(
            output?["outcome"] as? String == "committed" && (output?["mirror_failures"] as? [String])?.first?.hasPrefix(key) == true, "\(json.stdout)"
        )

        #expect(try driftFindings(sandbox, code: "MIRROR_STALE").map { $0["observed"] as? String } == ["absent"])

        try await unblockMirror(sandbox, prefix: prefix)
        let sync = try marina(["config", "mirror", "--sync"])
        #expect(sync.status == 0 && sync.stdout.contains("wrote \(key)"), "\(sync)")
        #expect(try await v2Config(sandbox, prefix: prefix) == committedConfig(sandbox))
        #expect(try driftFindings(sandbox, code: "MIRROR_STALE").isEmpty)

        // Someone writes an older configuration there by hand: drift names the section that differs.
        var old = try #require(try await committedConfig(sandbox))
        old.sectionLoads["s1"] = [["db1002": 0], ["db1001": 100]]
        try await sandbox.etcdClient.v2Put(
            ConfigMirror.v2Path(prefix: prefix, datacenter: "dc1"), #"{"val":"# + String(decoding: old.json(), as: UTF8.self) + "}")
        let stale = try driftFindings(sandbox, code: "MIRROR_STALE")
        #expect(stale.count == 1 && stale.first?["section"] as? String == "s1" && stale.first?["severity"] as? String == "error", "\(stale)")
        #expect((stale.first?["observed"] as? String)?.contains(#"[{"db1002":0},{"db1001":100}]"#) == true, "\(stale)")
        let text = try marina(["drift"])
        #expect(text.status == 6 && text.stdout.contains("MIRROR_STALE"), "\(text.stdout)")
    }

    @Test("a switchover and an automatic depool write the site mirror, not only the controller's own `mirror:`")
    func controllerCommitsWriteTheMirror() async throws {
        let sandbox = try await TestServers.privateSandbox("mirror-controller", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let prefix = "marina-tests/controller-\(UInt32.random(in: 0...UInt32.max))"
        let set = try runMarina(["config", "mirror", "--v2-prefix", prefix], environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
        #expect(set.status == 0, "\(set)")

        let result = try switchover(sandbox, ["s1", "--to", "db1002", "--yes"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        try await expectPrimary("db1002", sandbox)
        let switched = try #require(try await v2Config(sandbox, prefix: prefix))
        #expect(switched == (try await committedConfig(sandbox)))
        #expect(switched.sectionLoads["s1"]?.first?.keys.first == "db1002")
        #expect(switched.readOnlyBySection["s1"] == nil)

        // The automatic depool's commit.
        try await Sandbox.stopController(directory: sandbox.directory)
        try await Sandbox.startController(directory: sandbox.directory, executable: marinaExecutable(), depool: fastPolicy)
        let held = try await holdReplication(sandbox, "db1003")
        #expect(try await eventually(15) { try await v2Config(sandbox, prefix: prefix)?.sectionLoads["s1"]?.last?["db1003"] == nil })
        #expect(try await pooledReplicas(sandbox)["db1003"] == nil)
        #expect(try await TopologyStore(etcd: sandbox.etcdClient).history(limit: 1).first?.kind == .automatic)
        #expect(try await v2Config(sandbox, prefix: prefix) == committedConfig(sandbox))
        try await held.execute("UNLOCK TABLES")
        await held.close()
    }

    @Test("a switchover whose section-read-only commit cannot reach the mirror fails at that step and rolls back")
    func switchoverFailsOnMirror() async throws {
        let sandbox = try await TestServers.privateSandbox("mirror-switch-fails", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let prefix = "marina-tests/switch-refused-\(UInt32.random(in: 0...UInt32.max))"
        try await blockMirror(sandbox, prefix: prefix)
        #expect(try runMarina(["config", "mirror", "--v2-prefix", prefix], environment: ["MARINA_SANDBOX_DIR": sandbox.directory]).status == 6)
        let before = try await commitCount(sandbox)

        let result = try switchover(sandbox, ["s1", "--to", "db1002", "--yes"])
        #expect(result.status == 4, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("Failed at section s1 read-only on etcd-v2"), "\(result.stdout)")
        #expect(result.stdout.contains("Rolled back and verified"), "\(result.stdout)")
        let id = try #require(
            try await sandbox.etcdClient.get(StoreKeys().operations, prefix: true, keysOnly: true).kvs.last?.key
                .split(separator: "/").last.map(String.init))
        let record = try #require(try await operation(sandbox, id))
        #expect(record.state == .rolledBack)
        #expect(record.failure?.host == "etcd-v2")
        #expect(record.failure?.error.contains("/v2/keys/\(prefix)/dc1/dbconfig") == true, "\(record.failure?.error ?? "")")
        #expect(record.steps.first { $0.action == .oldPrimaryReadOnly }?.state == .pending, "the old primary was never made read-only")
        #expect(record.attention.contains { $0.hasPrefix("the configuration mirror was not written") }, "\(record.attention)")
        // The read-only commit and its undo both stand in etcd; db1001 leads as before.
        #expect(try await commitCount(sandbox) == before + 2)
        try await expectPrimary("db1001", sandbox)
    }
}
