import Foundation
import Observation
import StoredRecords
import Topology

/// When the leader depools a lagging replica and repools it (controller configuration,
/// `depool:`; per-section overrides under `sections:`).
public struct DepoolPolicy: Sendable, Equatable, Codable {
    public var enabled: Bool
    /// Seconds of heartbeat lag above which a pooled replica is lagging.
    public var depoolLag: Double
    /// Seconds it must stay lagging (or broken, or unobserved) before it is depooled.
    public var depoolAfter: Double
    /// Seconds of lag under which a depooled replica counts as recovered (below `depoolLag`: hysteresis).
    public var repoolLag: Double
    /// Seconds it must stay recovered before the first repool step.
    public var repoolAfter: Double
    /// Percentages of its weight a repooled replica goes through, the last being where it was.
    public var ladder: [Int]
    /// Seconds at each ladder step, healthy, before the next.
    public var stepPause: Double
    /// The largest share of a section's replicas Marina may hold depooled at once.
    public var maxDepooledFraction: Double
    /// Seconds between two automatic changes in one section.
    public var minInterval: Double

    public init(
        enabled: Bool = true, depoolLag: Double = 5, depoolAfter: Double = 10, repoolLag: Double = 2, repoolAfter: Double = 30,
        ladder: [Int] = [25, 50, 100], stepPause: Double = 60, maxDepooledFraction: Double = 0.5, minInterval: Double = 5
    ) {
        self.enabled = enabled
        self.depoolLag = depoolLag
        self.depoolAfter = depoolAfter
        self.repoolLag = repoolLag
        self.repoolAfter = repoolAfter
        self.ladder = ladder
        self.stepPause = stepPause
        self.maxDepooledFraction = maxDepooledFraction
        self.minInterval = minInterval
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case enabled
        case depoolLag = "depool_lag"
        case depoolAfter = "depool_after"
        case repoolLag = "repool_lag"
        case repoolAfter = "repool_after"
        case ladder
        case stepPause = "step_pause"
        case maxDepooledFraction = "max_depooled_fraction"
        case minInterval = "min_interval"
    }

    /// The longest duration, in seconds, any key of the policy may have.
    public static let longestSeconds: Double = 86_400

    /// Every inconsistency, for a configuration error that names the key. A number that is not
    /// finite (`.nan`, `.inf`) or is beyond `longestSeconds` is refused first: compared with
    /// `<` or `>`, a NaN would pass every check and silently disable the guard it sets.
    public func problems() -> [String] {
        var problems = [String]()
        let seconds = [
            ("depool_lag", depoolLag), ("depool_after", depoolAfter), ("repool_lag", repoolLag), ("repool_after", repoolAfter),
            ("step_pause", stepPause), ("min_interval", minInterval),
        ]
        for (key, value) in seconds where !value.isFinite || value > Self.longestSeconds {
            problems.append("\(key) must be a finite number of seconds, at most \(Int(Self.longestSeconds)) (got \(value))")
        }
        if !maxDepooledFraction.isFinite || !(0...1).contains(maxDepooledFraction) {
            problems.append("max_depooled_fraction must be between 0 and 1 (got \(maxDepooledFraction))")
        }
        if ladder.isEmpty || ladder.contains(where: { !(1...100).contains($0) }) || ladder != ladder.sorted() || ladder.last != 100 {
            problems.append("ladder must be increasing percentages between 1 and 100, ending at 100")
        }
        // The relations between the keys mean something only between finite numbers.
        guard seconds.allSatisfy({ $0.1.isFinite }) else { return problems }
        if depoolLag <= 0 { problems.append("depool_lag must be positive") }
        if repoolLag < 0 || repoolLag >= depoolLag { problems.append("repool_lag must be at least 0 and below depool_lag (hysteresis)") }
        if depoolAfter < 0 || repoolAfter < 0 || stepPause < 0 || minInterval < 0 {
            problems.append("depool_after, repool_after, step_pause and min_interval must not be negative")
        }
        return problems
    }
}

/// What Marina remembers in etcd (`/marina/v1/policy/state`): the replicas it depooled and is
/// repooling, the guard rails that stopped it, and when it last changed each section. A
/// replica depooled by anyone else is never in `managed`, so it is never touched.
public struct PolicyState: Sendable, Equatable, Codable {
    public var schema = 1
    public var managed: [String: Managed]
    public var refusals: [String: Refusal]
    public var lastChange: [String: Date]

    public init(managed: [String: Managed] = [:], refusals: [String: Refusal] = [:], lastChange: [String: Date] = [:]) {
        self.managed = managed
        self.refusals = refusals
        self.lastChange = lastChange
    }

