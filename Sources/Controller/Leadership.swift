import EtcdClient
import Foundation
import Synchronization
import TopologyStore

/// The leader lease: `/marina/v1/leader` holds this controller's name while its lease lives.
///
/// Two guards keep a controller that lost the lease from acting:
/// - every journal write compares the key's value in etcd, so once another controller leads,
///   nothing this one writes lands;
/// - the `fence`, a local deadline on the monotonic clock, is checked before every statement
///   sent to a host and every journal write. It is the time the last successful keep-alive was
///   *sent*, plus the TTL, minus a margin: etcd counts the TTL from when it *received* that
///   keep-alive, so the fence always closes before etcd can expire the lease and let another
///   controller lead. A controller paused (SIGSTOP, a frozen VM) past its lease resumes with its
///   fence closed and stops without touching anything.
public actor Leadership {
    let etcd: any CoordinationStore
    let key: String
    public let id: String
    let ttl: Int64
    /// Checked before every statement and journal write; shared with the hosts' connections.
    public nonisolated let fence: LeaseFence
    private var lease: Int64 = 0
    private var value: [UInt8] = []

    public init(etcd: any CoordinationStore, keys: StoreKeys, id: String, ttl: Int, clock: MonotonicTime = .system) {
        self.etcd = etcd
        self.key = keys.leader
        self.id = id
        self.ttl = Int64(ttl)
        self.fence = LeaseFence(margin: LeaseFence.margin(ttl: Double(ttl)), clock: clock)
    }

    /// Holds a lease whose fence is still open.
    public var isLeader: Bool { lease != 0 && fence.isOpen }

    /// Holds a lease, whether or not its fence is open (a keep-alive may reopen it).
    public var holdsLease: Bool { lease != 0 }
    /// The leader lease's id (0 when this controller holds none): keys put under it vanish
    /// with the lead.
    public var leaseID: Int64 { lease }

    /// The condition every write of the leader carries.
    public var compare: Compare { Compare(key: key, .equal, .value(value)) }

    /// Tries once to become the leader; true if this controller leads now.
    public func campaign() async throws -> Bool {
        // A lease held with its fence closed is the keep-alive's to renew (reopening the fence)
        // or to find expired (forgetting it); campaigning meanwhile would only collide with it.
        if lease != 0 { return isLeader }
        let sent = fence.clock.now()
        let granted = try await etcd.grantLease(ttl: ttl)
        let stamp = Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        let candidate = Array(#"{"id":"\#(id)","lease":\#(granted.id),"since":"\#(stamp)"}"#.utf8)
        let result = try await etcd.transaction(Transaction(compares: [.absent(key)], success: [.put(key, candidate, lease: granted.id)]))
        guard result.succeeded else {
            _ = try? await etcd.revokeLease(granted.id)
            return false
        }
        lease = granted.id
        value = candidate
        fence.extend(sentAt: sent, ttl: Double(granted.ttl))
        return true
    }

    /// Renews the lease; false (and no longer leader) if it expired.
    public func keepAlive() async throws -> Bool {
        guard lease != 0 else { return false }
        let sent = fence.clock.now()
        guard let remaining = try await etcd.keepAlive(lease) else {
            forget()
            return false
        }
        // etcd renewed the lease when it received this keep-alive, after `sent`: nobody else
        // can have led meanwhile, so the fence reopens from `sent` even if it had closed (a slow
        // etcd); operations it stopped are resumed by the leader's recovery.
        fence.extend(sentAt: sent, ttl: Double(remaining))
        return true
    }

    /// Gives the lease up, so that another controller takes over at once.
    public func resign() async {
        guard lease != 0 else { return }
        let lease = self.lease
        forget()
        _ = try? await etcd.revokeLease(lease)
    }

    /// Forgets the lease after a write found the leader key changed.
    func lost() { forget() }

    private func forget() {
        lease = 0
        value = []
        fence.close()
    }
}

/// The monotonic clock the fence reads: the system's, or a test's, which moves only when told.
public struct MonotonicTime: Sendable {
    /// Time since an arbitrary, fixed start.
    public let now: @Sendable () -> Duration

    public init(_ now: @escaping @Sendable () -> Duration) { self.now = now }

    public static let system: MonotonicTime = {
        let start = ContinuousClock.now
        return MonotonicTime { ContinuousClock.now - start }
    }()
}

/// A local deadline on the monotonic clock, past which the controller must not act. Sendable
/// and synchronous, so that the check runs on a connection's own thread right before a
/// statement is sent.
public final class LeaseFence: Sendable {
    private let deadline = Mutex<Duration?>(nil)
    /// Seconds taken off the TTL: room for the keep-alive's own travel and for clock rates.
    public let margin: Double
    public let clock: MonotonicTime

    public init(margin: Double, clock: MonotonicTime = .system) {
        self.margin = margin
        self.clock = clock
    }

    /// A fifth of the TTL, at least half a second, at most half the TTL.
    public static func margin(ttl: Double) -> Double { min(max(ttl / 5, 0.5), ttl / 2) }

    /// Opens or moves the deadline to `sentAt + ttl - margin` (`sentAt` read from `clock`), never backwards.
    func extend(sentAt: Duration, ttl: Double) {
        let candidate = sentAt + .milliseconds(Int((ttl - margin) * 1000))
        deadline.withLock { current in
            if current.map({ $0 < candidate }) ?? true { current = candidate }
        }
    }

    func close() { deadline.withLock { $0 = nil } }

    public var isOpen: Bool {
        let now = clock.now()
        return deadline.withLock { $0.map { now < $0 } ?? false }
    }

    /// Seconds left before the fence closes (0 when closed).
    public var remaining: Double {
        let now = clock.now()
        return deadline.withLock { deadline in
            guard let deadline else { return 0 }
            let left = deadline - now
            return max(0, Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18)
        }
    }

    /// Throws `ControllerError.notLeader` once the deadline has passed: stop, touch nothing.
    public func check() throws {
        guard isOpen else { throw ControllerError.notLeader }
    }
}
