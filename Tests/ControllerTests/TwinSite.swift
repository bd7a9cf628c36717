import EtcdClient
import Foundation
import Logging
import MariaDBClient
import MarinaTwins
import Observation
import Operations
import Synchronization
import Topology
import TopologyStore

@testable import Controller

/// One section (`s1`: db1001 primary, db1002 and db1003 replicas) on the in-memory twins, with
/// the source of truth committed in the twin store, and controllers that run the real
/// `OperationRun`, `Hosts` and `Leadership` on them. Every statement any controller runs is
/// watched: a second writable instance, or a write by a controller that does not hold the
/// leader key at that moment, is recorded as a violation.
final class TwinSite: Sendable {
    static let section = "s1"
    static let names = ["db1001", "db1002", "db1003"]
    static let controllerUser = "marina"
    static let ttl = 10

    let clock = ManualClock()
    let store: MemoryStore
    let fleet: MemoryFleet
    let keys = StoreKeys(root: "/marina/v1")
    let playbook: Playbook
    private let violationLog = Mutex<[String]>([])
    /// Statements run through every controller's sessions, and the one that is to fail.
    private let statements = Mutex<(count: Int, fault: StatementFault?)>((0, nil))
    /// GTIDs the application wrote and had acknowledged, by the server that took them.
    private let acknowledged = Mutex<[GTID]>([])

    init(playbook: Playbook = TwinSite.fastPlaybook, minReplicas: Int = 1) async throws {
        store = MemoryStore(clock: clock)
        fleet = MemoryFleet(clock: clock)
        self.playbook = playbook
        var topology = Topology(datacenters: ["eqiad"])
        topology.sections[Self.section] = Section(
            name: Self.section, primary: "db1001", datacenter: "eqiad", minReplicas: minReplicas,
            allowEmpty: minReplicas == 0)
        for (index, name) in Self.names.enumerated() {
            let server = fleet.addServer(name: name, host: "10.64.0.\(index + 1)", port: 3306, serverID: UInt32(1001 + index), readOnly: index > 0)
            server.setAccount(Self.controllerUser, writesThroughReadOnly: true)
            server.setHeartbeatTable("heartbeat.heartbeat")
            topology.instances[name] = Instance(
                name: name, host: server.host, port: 3306, datacenter: "eqiad", candidatePrimary: true,
                sections: [Self.section: Membership(pooled: true, weight: index == 0 ? 0 : 100)])
        }
        for name in Self.names.dropFirst() { self.server(name).replicate(from: self.server("db1001"), user: "repl", password: "replpass") }
        try self.server("db1001").write(count: 3)
        try heartbeat()
        let sourceOfTruth = TopologyStore(etcd: store, keys: keys)
        guard case .applied = try await sourceOfTruth.replaceStaged(with: topology, by: .init(author: "test", now: Date()), change: "twin") else {
            throw TwinSiteError("the twin topology was refused")
        }
        guard case .committed = try await sourceOfTruth.commit(message: "twin", by: .init(author: "test", now: Date())) else {
            throw TwinSiteError("the twin topology was not committed")
        }
    }

    /// The shipped playbook's order, with its timeouts set.
    /// Nothing waits on these timeouts unless a test makes a statement hang; they are long
    /// enough that a loaded machine never reaches them by accident.
    static let fastPlaybook = playbook(timeouts: 5)

    /// The shipped playbook with every step's timeout set to `seconds`.
    static func playbook(timeouts seconds: Double) -> Playbook {
        var playbook = try! Playbook.load(playbookPath)
        for index in playbook.steps.indices { playbook.steps[index].timeout = seconds }
        return playbook
    }

