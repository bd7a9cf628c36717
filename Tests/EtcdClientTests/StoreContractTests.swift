import EtcdClient
import MarinaTestSupport
import MarinaTwins
import Testing

/// The `KeyValueStore` contract, checked on both implementations: the real etcd (through
/// `EtcdClient`) and the in-memory twin the decision tests run on. A behaviour the twin gets
/// wrong here would make every decision test built on it lie.
@Suite("the store contract holds for etcd and for its in-memory twin")
struct StoreContractTests {
    enum Implementation: String, CustomTestStringConvertible, CaseIterable {
        case etcd, memory
        var testDescription: String { rawValue }

        func store() async throws -> any KeyValueStore {
            switch self {
            case .etcd: try await TestServers.shared().etcdClient
            case .memory: MemoryStore()
            }
        }
    }

    // The shared etcd has other writers: revisions are compared with what this test wrote, not counted.
    @Test(
        "a transaction writes at one revision, later than any read before it, and old revisions still read as they were",
        arguments: Implementation.allCases)
    func oneRevisionPerTransaction(_ implementation: Implementation) async throws {
        let store = try await implementation.store()
        let prefix = uniquePrefix("contract-revision")
        let before = try await store.get(prefix, prefix: true).revision
        let result = try await store.transaction(Transaction(compares: [], success: [.put(prefix + "a", "1"), .put(prefix + "b", "2")]))
        #expect(result.succeeded)
        #expect(result.revision > before)
        let read = try await store.get(prefix, prefix: true)
        #expect(read.kvs.map(\.key) == [prefix + "a", prefix + "b"])
        #expect(read.kvs.map(\.modRevision) == [result.revision, result.revision])
        #expect(read.kvs.map(\.version) == [1, 1])
        #expect(read.revision >= result.revision)
        // The old revision still reads as it was.
        #expect(try await store.get(prefix, prefix: true, revision: before).kvs.isEmpty)
    }

    @Test(
        "a compare that does not hold is a value: the failure branch runs, nothing of the success branch applies",
        arguments: Implementation.allCases)
    func lostCompareIsAValue(_ implementation: Implementation) async throws {
        let store = try await implementation.store()
        let key = uniquePrefix("contract-cas") + "lock"
        try await store.put(key, "first")
        let result = try await store.transaction(
            Transaction(
                compares: [.absent(key)], success: [.put(key, "second"), .put(key + "-other", "x")], failure: [.get(key)]))
        #expect(!result.succeeded)
        guard case .get(let range) = result.results.first else {
            Issue.record("no read in the failure branch")
            return
        }
        #expect(range.kvs.first?.stringValue == "first")
        #expect(try await store.value(key)?.stringValue == "first")
        #expect(try await store.value(key + "-other") == nil)

        let swapped = try await store.transaction(
            Transaction(
                compares: [Compare(key: key, .equal, .value(Array("first".utf8)))], success: [.put(key, "second")]))
        #expect(swapped.succeeded)
        #expect(try await store.value(key)?.stringValue == "second")
        #expect(try await store.value(key)?.version == 2)
    }

    @Test(
        "compares over a prefix: an empty range holds, a write inside it after a read breaks 'unchanged since'",
        arguments: Implementation.allCases)
    func rangeCompares(_ implementation: Implementation) async throws {
        let store = try await implementation.store()
        let prefix = uniquePrefix("contract-range")
        try await store.put(String(prefix.dropLast()) + "0-outside", "x")
        func holds(_ compare: Compare) async throws -> Bool {
            try await store.transaction(Transaction(compares: [compare], success: [])).succeeded
        }
        #expect(try await holds(.noKey(withPrefix: prefix)))
        try await store.put(prefix + "k", "1")
        #expect(try await holds(.noKey(withPrefix: prefix)) == false)
        let read = try await store.get(prefix, prefix: true)
        #expect(try await holds(.unchanged(prefix: prefix, since: read.revision)))
        try await store.put(String(prefix.dropLast()) + "0-outside", "y")
        #expect(try await holds(.unchanged(prefix: prefix, since: read.revision)))
        try await store.put(prefix + "k", "2")
        #expect(try await holds(.unchanged(prefix: prefix, since: read.revision)) == false)

        // An empty range compares as one key that does not exist: revisions 0, no value.
        let empty = uniquePrefix("contract-empty")
        #expect(try await holds(.prefix(empty, .greater, .createRevision(0))) == false)
        #expect(try await holds(.prefix(empty, .notEqual, .version(0))) == false)
        #expect(try await holds(.prefix(empty, .less, .modRevision(1))))
        #expect(try await holds(.prefix(empty, .equal, .value(Array("x".utf8)))) == false)
        #expect(try await holds(.prefix(empty, .notEqual, .value(Array("x".utf8)))) == false)
    }

