import Foundation
import Observation
import Topology

/// The automatic depool/repool decision, as a pure function of the committed topology, the
/// agents' observations, what Marina remembers, and a clock. One change at most per
/// evaluation (the controller commits it, then evaluates again), and every guard rail that
/// stops one becomes a refusal in the state.
public struct PolicyEngine: Sendable {
    public var defaults: DepoolPolicy
    public var sections: [String: DepoolPolicy]

    public init(defaults: DepoolPolicy = DepoolPolicy(), sections: [String: DepoolPolicy] = [:]) {
        self.defaults = defaults
        self.sections = sections
    }

    public func policy(for section: String) -> DepoolPolicy { sections[section] ?? defaults }

    /// How long each replica has been bad or good, kept in memory by the leader: a new leader
    /// starts counting afresh, which only delays an action.
    public struct Timers: Sendable, Equatable {
        public var badSince = [String: Date]()
        public var goodSince = [String: Date]()
        public init() {}
    }

    /// A replica's health against a policy.
    public struct Health: Sendable, Equatable {
        public enum Verdict: Sendable, Equatable { case bad, neutral, good }
        public var verdict: Verdict
        public var description: String
        /// For a replica bad by its heartbeat lag alone: why nothing else confirms that the lag
        /// is its own (see `witness`). Its timer runs, but its depool is refused with this reason.
        public var unconfirmed: String?

        public init(verdict: Verdict, description: String, unconfirmed: String? = nil) {
            self.verdict = verdict
            self.description = description
            self.unconfirmed = unconfirmed
        }
    }

    /// A replica's health, its heartbeat lag checked against a second witness when it is over
    /// `depool_lag` (`witness(replica:lag:primary:primaryName:policy:)`).
    public static func health(_ observation: Observation?, policy: DepoolPolicy, primary: Observation?, primaryName: String) -> Health {
        var health = health(observation, policy: policy)
        guard health.verdict == .bad, let observation, let lag = observation.heartbeatLag, lag > policy.depoolLag,
            observation.reachable, observation.error == nil, observation.replication.first?.isRunning == true
        else { return health }
        health.unconfirmed = unconfirmedLag(replica: observation, lag: lag, primary: primary, primaryName: primaryName, policy: policy)
        return health
    }

    /// Heartbeat lag measures a replica against the clock, so when the primary's heartbeat
    /// stops (the writer dies, the row is locked, the primary's agent loses etcd) every replica
    /// lags by it. A lag over `depool_lag` is acted on only with a second witness that it is the
    /// replica's own; nil when there is one, else why there is none. The witnesses:
    ///
    /// - the primary's heartbeat: the newest heartbeat the primary wrote before the replica's
    ///   probe (`Observation.newestHeartbeatAt`) is more than `depool_lag` newer than the newest
    ///   one the replica had applied (its `observedAt` minus its lag). Both times are on the
    ///   primary host's clock, so host clocks do not matter. A heartbeat written after the
    ///   replica's probe proves nothing about it (the replica may have applied it since): then
    ///   the next observation of the replica decides.
    /// - the replica's own threads: `Seconds_Behind_Master` over `depool_lag`, the age of the
    ///   event its SQL thread applies among those its IO thread received (0 when it applied all
    ///   it received). GTID or binlog positions are no witness: on a busy primary the SQL thread
    ///   is behind the IO thread by a transaction or two at almost every probe.
    ///
    /// A stopped IO or SQL thread is not lag: the replica is bad as broken, without a witness.
    public static func unconfirmedLag(
        replica: Observation, lag: Double, primary: Observation?, primaryName: String,
        policy: DepoolPolicy
    ) -> String? {
        if let behind = replica.replication.first?.secondsBehindMaster, Double(behind) > policy.depoolLag { return nil }
        let applied = replica.observedAt.addingTimeInterval(-lag)
        guard let primary, let written = primary.newestHeartbeatAt else {
            return
                "no second witness of \(replica.instance)'s lag: the primary \(primaryName) shows no heartbeat (no observation, or no heartbeat written or measured there), and \(replica.instance)'s SQL thread is not behind"
        }
        let ahead = written.timeIntervalSince(applied) > policy.depoolLag
        if ahead && written <= replica.observedAt { return nil }
        if ahead {
            // Written after the replica's probe: the next observation of the replica decides.
            return
                "no second witness of \(replica.instance)'s lag yet: the primary \(primaryName)'s newest heartbeat is newer than \(replica.instance)'s observation, and \(replica.instance)'s SQL thread is not behind"
        }
        return
            "the heartbeat on the primary \(primaryName) stalled: \(replica.instance) has applied the heartbeats \(primaryName) wrote, and its SQL thread is not behind, so its lag is the primary's, not its own"
    }