    static var playbookPath: String {
        var directory = URL(fileURLWithPath: #filePath)
        while directory.path != "/" {
            directory.deleteLastPathComponent()
            let candidate = directory.appendingPathComponent("playbooks/switchover.yaml").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
        }
        return "playbooks/switchover.yaml"
    }

    func server(_ name: String) -> MemoryMariaDB { fleet.server(named: name)! }

    /// The heartbeat the agent writes on the primary, so that lag is measured from now.
    func heartbeat() throws {
        for server in fleet.servers where server.isUp && !server.readOnly {
            try server.writeHeartbeat(shard: Self.section, datacenter: "eqiad")
        }
    }

    /// An application write on the committed primary; acknowledged or refused, as a client sees it.
    @discardableResult
    func applicationWrite() async throws -> Bool {
        guard let primary = try await committedTopology().sections[Self.section]?.primary else { return false }
        do {
            let gtids = try server(primary).write(count: 1, as: "app")
            acknowledged.withLock { $0 += gtids }
            return true
        } catch {
            return false
        }
    }

    var acknowledgedWrites: [GTID] { acknowledged.withLock { $0 } }

    /// Stops `name` as `kill -9` does, and publishes what its agent, still alive on that host,
    /// then reports: the instance unreachable. A failover needs no lease wait for it.
    func kill(_ name: String) async throws {
        server(name).stop()
        let observation = Observation(
            instance: name, agent: "host-\(name)", agentStartedAt: Date(), observedAt: Date(), reachable: false, error: "connection refused")
        _ = try await store.put(keys.observed + name, try ObservationJSON.encode(observation))
    }

    func committedTopology() async throws -> Topology {
        try await TopologyStore(etcd: store, keys: keys).committedTopology() ?? Topology()
    }

    /// The instances that take writes now (`read_only` OFF, up).
    var writable: [String] { fleet.servers.filter { $0.isUp && !$0.readOnly }.map(\.name).sorted() }

    var violations: [String] { violationLog.withLock { $0 } }

    /// A controller with its own id, lease, connections and sessions on the twins; with
    /// `store`, it sees etcd through that (a `CuttingStore`).
    /// With a `freezer`, the controller can be stopped as by SIGSTOP (see `Freezer`).
    func controller(
        _ id: String, store view: (any CoordinationStore)? = nil, playbook: Playbook? = nil, freezer: Freezer? = nil, pauseBefore: String? = nil,
        failover: ControllerConfiguration.Failover? = nil
    ) -> TwinController {
        let store: any CoordinationStore = view ?? self.store
        let time = MonotonicTime { [clock] in freezer?.stoppedAt ?? clock.now }
        let leadership = Leadership(etcd: store, keys: keys, id: id, ttl: Self.ttl, clock: time)
        let connector = WatchedConnector(site: self, controller: id, freezer: freezer)
        let hosts = Hosts(
            account: Hosts.Account(user: Self.controllerUser, password: "secret", connectTimeout: 1), fence: leadership.fence,
            killWait: 2, connector: connector)
        var context = OperationContext(
            etcd: store, store: TopologyStore(etcd: store, keys: keys), leadership: leadership, hosts: hosts, playbook: playbook ?? self.playbook,
            controllerUser: Self.controllerUser, replicationUser: "repl", replicationPassword: Secret("replpass"), mirror: nil,
            pauseBefore: pauseBefore, pauseAfter: nil, logger: Logger(label: "twin \(id)", factory: { _ in SwiftLogNoOpLogHandler() }))
        // The agents' reports the twins publish (`kill`) stay fresh however slowly a loaded
        // machine runs the test.
        context.failover = failover ?? ControllerConfiguration.Failover(maxObservationAge: 600)
        return TwinController(id: id, context: context, site: self)
    }

    /// Writes a switchover request as `marina switchover` does; gives its id.
    func requestSwitchover(to candidate: String, id: String = "op-\(UUID().uuidString.prefix(8))") async throws -> String {
        try heartbeat()
        let record = OperationRecord(id: id, section: Self.section, candidate: candidate, reason: "test", requestedBy: "test", requestedAt: Date())
        let result = try await store.transaction(
            Transaction(
                compares: [.absent(keys.operation(id))],
                success: [.put(keys.operation(id), try OperationJSON.encode(record)), .put(keys.request(id), id)]))
        guard result.succeeded else { throw TwinSiteError("request \(id) exists") }
        return id
    }

    func operation(_ id: String) async throws -> OperationRecord? {
        try await store.value(keys.operation(id)).map { try OperationJSON.decode($0.value) }
    }

    var lockHolder: String? { store.snapshot()[keys.lock(Self.section)] }

    /// Checked after every statement a controller ran (see the type's comment).
    func check(after statement: String, by controller: String, succeeded: Bool) {
        let writable = self.writable
        if writable.count > 1 { record("\(writable.joined(separator: " and ")) writable at once, after \(controller): \(statement)") }
        let upper = statement.uppercased()
        let write = !(upper.hasPrefix("SELECT") || upper.hasPrefix("SHOW") || upper.hasPrefix("KILL"))
        if succeeded && write {
            let leader = store.snapshot()[keys.leader] ?? ""
            if !leader.contains(#""id":"\#(controller)""#) {
                record("\(controller) ran \(statement) without holding the leader key (held by \(leader.isEmpty ? "nobody" : leader))")
            }
        }
    }

    func record(_ violation: String) { violationLog.withLock { $0.append(violation) } }

    /// How a controller's statement fails (`TwinSite.fail(statement:with:)`).
    struct StatementFault: Sendable {
        var number: Int
        var code: UInt32
        /// It ran on the server before the failure came back (an answer lost after the commit).
        var applies: Bool
    }

    /// The `number`-th statement any controller sends from now on fails as `fault` says.
    func fail(statement number: Int, code: UInt32, applies: Bool) {
        statements.withLock { $0 = ($0.count, StatementFault(number: $0.count + number, code: code, applies: applies)) }
    }

    var statementCount: Int { statements.withLock { $0.count } }

    /// Counts a statement; gives the fault it must suffer, if it is the one.
    func nextStatement() -> StatementFault? {
        statements.withLock { state in
            state.count += 1
            return state.fault?.number == state.count ? state.fault : nil
        }
    }

    /// What the servers say, checked against a finished operation and the source of truth:
    /// rolled back, done, or left read-only for a human; never anything in between.
    func settledProblems(_ record: OperationRecord) async throws -> [String] {
        var problems = [String]()
        let topology = try await committedTopology()
        let committed = topology.sections[Self.section]?.primary ?? ""
        let writable = self.writable
        switch record.state {
        case .done, .doneNeedsAttention:
            if committed != record.candidate { problems.append("done, but the committed primary is \(committed)") }
            if writable != [record.candidate] { problems.append("done, but writable: \(writable)") }
        case .rolledBack, .refused:
            if committed != "db1001" { problems.append("\(record.state), but the committed primary is \(committed)") }
            if writable != ["db1001"] { problems.append("\(record.state), but writable: \(writable)") }
        case .needsHuman:
            if !writable.isEmpty { problems.append("needs a human, but writable: \(writable)") }
        default:
            problems.append("not finished: \(record.state)")
        }
        guard record.state != .needsHuman, let primary = writable.first else { return problems }
        let primaryServer = server(primary)
        for server in fleet.servers where server.name != primary && server.isUp && record.state != .doneNeedsAttention {
            fleet.replicate()
            if server.source.map({ $0.host != primaryServer.host }) ?? true {
                problems.append("\(server.name) replicates from \(server.source.map { "\($0.host)" } ?? "nothing"), not from \(primary)")
            } else if !server.isReplicating {
                problems.append(
                    "\(server.name) does not replicate from \(primary): \(server.lastIOError ?? server.lastSQLError ?? "threads stopped")")
            }
            if !server.readOnly { problems.append("\(server.name) is writable") }
        }
        let position = GTIDPosition(primaryServer.binlogState.gtids)
        let missing = acknowledgedWrites.filter { !position.contains(GTIDPosition([$0])) }
        if !missing.isEmpty { problems.append("acknowledged writes missing on \(primary): \(missing)") }
        return problems
    }
}

struct TwinSiteError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A controller on the twins: what `Controller` does with a request and with a lock left by
/// a previous leader, one call at a time, so a test decides what happens between them.
struct TwinController: Sendable {
    let id: String
    let context: OperationContext
    let site: TwinSite

