import Foundation
import Observation
import Topology

/// Is a section's primary dead? Dead only on two witnesses: the controller cannot reach it over
/// SQL, *and* either its own agent reports the server down, or every replica that reports (a
/// fresh observation) has lost it: its IO thread is not connected, or it has received nothing
/// (no event, no heartbeat) for longer than `masterFailureTimeout`. A primary the controller
/// cannot reach while a replica still replicates from it is *unreachable*, not dead: drift
/// reports it, nothing is promoted. Pure: no I/O, no clock but `now`.
public enum PrimaryHealth: Equatable, Sendable {
    case alive
    /// The controller cannot reach it, but no second witness agrees (or one contradicts).
    case unreachable(because: String)
    /// Dead on two witnesses, each named.
    case dead(witnesses: [String])
}

public enum FailureDetection {
    /// - Parameters:
    ///   - controllerReaches: whether the controller's own SQL connection to the primary works;
    ///     nil when it did not try.
    ///   - primary: the primary's own agent's latest observation, if any.
    ///   - replicas: the latest observation of each direct replica of the primary.
    ///   - maxObservationAge: observations older than this (seconds) are no witness either way.
    public static func assess(
        primaryName: String, controllerReaches: Bool?, primary: Observation?, replicas: [Observation], now: Date,
        masterFailureTimeout: Double, maxObservationAge: Double
    ) -> PrimaryHealth {
        guard controllerReaches == false else { return .alive }
        func fresh(_ observation: Observation) -> Bool { now.timeIntervalSince(observation.observedAt) <= maxObservationAge }

        var witnesses = ["the controller cannot reach \(primaryName) over SQL"]
        if let primary, fresh(primary), !primary.reachable {
            witnesses.append("\(primaryName)'s own agent cannot reach it (\(primary.error ?? "no answer"))")
            return .dead(witnesses: witnesses)
        }
        let reporting = replicas.filter(fresh)
        guard !reporting.isEmpty else {
            return .unreachable(because: "no fresh observation of \(primaryName) or of a replica of it: no second witness")
        }
        var lost = [String]()
        for replica in reporting {
            guard let channel = replica.replication.first else {
                return .unreachable(because: "\(replica.instance) reports no replication channel: not a witness of \(primaryName)")
            }
            if channel.ioThread != "Yes" {
                lost.append("\(replica.instance)'s IO thread is \(channel.ioThread)\(channel.lastIOError.isEmpty ? "" : " (\(channel.lastIOError))")")
            } else if let lag = replica.heartbeatLag, lag > masterFailureTimeout {
                lost.append("\(replica.instance) has received no heartbeat for \(Seconds.format(lag)) s")
            } else {
                return .unreachable(because: "\(replica.instance) still replicates from \(primaryName): the controller alone cannot reach it")
            }
        }
        return .dead(witnesses: witnesses + lost)
    }
}

/// Which replica replaces a dead primary, and why each other one does not. Pure.
public struct FailoverChoice: Equatable, Sendable {
    /// The replica to promote.
    public var candidate: String
    /// When the candidate has received less than another replica: it first replicates from
    /// that one until it has everything (two-phase promotion), so no replica is left behind.
    public var catchUpFrom: String?
    /// Every replica not chosen, with why (not eligible, or ranked lower).
    public var rejected: [String: String]

    public init(candidate: String, catchUpFrom: String?, rejected: [String: String]) {
        self.candidate = candidate
        self.catchUpFrom = catchUpFrom
        self.rejected = rejected
    }
}

