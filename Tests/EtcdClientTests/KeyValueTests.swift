import EtcdClient
import MarinaSandbox
import MarinaTestSupport
import Testing

@Suite("EtcdClient key-value and transactions against a real etcd")
struct KeyValueTests {
    @Test("put, get one key and a prefix, with revisions")
    func putGetPrefix() async throws {
        let etcd = try await TestServers.shared().etcdClient
        let prefix = uniquePrefix("kv")
        let first = try await etcd.put(prefix + "a", "1")
        let second = try await etcd.put(prefix + "b", "2")
        let third = try await etcd.put(prefix + "a", "3")
        #expect(first < second && second < third)
        try await etcd.put(prefix.dropLast() + "0-outside", "x")  // sorts after the prefix range: must not match

        let a = try #require(try await etcd.value(prefix + "a"))
        #expect(a.stringValue == "3")
        #expect(a.createRevision == first)
        #expect(a.modRevision == third)
        #expect(a.version == 2)

        let range = try await etcd.get(prefix, prefix: true)
        #expect(range.kvs.map(\.key) == [prefix + "a", prefix + "b"])
        #expect(range.kvs.map(\.stringValue) == ["3", "2"])
        #expect(range.count == 2)
        #expect(range.revision >= third)

        let old = try await etcd.get(prefix + "a", revision: first)
        #expect(old.kvs.first?.stringValue == "1")
        #expect(try await etcd.value(prefix + "missing") == nil)

        #expect(try await etcd.delete(prefix, prefix: true) == 2)
        #expect(try await etcd.get(prefix, prefix: true).kvs.isEmpty)
    }

    @Test("values are bytes: binary and UTF-8 round-trip")
    func binaryValues() async throws {
        let etcd = try await TestServers.shared().etcdClient
        let key = uniquePrefix("bin") + "ключ/🔑"
        let bytes: [UInt8] = [0, 1, 2, 0xFF, 0xFE, 10, 13, 0x22, 0x5C]
        try await etcd.put(key, bytes)
        #expect(try await etcd.value(key)?.value == bytes)
    }

    @Test("a transaction that loses its compare is a value, runs the failure branch and writes nothing")
    func lostCompare() async throws {
        let etcd = try await TestServers.shared().etcdClient
        let key = uniquePrefix("txn") + "section"
        let created = try await etcd.put(key, "v1")
        // A concurrent writer moves the key on.
        try await etcd.put(key, "v2")

        let result = try await etcd.transaction(
            Transaction(
                compares: [.unchanged(key, since: created)],
                success: [.put(key, "mine"), .put(key + "-other", "mine")],
                failure: [.get(key)]))
        #expect(!result.succeeded)
        guard case .get(let current)? = result.results.first else {
            Issue.record("the failure branch's read is missing: \(result.results)")
            return
        }
        #expect(current.kvs.first?.stringValue == "v2")
        #expect(try await etcd.value(key)?.stringValue == "v2")
        #expect(try await etcd.value(key + "-other") == nil)
    }

    @Test("a transaction whose compares hold applies every write at one revision")
    func wonCompare() async throws {
        let etcd = try await TestServers.shared().etcdClient
        let prefix = uniquePrefix("txn-win")
        let read = try await etcd.put(prefix + "a", "1")
        let result = try await etcd.transaction(
            Transaction(
                compares: [
                    .unchanged(prefix + "a", since: read), .absent(prefix + "b"), Compare(key: prefix + "a", .equal, .value(Array("1".utf8))),
                ],
                success: [.put(prefix + "a", "2"), .put(prefix + "b", "2"), .delete(prefix + "c")]))
        #expect(result.succeeded)
        #expect(result.results.count == 3)
        let a = try #require(try await etcd.value(prefix + "a"))
        let b = try #require(try await etcd.value(prefix + "b"))
        #expect(a.stringValue == "2" && b.stringValue == "2")
        #expect(a.modRevision == result.revision && b.modRevision == result.revision)

        // Compare by version and create revision too.
        let again = try await etcd.transaction(
            Transaction(
                compares: [Compare(key: prefix + "a", .equal, .version(2)), Compare(key: prefix + "b", .greater, .createRevision(read))],
                success: [.get(prefix, prefix: true)]))
        #expect(again.succeeded)
    }

    @Test("server errors keep etcd's gRPC code and message")
    func serverError() async throws {
        let etcd = try await TestServers.shared().etcdClient
        let error = try await #require(throws: EtcdError.self) { try await etcd.put("", "x") }
        #expect(error.grpcCode == GRPCCode.invalidArgument)
        #expect(error.message.contains("key is not provided"))
        #expect(!error.isUnavailable)
    }

    @Test("a dead endpoint fails over to a live one; all dead is 'unavailable' naming each")
    func endpointFailover() async throws {
        let sandbox = try await TestServers.shared()
        let deadPort = try Ports.findFreeBlock(count: 1)
        let dead = "http://127.0.0.1:\(deadPort)"
        let etcd = EtcdClient(EtcdConfiguration(endpoints: [dead, sandbox.etcd.url], connectTimeout: 1))
        let key = uniquePrefix("failover") + "k"
        try await etcd.put(key, "through the live one")
        #expect(try await etcd.value(key)?.stringValue == "through the live one")

        let allDead = EtcdClient(EtcdConfiguration(endpoints: [dead, "http://127.0.0.1:\(deadPort + 1)"], connectTimeout: 1))
        let error = try await #require(throws: EtcdError.self) { try await allDead.value(key) }
        #expect(error.isUnavailable)
        guard case .unavailable(let attempts) = error.kind else {
            Issue.record("expected unavailable, got \(error)")
            return
        }
        #expect(attempts.count == 2)
        #expect(attempts[0].hasPrefix(dead))
    }
}
