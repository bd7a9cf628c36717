#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `/marina/v1/fencing/lease/<section>`: "this primary may take writes", held by the agent on
/// the primary's host and bound to an etcd lease of `ttl` seconds that only that agent renews.
/// When the agent cannot renew it, the agent makes its primary read-only at the latest `margin`
/// seconds before etcd can let it expire; a failover waits for it to vanish, then `margin`
/// seconds more, before it makes anyone else writable (`docs/operations/fencing.md`).
public struct PrimaryLease: Codable, Sendable, Equatable {
    public var schema: Int = 1
    public var section: String
    /// The primary the lease lets take writes.
    public var instance: String
    /// The agent holding it (its host name).
    public var agent: String
    /// The etcd lease's time-to-live, whole seconds.
    public var ttl: Int
    /// Seconds before the lease can expire by which the agent has made its primary read-only.
    public var margin: Double
    public var acquiredAt: Date

    public init(section: String, instance: String, agent: String, ttl: Int, margin: Double, acquiredAt: Date) {
        self.section = section
        self.instance = instance
        self.agent = agent
        self.ttl = ttl
        self.margin = margin
        self.acquiredAt = acquiredAt
    }

    enum CodingKeys: String, CodingKey {
        case schema, section, instance, agent, ttl, margin
        case acquiredAt = "acquired_at"
    }
}

/// An agent's primary made read-only by the agent itself (its lease could not be renewed, or was
/// lost), published in the instance's observation (`self_fence`) until the agent lifts it.
public struct SelfFence: Codable, Sendable, Equatable {
    /// Since when the agent keeps the instance read-only (the agent's clock).
    public var since: Date
    /// Why, for a person: "the primary lease of s1 could not be renewed for 4.0 s (etcd unreachable)".
    public var reason: String
    /// What the fence did: `read_only`, then `killed N sessions`, then `hook` when one ran.
    public var actions: [String]

    public init(since: Date, reason: String, actions: [String] = []) {
        self.since = since
        self.reason = reason
        self.actions = actions
    }
}

/// The timing of the primary lease, shared by the agent (which fences) and the controller (which
/// waits), and the rules that keep the argument in `docs/operations/fencing.md` true.
///
/// The agent sends a keep-alive at monotonic time `s`; etcd receives it later, so the lease
/// cannot expire before `s + ttl` (etcd's clock runs at the same rate to within `drift`). The
/// agent starts its fence at `s + ttl − margin` and the fence takes at most `fenceTimeout`, so
/// the primary is read-only before the lease can expire as long as
/// `fenceTimeout + ttl × drift < margin`. The controller waits for the key to vanish, then
/// `margin` more: the second half of the margin covers its own clock and a fence that ran late.
public struct FencingTiming: Sendable, Equatable {
    /// etcd lease time-to-live, whole seconds.
    public var ttl: Int
    public var margin: Double
    /// Seconds between two keep-alives.
    public var renewInterval: Double
    /// Seconds one keep-alive may take before it counts as failed.
    public var requestTimeout: Double
    /// Seconds the fence may take (`SET GLOBAL read_only = ON`, the kills, a second try).
    public var fenceTimeout: Double

    /// The rate two clocks may differ by (a bound, far above what NTP-disciplined or free-running
    /// quartz clocks do: 100 ppm is typical).
    public static let drift = 0.01

    public init(ttl: Int, margin: Double, renewInterval: Double, requestTimeout: Double, fenceTimeout: Double) {
        self.ttl = ttl
        self.margin = margin
        self.renewInterval = renewInterval
        self.requestTimeout = requestTimeout
        self.fenceTimeout = fenceTimeout
    }

    /// Seconds after a keep-alive was sent at which the agent starts its fence.
    public var fenceAfter: Double { Double(ttl) - margin }

    /// Every rule the settings break, each naming the keys and the numbers; empty when sound.
    public func problems() -> [String] {
        var problems = [String]()
        let numbers = [("margin", margin), ("renew_interval", renewInterval), ("request_timeout", requestTimeout), ("fence_timeout", fenceTimeout)]
        for (key, value) in numbers where !value.isFinite || value <= 0 {
            problems.append("fencing.\(key) must be a positive number of seconds (got \(value))")
        }
        guard problems.isEmpty else { return problems }
        if ttl < 2 { problems.append("fencing.lease_ttl must be at least 2 seconds (got \(ttl))") }
        let slack = fenceTimeout + Double(ttl) * Self.drift
        if margin <= slack {
            problems.append(
                "fencing.margin (\(margin) s) must exceed fence_timeout + lease_ttl × \(Self.drift) = \(slack) s: "
                    + "the primary must be read-only before its lease can expire")
        }
        // Two keep-alives, each of which may time out, must fit before the fence starts, so that
        // one lost packet does not fence a healthy primary.
        let needed = renewInterval + 2 * requestTimeout
        if needed > fenceAfter {
            problems.append(
                "fencing: renew_interval + 2 × request_timeout = \(needed) s must not exceed lease_ttl − margin = \(fenceAfter) s: "
                    + "a single failed keep-alive would fence a healthy primary")
        }
        return problems
    }
}
