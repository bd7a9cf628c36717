import ArgumentParser
import Controller
import EtcdClient
import Foundation
import MarinaViews
import StoredRecords
import TopologyStore

/// `marina controller`: runs a controller (`run`, the default, so that `marina controller
/// --config F` keeps working), or shows them (`status`).
struct ControllerGroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller",
        abstract: "Run a controller (the default: `marina controller --config FILE`), or show which one leads (`status`).",
        subcommands: [ControllerCommand.self, ControllerStatusCommand.self], defaultSubcommand: ControllerCommand.self)
}

struct ControllerStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Which controller leads and its lease's time left; every running controller, and how long since it was last seen.",
        discussion: """
            Each controller rewrites its entry (controllers/<id>, under a lease of its own) every third of its lease_ttl; an \
            entry older than its lease is flagged stale (a frozen controller, or a clock that is off: ages are read with this \
            host's clock). A dead controller's entry vanishes when its lease expires. Exit 6 when no controller leads: \
            nothing takes operations, automatic depool or failover until one does.
            """)

    @Option(
        name: .customLong("controller-config"),
        help: "Reach etcd as this controller configuration says (its etcd: section and key root), instead of --etcd or --sandbox.")
    var config: String?
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await running {
            let etcd: EtcdClient
            let keys: StoreKeys
            if let config {
                guard let text = try? String(contentsOfFile: config, encoding: .utf8) else { throw UsageProblem("cannot read \(config)") }
                let configuration = try ControllerConfiguration.parse(text, file: config)
                etcd = EtcdClient(try configuration.etcd.clientConfiguration())
                keys = StoreKeys(root: configuration.etcd.keyRoot)
            } else {
                etcd = EtcdClient(try store.configuration())
                keys = try store.keys
            }
            let status = try await ControllerStatus.read(etcd: etcd, keys: keys, now: Date())
            if store.json {
                try printJSON(status)
            } else {
                print(status.rendered)
            }
            if status.leader == nil { throw Exit.attention }
        }
    }
}

/// What `marina controller status` shows.
struct ControllerStatus: Encodable {
    struct Leader: Encodable {
        var id: String
        var since: String?
        var lease: Int64
        /// Seconds etcd says the lease has left; nil once it has expired.
        var leaseRemaining: Int64?
        /// The lease's TTL.
        var leaseGranted: Int64?

        enum CodingKeys: String, CodingKey {
            case id, since, lease
            case leaseRemaining = "lease_remaining"
            case leaseGranted = "lease_granted"
        }
    }

    struct Entry: Encodable {
        var registration: ControllerRegistration
        var ageSeconds: Double
        var stale: Bool
        /// The leader key names it.
        var isLeader: Bool

        enum CodingKeys: String, CodingKey {
            case registration
            case ageSeconds = "age_seconds"
            case stale
            case isLeader = "is_leader"
        }
    }

    var leader: Leader?
    var controllers: [Entry]
    /// Entries under `controllers/` that cannot be read, with the problem.
    var unreadable: [String]

    static func read(etcd: EtcdClient, keys: StoreKeys, now: Date) async throws -> ControllerStatus {
        struct LeaderKey: Decodable {
            var id: String
            var lease: Int64
            var since: String?
        }
        let read = try await etcd.transaction(Transaction(compares: [], success: [.get(keys.leader), .get(keys.controllers, prefix: true)]))
        let ranges = read.results.compactMap { result -> RangeResult? in
            if case .get(let range) = result { return range }
            return nil
        }
        guard ranges.count == 2 else { throw EtcdError(.malformedResponse, "the status read returned \(ranges.count) ranges") }
        var leader: Leader?
        if let kv = ranges[0].kvs.first {
            guard let key = try? JSONDecoder().decode(LeaderKey.self, from: Data(kv.value)) else {
                throw UsageProblem("the leader key \(kv.key) cannot be read: \(String(decoding: kv.value.prefix(80), as: UTF8.self))")
            }
            let lease = try await etcd.leaseStatus(key.lease)
            leader = Leader(id: key.id, since: key.since, lease: key.lease, leaseRemaining: lease.remaining, leaseGranted: lease.granted)
        }
        var entries = [Entry]()
        var unreadable = [String]()
        for kv in ranges[1].kvs {
            do {
                let registration = try ControllerRegistration.decode(kv.value, key: kv.key)
                entries.append(
                    Entry(
                        registration: registration, ageSeconds: now.timeIntervalSince(registration.lastSeen), stale: registration.isStale(now: now),
                        isLeader: registration.id == leader?.id))
            } catch {
                unreadable.append("\(error)")
            }
        }
        return ControllerStatus(leader: leader, controllers: entries, unreadable: unreadable)
    }

    var rendered: String {
        var lines = [String]()
        if let leader {
            let left = leader.leaseRemaining.map { "\($0) s left of \(leader.leaseGranted ?? 0) s" } ?? "expired"
            lines.append("Leader: \(leader.id)\(leader.since.map { " since \($0)" } ?? ""), lease \(left)")
            if !controllers.contains(where: \.isLeader) {
                lines.append("  (the leader has no entry under controllers/: a controller of an older Marina?)")
            }
        } else {
            lines.append("No controller leads.")
        }
        if controllers.isEmpty {
            lines.append("No controller is registered.")
        } else {
            let rows = controllers.map { entry -> [String] in
                let r = entry.registration
                let leading =
                    entry.isLeader ? "yes" : r.leading ? "no (says it leads)" : "no"
                return [
                    r.id, r.host, String(r.pid), r.version, leading,
                    String(format: "%.1f s ago", max(0, entry.ageSeconds)) + (entry.stale ? " (STALE)" : ""), r.http ?? "-",
                    r.startedAt.formatted(.iso8601),
                ]
            }
            lines.append(Tables.table([["ID", "HOST", "PID", "VERSION", "LEADING", "LAST SEEN", "HTTP", "STARTED"]] + rows))
        }
        lines += unreadable.map { "unreadable: \($0)" }
        return lines.joined(separator: "\n")
    }
}
