/// The version of every value Marina stores in etcd. A value with another version is refused.
public let schemaVersion = 1

/// Whether a section's loads go to `sectionLoads` (core databases) or `externalLoads`
/// (external storage, parser cache, x1), as in dbctl.
public enum Flavor: String, Codable, Sendable, CaseIterable {
    case regular, external
}

/// One replication tree, as the operators want it.
///
/// A section whose `primary` is empty is *uninitialized* (dbctl's `PLACEHOLDER`): it exists so
/// that instances can be configured in it, and it is left out of the generated configuration
/// until `set-primary` names its primary.
public struct Section: Codable, Sendable, Equatable {
    public var name: String
    /// The one writable instance; `""` while uninitialized.
    public var primary: String
    /// Where the primary is; the section appears in that datacenter's generated configuration.
    public var datacenter: String
    public var readOnly: Bool
    /// Why the section is read-only; required when `readOnly`.
    public var readOnlyReason: String
    /// Pooled replicas (weight 0 included, primary excluded) the section may never go below.
    public var minReplicas: Int
    public var flavor: Flavor
    /// Emit the primary only (parser cache, main stash).
    public var omitReplicas: Bool
    /// Accept a section with no pooled replica at all; otherwise that is an error.
    public var allowEmpty: Bool

    public init(
        name: String, primary: String = "", datacenter: String, readOnly: Bool = false, readOnlyReason: String = "",
        minReplicas: Int = 0, flavor: Flavor = .regular, omitReplicas: Bool = false, allowEmpty: Bool = false
    ) {
        self.name = name
        self.primary = primary
        self.datacenter = datacenter
        self.readOnly = readOnly
        self.readOnlyReason = readOnlyReason
        self.minReplicas = minReplicas
        self.flavor = flavor
        self.omitReplicas = omitReplicas
        self.allowEmpty = allowEmpty
    }

    public var isInitialized: Bool { !primary.isEmpty }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, primary, datacenter
        case readOnly = "readonly"
        case readOnlyReason = "ro_reason"
        case minReplicas = "min_replicas"
        case flavor
        case omitReplicas = "omit_replicas"
        case allowEmpty = "allow_empty"
    }
}

/// One `mariadbd`, as the operators want it.
public struct Instance: Codable, Sendable, Equatable {
    /// `db1085`, or `db1101:3317` for one of several instances on a host.
    public var name: String
    /// The IP address applications connect to.
    public var host: String
    public var port: Int
    public var datacenter: String
    /// Allowed to become primary.
    public var candidatePrimary: Bool
    public var note: String
    /// Its pooling in each section it belongs to.
    public var sections: [String: Membership]

    public init(
        name: String, host: String, port: Int = 3306, datacenter: String, candidatePrimary: Bool = false,
        note: String = "", sections: [String: Membership] = [:]
    ) {
        self.name = name
        self.host = host
        self.port = port
        self.datacenter = datacenter
        self.candidatePrimary = candidatePrimary
        self.note = note
        self.sections = sections
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, host, port, datacenter
        case candidatePrimary = "candidate_primary"
        case note, sections
    }
}

/// How an instance serves one section.
public struct Membership: Codable, Sendable, Equatable {
    public var pooled: Bool
    public var weight: Int
    /// 0-100: the share of `weight` applied, for gradual repooling.
    public var percentage: Int
    /// Query groups (`vslow`, `dump`, `api`, ...) with their own pooling and weight.
    public var groups: [String: GroupMembership]
    /// Set on a primary that a failover replaced while it was dead: it stays a member of the
    /// section, depooled, until it has rejoined as a replica of the new primary (or been
    /// rebuilt). Validation keeps it depooled and keeps it from being made primary again: it
    /// may hold writes that no other server has.
    public var needsRejoin: RejoinMark?

