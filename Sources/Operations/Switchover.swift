import Foundation
import Observation
import SQLText
import Topology

/// The instances a switchover acts on, decided by preflight.
public struct SwitchoverRoles: Sendable, Equatable {
    public var section: Section
    public var oldPrimary: Instance
    public var candidate: Instance
    /// Replicas that replicate from the old primary and move under the candidate in phase 1.
    public var replicasToMove: [Instance]
    /// Replicas the DBA skipped: depooled with the section going read-only, left where they are.
    public var skipped: [Instance]
}

/// The SQL of every switchover step, built once for the plan (with the password hidden) and
/// once for running it.
public enum SwitchoverSQL {
    public static let passwordPlaceholder = "<from the credentials file>"

    public static func setReadOnly(_ on: Bool) -> String { "SET GLOBAL read_only = \(on ? "ON" : "OFF")" }
    public static let readBinlogPosition = "SELECT @@GLOBAL.gtid_binlog_pos AS pos"
    public static let readSlavePosition = "SELECT @@GLOBAL.gtid_slave_pos AS pos"
    public static let stopReplication = "STOP SLAVE"
    public static let startReplication = "START SLAVE"
    public static let resetReplication = "RESET SLAVE ALL"

    public static func waitFor(_ position: String, timeout: Double) -> String {
        "SELECT MASTER_GTID_WAIT(\(SQL.quote(position)), \(timeout)) AS waited"
    }

    /// Points an instance that already replicates at another source; the user and password it
    /// has are kept. The source sends a heartbeat every `FailoverPlan.heartbeatPeriod` seconds
    /// when it has nothing else to send, so that a silent death shows within `slave_net_timeout`.
    public static func moveTo(_ source: Instance) -> String {
        "CHANGE MASTER TO MASTER_HOST = \(SQL.quote(source.host)), MASTER_PORT = \(source.port), MASTER_USE_GTID = slave_pos, "
            + "MASTER_HEARTBEAT_PERIOD = \(FailoverPlan.heartbeatPeriod)"
    }

    public static func setSlavePosition(_ position: String) -> String { "SET GLOBAL gtid_slave_pos = \(SQL.quote(position))" }

    /// Makes an instance that does not replicate a replica of `source`, with the replication
    /// account and the channel settings the candidate had (TLS, connect retry, heartbeat
    /// period). The password is a `Secret`: the statement shows `<secret>` wherever it is
    /// printed; with none (a plan), it says where the password comes from.
    public static func replicateFrom(
        _ source: Instance, user: String, password: Secret?,
        settings: ReplicationChannelSettings? = nil
    ) -> SQLStatement {
        let options = settings.map { ", " + $0.changeMasterOptions } ?? ""
        return """
            CHANGE MASTER TO MASTER_HOST = \(SQL.quote(source.host)), MASTER_PORT = \(source.port), MASTER_USER = \(SQL.quote(user)), \
            MASTER_PASSWORD = \(secret: password, otherwise: passwordPlaceholder), MASTER_USE_GTID = slave_pos\(options)
            """
    }
}

