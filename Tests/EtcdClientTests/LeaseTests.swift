import EtcdClient
import MarinaTestSupport
import Testing

@Suite("EtcdClient leases against a real etcd")
struct LeaseTests {
    @Test("a lease that is not kept alive expires and takes its keys with it")
    func expiryRemovesKeys() async throws {
        let etcd = try await TestServers.shared().etcdClient
        let key = uniquePrefix("lease-expiry") + "observed"
        // A TTL long enough that a loaded machine reads the key back before it expires.
        let lease = try await etcd.grantLease(ttl: 5)
        #expect(lease.ttl == 5)
        try await etcd.put(key, "alive", lease: lease.id)
        #expect(try await etcd.value(key)?.lease == lease.id)
        #expect(try await etcd.leaseStatus(lease.id).keys == [key])

        // etcd expires leases on its own clock; poll rather than assume a duration.
        var gone = false
        for _ in 0..<300 where !gone {
            try await Task.sleep(for: .milliseconds(100))
            gone = try await etcd.value(key) == nil
        }
        #expect(gone)
        #expect(try await etcd.leaseStatus(lease.id).remaining == nil)
        #expect(try await etcd.keepAlive(lease.id) == nil)
    }

    @Test("keep-alives hold the keys past the TTL; revoke deletes them at once")
    func keepAliveAndRevoke() async throws {
        let etcd = try await TestServers.shared().etcdClient
        let key = uniquePrefix("lease-keepalive") + "observed"
        let lease = try await etcd.grantLease(ttl: 5)
        try await etcd.put(key, "alive", lease: lease.id)
        // Three times the TTL, renewing every second. A sleep: time passing past the TTL is what is tested.
        for _ in 0..<15 {
            try await Task.sleep(for: .seconds(1))
            let ttl = try await etcd.keepAlive(lease.id)
            #expect(ttl == 5)
        }
        #expect(try await etcd.value(key)?.stringValue == "alive")
        #expect(try await etcd.revokeLease(lease.id))
        #expect(try await etcd.value(key) == nil)
        #expect(try await etcd.revokeLease(lease.id) == false)
    }
}
