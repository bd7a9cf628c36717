import Observation
import Topology

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// How bad a finding is. Sorted most severe first.
public enum Severity: String, Codable, Sendable, Comparable, CaseIterable {
    /// Writes can be lost or blocked now.
    case critical
    /// Something is broken that an operation or an application will trip on.
    case error
    /// Not as configured, but nothing breaks yet.
    case warning
    /// Not drift: what a DBA should know while reading the findings (a staged change not
    /// committed yet, an operation running). `marina drift` exits 0 when only these remain.
    case info

    /// Whether a finding of this severity is drift (everything but `info`).
    public var isDrift: Bool { self != .info }

    public static func < (lhs: Severity, rhs: Severity) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// One difference between what the source of truth says and what the agents see.
public struct DriftFinding: Codable, Sendable, Equatable, Hashable {
    public var code: DriftCode
    public var severity: Severity
    public var section: String?
    public var instance: String?
    public var expected: String
    public var observed: String

    public init(_ code: DriftCode, section: String?, instance: String?, expected: String, observed: String) {
        self.code = code
        self.severity = code.severity
        self.section = section
        self.instance = instance
        self.expected = expected
        self.observed = observed
    }
}

/// Everything a drift computation looks at, read once: the source of truth, the observations,
/// the uncommitted changes, the section locks, the mirror, the clock and the thresholds.
public struct DriftSnapshot: Sendable {
    /// The **committed** topology: what applications and operations act on. Staged changes
    /// are not judged; they are listed in `uncommitted`.
    public var topology: Topology
    public var observations: [String: Observation]
    /// Staged versus committed generated configuration (informational).
    public var uncommitted: [ConfigChange]
    public var now: Date
    /// A pooled replica lagging more than this many seconds is drift.
    public var maxLag: Double
    /// A primary whose own newest heartbeat row is older than this many seconds is drift.
    public var heartbeatStaleAfter: Double
    /// An observation whose `observed_at` is more than this many seconds from `now` (in the
    /// past, or in the future) is drift: agents republish at least every refresh interval.
    public var observationStaleAfter: Double
    /// Automatic actions the controller's guard rails stopped, as kept in etcd.
    public var refusals: [AutomaticRefusal] = []
    /// Section → id of the operation holding its lock.
    public var locks: [String: String] = [:]
    /// The site mirror beside what is committed; nil when no site mirror is set.
    public var mirror: MirrorReading?
    /// Section → what the leading controller found about its primary when it could not reach
    /// it over SQL while a replica still replicated from it.
    public var controllerCannotReach: [String: ControllerView] = [:]
    /// Instance → what the leader's grant watch last found of its managed accounts (`observed-grants/`).
    public var grants: [String: ObservedGrants] = [:]

    public init(
        topology: Topology, observations: [String: Observation], uncommitted: [ConfigChange] = [], now: Date,
        maxLag: Double = 5, heartbeatStaleAfter: Double = 10, observationStaleAfter: Double = 60
    ) {
        self.topology = topology
        self.observations = observations
        self.uncommitted = uncommitted
        self.now = now
        self.maxLag = maxLag
        self.heartbeatStaleAfter = heartbeatStaleAfter
        self.observationStaleAfter = observationStaleAfter
    }
}

/// The mirror applications read (etcd v2, MediaWiki's), beside the committed configuration.
public struct MirrorReading: Sendable, Equatable {
    /// Where it is, for messages (`/v2/keys/<prefix>`).
    public var location: String
    /// The committed generated configuration, per datacenter (`generated/<dc>`).
    public var committed: [String: GeneratedConfig]
    /// What the mirror holds per datacenter; a datacenter without a value is absent.
    public var mirrored: [String: MirroredValue]
    /// Why the mirror could not be read at all.
    public var readError: String?

