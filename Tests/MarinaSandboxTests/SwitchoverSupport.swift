import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Operations
import Testing
import Topology
import TopologyStore

/// What the servers say about one instance.
struct ServerView: Equatable, CustomStringConvertible {
    var readOnly: Bool
    var source: String?
    var running: Bool
    var description: String { "\(readOnly ? "ro" : "RW") \(source.map { "<- \($0) \(running ? "running" : "STOPPED")" } ?? "no source")" }
}

/// The topology as the servers report it, by instance name (sources named by port).
func serverTopology(_ sandbox: SandboxState, section: String = "s1", except: [String] = []) async throws -> [String: ServerView] {
    var views = [String: ServerView]()
    for instance in sandbox.instances(in: section) where !except.contains(instance.name) {
        let client = try await sandbox.root(instance.name)
        let readOnly = try await client.query("SELECT @@GLOBAL.read_only AS ro").first?["ro"] == "1"
        let channel = try await client.query("SHOW SLAVE STATUS").first
        await client.close()
        let source = channel.flatMap { row in sandbox.instances.first { String($0.port) == row["Master_Port"] }?.name }
        let running = channel?["Slave_IO_Running"] == "Yes" && channel?["Slave_SQL_Running"] == "Yes"
        views[instance.name] = ServerView(readOnly: readOnly, source: source, running: running)
    }
    return views
}

/// Checks, from the servers and the source of truth, that `primary` leads the section: it
/// alone is writable and replicates from nobody, every other member replicates from it with
/// both threads running, and the committed topology and generated configuration name it.
/// Instances in `except` (a dead old primary) are not read.
func expectPrimary(
    _ primary: String, _ sandbox: SandboxState, section: String = "s1", except: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    var views = [String: ServerView]()
    for _ in 0..<100 {  // replication threads may still be connecting
        views = try await serverTopology(sandbox, section: section, except: except)
        if views.allSatisfy({ $0.key == primary || $0.value.running }) { break }
        try await Task.sleep(for: .milliseconds(50))
    }
    for (name, view) in views.sorted(by: { $0.key < $1.key }) {
        let expected =
            name == primary ? ServerView(readOnly: false, source: nil, running: false) : ServerView(readOnly: true, source: primary, running: true)
        #expect(view == expected, "\(name): \(view), expected \(expected)", sourceLocation: sourceLocation)
    }
    let store = TopologyStore(etcd: sandbox.etcdClient)
    let committed = try await store.committedTopology()
    #expect(committed?.sections[section]?.primary == primary, sourceLocation: sourceLocation)
    #expect(committed?.sections[section]?.readOnly == false, sourceLocation: sourceLocation)
    let config = try await store.read().committed.configs[sandbox.datacenter]
    #expect(config?.sectionLoads[section]?.first?.keys.first == primary, sourceLocation: sourceLocation)
    #expect(config?.readOnlyBySection[section] == nil, sourceLocation: sourceLocation)
}

/// `marina switchover` against the sandbox.
func switchover(_ sandbox: SandboxState, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    try runMarina(["switchover"] + arguments, environment: ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"])
}

/// Writes a switchover request as the CLI does, without following it.
func requestSwitchover(_ sandbox: SandboxState, to candidate: String, section: String = "s1") async throws -> String {
    let id = "test-\(UInt32.random(in: 0...UInt32.max))"
    let record = OperationRecord(id: id, section: section, candidate: candidate, reason: "test", requestedBy: "test", requestedAt: Date())
    let keys = StoreKeys()
    _ = try await sandbox.etcdClient.transaction(
        Transaction(
            compares: [],
            success: [
                .put(keys.operation(id), try OperationJSON.encode(record)), .put(keys.request(id), id),
            ]))
    return id
}

func operation(_ sandbox: SandboxState, _ id: String) async throws -> OperationRecord? {
    try await sandbox.etcdClient.value(StoreKeys().operation(id)).map { try OperationJSON.decode($0.value) }
}

/// Waits until the operation's journal satisfies `condition`.
@discardableResult
func waitForOperation(
    _ sandbox: SandboxState, _ id: String, seconds: Double = 30,
    until condition: (OperationRecord) -> Bool
) async throws -> OperationRecord {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if let record = try await operation(sandbox, id), condition(record) { return record }
        try await Task.sleep(for: .milliseconds(20))
    }
    let last = try await operation(sandbox, id)
    throw SandboxError.invalidArgument(
        "operation \(id) did not get there within \(seconds) s: \(last.map { "\($0.state) paused=\($0.pausedBefore ?? "-") \($0.refusals.joined(separator: "; "))" } ?? "no journal")"
    )
}

