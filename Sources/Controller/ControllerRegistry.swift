import EtcdClient
import Foundation
import Logging
import StoredRecords
import TopologyStore

/// What a running controller says about itself at `controllers/<id>`, under a lease of its
/// own (so that a dead controller's entry vanishes one lease after its last keep-alive),
/// rewritten at every keep-alive: what `marina controller status` lists.
public struct ControllerRegistration: Codable, Sendable, Equatable {
    public var schema = 1
    public var id: String
    public var host: String
    public var pid: Int32
    /// Marina's version.
    public var version: String
    public var startedAt: Date
    /// When it last wrote this entry (its own clock).
    public var lastSeen: Date
    /// Its HTTP listener (`http.listen`), if any.
    public var http: String?
    /// Whether it held the leader lease with its fence open when it wrote this.
    public var leading: Bool
    /// The seconds of its registration lease; it rewrites the entry every third of that.
    public var leaseTTL: Int

    public init(
        id: String, host: String, pid: Int32, version: String, startedAt: Date, lastSeen: Date, http: String?, leading: Bool, leaseTTL: Int
    ) {
        self.id = id
        self.host = host
        self.pid = pid
        self.version = version
        self.startedAt = startedAt
        self.lastSeen = lastSeen
        self.http = http
        self.leading = leading
        self.leaseTTL = leaseTTL
    }

    enum CodingKeys: String, CodingKey {
        case schema, id, host, pid, version
        case startedAt = "started_at"
        case lastSeen = "last_seen"
        case http, leading
        case leaseTTL = "lease_ttl"
    }

    /// Whether its entry is older than its lease: a controller that writes it no more (frozen,
    /// cut off from etcd while its lease lasts), or whose clock is off.
    public func isStale(now: Date) -> Bool { now.timeIntervalSince(lastSeen) > Double(leaseTTL) }

    public static func decode(_ bytes: [UInt8], key: String) throws -> ControllerRegistration {
        try StoredJSON.decode(ControllerRegistration.self, from: bytes, key: key, schema: 1)
    }
}

/// Keeps this controller's entry under `controllers/`: a lease of `ttl` seconds, renewed and
/// the entry rewritten every third of it. Its failures are logged, and change nothing else.
actor ControllerRegistry {
    let etcd: any KeyValueStore
    let key: String
    let ttl: Int
    let logger: Logger
    private var registration: ControllerRegistration
    private var lease: Int64 = 0
    private var failing = false

    init(etcd: any KeyValueStore, keys: StoreKeys, registration: ControllerRegistration, logger: Logger) {
        self.etcd = etcd
        self.key = keys.controller(registration.id)
        self.ttl = registration.leaseTTL
        self.registration = registration
        self.logger = logger
    }

    /// Until cancelled. A change of `leading()` is written at once (it is looked at four times
    /// a second), the entry otherwise every third of the lease.
    func run(leading: @Sendable () async -> Bool) async {
        let clock = ContinuousClock()
        let every = Duration.milliseconds(ttl * 1000 / 3)
        while !Task.isCancelled {
            let sent = clock.now
            do {
                let renewed = lease == 0 ? nil : try await etcd.keepAlive(lease)
                if renewed == nil { lease = try await etcd.grantLease(ttl: Int64(ttl)).id }
                registration.lastSeen = Date()
                registration.leading = await leading()
                _ = try await etcd.transaction(
                    Transaction(compares: [], success: [.put(key, try StoredJSON.encode(registration), lease: lease)]))
                if failing { logger.notice("controller registration: written again at \(key)") }
                failing = false
            } catch {
                if !failing { logger.warning("controller registration at \(key): \(error)") }
                failing = true
            }
            let leads = registration.leading
            while !Task.isCancelled, clock.now < sent + every, await leading() == leads {
                try? await Task.sleep(until: min(sent + every, clock.now + .milliseconds(250)), clock: clock)
            }
        }
    }

    /// Revokes the lease, deleting the entry at once.
    func deregister() async {
        guard lease != 0 else { return }
        _ = try? await etcd.revokeLease(lease)
        lease = 0
    }
}
