import EtcdClient
import Synchronization

/// The in-memory twin of etcd, as `KeyValueStore` describes it: one revision counter, atomic
/// compare-and-swap transactions, leases that expire on a `ManualClock`, watches from a
/// revision, and failures a test injects. Decision tests run the controller on it; the real
/// `EtcdClient` is tested against a real etcd.
///
/// Leases expire lazily: every request first expires the leases whose deadline has passed on
/// the clock (each as its own revision, deleting its keys), so that a test which advances the
/// clock sees the expiry at the next request of anyone.
public final class MemoryStore: KeyValueStore, V2Store, Sendable {
    /// What an injected failure does to the next requests.
    public enum Failure: Sendable {
        /// Nothing reaches the store: every request throws `.unavailable`, nothing applies.
        case unreachable
        /// A write applies, then its answer is lost: it throws `.outcomeUnknown` (reads answer).
        case answerLost
    }

    struct Event {
        var revision: Int64
        var event: WatchEvent
    }

    struct LeaseState {
        var ttl: Int64
        var expiresAt: Duration
    }

    struct Watcher {
        var key: [UInt8]
        var end: [UInt8]?
        var continuation: AsyncThrowingStream<WatchResponse, Error>.Continuation
    }

    struct State {
        var revision: Int64 = 1
        var keys = [String: KeyValue]()
        var log = [Event]()
        var compacted: Int64 = 0
        var leases = [Int64: LeaseState]()
        var nextLease: Int64 = 0x7E57_0000
        var watchers = [Int: Watcher]()
        var nextWatcher = 0
        var v2 = [String: String]()
        var failure: Failure?
        var failuresLeft = 0
        var requests = 0
    }

    public let clock: ManualClock
    private let state = Mutex(State())

    public init(clock: ManualClock = ManualClock()) {
        self.clock = clock
    }

    // MARK: Controls

    /// The next `count` requests (or every one, with `Int.max`) fail as `failure` says.
    public func fail(_ failure: Failure, count: Int = Int.max) {
        state.withLock {
            $0.failure = failure
            $0.failuresLeft = count
        }
    }

    /// Requests succeed again.
    public func heal() {
        state.withLock {
            $0.failure = nil
            $0.failuresLeft = 0
        }
    }

    /// The current revision.
    public var revision: Int64 { state.withLock { $0.revision } }

    /// How many requests reached the store (failed ones included).
    public var requestCount: Int { state.withLock { $0.requests } }

    /// Every key and its value as text, expiring leases first: what a test asserts on.
    public func snapshot() -> [String: String] {
        state.withLock { state in
            expire(&state)
            return state.keys.mapValues(\.stringValue)
        }
    }

    /// Discards the history before `revision`: watches from older revisions then end with `.compacted`.
    public func compact(_ revision: Int64) {
        state.withLock { state in
            state.compacted = max(state.compacted, revision)
            state.log.removeAll { $0.revision < revision }
        }
    }

    // MARK: KeyValueStore

    public func range(_ key: String, prefix: Bool, revision: Int64?, limit: Int64?, keysOnly: Bool) async throws -> RangeResult {
        try state.withLock { state in
            try admit(&state, write: false)
            expire(&state)
            return try read(state, key: key, prefix: prefix, revision: revision, limit: limit, keysOnly: keysOnly)
        }
    }

    public func transaction(_ transaction: Transaction) async throws -> TransactionResult {
        let write = !(transaction.success + transaction.failure).allSatisfy { if case .get = $0 { true } else { false } }
        var lost = false
        let result = try state.withLock { state -> TransactionResult in
            lost = try admit(&state, write: write)
            expire(&state)
            let holds = transaction.compares.allSatisfy { holdsCompare($0, in: state) }
            let operations = holds ? transaction.success : transaction.failure
            return try apply(operations, succeeded: holds, to: &state)
        }
        if lost { throw EtcdError(.outcomeUnknown(endpoint: "memory", reason: "injected"), "the answer to a write was lost (injected)") }
        return result
    }

    public func grantLease(ttl: Int64) async throws -> Lease {
        var lost = false
        let lease = try state.withLock { state -> Lease in
            lost = try admit(&state, write: true)
            expire(&state)
            state.nextLease += 1
            state.leases[state.nextLease] = LeaseState(ttl: ttl, expiresAt: clock.now + .seconds(ttl))
            return Lease(id: state.nextLease, ttl: ttl)
        }
        if lost { throw EtcdError(.outcomeUnknown(endpoint: "memory", reason: "injected"), "the answer to a lease grant was lost (injected)") }
        return lease
    }

    public func keepAlive(_ leaseID: Int64) async throws -> Int64? {
        try state.withLock { state -> Int64? in
            try admit(&state, write: false)
            expire(&state)
            guard let lease = state.leases[leaseID] else { return nil }
            state.leases[leaseID]?.expiresAt = clock.now + .seconds(lease.ttl)
            return lease.ttl
        }
    }