    var leadership: Leadership { context.leadership }

    /// Campaigns once; true if it leads.
    @discardableResult
    func campaign() async throws -> Bool { try await leadership.campaign() }

    func keepAlive() async throws -> Bool { try await leadership.keepAlive() }

    /// Takes one request, as the controller's loop does.
    func handle(_ id: String) async throws {
        guard let stored = try await context.etcd.value(context.keys.operation(id)) else { return }
        let record = try OperationJSON.decode(stored.value)
        let topology = try await context.store.committedTopology() ?? Topology()
        try await OperationRun(record: record, context: context, topology: topology, requestRevision: stored.modRevision).start()
    }

    /// Finishes or rolls back what the section lock names, as a new leader does.
    func recoverUnfinished() async throws {
        for kv in try await context.etcd.get(context.keys.locks, prefix: true).kvs {
            let id = String(decoding: kv.value, as: UTF8.self)
            guard let stored = try await context.etcd.value(context.keys.operation(id)) else { continue }
            let record = try OperationJSON.decode(stored.value)
            let topology = try await context.store.committedTopology() ?? Topology()
            try await OperationRun(record: record, context: context, topology: topology).recover()
        }
    }

    func close() async { await context.hosts.closeAll() }
}

/// A controller process stopped as by SIGSTOP: its monotonic clock stands still (so its own
/// fence cannot close), and it receives no answer from a server until it runs again, when its
/// clock catches up with the site's at once. What it had sent may still apply meanwhile.
final class Freezer: Sendable {
    private let state = Mutex<(stoppedAt: Duration?, waiters: [CheckedContinuation<Void, Never>])>((nil, []))