public enum Switchover {
    /// Checks a switchover request against the committed topology and the live state of every
    /// member (read from the servers just before), and decides who does what. Refusals name
    /// the instance and what is wrong; an empty list means the switchover may start.
    public static func preflight(
        _ record: OperationRecord, playbook: Playbook, topology: Topology,
        live: [String: Observation]
    ) -> (roles: SwitchoverRoles?, refusals: [String]) {
        var refusals = [String]()
        guard let section = topology.sections[record.section] else {
            return (nil, ["unknown section \(record.section)"])
        }
        guard section.isInitialized, let oldPrimary = topology.instances[section.primary] else {
            return (nil, ["section \(section.name) has no primary"])
        }
        guard let candidate = topology.instances[record.candidate] else {
            return (nil, ["unknown instance \(record.candidate)"])
        }
        if candidate.name == oldPrimary.name { return (nil, ["\(candidate.name) is already the primary of \(section.name)"]) }
        guard candidate.sections[section.name] != nil else {
            return (nil, ["\(candidate.name) is not configured in section \(section.name)"])
        }
        if !candidate.candidatePrimary {
            refusals.append("\(candidate.name) is not a configured candidate primary (candidate_primary is false)")
        }
        let members = topology.members(of: section.name).map(\.instance)
        for name in record.skipReplicas where !members.contains(where: { $0.name == name }) || name == oldPrimary.name || name == candidate.name {
            refusals.append("--skip-replica \(name): not a replica of \(section.name) other than the candidate")
        }

        // The old primary: reachable, writable, not itself replicating.
        let primaryState = live[oldPrimary.name]
        if let problem = unreachable(oldPrimary.name, primaryState) {
            refusals.append(problem)
        } else if let primaryState {
            if primaryState.readOnly != false { refusals.append("the primary \(oldPrimary.name) is read-only: there is no writer to switch from") }
            if let channel = primaryState.replication.first {
                refusals.append("the primary \(oldPrimary.name) replicates from \(channel.sourceHost):\(channel.sourcePort): not supported")
            }
            if primaryState.gtidBinlogState == nil {
                refusals.append("the primary \(oldPrimary.name) gtid_binlog_state is unknown: errant transactions cannot be ruled out")
            }
        }

        // The candidate: a direct, running, caught-up replica with no errant transactions, logging
        // what it replicates (the replicas moved under it read the primary's transactions from its
        // binary log), in the primary's binlog format.
        let candidateState = live[candidate.name]
        if let problem = unreachable(candidate.name, candidateState) {
            refusals.append(problem)
        } else if let candidateState {
            if let channel = candidateState.replication.first {
                if !replicates(channel, from: oldPrimary, primaryState: primaryState) {
                    refusals.append(
                        "\(candidate.name) replicates from \(channel.sourceHost):\(channel.sourcePort), not directly from the primary \(oldPrimary.name)"
                    )
                }
                if !channel.isRunning {
                    refusals.append("\(candidate.name) replication is not running (IO \(channel.ioThread), SQL \(channel.sqlThread))")
                }
                if let behind = channel.secondsBehindMaster, Double(behind) > playbook.options.maxLag {
                    refusals.append("\(candidate.name) lags \(behind) s behind its primary (limit \(Seconds.format(playbook.options.maxLag)) s)")
                } else if channel.secondsBehindMaster == nil && channel.isRunning {
                    refusals.append("\(candidate.name) reports no replication lag (Seconds_Behind_Master is NULL)")
                }
            } else {
                refusals.append("\(candidate.name) does not replicate")
            }
            if let lag = candidateState.heartbeatLag, lag > playbook.options.maxLag {
                refusals.append("\(candidate.name) heartbeat lag is \(Seconds.format(lag)) s (limit \(Seconds.format(playbook.options.maxLag)) s)")
            }
            if let problem = errantTransactions(candidate.name, candidateState, primary: oldPrimary.name, primaryState) {
                refusals.append(problem)
            }
            if candidateState.logBin != true { refusals.append("\(candidate.name) has no binary log (log_bin is OFF)") }
            switch candidateState.logSlaveUpdates {
            case true?: break
            case false?:
                refusals.append(
                    "\(candidate.name) has log_slave_updates OFF: replicas moved under it would not find the primary's transactions in its binary log"
                )
            case nil: refusals.append("\(candidate.name) log_slave_updates is unknown (not read from the server)")
            }
            if let format = candidateState.binlogFormat, let primaryFormat = primaryState?.binlogFormat, format != primaryFormat {
                refusals.append("\(candidate.name) binlog_format is \(format), the primary's is \(primaryFormat)")
            }
            if candidateState.readOnly == false { refusals.append("\(candidate.name) is writable already: two writers") }
        }

        // The commit of the new primary, inside the window, must pass the source of truth's
        // rules (a depooled candidate would not): checked now, before anything changes.
        if let switched = try? topology.applying(.setPrimary(section: section.name, instance: candidate.name)) {
            for issue in topology.issuesIntroduced(by: switched) {
                refusals.append("the source of truth would refuse \(candidate.name) as the primary of \(section.name): \(issue)")
            }
        }

        // Every other replica: reachable and replicating, unless skipped.
        var replicasToMove = [Instance]()
        var skipped = [Instance]()
        for member in members where member.name != oldPrimary.name && member.name != candidate.name {
            if record.skipReplicas.contains(member.name) {
                skipped.append(member)
                continue
            }
            let state = live[member.name]
            if let problem = unreachable(member.name, state) {
                refusals.append(problem + " (skip it with --skip-replica \(member.name), which depools it)")
                continue
            }
            guard let channel = state?.replication.first else {
                refusals.append("\(member.name) does not replicate (skip it with --skip-replica \(member.name), which depools it)")
                continue
            }
            if !channel.isRunning {
                refusals.append(
                    "\(member.name) replication is stopped (IO \(channel.ioThread), SQL \(channel.sqlThread)); "
                        + "start it or skip it with --skip-replica \(member.name), which depools it")
                continue
            }
            if replicates(channel, from: oldPrimary, primaryState: primaryState) {
                replicasToMove.append(member)
                if let state, let problem = errantTransactions(member.name, state, primary: oldPrimary.name, primaryState) {
                    refusals.append(problem)
                }
            }
        }
        guard refusals.isEmpty else { return (nil, refusals) }
        return (
            SwitchoverRoles(
                section: section, oldPrimary: oldPrimary, candidate: candidate, replicasToMove: replicasToMove,
                skipped: skipped), []
        )
    }