    @Test(
        "a key written with a lease goes with it; a revoked lease cannot be renewed; a put on it is refused",
        arguments: Implementation.allCases)
    func leases(_ implementation: Implementation) async throws {
        let store = try await implementation.store()
        let key = uniquePrefix("contract-lease") + "leader"
        let lease = try await store.grantLease(ttl: 30)
        try await store.put(key, "me", lease: lease.id)
        #expect(try await store.value(key)?.lease == lease.id)
        #expect(try await store.keepAlive(lease.id) != nil)
        #expect(try await store.revokeLease(lease.id))
        #expect(try await store.value(key) == nil)
        #expect(try await store.keepAlive(lease.id) == nil)
        #expect(try await store.revokeLease(lease.id) == false)
        await #expect(throws: EtcdError.self) { try await store.put(key, "again", lease: lease.id) }
        #expect(try await store.value(key) == nil)
    }

    @Test("a watch from a revision delivers every change after it, in order, deletes included", arguments: Implementation.allCases)
    func watchFromRevision(_ implementation: Implementation) async throws {
        let store = try await implementation.store()
        let prefix = uniquePrefix("contract-watch")
        let start = try await store.put(prefix + "a", "1")
        try await store.put(prefix + "b", "2")
        try await store.delete(prefix + "a")
        try await store.put(String(prefix.dropLast()) + "0-outside", "x")
        let last = try await store.put(prefix + "b", "3")
        var seen = [String]()
        var revisions = [Int64]()
        for try await response in store.watchChanges(prefix, prefix: true, startRevision: start) {
            for event in response.events {
                seen.append("\(event.kind == .put ? "put" : "delete") \(event.kv.key.dropFirst(prefix.count)) \(event.kv.stringValue)")
                revisions.append(event.kv.modRevision)
            }
            if response.events.last?.kv.modRevision == last { break }
        }
        #expect(seen == ["put a 1", "put b 2", "delete a ", "put b 3"])
        #expect(revisions.first == start && revisions.last == last && revisions == revisions.sorted() && Set(revisions).count == 4)
    }
}

@Suite("the in-memory store's own controls")
struct MemoryStoreControlTests {
    @Test("a lease expires one TTL after its last keep-alive on the manual clock, deleting its keys in one revision")
    func leaseExpiry() async throws {
        let clock = ManualClock()
        let store = MemoryStore(clock: clock)
        let lease = try await store.grantLease(ttl: 5)
        _ = try await store.transaction(Transaction(compares: [], success: [.put("/a", "1", lease: lease.id), .put("/b", "2", lease: lease.id)]))
        let before = store.revision
        clock.advance(seconds: 4)
        #expect(try await store.keepAlive(lease.id) == 5)
        clock.advance(seconds: 4.9)
        #expect(try await store.value("/a") != nil)
        clock.advance(seconds: 0.1)
        #expect(try await store.value("/a") == nil)
        #expect(try await store.value("/b") == nil)
        #expect(store.revision == before + 1)
        #expect(try await store.keepAlive(lease.id) == nil)
    }

    @Test("injected failures: unreachable applies nothing; a lost answer applies the write and says the outcome is unknown")
    func failures() async throws {
        let store = MemoryStore()
        store.fail(.unreachable, count: 1)
        await #expect(throws: EtcdError.self) { try await store.put("/k", "1") }
        #expect(try await store.value("/k") == nil)
        store.fail(.answerLost, count: 1)
        do {
            try await store.put("/k", "2")
            Issue.record("the lost answer was not reported")
        } catch let error as EtcdError {
            guard case .outcomeUnknown = error.kind else {
                Issue.record("wrong kind: \(error)")
                return
            }
        }
        #expect(try await store.value("/k")?.stringValue == "2")
    }
}