    var stoppedAt: Duration? { state.withLock { $0.stoppedAt } }

    func stop(at now: Duration) { state.withLock { $0.stoppedAt = now } }

    func resume() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.stoppedAt = nil
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the process runs.
    func whileStopped() async {
        await withCheckedContinuation { continuation in
            let running = state.withLock { state -> Bool in
                guard state.stoppedAt != nil else { return true }
                state.waiters.append(continuation)
                return false
            }
            if running { continuation.resume() }
        }
    }
}

/// The fleet, with every statement of one controller checked by the site once it returns.
final class WatchedConnector: DatabaseConnector {
    let site: TwinSite
    let controller: String
    let freezer: Freezer?

    init(site: TwinSite, controller: String, freezer: Freezer? = nil) {
        self.site = site
        self.controller = controller
        self.freezer = freezer
    }

    func connect(_ configuration: MariaDBConfiguration) async throws -> any DatabaseSession {
        let session = try await site.fleet.connect(configuration)
        await freezer?.whileStopped()
        return WatchedSession(inner: session, site: site, controller: controller, freezer: freezer)
    }
}

final class WatchedSession: DatabaseSession {
    let inner: any DatabaseSession
    let site: TwinSite
    let controller: String
    let freezer: Freezer?

    init(inner: any DatabaseSession, site: TwinSite, controller: String, freezer: Freezer?) {
        self.inner = inner
        self.site = site
        self.controller = controller
        self.freezer = freezer
    }

    var threadID: UInt { inner.threadID }

    func query(_ sql: String) async throws -> QueryResult {
        try await watched(sql) { try await inner.query(sql) }
    }

    func query(_ sql: String, checkedBy check: @escaping @Sendable () throws -> Void) async throws -> QueryResult {
        try await watched(sql) { try await inner.query(sql, checkedBy: check) }
    }

    func close() async { await inner.close() }