/// Releases a controller paused by `pause_before`.
func resume(_ sandbox: SandboxState, _ id: String) async throws {
    _ = try await sandbox.etcdClient.put(StoreKeys().resume + id, "go")
}

/// Restarts the sandbox's controller pausing before `step` (or not pausing), optionally with other playbooks.
/// After a `kill`, the dead controller's lease is revoked, as its expiry would after the TTL.
func restartController(
    _ sandbox: SandboxState, pauseBefore step: String? = nil, pauseAfter: String? = nil, playbooks: String? = nil,
    kill: Bool = false
) async throws {
    try await Sandbox.stopController(directory: sandbox.directory, kill: kill)
    if kill, let leader = try await sandbox.etcdClient.value(StoreKeys().leader),
        let object = try JSONSerialization.jsonObject(with: Data(leader.value)) as? [String: Any], let lease = object["lease"] as? Int64
    {
        _ = try await sandbox.etcdClient.revokeLease(lease)
    }
    try await Sandbox.startController(
        directory: sandbox.directory, executable: marinaExecutable(), playbooks: playbooks, pauseBefore: step,
        pauseAfter: pauseAfter)
}

/// Restarts the controller to pause before `step`, requests a switchover to `candidate`, and
/// waits until the operation is paused there. Gives the operation's id.
func switchoverPaused(_ sandbox: SandboxState, before step: String, to candidate: String, playbooks: String? = nil) async throws -> String {
    try await restartController(sandbox, pauseBefore: step, playbooks: playbooks)
    let id = try await requestSwitchover(sandbox, to: candidate)
    try await waitForOperation(sandbox, id) { $0.pausedBefore != nil }
    return id
}

/// A copy of the repository's playbooks, the switchover's with some lines replaced, in a fresh
/// directory (the controller loads the failover's from the same place).
func playbooks(replacing replacements: [(String, String)]) throws -> String {
    let repository = try Sandbox.locatePlaybooks(from: marinaExecutable())
    let original = try String(contentsOfFile: repository + "/switchover.yaml", encoding: .utf8)
    let text = replacements.reduce(original) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
    let directory = TestServers.root + "/playbooks-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try text.write(toFile: directory + "/switchover.yaml", atomically: true, encoding: .utf8)
    try FileManager.default.copyItem(atPath: repository + "/failover.yaml", toPath: directory + "/failover.yaml")
    return directory
}

/// Runs `sql` as root on one instance.
func execute(_ sandbox: SandboxState, _ instance: String, _ sql: String...) async throws {
    let client = try await sandbox.root(instance)
    for statement in sql { try await client.execute(statement) }
    await client.close()
}

/// The number of commits in history.
func commitCount(_ sandbox: SandboxState) async throws -> Int {
    try await TopologyStore(etcd: sandbox.etcdClient).read().committed.sequence
}

/// `marina drift` once its output satisfies `condition` (the agent publishes what changed within a second), or the
/// last output after `seconds`.
func driftOutput(_ sandbox: SandboxState, seconds: Double = 15, until condition: (String) -> Bool) async throws -> String {
    var output = ""
    _ = try await eventually(seconds) {
        let result = try runMarina(["drift"], environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
        output = result.stdout + result.stderr
        return condition(output)
    }
    return output
}

/// Commits an edit as a writer that ignores section locks would (a script writing etcd
/// directly): the way to change a section in the middle of an operation, which the CLI refuses.
func rogueCommit(_ sandbox: SandboxState, _ edit: TopologyEdit) async throws {
    let store = TopologyStore(etcd: sandbox.etcdClient)
    guard
        case .success(let prepared) = try await store.prepare([edit], message: "rogue", by: ChangeAuthor(author: "rogue", now: Date()), kind: .commit),
        case .committed = try await store.commit(prepared)
    else {
        throw SandboxError.invalidArgument("the rogue commit did not land")
    }
}