    public static func health(_ observation: Observation?, policy: DepoolPolicy) -> Health {
        guard let observation else { return Health(verdict: .bad, description: "no observation (its agent vanished)") }
        guard observation.reachable, observation.error == nil else {
            return Health(verdict: .bad, description: "unreachable: \(observation.error ?? "no answer")")
        }
        guard let channel = observation.replication.first else { return Health(verdict: .bad, description: "does not replicate") }
        guard channel.isRunning else {
            let error = [channel.lastIOError, channel.lastSQLError].filter { !$0.isEmpty }.joined(separator: "; ")
            return Health(
                verdict: .bad,
                description: "replication broken (IO \(channel.ioThread), SQL \(channel.sqlThread)\(error.isEmpty ? "" : ": \(error)"))")
        }
        guard let lag = observation.heartbeatLag else {
            return Health(verdict: .bad, description: "no heartbeat lag (\(observation.heartbeatError ?? "unknown"))")
        }
        let shown = lag == lag.rounded(.toNearestOrEven) ? format(lag) : String(format: lag < 10 ? "%.2f" : "%.1f", lag)
        if lag > policy.depoolLag { return Health(verdict: .bad, description: "lag \(shown) s > \(format(policy.depoolLag)) s") }
        if lag < policy.repoolLag { return Health(verdict: .good, description: "lag \(shown) s < \(format(policy.repoolLag)) s") }
        return Health(verdict: .neutral, description: "lag \(shown) s")
    }

    /// One evaluation: updates the timers and the state, and gives the change to commit (if
    /// any) with the state to write alongside it.
    /// Instances in `unreadable` (an observation in etcd that does not decode) count neither as
    /// bad nor as good: garbage in etcd never depools anything.
    public func evaluate(
        now: Date, topology: Topology, observations: [String: Observation], state: PolicyState, timers: inout Timers,
        busySections: Set<String> = [], unreadable: Set<String> = []
    ) -> (change: PolicyAction?, state: PolicyState) {
        var state = state
        // Forget what a human took over: Marina's last commit is no longer what is committed.
        for (name, managed) in state.managed {
            let membership = topology.instances[name]?.sections[managed.section]
            let primary = topology.sections[managed.section]?.primary == name
            if membership == nil || primary || membership?.pooled != managed.expectedPooled
                || (managed.expectedPooled && membership?.percentage != managed.expectedPercentage)
            {
                state.managed[name] = nil
            }
        }

        var change: PolicyAction?
        var stillRefused = Set<String>()
        for (sectionName, section) in topology.sections.sorted(by: { $0.key < $1.key }) where section.isInitialized {
            let policy = policy(for: sectionName)
            let replicas = topology.members(of: sectionName).filter { $0.instance.name != section.primary }
            for (instance, _) in replicas {
                let health =
                    unreadable.contains(instance.name)
                    ? Health(verdict: .neutral, description: "unreadable observation")
                    : Self.health(observations[instance.name], policy: policy, primary: observations[section.primary], primaryName: section.primary)
                switch health.verdict {
                case .bad:
                    timers.badSince[instance.name] = timers.badSince[instance.name] ?? now
                    timers.goodSince[instance.name] = nil
                case .good:
                    timers.goodSince[instance.name] = timers.goodSince[instance.name] ?? now
                    timers.badSince[instance.name] = nil
                case .neutral:
                    timers.badSince[instance.name] = nil
                    timers.goodSince[instance.name] = nil
                }
            }
            guard policy.enabled, !busySections.contains(sectionName), change == nil else { continue }

            for (instance, membership) in replicas {
                let name = instance.name
                let health = Self.health(observations[name], policy: policy, primary: observations[section.primary], primaryName: section.primary)
                let managed = state.managed[name]
                var wanted: PolicyAction?

                if membership.pooled, managed == nil || managed?.phase == .repooling,
                    let since = timers.badSince[name], now.timeIntervalSince(since) >= policy.depoolAfter
                {
                    wanted = .depool(
                        instance: name, section: sectionName,
                        reason: "\(health.description) for \(format(now.timeIntervalSince(since))) s")
                } else if let managed, managed.section == sectionName, let since = timers.goodSince[name] {
                    let steps = ladder(policy, original: managed.originalPercentage)
                    switch managed.phase {
                    case .depooled where now.timeIntervalSince(since) >= policy.repoolAfter:
                        wanted = .repool(
                            instance: name, section: sectionName, percentage: steps[0],
                            reason: "\(health.description) for \(format(now.timeIntervalSince(since))) s: step 1 of \(steps.count)")
                    case .repooling
                    where now.timeIntervalSince(managed.since) >= policy.stepPause
                        && now.timeIntervalSince(since) >= policy.stepPause && managed.step + 1 < steps.count:
                        wanted = .repool(
                            instance: name, section: sectionName, percentage: steps[managed.step + 1],
                            reason: "\(health.description) for \(format(now.timeIntervalSince(since))) s: step \(managed.step + 2) of \(steps.count)")
                    default:
                        break
                    }
                }
                guard let action = wanted else { continue }

                // A guard rail's refusal first: it stands whatever the witnesses say.
                let unconfirmed: String? = if case .depool = action { health.unconfirmed } else { nil }
                if let refusal = guardRail(action, section: section, policy: policy, topology: topology, state: state, now: now) ?? unconfirmed {
                    stillRefused.insert(name)
                    let kind = if case .depool = action { "depool" } else { "repool" }
                    let previous = state.refusals[name]
                    state.refusals[name] = PolicyState.Refusal(
                        section: sectionName, action: kind, reason: refusal,
                        since: previous?.reason == refusal ? previous!.since : now)
                    continue
                }
                apply(action, to: &state, membership: membership, policy: policy, now: now)
                change = action
                break
            }
        }
        for name in state.refusals.keys where !stillRefused.contains(name) { state.refusals[name] = nil }
        return (change, state)
    }

