import EtcdClient
import MarinaSandbox
import MarinaTestSupport
import Testing

@Suite("EtcdClient compares over a range of keys, against a real etcd")
struct RangeCompareTests {
    @Test("no key in a prefix: holds on an empty range whatever lies outside it, fails once a key is inside")
    func noKeyInPrefix() async throws {
        let etcd = try await TestServers.shared().etcdClient
        let prefix = uniquePrefix("range-absent")
        try await etcd.put(prefix.dropLast() + "0-outside", "x")  // sorts just after the range
        let marker = prefix.dropLast() + "0-marker"

        let empty = try await etcd.transaction(Transaction(compares: [.noKey(withPrefix: prefix)], success: [.put(String(marker), "1")]))
        #expect(empty.succeeded)

        try await etcd.put(prefix + "s2", "operation-1")
        let taken = try await etcd.transaction(Transaction(compares: [.noKey(withPrefix: prefix)], success: [.put(String(marker), "2")]))
        #expect(!taken.succeeded)
        #expect(try await etcd.value(String(marker))?.stringValue == "1")

        // An explicit range end: [a, c) holds no key while only c exists.
        _ = try await etcd.delete(prefix, prefix: true)
        try await etcd.put(prefix + "c", "x")
        let bounded = try await etcd.transaction(
            Transaction(
                compares: [Compare(key: prefix + "a", rangeEnd: Array((prefix + "c").utf8), .equal, .version(0))], success: []))
        #expect(bounded.succeeded)
        let including = try await etcd.transaction(
            Transaction(
                compares: [Compare(key: prefix + "a", rangeEnd: Array((prefix + "d").utf8), .equal, .version(0))], success: []))
        #expect(!including.succeeded)
    }

    @Test("a prefix unchanged since a read: holds until a key in it is created or written, not for writes outside it")
    func prefixUnchangedSinceRead() async throws {
        let etcd = try await TestServers.shared().etcdClient
        let prefix = uniquePrefix("range-unchanged")
        let outside = String(prefix.dropLast() + "0-outside")
        try await etcd.put(prefix + "s1", "operation-1")
        let read = try await etcd.get(prefix, prefix: true)
        #expect(read.kvs.count == 1)

        try await etcd.put(outside, "written after the read, outside the range")
        let quiet = try await etcd.transaction(Transaction(compares: [.unchanged(prefix: prefix, since: read.revision)], success: []))
        #expect(quiet.succeeded)

        try await etcd.put(prefix + "s2", "operation-2")  // a key appears in the range
        let appeared = try await etcd.transaction(Transaction(compares: [.unchanged(prefix: prefix, since: read.revision)], success: []))
        #expect(!appeared.succeeded)

        let reread = try await etcd.get(prefix, prefix: true)
        try await etcd.put(prefix + "s1", "operation-3")  // a key in the range is written again
        let rewritten = try await etcd.transaction(Transaction(compares: [.unchanged(prefix: prefix, since: reread.revision)], success: []))
        #expect(!rewritten.succeeded)
    }
}
