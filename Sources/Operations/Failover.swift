import Foundation
import Observation
import Topology

/// Is a section's primary dead? Dead only on two witnesses: the controller cannot reach it over
/// SQL, *and* either its own agent reports the server down, or every replica that reports (a
/// fresh observation) has lost it: its IO thread is not connected, or it has applied all it
/// received and still has no heartbeat newer than `masterFailureTimeout` (the primary sent
/// nothing: a replica merely behind in applying is no witness). Any fresh replica that still
/// replicates from it contradicts the others, the primary's own agent included: the primary is
/// then *unreachable*, not dead; drift reports it, nothing is promoted. Pure: no I/O, no clock
/// but `now`.
public enum PrimaryHealth: Equatable, Sendable {
    case alive
    /// The controller cannot reach it, but no second witness agrees (or one contradicts).
    case unreachable(because: String)
    /// Dead on two witnesses, each named.
    case dead(witnesses: [String])
}

public enum FailureDetection {
    /// - Parameters:
    ///   - controllerReaches: whether the controller's own SQL connection to the primary works
    ///     (a server that answers with an error, such as too many connections, is reached);
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

        // Contradictions first: a replica still replicating outweighs every other witness.
        let reporting = replicas.filter(fresh)
        var lost = [String]()
        for replica in reporting {
            guard let channel = replica.replication.first else {
                return .unreachable(because: "\(replica.instance) reports no replication channel: not a witness of \(primaryName)")
            }
            if channel.ioThread != "Yes" {
                lost.append("\(replica.instance)'s IO thread is \(channel.ioThread)\(channel.lastIOError.isEmpty ? "" : " (\(channel.lastIOError))")")
            } else if let lag = replica.heartbeatLag, lag > masterFailureTimeout, let received = channel.gtidIOPos,
                replica.gtidSlavePos?.contains(received) == true
            {
                lost.append("\(replica.instance) applied all it received and has no heartbeat for \(Seconds.format(lag)) s")
            } else {
                return .unreachable(because: "\(replica.instance) still replicates from \(primaryName): the controller alone cannot reach it")
            }
        }
        var witnesses = ["the controller cannot reach \(primaryName) over SQL"]
        if let primary, fresh(primary), !primary.reachable {
            witnesses.append("\(primaryName)'s own agent cannot reach it (\(primary.error ?? "no answer"))")
            return .dead(witnesses: witnesses + lost)
        }
        guard !reporting.isEmpty else {
            return .unreachable(because: "no fresh observation of \(primaryName) or of a replica of it: no second witness")
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
    /// A replica a human depooled (`depooledByHuman`: depooled in the source of truth, not by
    /// the automatic depool) is not promoted unless it is the `preferred` one; it can still be
    /// the source of a catch-up. One the automatic depool took out for lag is promoted like any
    /// other once it has applied its relay log (the failover pools it as the primary).
    ///
    /// Gives the choice, or every reason none can be made.
    public static func choose(
        section: Section, topology: Topology, deadPrimary: String, primaryServerID: Int?, replicas: [Observation], preferred: String?,
        depooledByHuman: Set<String> = []
    ) -> Result<FailoverChoice, FailoverRefused> {
        var rejected = [String: String]()
        var eligible = [Observation]()
        // Replicas that can give the chosen one what it lacks (their binary log holds the dead
        // primary's transactions): the eligible ones, and those only the source of truth keeps
        // from being promoted.
        var sources = [Observation]()
        for replica in replicas.sorted(by: { $0.instance < $1.instance }) {
            let name = replica.instance
            var reason = ineligible(
                replica, topology: topology, section: section, deadPrimary: deadPrimary, primaryServerID: primaryServerID,
                others: replicas.filter { $0.instance != name })
            if reason == nil, depooledByHuman.contains(name), preferred != name { reason = depooledByAHuman }
            if let reason {
                rejected[name] = reason
                if reason == notCandidate || reason == depooledByAHuman { sources.append(replica) }
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
    static let depooledByAHuman = "depooled by a human (not by the automatic depool): promoted only if named with --to"

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

/// What a failover records besides its steps: how the primary was found dead, which replica
/// was chosen and why the others were not, the positions it read, and the fork point.
public struct FailoverDetails: Codable, Sendable, Equatable {
    /// Started by the controller on its own (false: `marina failover`).
    public var automatic: Bool
    /// `marina failover --to`: the replica the DBA wants promoted.
    public var preferred: String?
    /// Each witness of the primary's death, as `FailureDetection` named it.
    public var witnesses: [String]
    /// The dead primary's `server_id`: a replica whose IO thread is connected to it again
    /// (`Master_Server_Id`) shows it is not dead.
    public var primaryServerID: Int?
    /// Every replica not chosen, with why.
    public var rejected: [String: String]
    /// Two phases: the replica the candidate catches up from.
    public var catchUpFrom: String?
    /// Each replica's received position (`Gtid_IO_Pos`) when the failover was planned.
    public var received: [String: String]
    /// The old primary's last position known to any replica: the most advanced received position.
    public var lastKnownPosition: String?
    /// The new primary's `gtid_binlog_pos` when it stopped replicating: where its history and
    /// the old primary's part. An old primary holding anything beyond it has diverged.
    public var forkPoint: String?
    /// What the failover waited for before anyone was made writable: the old primary's lease
    /// (`PrimaryLease`) gone, plus the margin; or why it did not wait.
    public var leaseWait: String?
    /// Set when the old primary was alive but without its lease (its agent silent) and the
    /// controller fenced it over SQL: its `gtid_binlog_pos` once read-only, which every replica
    /// applies before the candidate takes writes.
    public var fencedPosition: String?
    /// Set by the failover watch when the primary's lease vanished while its agent is silent:
    /// the preflight may then fence a primary that still answers, over SQL, and fail it over.
    public var fenceOverSQL: Bool?

    public init(
        automatic: Bool, preferred: String? = nil, witnesses: [String] = [], rejected: [String: String] = [:], catchUpFrom: String? = nil,
        received: [String: String] = [:], lastKnownPosition: String? = nil, forkPoint: String? = nil
    ) {
        self.automatic = automatic
        self.preferred = preferred
        self.witnesses = witnesses
        self.rejected = rejected
        self.catchUpFrom = catchUpFrom
        self.received = received
        self.lastKnownPosition = lastKnownPosition
        self.forkPoint = forkPoint
    }

    enum CodingKeys: String, CodingKey {
        case automatic, preferred, witnesses
        case primaryServerID = "primary_server_id"
        case rejected
        case catchUpFrom = "catch_up_from"
        case received
        case lastKnownPosition = "last_known_position"
        case forkPoint = "fork_point"
        case leaseWait = "lease_wait"
        case fencedPosition = "fenced_position"
        case fenceOverSQL = "fence_over_sql"
    }
}

/// After an automatic failover, the section is blocked from another one until a DBA
/// acknowledges it (`marina failover ack`) or `until` has passed: a primary that dies again
/// soon after is a problem for a human (a bad host, a query that kills every server), not one
/// to keep failing over.
public struct FailoverBlock: Codable, Sendable, Equatable {
    public var section: String
    public var operation: String
    public var blockedAt: Date
    public var until: Date

    public init(section: String, operation: String, blockedAt: Date, until: Date) {
        self.section = section
        self.operation = operation
        self.blockedAt = blockedAt
        self.until = until
    }

    enum CodingKeys: String, CodingKey {
        case section, operation
        case blockedAt = "blocked_at"
        case until
    }

    public func isActive(at now: Date) -> Bool { now < until }
}

/// The leader's judgement that a section's primary is unreachable, not dead: the controller
/// cannot reach it over SQL while a replica still replicates from it. Kept in etcd under the
/// leader's lease while it lasts, for drift to report.
public struct PrimaryUnreachable: Codable, Sendable, Equatable {
    public var section: String
    public var primary: String
    /// Why it is not judged dead (the replica that still replicates).
    public var reason: String
    public var since: Date
    /// The controller that judged it.
    public var controller: String

    public init(section: String, primary: String, reason: String, since: Date, controller: String) {
        self.section = section
        self.primary = primary
        self.reason = reason
        self.since = since
        self.controller = controller
    }
}

public enum FailoverPlan {
    /// Seconds between heartbeats a primary sends an idle replica Marina configures
    /// (`MASTER_HEARTBEAT_PERIOD`): a replica that hears nothing for `slaveNetTimeout` drops
    /// the connection, and its IO thread shows the primary lost.
    public static let heartbeatPeriod = 1
    /// `slave_net_timeout` on the replicas a failover configures: four heartbeats missed.
    public static let slaveNetTimeout = 4

    /// The steps of a failover, in the playbook's order, from the choice and each replica's
    /// received position (`Gtid_IO_Pos`, read just before). Per-replica actions give one step
    /// per replica; `catch-up` gives none in one phase. The order keeps the MariaDB-safe rule:
    /// no replica of the dead primary has its threads stopped before it applied what it
    /// received; the new primary is committed before it becomes writable.
    public static func steps(
        _ playbook: Playbook, section: String, deadPrimary: String, choice: FailoverChoice, instances: [String: Instance],
        received: [String: GTIDPosition], others: [String]
    ) -> [StepRecord] {
        let c = choice.candidate
        let sources = [choice.catchUpFrom, c].compactMap { $0 }
        let repointed = others.sorted().filter { $0 != c && $0 != deadPrimary }
        func position(_ name: String) -> String { (received[name] ?? GTIDPosition()).description }
        func applyReceived(_ name: String, timeout: Double) -> StepRecord {
            StepRecord(
                name: "\(name) applies what it received", action: .applyReceived, subject: name, hosts: [name],
                statements: [
                    "\(name): SHOW SLAVE STATUS (Gtid_IO_Pos, planned \(position(name)))",
                    "\(name): \(SwitchoverSQL.waitFor("<Gtid_IO_Pos>", timeout: timeout))",
                ],
                check: "\(name)'s gtid_slave_pos contains its received position; its replication threads untouched", undo: [], timeout: timeout)
        }
        var steps = [StepRecord]()
        for step in playbook.steps {
            let timeout = step.timeout
            switch step.action {
            case .applyReceived:
                steps += sources.map { applyReceived($0, timeout: timeout) }
            case .catchUp:
                guard let source = choice.catchUpFrom, let sourceInstance = instances[source] else { continue }
                steps.append(
                    StepRecord(
                        name: "\(c) catches up from \(source)", action: .catchUp, subject: source, hosts: [c, source],
                        statements: [
                            "\(c): \(SwitchoverSQL.stopReplication)", "\(c): \(SwitchoverSQL.moveTo(sourceInstance))",
                            "\(c): \(setNetTimeout)", "\(c): \(SwitchoverSQL.startReplication)",
                            "\(c): \(SwitchoverSQL.waitFor(position(source), timeout: timeout))",
                        ],
                        check: "\(c) applied everything \(source) received", undo: [], timeout: timeout))
            case .detachCandidate:
                steps.append(
                    StepRecord(
                        name: "\(c) stops replicating", action: .detachCandidate, hosts: [c],
                        statements: [
                            "\(c): \(SwitchoverSQL.stopReplication)", "\(c): \(SwitchoverSQL.resetReplication)",
                            "\(c): \(SwitchoverSQL.readBinlogPosition) (the fork point)",
                        ],
                        check: "\(c) has no replication channel", undo: [], timeout: timeout))
            case .commitPrimary:
                steps.append(
                    StepRecord(
                        name: "commit \(c) primary of \(section)", action: .commitPrimary, hosts: ["etcd"],
                        statements: [
                            "etcd: commit section \(section) primary \(c); \(deadPrimary) depooled and marked needs-rejoin at the fork point"
                        ],
                        check: "the source of truth names \(c) the primary of \(section)", undo: [], timeout: timeout))
            case .candidateWritable:
                steps.append(
                    StepRecord(
                        name: "\(c) writable", action: .candidateWritable, hosts: [deadPrimary, c],
                        statements: [
                            "\(deadPrimary): connect once more; if it answers, \(SwitchoverSQL.setReadOnly(true))",
                            "\(c): \(SwitchoverSQL.setReadOnly(false))",
                        ],
                        check: "\(c): @@read_only = 0", undo: [], timeout: timeout, pointOfNoReturn: true))
            case .repointReplicas:
                guard let candidateInstance = instances[c] else { continue }
                for r in repointed {
                    steps.append(
                        StepRecord(
                            name: "repoint \(r) under \(c)", action: .repointReplicas, subject: r, hosts: [r, c],
                            statements: [
                                "\(r): \(SwitchoverSQL.waitFor("<Gtid_IO_Pos of \(r)>", timeout: timeout))", "\(r): \(SwitchoverSQL.stopReplication)",
                                "\(r): \(SwitchoverSQL.moveTo(candidateInstance))", "\(r): \(setNetTimeout)",
                                "\(r): \(SwitchoverSQL.startReplication)",
                            ],
                            check: "\(r) replicates from \(c) (by server_id) with both threads running", undo: [], timeout: timeout))
                }
            case .exec:
                let names = [
                    "section": section, "old_primary": deadPrimary, "old_primary_host": instances[deadPrimary]?.host ?? "",
                    "old_primary_port": instances[deadPrimary].map { "\($0.port)" } ?? "", "candidate": c,
                    "candidate_host": instances[c]?.host ?? "", "candidate_port": instances[c].map { "\($0.port)" } ?? "",
                ]
                let command = (step.command ?? []).map { Switchover.substitute($0, names) }
                let undo = step.undo.map { $0.map { Switchover.substitute($0, names) } }
                steps.append(
                    StepRecord(
                        name: step.name ?? "run \(command.first ?? "")", action: .exec, subject: step.name, hosts: ["controller"],
                        statements: ["controller: " + command.joined(separator: " ")], check: "exit status 0",
                        undo: undo.map { ["controller: " + $0.joined(separator: " ")] } ?? [], timeout: timeout, command: command,
                        undoCommand: undo))
            default:
                continue
            }
        }
        return steps
    }

    static var setNetTimeout: String { "SET GLOBAL slave_net_timeout = \(slaveNetTimeout)" }
}