    /// The percentages of the ladder, capped at the replica's own percentage, ending with it.
    func ladder(_ policy: DepoolPolicy, original: Int) -> [Int] {
        var steps = [Int]()
        for step in policy.ladder where min(step, original) > (steps.last ?? 0) { steps.append(min(step, original)) }
        if steps.last != original { steps.append(original) }
        return steps
    }

    /// The guard rail an action would break, if any.
    func guardRail(_ action: PolicyAction, section: Section, policy: DepoolPolicy, topology: Topology, state: PolicyState, now: Date) -> String? {
        if let last = state.lastChange[section.name], now.timeIntervalSince(last) < policy.minInterval {
            return
                "rate limit: the last automatic change in \(section.name) was \(format(now.timeIntervalSince(last))) s ago (min_interval \(format(policy.minInterval)) s)"
        }
        guard case .depool(let name, _, _) = action else { return nil }
        let replicas = topology.members(of: section.name).filter { $0.instance.name != section.primary }
        let pooled = replicas.filter { $0.membership.pooled }.count
        if pooled - 1 < section.minReplicas {
            return "depooling \(name) would leave \(section.name) \(pooled - 1) pooled replicas, below its minimum of \(section.minReplicas)"
        }
        let held = state.managed.values.filter { $0.section == section.name && $0.phase == .depooled }.count + 1
        if Double(held) > policy.maxDepooledFraction * Double(replicas.count) {
            return
                "depooling \(name) would hold \(held) of \(section.name)'s \(replicas.count) replicas depooled, more than max_depooled_fraction \(policy.maxDepooledFraction)"
        }
        return nil
    }

    private func apply(_ action: PolicyAction, to state: inout PolicyState, membership: Membership, policy: DepoolPolicy, now: Date) {
        switch action {
        case .depool(let name, let section, let reason):
            let original = state.managed[name]?.originalPercentage ?? membership.percentage
            state.managed[name] = PolicyState.Managed(
                section: section, phase: .depooled, step: 0, since: now, originalPercentage: original,
                reason: reason, depooledAt: now, expectedPooled: false,
                expectedPercentage: membership.percentage)
        case .repool(let name, let section, let percentage, _):
            guard var managed = state.managed[name] else { break }
            let steps = ladder(policy, original: managed.originalPercentage)
            if percentage == managed.originalPercentage && steps.last == percentage && (managed.phase == .repooling || steps.count == 1) {
                state.managed[name] = nil  // back where it was: no longer Marina's
            } else {
                managed.step = managed.phase == .depooled ? 0 : managed.step + 1
                managed.phase = .repooling
                managed.since = now
                managed.expectedPooled = true
                managed.expectedPercentage = percentage
                state.managed[name] = managed
            }
            _ = section
        case .refused:
            break
        }
        state.refusals[action.instanceName] = nil
        state.lastChange[action.section] = now
    }
}

extension PolicyAction {
    var instanceName: String {
        switch self {
        case .depool(let name, _, _), .repool(let name, _, _, _), .refused(let name, _, _, _): name
        }
    }
}

func format(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? String(Int(seconds)) : String(format: "%.1f", seconds)
}