    public struct Managed: Sendable, Equatable, Codable {
        public enum Phase: String, Sendable, Codable { case depooled, repooling }
        public var section: String
        public var phase: Phase
        /// The ladder step being held (repooling), and since when.
        public var step: Int
        public var since: Date
        /// The percentage the replica had when it was depooled, restored by the last step.
        public var originalPercentage: Int
        public var reason: String
        public var depooledAt: Date

        /// The membership Marina last committed: if the committed one differs, a human took over.
        public var expectedPooled: Bool
        public var expectedPercentage: Int

        enum CodingKeys: String, CodingKey {
            case section, phase, step, since
            case originalPercentage = "original_percentage"
            case reason
            case depooledAt = "depooled_at"
            case expectedPooled = "expected_pooled"
            case expectedPercentage = "expected_percentage"
        }
    }

    /// A guard rail that stopped an action: kept while the reason lasts.
    public struct Refusal: Sendable, Equatable, Codable {
        public var section: String
        public var action: String
        public var reason: String
        public var since: Date

        public init(section: String, action: String, reason: String, since: Date) {
            self.section = section
            self.action = action
            self.reason = reason
            self.since = since
        }
    }

    enum CodingKeys: String, CodingKey {
        case schema, managed, refusals
        case lastChange = "last_change"
    }

    /// How `instance list` and `status` describe an instance Marina manages.
    public func describe(_ instance: String) -> String? {
        guard let managed = managed[instance] else { return nil }
        switch managed.phase {
        case .depooled: return "depooled by policy (\(managed.reason))"
        case .repooling: return "repooling at \(managed.expectedPercentage)%"
        }
    }
}

/// An automatic change, or a guard rail that stopped one.
public enum PolicyAction: Sendable, Equatable {
    case depool(instance: String, section: String, reason: String)
    /// Pool at `percentage` (a ladder step), or restore the original percentage at the last one.
    case repool(instance: String, section: String, percentage: Int, reason: String)
    case refused(instance: String, section: String, action: String, reason: String)

    public var section: String {
        switch self {
        case .depool(_, let section, _), .repool(_, let section, _, _), .refused(_, let section, _, _): section
        }
    }
}

extension DepoolPolicy {
    /// A section's overrides: any key of the policy, the others taken from the defaults.
    public struct Overrides: Sendable, Equatable, Codable {
        public var enabled: Bool?
        public var depoolLag: Double?
        public var depoolAfter: Double?
        public var repoolLag: Double?
        public var repoolAfter: Double?
        public var ladder: [Int]?
        public var stepPause: Double?
        public var maxDepooledFraction: Double?
        public var minInterval: Double?

        typealias CodingKeys = DepoolPolicy.CodingKeys

        /// Decodes the keys given, refusing unknown ones by name; `extra` keys are the caller's.
        public init(from decoder: Decoder, extra: [String]) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self, extra: extra)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled)
            depoolLag = try c.decodeIfPresent(Double.self, forKey: .depoolLag)
            depoolAfter = try c.decodeIfPresent(Double.self, forKey: .depoolAfter)
            repoolLag = try c.decodeIfPresent(Double.self, forKey: .repoolLag)
            repoolAfter = try c.decodeIfPresent(Double.self, forKey: .repoolAfter)
            ladder = try c.decodeIfPresent([Int].self, forKey: .ladder)
            stepPause = try c.decodeIfPresent(Double.self, forKey: .stepPause)
            maxDepooledFraction = try c.decodeIfPresent(Double.self, forKey: .maxDepooledFraction)
            minInterval = try c.decodeIfPresent(Double.self, forKey: .minInterval)
        }

        public init(from decoder: Decoder) throws { try self.init(from: decoder, extra: []) }
    }

    public func overridden(by overrides: Overrides) -> DepoolPolicy {
        DepoolPolicy(
            enabled: overrides.enabled ?? enabled, depoolLag: overrides.depoolLag ?? depoolLag,
            depoolAfter: overrides.depoolAfter ?? depoolAfter, repoolLag: overrides.repoolLag ?? repoolLag,
            repoolAfter: overrides.repoolAfter ?? repoolAfter, ladder: overrides.ladder ?? ladder, stepPause: overrides.stepPause ?? stepPause,
            maxDepooledFraction: overrides.maxDepooledFraction ?? maxDepooledFraction, minInterval: overrides.minInterval ?? minInterval)
    }
}

/// The policy state as stored in etcd (`StoredJSON`).
public enum PolicyJSON {
    /// Throws rather than give bytes that are not the state (nothing is then written).
    public static func encode(_ state: PolicyState) throws -> [UInt8] {
        try StoredJSON.encode(state)
    }

    public static func decode(_ bytes: [UInt8]) throws -> PolicyState {
        try StoredJSON.decode(PolicyState.self, from: bytes)
    }
}