    private static func unreachable(_ name: String, _ state: Observation?) -> String? {
        guard let state else { return "\(name) could not be read" }
        guard state.reachable, state.error == nil else { return "\(name) is unreachable: \(state.error ?? "no answer")" }
        return nil
    }

    /// Transactions the replica `name` has and the primary never had, from both instances'
    /// `gtid_binlog_state` (`gtid_binlog_pos` keeps only the last GTID of each domain, so an
    /// errant transaction followed by replicated ones does not show there). A replica whose
    /// state is unknown is refused too: unknown is not "none". Nil when there is nothing to
    /// say, or when the primary's state is unknown (its own refusal says so).
    private static func errantTransactions(_ name: String, _ state: Observation, primary: String, _ primaryState: Observation?) -> String? {
        guard let primaryState, primaryState.gtidBinlogState != nil else { return nil }
        guard let errant = state.errantTransactions(comparedWith: primaryState) else {
            return "\(name) gtid_binlog_state is unknown: errant transactions cannot be ruled out"
        }
        guard !errant.isEmpty else { return nil }
        return "\(name) has errant transactions \(errant.map(\.description).joined(separator: ",")) that the primary \(primary) lacks "
            + "(in its gtid_binlog_state)"
    }

    private static func replicates(_ channel: ReplicationChannel, from primary: Instance, primaryState: Observation?) -> Bool {
        if let source = channel.sourceServerID, let id = primaryState?.serverID { return source == id }
        return channel.sourceHost == primary.host && channel.sourcePort == primary.port
    }

