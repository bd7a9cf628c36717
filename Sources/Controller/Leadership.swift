import EtcdClient
import Foundation
import TopologyStore

/// The leader lease: `/marina/v1/leader` holds this controller's name while its lease lives.
/// Every journal write compares the key's value, so a controller that lost the lease (a
/// partition, a pause longer than the TTL) cannot write anything once another one leads.
public actor Leadership {
    let etcd: EtcdClient
    let key: String
    public let id: String
    let ttl: Int64
    private var lease: Int64 = 0
    private var value: [UInt8] = []

    public init(etcd: EtcdClient, keys: StoreKeys, id: String, ttl: Int) {
        self.etcd = etcd
        self.key = keys.leader
        self.id = id
        self.ttl = Int64(ttl)
    }

    public var isLeader: Bool { lease != 0 }

    /// The condition every write of the leader carries.
    public var compare: Compare { Compare(key: key, .equal, .value(value)) }

    /// Tries once to become the leader; true if this controller leads now.
    public func campaign() async throws -> Bool {
        if lease != 0 { return true }
        let granted = try await etcd.grantLease(ttl: ttl).id
        let stamp = Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        let candidate = Array(#"{"id":"\#(id)","lease":\#(granted),"since":"\#(stamp)"}"#.utf8)
        let result = try await etcd.transaction(Transaction(compares: [.absent(key)], success: [.put(key, candidate, lease: granted)]))
        guard result.succeeded else {
            _ = try? await etcd.revokeLease(granted)
            return false
        }
        lease = granted
        value = candidate
        return true
    }

    /// Renews the lease; false (and no longer leader) if it expired.
    public func keepAlive() async throws -> Bool {
        guard lease != 0 else { return false }
        if try await etcd.keepAlive(lease) != nil { return true }
        lease = 0
        value = []
        return false
    }

    /// Gives the lease up, so that another controller takes over at once.
    public func resign() async {
        guard lease != 0 else { return }
        _ = try? await etcd.revokeLease(lease)
        lease = 0
        value = []
    }

    /// Forgets the lease after a write found the leader key changed.
    func lost() {
        lease = 0
        value = []
    }
}