public enum FailoverCandidates {
    /// Candidates are the direct replicas of the dead primary with `log_bin`, `log_slave_updates`,
    /// no errant transaction, and allowed by the source of truth (`candidate_primary`; the
    /// request's `preferred` if given must be one). Ranked by the highest *received* position
    /// (`Gtid_IO_Pos`), then the applied one (`gtid_slave_pos`), then the name; a `preferred`
    /// replica (`marina failover --to`) is taken whatever its rank. Some eligible replica must
    /// have received everything every other live replica received, else a human decides; if
    /// the chosen one is behind it, it catches up from it first (two-phase promotion).
    ///
    /// Gives the choice, or every reason none can be made.
    public static func choose(
        section: Section, topology: Topology, deadPrimary: String, primaryServerID: Int?, replicas: [Observation], preferred: String?
    ) -> Result<FailoverChoice, FailoverRefused> {
        var rejected = [String: String]()
        var eligible = [Observation]()
        // Replicas that can give the chosen one what it lacks (their binary log holds the dead
        // primary's transactions): the eligible ones, and those only the source of truth keeps
        // from being promoted.
        var sources = [Observation]()
        for replica in replicas.sorted(by: { $0.instance < $1.instance }) {
            let name = replica.instance
            if let reason = ineligible(
                replica, topology: topology, section: section, deadPrimary: deadPrimary, primaryServerID: primaryServerID,
                others: replicas.filter { $0.instance != name })
            {
                rejected[name] = reason
                if reason == notCandidate { sources.append(replica) }
            } else {
                eligible.append(replica)
                sources.append(replica)
            }
        }
        guard !eligible.isEmpty else { return .failure(FailoverRefused(reasons: rejected)) }

        // The one that received the most: its received position must contain every other live replica's.
        let received = { (observation: Observation) in observation.replication.first?.gtidIOPos ?? GTIDPosition() }
        let everyone = replicas.filter { $0.reachable && $0.replication.first != nil }
        let mostAdvanced = (eligible + sources).first { source in everyone.allSatisfy { received(source).contains(received($0)) } }
        guard let mostAdvanced else {
            var reasons = rejected
            reasons["(all)"] =
                "no eligible replica has received everything the others have: "
                + everyone.map { "\($0.instance) at \(received($0))" }.joined(separator: ", ")
            return .failure(FailoverRefused(reasons: reasons))
        }

        // Ranked by received, then applied (summed over domains: the most advanced contains
        // every other, so it sums highest), then by name.
        func total(_ position: GTIDPosition?) -> UInt64 { (position?.entries.values.map(\.sequence) ?? []).reduce(0, +) }
        let ranked = eligible.sorted { left, right in
            let (l, r) = (total(received(left)), total(received(right)))
            if l != r { return l > r }
            let (la, ra) = (total(left.gtidSlavePos), total(right.gtidSlavePos))
            if la != ra { return la > ra }
            return left.instance < right.instance
        }
        var chosen = ranked[0]
        if let preferred {
            guard let wanted = eligible.first(where: { $0.instance == preferred }) else {
                var reasons = rejected
                reasons[preferred] = rejected[preferred] ?? "\(preferred) is not a replica of \(deadPrimary) in \(section.name)"
                return .failure(FailoverRefused(reasons: reasons))
            }
            chosen = wanted
        }
        for other in eligible where other.instance != chosen.instance {
            rejected[other.instance] = "eligible, not chosen: received \(received(other)) (chosen \(chosen.instance) at \(received(chosen)))"
        }
        let catchUp = received(chosen).contains(received(mostAdvanced)) ? nil : mostAdvanced.instance
        return .success(FailoverChoice(candidate: chosen.instance, catchUpFrom: catchUp, rejected: rejected))
    }

    private static func ineligible(
        _ replica: Observation, topology: Topology, section: Section, deadPrimary: String, primaryServerID: Int?, others: [Observation]
    ) -> String? {
        let name = replica.instance
        guard let instance = topology.instances[name], instance.sections[section.name] != nil else {
            return "not configured in \(section.name)"
        }
        guard replica.reachable, replica.error == nil else { return "unreachable: \(replica.error ?? "no answer")" }
        guard let channel = replica.replication.first else { return "does not replicate" }
        if let source = channel.sourceServerID, let primaryServerID, source != primaryServerID {
            return "replicates from server_id \(source), not directly from \(deadPrimary)"
        }
        if channel.gtidIOPos == nil { return "its received position (Gtid_IO_Pos) is unknown" }
        if replica.logBin != true { return "no binary log (log_bin is OFF)" }
        if replica.logSlaveUpdates != true { return "log_slave_updates is \(replica.logSlaveUpdates == false ? "OFF" : "unknown")" }
        guard let state = replica.gtidBinlogState else { return "gtid_binlog_state unknown: errant transactions cannot be ruled out" }
        if let errant = errant(state, others: others, primaryServerID: primaryServerID) { return errant }
        // Checked last: such a replica can still serve as the source of a catch-up.
        if !instance.candidatePrimary { return notCandidate }
        return nil
    }

    static let notCandidate = "not a candidate primary (candidate_primary is false)"