    private func watched(_ sql: String, _ body: () async throws -> QueryResult) async throws -> QueryResult {
        if let fault = site.nextStatement() {
            if fault.applies { _ = try? await body() }
            // Applied, though the answer says otherwise: checked as applied.
            site.check(after: sql, by: controller, succeeded: fault.applies)
            throw MariaDBError(code: fault.code, sqlState: "HY000", message: "injected failure", operation: .query)
        }
        // Checked when the server answers (as it applies), then handed to the process once it runs.
        do {
            let result = try await body()
            site.check(after: sql, by: controller, succeeded: true)
            await freezer?.whileStopped()
            return result
        } catch {
            site.check(after: sql, by: controller, succeeded: false)
            await freezer?.whileStopped()
            throw error
        }
    }
}

/// One controller's view of the twin store, cut at its `cutAt`-th request: from then on it
/// reaches nothing, as a controller that died or lost etcd there. With `answerLost`, the
/// request at the cut applies (if it writes) but its answer never arrives. `cut(afterMore:)`
/// and `heal()` move the cut while the controller lives.
final class CuttingStore: KeyValueStore, V2Store {
    let inner: MemoryStore
    private struct Cut {
        var count = 0
        var at: Int?
        var answerLost = false
    }
    private let state: Mutex<Cut>

    init(_ inner: MemoryStore, cutAt: Int?, answerLost: Bool = false) {
        self.inner = inner
        self.state = Mutex(Cut(at: cutAt, answerLost: answerLost))
    }

    /// Requests made so far (the one cut included).
    var requests: Int { state.withLock { $0.count } }

    /// Cuts at the `n`-th request from now (`nil`: never).
    func cut(afterMore n: Int?, answerLost: Bool = false) {
        state.withLock { state in
            state.at = n.map { state.count + $0 }
            state.answerLost = answerLost
        }
    }

    func heal() { cut(afterMore: nil) }

    private enum Pass { case through, cut, applyThenCut }

    private func pass() -> Pass {
        state.withLock { state in
            state.count += 1
            guard let at = state.at, state.count >= at else { return .through }
            return state.count == at && state.answerLost ? .applyThenCut : .cut
        }
    }

    private var unreachable: EtcdError { EtcdError(.unavailable(attempts: ["cut"]), "this controller is cut from etcd (test)") }
    private var lost: EtcdError { EtcdError(.outcomeUnknown(endpoint: "memory", reason: "cut"), "the answer was lost (test)") }

    private func run<T>(_ body: () async throws -> T) async throws -> T {
        switch pass() {
        case .through: return try await body()
        case .cut: throw unreachable
        case .applyThenCut:
            _ = try await body()
            throw lost
        }
    }

    func range(_ key: String, prefix: Bool, revision: Int64?, limit: Int64?, keysOnly: Bool) async throws -> RangeResult {
        try await run { try await inner.range(key, prefix: prefix, revision: revision, limit: limit, keysOnly: keysOnly) }
    }

    func transaction(_ transaction: Transaction) async throws -> TransactionResult {
        try await run { try await inner.transaction(transaction) }
    }

    func grantLease(ttl: Int64) async throws -> Lease { try await run { try await inner.grantLease(ttl: ttl) } }
    func keepAlive(_ leaseID: Int64) async throws -> Int64? { try await run { try await inner.keepAlive(leaseID) } }
    @discardableResult
    func revokeLease(_ leaseID: Int64) async throws -> Bool { try await run { try await inner.revokeLease(leaseID) } }

    func watchChanges(_ key: String, prefix: Bool, startRevision: Int64?) -> AsyncThrowingStream<WatchResponse, Error> {
        inner.watchChanges(key, prefix: prefix, startRevision: startRevision)
    }

    func v2Put(_ path: String, _ value: String) async throws { try await run { try await inner.v2Put(path, value) } }
    func v2Get(_ path: String, recursive: Bool) async throws -> V2Node? { try await run { try await inner.v2Get(path, recursive: recursive) } }
}