    public init(location: String, committed: [String: GeneratedConfig], mirrored: [String: MirroredValue], readError: String? = nil) {
        self.location = location
        self.committed = committed
        self.mirrored = mirrored
        self.readError = readError
    }
}

/// One datacenter's mirrored value: a configuration, or a value that is not one.
public enum MirroredValue: Sendable, Equatable {
    case config(GeneratedConfig)
    case unreadable(String)
}

/// An automatic depool or repool a guard rail stopped (`/marina/v1/policy/state`).
public struct AutomaticRefusal: Sendable, Equatable {
    public var instance: String
    public var section: String
    public var action: String
    public var reason: String
    public var since: Date

    public init(instance: String, section: String, action: String, reason: String, since: Date) {
        self.instance = instance
        self.section = section
        self.action = action
        self.reason = reason
        self.since = since
    }
}

/// One row of the detection table: a code, and the pure predicate that finds it.
public struct Detection: Sendable {
    public var code: DriftCode
    public var detect: @Sendable (DriftContext) -> [DriftFinding]
}

public enum Drift {
    /// Every finding in the snapshot, most severe first, then by section, instance and code.
    public static func findings(_ snapshot: DriftSnapshot, section: String? = nil) -> [DriftFinding] {
        let context = DriftContext(snapshot)
        var findings = [DriftFinding]()
        for detection in detections { findings += detection.detect(context) }
        if let section { findings = findings.filter { $0.section == section } }
        return findings.sorted {
            ($0.severity, $0.section ?? "", $0.instance ?? "", $0.code.rawValue) < (
                $1.severity, $1.section ?? "", $1.instance ?? "", $1.code.rawValue
            )
        }
    }
}

/// The snapshot with the lookups the predicates share, computed once (10,000 instances in
/// 500 sections stay well under 100 ms).
/// The leading controller's own view of a section's primary, when it differs from the agents'.
public struct ControllerView: Sendable, Equatable {
    public var primary: String
    public var reason: String
    public var since: Date
    public var controller: String

    public init(primary: String, reason: String, since: Date, controller: String) {
        self.primary = primary
        self.reason = reason
        self.since = since
        self.controller = controller
    }
}

public struct DriftContext: Sendable {
    public let snapshot: DriftSnapshot
    /// Initialized sections, each with its primary and members in the section's datacenter.
    public let sections: [(section: Section, primary: Instance, members: [(instance: Instance, membership: Membership)])]
    let addresses: [String: String]
    /// Observed server id → instance name (instances of the source of truth only).
    let byServerID: [Int: String]

    init(_ snapshot: DriftSnapshot) {
        self.snapshot = snapshot
        var members = [String: [(instance: Instance, membership: Membership)]]()
        for instance in snapshot.topology.instances.values.sorted(by: { $0.name < $1.name }) {
            for (section, membership) in instance.sections { members[section, default: []].append((instance, membership)) }
        }
        sections = snapshot.topology.sections.values.sorted { $0.name < $1.name }.compactMap { section in
            guard section.isInitialized, let primary = snapshot.topology.instances[section.primary] else { return nil }
            return (section, primary, members[section.name] ?? [])
        }
        addresses = Dictionary(snapshot.topology.instances.values.map { ("\($0.host):\($0.port)", $0.name) }, uniquingKeysWith: { a, _ in a })
        byServerID = Dictionary(
            snapshot.observations.compactMap { name, observation in
                observation.serverID.flatMap { snapshot.topology.instances[name] == nil ? nil : ($0, name) }
            }, uniquingKeysWith: { a, b in min(a, b) })
    }

    /// The instance a replication channel points at (by server id when known, else address).
    func source(of channel: ReplicationChannel) -> String {
        if let id = channel.sourceServerID, let match = byServerID[id] { return match }
        return addresses["\(channel.sourceHost):\(channel.sourcePort)"] ?? "\(channel.sourceHost):\(channel.sourcePort)"
    }

    /// Reachable observations of a section's replicas.
    func replicas(_ entry: (section: Section, primary: Instance, members: [(instance: Instance, membership: Membership)]))
        -> [(instance: Instance, membership: Membership, observation: Observation)]
    {
        entry.members.compactMap { member in
            guard member.instance.name != entry.primary.name, let observation = snapshot.observations[member.instance.name],
                observation.reachable
            else { return nil }
            return (member.instance, member.membership, observation)
        }
    }
}