    /// A transaction no other replica has and the dead primary did not write, if any.
    private static func errant(_ state: GTIDState, others: [Observation], primaryServerID: Int?) -> String? {
        var merged = [String: GTID]()
        for other in others.compactMap(\.gtidBinlogState) {
            for gtid in other.gtids {
                let key = "\(gtid.domain)-\(gtid.server)"
                if (merged[key]?.sequence ?? 0) < gtid.sequence { merged[key] = gtid }
            }
        }
        let errant = state.errant(comparedWith: GTIDState(Array(merged.values)), primaryServerID: primaryServerID.flatMap(UInt32.init(exactly:)))
        guard !others.isEmpty, !errant.isEmpty else { return nil }
        return "errant transactions \(errant.map(\.description).joined(separator: ",")) that no other replica has"
    }
}

/// No replica can be promoted; every reason, by replica.
public struct FailoverRefused: Error, Equatable, Sendable, CustomStringConvertible {
    public var reasons: [String: String]
    public init(reasons: [String: String]) { self.reasons = reasons }
    public var description: String {
        "no replica can be promoted: " + reasons.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
    }
}

/// One step of a failover plan: where it runs and the exact statements, in order.
public struct FailoverStep: Equatable, Sendable {
    public enum Kind: String, Sendable {
        /// `MASTER_GTID_WAIT` on the replica's own received position: its SQL thread applies
        /// every event its IO thread received (in GTID mode a stopped IO thread throws the
        /// unapplied relay log away, so nothing is stopped before this).
        case applyReceived = "apply-received"
        /// Two-phase promotion: the candidate replicates from the replica that received the
        /// most until it has everything.
        case catchUp = "catch-up"
        case detachCandidate = "detach-candidate"
        /// The new primary in the source of truth (etcd, no SQL).
        case commitPrimary = "commit-primary"
        case candidateWritable = "candidate-writable"
        /// Another replica under the new primary, from its own applied position.
        case repoint
        /// The dead primary depooled and marked to rejoin, with the fork point (etcd, no SQL).
        case markOldPrimary = "mark-old-primary"
    }

    public var kind: Kind
    public var host: String
    public var statements: [String]

    public init(kind: Kind, host: String, statements: [String]) {
        self.kind = kind
        self.host = host
        self.statements = statements
    }
}

public enum FailoverPlan {
    /// The steps of a failover, from the choice and each replica's received position
    /// (`Gtid_IO_Pos`, read just before). The new primary is committed before it becomes
    /// writable; no replica of the dead primary is stopped before it applied what it received.
    public static func steps(
        section: String, deadPrimary: String, choice: FailoverChoice, instances: [String: Instance], received: [String: GTIDPosition],
        others: [String], timeout: Double
    ) -> [FailoverStep] {
        func wait(_ name: String) -> FailoverStep {
            FailoverStep(
                kind: .applyReceived, host: name,
                statements: [SwitchoverSQL.waitFor((received[name] ?? GTIDPosition()).description, timeout: timeout)])
        }
        let candidate = choice.candidate
        var steps = [FailoverStep]()
        if let source = choice.catchUpFrom, let sourceInstance = instances[source] {
            steps.append(wait(source))
            steps.append(wait(candidate))
            steps.append(
                FailoverStep(
                    kind: .catchUp, host: candidate,
                    statements: [
                        SwitchoverSQL.stopReplication, SwitchoverSQL.moveTo(sourceInstance), SwitchoverSQL.startReplication,
                        SwitchoverSQL.waitFor((received[source] ?? GTIDPosition()).description, timeout: timeout),
                    ]))
        } else {
            steps.append(wait(candidate))
        }
        steps.append(
            FailoverStep(kind: .detachCandidate, host: candidate, statements: [SwitchoverSQL.stopReplication, SwitchoverSQL.resetReplication]))
        steps.append(
            FailoverStep(kind: .commitPrimary, host: "etcd", statements: ["etcd: commit section \(section) primary \(candidate)"]))
        steps.append(FailoverStep(kind: .candidateWritable, host: candidate, statements: [SwitchoverSQL.setReadOnly(false)]))
        if let candidateInstance = instances[candidate] {
            for name in others.sorted() where name != candidate && name != deadPrimary {
                if choice.catchUpFrom != name { steps.append(wait(name)) }
                steps.append(
                    FailoverStep(
                        kind: .repoint, host: name,
                        statements: [SwitchoverSQL.stopReplication, SwitchoverSQL.moveTo(candidateInstance), SwitchoverSQL.startReplication]))
            }
        }
        steps.append(
            FailoverStep(
                kind: .markOldPrimary, host: "etcd",
                statements: ["etcd: depool \(deadPrimary) in \(section), mark it needs-rejoin with the fork point (\(candidate)'s gtid_binlog_pos)"]))
        return steps
    }
}
