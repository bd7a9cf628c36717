import EtcdClient
import Foundation
import MarinaSandbox
import Operations
import Topology
import TopologyStore

//   marina-bench grant-sync --marina PATH [--runs N]
//     A sandbox of one section of 5 instances (a primary and 4 replicas) with agents and a
//     controller (PATH). 50 managed users (two host patterns each: 100 accounts per instance)
//     are staged, committed and synced once (the "first sync": every account created on every
//     instance). Then each run grants one more privilege to one user, commits, and times
//     `marina grant sync s1 --yes` as a process, from start to exit; the statements run are
//     counted from the operation's journal.

func benchmarkGrantSync(marina: String, runs: Int) async throws {
    let directory = NSTemporaryDirectory() + "marina-bench-grant-sync-\(getpid())"
    let state = try await Sandbox.up(.init(directory: directory, sections: 1, replicas: 4, agentExecutable: marina)).state
    defer { _ = try? Sandbox.down(directory: directory, purge: true) }
    _ = try await Sandbox.startController(directory: directory, executable: marina)
    let store = TopologyStore(etcd: EtcdClient(EtcdConfiguration(endpoints: [state.etcd.url], tls: state.certificates?.etcdClientTLS)))
    let actor = ChangeAuthor(author: "bench", now: Date())
    let objects = ["*.*": ["PROCESS"], "`wiki`.*": ["DELETE", "INSERT", "SELECT", "UPDATE"], "`heartbeat`.`heartbeat`": ["SELECT"]]
    var snapshot = try await store.read().staged
    var topology = snapshot.topology
    for index in 1...50 {
        let hash = Authentication.nativePasswordHash(of: Array("password-\(index)".utf8))
        topology.grants["s1", default: [:]]["app\(index)"] =
            ManagedAccount(
                name: "app\(index)", hosts: ["10.64.%", "10.192.%"], authentication: Authentication(plugin: .mysqlNativePassword, hash: hash),
                limits: ResourceLimits(maxUserConnections: 100), privileges: objects
            ).canonical
    }
    guard case .applied = try await store.stage(topology, over: snapshot, by: actor, change: "bench: 50 users") else {
        throw BenchmarkError("the 50 users were not staged")
    }
    guard case .committed = try await store.commit(message: "bench: 50 users", by: actor) else { throw BenchmarkError("no commit") }

    func sync() throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: marina)
        process.arguments = ["grant", "sync", "s1", "--yes"]
        process.environment = ProcessInfo.processInfo.environment.merging(["MARINA_SANDBOX_DIR": directory]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        let clock = ContinuousClock()
        let start = clock.now
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchmarkError("grant sync exited \(process.terminationStatus)") }
        return seconds(clock.now - start)
    }
    func lastStatements() async throws -> Int {
        let etcd = EtcdClient(EtcdConfiguration(endpoints: [state.etcd.url], tls: state.certificates?.etcdClientTLS))
        let records = try await etcd.get(StoreKeys().operations, prefix: true).kvs.compactMap { try? OperationJSON.decode($0.value) }
        guard let last = records.filter({ $0.kind == "grant-sync" && !$0.dryRun }).max(by: { $0.requestedAt < $1.requestedAt }) else {
            throw BenchmarkError("no grant sync journaled")
        }
        return last.steps.reduce(0) { $0 + $1.statements.count }
    }

    let first = try sync()
    print(String(format: "first sync, 50 users × 2 hosts on 5 instances: %.2f s, %d statements", first, try await lastStatements()))
    var samples = [Double]()
    var counts = Set<Int>()
    for run in 0..<runs {
        snapshot = try await store.read().staged
        let privilege = ["ALTER", "CREATE", "DROP", "INDEX", "LOCK TABLES", "CREATE VIEW", "SHOW VIEW", "TRIGGER", "EVENT", "REFERENCES"][
            run % 10]
        let user = "app\(run % 50 + 1)"
        var account = try snapshot.topology.grants["s1"]?[user] ?? { throw BenchmarkError("no \(user)") }()
        account.privileges["`wiki`.*", default: []].append(privilege)
        guard case .applied = try await store.apply(.setAccount(section: "s1", account: account), over: snapshot, by: actor) else {
            throw BenchmarkError("run \(run): not staged")
        }
        guard case .committed = try await store.commit(message: "bench run \(run)", by: actor) else { throw BenchmarkError("run \(run): no commit") }
        samples.append(try sync())
        counts.insert(try await lastStatements())
    }
    print("grant sync of a one-privilege change, 50 managed users on 5 instances: " + describe(samples))
    print("statements per one-privilege sync: \(counts.sorted().map(String.init).joined(separator: ", "))")
}