    public init(
        pooled: Bool = false, weight: Int = 0, percentage: Int = 100, groups: [String: GroupMembership] = [:], needsRejoin: RejoinMark? = nil
    ) {
        self.pooled = pooled
        self.weight = weight
        self.percentage = percentage
        self.groups = groups
        self.needsRejoin = needsRejoin
    }

    /// The weight applications see: `weight × percentage / 100`, rounded down, as dbctl does.
    public var effectiveWeight: Int { Membership.scaled(weight, percentage) }

    /// The largest weight a topology accepts (in a section or a group): far above any real
    /// load balancing weight, and small enough that `weight × percentage` cannot overflow.
    public static let maximumWeight = 1_000_000

    /// `weight × percentage / 100`, rounded down; a product too large for an `Int` (only a value
    /// that validation refuses can give one) is clamped instead of trapping.
    public static func scaled(_ weight: Int, _ percentage: Int) -> Int {
        let (product, overflow) = weight.multipliedReportingOverflow(by: percentage)
        if !overflow { return product / 100 }
        return (weight < 0) == (percentage < 0) ? Int.max : Int.min
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case pooled, weight, percentage, groups
        case needsRejoin = "needs_rejoin"
    }
}

/// Why a member waits for a rejoin: the failover that left it behind and where the histories
/// parted. A dead primary may have written transactions that no replica received; whoever
/// rejoins it compares its binary log with the new primary's from these positions.
public struct RejoinMark: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The id of the failover that replaced it.
    public var operation: String
    /// The instance promoted in its place.
    public var newPrimary: String
    /// The new primary's `gtid_binlog_pos` when it was promoted: everything the new primary
    /// writes comes after it.
    public var forkPoint: String
    /// The last position of the old primary that any replica had received, if known: what it
    /// wrote beyond it reached no other server.
    public var lastKnownPosition: String?

    public init(operation: String, newPrimary: String, forkPoint: String, lastKnownPosition: String? = nil) {
        self.operation = operation
        self.newPrimary = newPrimary
        self.forkPoint = forkPoint
        self.lastKnownPosition = lastKnownPosition
    }

    /// `needs rejoin since failover F (new primary db1002, fork point 0-1002-500, last known
    /// position 0-1001-480)`, for people.
    public var description: String {
        let last = lastKnownPosition.map { ", last known position \($0)" } ?? ""
        return "needs rejoin since failover \(operation) (new primary \(newPrimary), fork point \(forkPoint)\(last))"
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case operation
        case newPrimary = "new_primary"
        case forkPoint = "fork_point"
        case lastKnownPosition = "last_known_position"
    }
}

public struct GroupMembership: Codable, Sendable, Equatable {
    public var pooled: Bool
    public var weight: Int

    public init(pooled: Bool = true, weight: Int) {
        self.pooled = pooled
        self.weight = weight
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case pooled, weight
    }
}

/// The whole source of truth at one moment: every datacenter, section and instance, and each
/// section's managed accounts and global variables.
public struct Topology: Sendable, Equatable {
    public var datacenters: Set<String>
    public var sections: [String: Section]
    public var instances: [String: Instance]
    /// Section → account name → the managed account (only managed names are listed).
    public var grants: [String: [String: ManagedAccount]]
    /// Section → its desired global variables.
    public var variables: [String: ManagedVariables]

    public init(
        datacenters: Set<String> = [], sections: [String: Section] = [:], instances: [String: Instance] = [:],
        grants: [String: [String: ManagedAccount]] = [:], variables: [String: ManagedVariables] = [:]
    ) {
        self.datacenters = datacenters
        self.sections = sections
        self.instances = instances
        self.grants = grants
        self.variables = variables
    }

    /// The instances configured in `section`, sorted by name.
    public func members(of section: String) -> [(instance: Instance, membership: Membership)] {
        instances.values.compactMap { instance in instance.sections[section].map { (instance, $0) } }
            .sorted { $0.instance.name < $1.instance.name }
    }
}