    /// The plan: the playbook's steps made concrete for these roles, with every host and the
    /// exact SQL. `finalPosition` is unknown until the flip; the plan shows where it goes.
    public static func plan(_ playbook: Playbook, roles: SwitchoverRoles, reason: String, replicationUser: String) -> [StepRecord] {
        let section = roles.section.name
        let primary = roles.oldPrimary
        let candidate = roles.candidate
        let p = primary.name
        let c = candidate.name
        let finalPosition = "<final position>"
        var steps = [StepRecord]()
        for step in playbook.steps {
            let timeout = step.timeout
            switch step.action {
            case .moveReplicas:
                for replica in roles.replicasToMove {
                    let r = replica.name
                    steps.append(
                        StepRecord(
                            name: "move \(r) under \(c)", action: .moveReplicas, subject: r, hosts: [r, c],
                            statements: [
                                "\(r): \(SwitchoverSQL.stopReplication)", "\(r): \(SwitchoverSQL.readSlavePosition)",
                                "\(c): \(SwitchoverSQL.waitFor("<gtid_slave_pos of \(r)>", timeout: timeout))",
                                "\(r): \(SwitchoverSQL.moveTo(candidate))", "\(r): \(SwitchoverSQL.startReplication)",
                            ],
                            check: "\(r) replicates from \(c) with both threads running and applies \(c)'s gtid_binlog_pos",
                            undo: [
                                "\(r): \(SwitchoverSQL.stopReplication)", "\(r): \(SwitchoverSQL.moveTo(primary))",
                                "\(r): \(SwitchoverSQL.startReplication)",
                            ],
                            timeout: timeout))
                }
            case .sectionReadOnly:
                let depools = roles.skipped.map { " and depool \($0.name)" }.joined()
                steps.append(
                    StepRecord(
                        name: "section \(section) read-only", action: .sectionReadOnly, hosts: ["etcd"],
                        statements: ["etcd: commit section \(section) read-only \"\(readOnlyReason(reason))\"\(depools)"],
                        check: "the generated configuration marks \(section) read-only",
                        undo: ["etcd: commit section \(section) as it was\(roles.skipped.isEmpty ? "" : ", skipped replicas pooled as they were")"],
                        timeout: timeout))
            case .waitPropagation:
                steps.append(
                    StepRecord(
                        name: "wait for propagation", action: .waitPropagation, hosts: [],
                        statements: ["wait \(Seconds.format(playbook.options.propagationWait)) s"], check: "", undo: [],
                        timeout: playbook.options.propagationWait + timeout))
            case .oldPrimaryReadOnly:
                steps.append(
                    StepRecord(
                        name: "\(p) read-only", action: .oldPrimaryReadOnly, hosts: [p],
                        statements: ["\(p): \(SwitchoverSQL.setReadOnly(true))"], check: "\(p): @@read_only = 1",
                        undo: ["\(p): \(SwitchoverSQL.setReadOnly(false))"], timeout: timeout))
            case .readFinalPosition:
                steps.append(
                    StepRecord(
                        name: "read \(p)'s final position", action: .readFinalPosition, hosts: [p],
                        statements: ["\(p): \(SwitchoverSQL.readBinlogPosition)"], check: "a well-formed GTID position",
                        undo: [], timeout: timeout))
            case .waitCatchUp:
                steps.append(
                    StepRecord(
                        name: "\(c) catches up", action: .waitCatchUp, hosts: [c],
                        statements: ["\(c): \(SwitchoverSQL.waitFor(finalPosition, timeout: timeout))"],
                        check: "MASTER_GTID_WAIT returns 0", undo: [], timeout: timeout))
            case .detachCandidate:
                steps.append(
                    StepRecord(
                        name: "detach \(c)", action: .detachCandidate, hosts: [c],
                        statements: ["\(c): \(SwitchoverSQL.stopReplication)"], check: "\(c): both replication threads stopped",
                        undo: ["\(c): \(SwitchoverSQL.startReplication)"], timeout: timeout))
            case .commitPrimary:
                steps.append(
                    StepRecord(
                        name: "commit \(c) as primary of \(section)", action: .commitPrimary, hosts: ["etcd"],
                        statements: ["etcd: commit section \(section) primary \(c) (compare-and-swap on the committed head)"],
                        check: "the transaction succeeded", undo: ["etcd: commit section \(section) primary \(p)"],
                        timeout: timeout))
            case .candidateWritable:
                steps.append(
                    StepRecord(
                        name: "\(c) writable", action: .candidateWritable, hosts: [c],
                        statements: ["\(c): \(SwitchoverSQL.setReadOnly(false))"], check: "\(c): @@read_only = 0", undo: [],
                        timeout: timeout, pointOfNoReturn: true))
            case .oldPrimaryReplicates:
                steps.append(
                    StepRecord(
                        name: "\(p) replicates from \(c)", action: .oldPrimaryReplicates, hosts: [p],
                        statements: [
                            "\(p): \(SwitchoverSQL.setSlavePosition(finalPosition))",
                            "\(p): \(SwitchoverSQL.replicateFrom(candidate, user: replicationUser, password: nil).shown)",
                            "\(p): \(SwitchoverSQL.startReplication)",
                        ],
                        check: "\(p) replicates from \(c) with both threads running", undo: [], timeout: timeout))
            case .resetCandidateReplication:
                steps.append(
                    StepRecord(
                        name: "\(c) forgets its replication", action: .resetCandidateReplication, hosts: [c],
                        statements: ["\(c): \(SwitchoverSQL.resetReplication)"], check: "", undo: [], timeout: timeout))
            case .sectionReadWrite:
                steps.append(
                    StepRecord(
                        name: "section \(section) read-write", action: .sectionReadWrite, hosts: ["etcd"],
                        statements: ["etcd: commit section \(section) read-write"],
                        check: "the generated configuration no longer marks \(section) read-only", undo: [], timeout: timeout))
            case .exec:
                let names = substitutions(roles)
                let command = (step.command ?? []).map { substitute($0, names) }
                let undo = step.undo.map { $0.map { substitute($0, names) } }
                steps.append(
                    StepRecord(
                        name: step.name ?? "run \(command.first ?? "")", action: .exec, subject: step.name,
                        hosts: ["controller"], statements: ["controller: " + command.joined(separator: " ")],
                        check: "exit status 0", undo: undo.map { ["controller: " + $0.joined(separator: " ")] } ?? [],
                        timeout: timeout, command: command, undoCommand: undo))
            case .applyReceived, .catchUp, .repointReplicas, .applyGrants, .applyVariables:
                continue  // failover actions: a switchover playbook with one is refused on load
            }
        }
        return steps
    }

    public static func readOnlyReason(_ reason: String) -> String {
        reason.isEmpty ? "Primary switchover by Marina" : "Primary switchover by Marina: \(reason)"
    }

    static func substitutions(_ roles: SwitchoverRoles) -> [String: String] {
        [
            "section": roles.section.name, "old_primary": roles.oldPrimary.name, "old_primary_host": roles.oldPrimary.host,
            "old_primary_port": "\(roles.oldPrimary.port)", "candidate": roles.candidate.name, "candidate_host": roles.candidate.host,
            "candidate_port": "\(roles.candidate.port)",
        ]
    }

    static func substitute(_ text: String, _ names: [String: String]) -> String {
        names.reduce(text) { $0.replacingOccurrences(of: "{\($1.key)}", with: $1.value) }
    }
}

/// Seconds for people: whole numbers without a fraction, others to one decimal.
public enum Seconds {
    public static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(format: "%.1f", seconds)
    }
}