    @discardableResult
    public func revokeLease(_ leaseID: Int64) async throws -> Bool {
        try state.withLock { state -> Bool in
            try admit(&state, write: false)
            expire(&state)
            guard state.leases[leaseID] != nil else { return false }
            end(leaseID, &state)
            return true
        }
    }

    public func watchChanges(_ key: String, prefix: Bool, startRevision: Int64?) -> AsyncThrowingStream<WatchResponse, Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: WatchResponse.self, throwing: Error.self)
        let bytes = Array(key.utf8)
        let end = prefix ? Self.prefixEnd(bytes) : nil
        let id = state.withLock { state -> Int? in
            expire(&state)
            if let start = startRevision, start < state.compacted {
                continuation.finish(throwing: EtcdError(.compacted(compactRevision: state.compacted), "revision \(start) is compacted"))
                return nil
            }
            if let start = startRevision {
                let past = state.log.filter { $0.revision >= start && Self.contains(Array($0.event.kv.key.utf8), key: bytes, end: end) }
                if !past.isEmpty { continuation.yield(WatchResponse(events: past.map(\.event), headerRevision: state.revision)) }
            }
            state.nextWatcher += 1
            state.watchers[state.nextWatcher] = Watcher(key: bytes, end: end, continuation: continuation)
            return state.nextWatcher
        }
        if let id {
            continuation.onTermination = { [weak self] _ in self?.state.withLock { _ = $0.watchers.removeValue(forKey: id) } }
        }
        return stream
    }

    // MARK: V2Store

    public func v2Put(_ path: String, _ value: String) async throws {
        try state.withLock { state in
            try admit(&state, write: false)
            state.v2[Self.v2Key(path)] = value
        }
    }

    public func v2Get(_ path: String, recursive: Bool) async throws -> V2Node? {
        try state.withLock { state -> V2Node? in
            try admit(&state, write: false)
            let key = Self.v2Key(path)
            if let value = state.v2[key] { return V2Node(key: key, value: value) }
            let under = state.v2.filter { $0.key.hasPrefix(key + "/") }.sorted { $0.key < $1.key }
            guard !under.isEmpty else { return nil }
            return V2Node(key: key, dir: true, nodes: recursive ? under.map { V2Node(key: $0.key, value: $0.value) } : [])
        }
    }

    // MARK: Inside

    /// Counts the request and applies an injected failure: throws when nothing may apply, gives
    /// true when a write must apply and then lose its answer.
    @discardableResult
    private func admit(_ state: inout State, write: Bool) throws -> Bool {
        state.requests += 1
        guard let failure = state.failure, state.failuresLeft > 0 else { return false }
        switch failure {
        case .unreachable:
            state.failuresLeft -= 1
            throw EtcdError(.unavailable(attempts: ["memory: unreachable (injected)"]), "no endpoint answered (injected)")
        case .answerLost:
            guard write else { return false }
            state.failuresLeft -= 1
            return true
        }
    }

    private func expire(_ state: inout State) {
        let now = clock.now
        for (id, lease) in state.leases.sorted(by: { $0.key < $1.key }) where lease.expiresAt <= now {
            end(id, &state)
        }
    }

    /// Ends a lease: its keys are deleted in one revision.
    private func end(_ leaseID: Int64, _ state: inout State) {
        state.leases[leaseID] = nil
        let bound = state.keys.values.filter { $0.lease == leaseID }.sorted { $0.key < $1.key }
        guard !bound.isEmpty else { return }
        state.revision += 1
        var events = [WatchEvent]()
        for kv in bound {
            state.keys[kv.key] = nil
            events.append(WatchEvent(kind: .delete, kv: KeyValue(key: kv.key, value: [], modRevision: state.revision), previous: kv))
        }
        publish(events, &state)
    }

    private func read(_ state: State, key: String, prefix: Bool, revision: Int64?, limit: Int64?, keysOnly: Bool) throws -> RangeResult {
        let bytes = Array(key.utf8)
        let end = prefix ? Self.prefixEnd(bytes) : nil
        var keys = state.keys
        if let revision, revision < state.revision {
            guard revision >= state.compacted else {
                throw EtcdError(.server(grpcCode: 11, httpStatus: 400), "mvcc: required revision has been compacted")
            }
            keys = Self.rollBack(keys, log: state.log, to: revision)
        }
        var kvs = keys.values.filter { Self.contains(Array($0.key.utf8), key: bytes, end: end) }
            .sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
        let count = Int64(kvs.count)
        if let limit, limit > 0, kvs.count > limit { kvs = Array(kvs.prefix(Int(limit))) }
        if keysOnly {
            kvs = kvs.map {
                KeyValue(
                    key: $0.key, value: [], createRevision: $0.createRevision, modRevision: $0.modRevision,
                    version: $0.version, lease: $0.lease)
            }
        }
        return RangeResult(kvs: kvs, revision: revision ?? state.revision, count: count)
    }

    /// The keys as they were at `revision`, undoing the logged events after it.
    private static func rollBack(_ keys: [String: KeyValue], log: [Event], to revision: Int64) -> [String: KeyValue] {
        var keys = keys
        for entry in log.reversed() where entry.revision > revision {
            keys[entry.event.kv.key] = entry.event.previous
        }
        return keys
    }

    private func apply(_ operations: [KVOperation], succeeded: Bool, to state: inout State) throws -> TransactionResult {
        let writes = operations.contains { if case .get = $0 { false } else { true } }
        // Checked before anything applies: a transaction applies whole or not at all.
        for case .put(let key, _, let lease) in operations where lease != 0 && state.leases[lease] == nil {
            throw EtcdError(.server(grpcCode: 5, httpStatus: 404), "etcdserver: requested lease not found (put \(key))")
        }
        let revision = state.revision + 1
        var results = [KVResult]()
        var events = [WatchEvent]()
        for operation in operations {
            switch operation {
            case .get(let key, let prefix):
                var view = state
                view.revision = writes ? revision : state.revision
                results.append(.get(try read(view, key: key, prefix: prefix, revision: nil, limit: nil, keysOnly: false)))
            case .put(let key, let value, let lease):
                let previous = state.keys[key]
                let kv = KeyValue(
                    key: key, value: value, createRevision: previous?.createRevision ?? revision, modRevision: revision,
                    version: (previous?.version ?? 0) + 1, lease: lease)
                state.keys[key] = kv
                events.append(WatchEvent(kind: .put, kv: kv, previous: previous))
                results.append(.put(revision: revision))
            case .delete(let key, let prefix):
                let bytes = Array(key.utf8)
                results.append(.delete(deleted: delete(from: bytes, to: prefix ? Self.prefixEnd(bytes) : nil, at: revision, &state, &events)))
            case .deleteRange(let from, let to):
                results.append(.delete(deleted: delete(from: Array(from.utf8), to: Array(to.utf8), at: revision, &state, &events)))
            }
        }
        if !events.isEmpty {
            state.revision = revision
            publish(events, &state)
        }
        return TransactionResult(succeeded: succeeded, revision: state.revision, results: results)
    }

    private func delete(from key: [UInt8], to end: [UInt8]?, at revision: Int64, _ state: inout State, _ events: inout [WatchEvent]) -> Int64 {
        let doomed = state.keys.values.filter { Self.contains(Array($0.key.utf8), key: key, end: end) }.sorted { $0.key < $1.key }
        for kv in doomed {
            state.keys[kv.key] = nil
            events.append(WatchEvent(kind: .delete, kv: KeyValue(key: kv.key, value: [], modRevision: revision), previous: kv))
        }
        return Int64(doomed.count)
    }

    private func publish(_ events: [WatchEvent], _ state: inout State) {
        state.log += events.map { Event(revision: state.revision, event: $0) }
        for watcher in state.watchers.values {
            let seen = events.filter { Self.contains(Array($0.kv.key.utf8), key: watcher.key, end: watcher.end) }
            if !seen.isEmpty { watcher.continuation.yield(WatchResponse(events: seen, headerRevision: state.revision)) }
        }
    }

    private func holdsCompare(_ compare: Compare, in state: State) -> Bool {
        let bytes = Array(compare.key.utf8)
        let targets: [KeyValue?]
        if let end = compare.rangeEnd {
            let inRange = state.keys.values.filter { Self.contains(Array($0.key.utf8), key: bytes, end: end) }
            // An empty range is compared as one key that does not exist (version, create and
            // mod revision 0; a value never matches), as etcd does.
            targets = inRange.isEmpty ? [nil] : inRange
        } else {
            targets = [state.keys[compare.key]]
        }
        return targets.allSatisfy { kv in
            switch compare.target {
            case .value(let value):
                guard let kv else { return false }
                return Self.holds(compare.result, kv.value.lexicographicallyPrecedes(value) ? -1 : (kv.value == value ? 0 : 1))
            case .version(let version): return Self.holds(compare.result, Self.order(kv?.version ?? 0, version))
            case .createRevision(let revision): return Self.holds(compare.result, Self.order(kv?.createRevision ?? 0, revision))
            case .modRevision(let revision): return Self.holds(compare.result, Self.order(kv?.modRevision ?? 0, revision))
            }
        }
    }

    private static func order(_ left: Int64, _ right: Int64) -> Int { left < right ? -1 : (left == right ? 0 : 1) }

    private static func holds(_ result: Compare.Result, _ order: Int) -> Bool {
        switch result {
        case .equal: order == 0
        case .notEqual: order != 0
        case .greater: order > 0
        case .less: order < 0
        }
    }

    /// Whether `candidate` is `key` (no end) or in `[key, end)`; an end of `[0]` means "every key from `key`".
    static func contains(_ candidate: [UInt8], key: [UInt8], end: [UInt8]?) -> Bool {
        guard let end else { return candidate == key }
        guard !candidate.lexicographicallyPrecedes(key) else { return false }
        return end == [0] || candidate.lexicographicallyPrecedes(end)
    }

    /// The key just after every key that starts with `prefix`, as etcd's `range_end`.
    static func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
        var bytes = prefix
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return bytes
            }
            bytes.removeLast()
        }
        return [0]
    }

    private static func v2Key(_ path: String) -> String { path.hasPrefix("/") ? path : "/" + path }
}
