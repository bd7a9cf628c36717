import Observation
import SQLText
import Topology

/// The plans of `marina instance rejoin` and `marina instance move`: the preflight (the request,
/// the committed topology and the live state of the members read just before, giving the roles
/// or every refusal) and the steps, each with its hosts, exact SQL, check and undo. Pure: the
/// controller reads the servers and hands what it read to these functions.
///
/// Neither operation has a playbook: their steps are fixed, with the timeouts of `Timeouts`,
/// and neither has a point of no return (every step can be undone).
public enum RejoinPlan {
    /// Step timeouts, in seconds.
    public enum Timeouts {
        /// `SET GLOBAL read_only = ON` and its read-back.
        public static let readOnly: Double = 10
        /// The rejoining instance replicates from the primary, both threads running, and applies
        /// the primary's `gtid_binlog_pos` as it was when checked: what the primary wrote while
        /// the instance was down must be applied within this time.
        public static let replicate: Double = 60
        /// A commit to the source of truth.
        public static let commit: Double = 10
        /// A replica moves: the new source applies the mover's position, the mover connects to
        /// it and applies the new source's `gtid_binlog_pos`.
        public static let move: Double = 30
    }

    // MARK: Rejoin

    /// Who takes part in a rejoin.
    public struct RejoinRoles: Equatable, Sendable {
        /// The old primary coming back as a replica.
        public var instance: Instance
        public var section: String
        /// The section's primary now, which it will replicate from.
        public var primary: Instance
        /// The mark the failover left, cleared at the end (and set again by a rollback).
        public var mark: RejoinMark
        /// Where it starts replicating: its own last GTID of each domain (`Rejoin.assess`).
        public var startFrom: GTIDPosition

        public init(instance: Instance, section: String, primary: Instance, mark: RejoinMark, startFrom: GTIDPosition) {
            self.instance = instance
            self.section = section
            self.primary = primary
            self.mark = mark
            self.startFrom = startFrom
        }
    }

    /// Checks a rejoin of `name` in `section` against the committed topology and the live state
    /// (`live`, by instance name: the instance and the primary at least, read just before), and
    /// `primaryOldestBinlogGTIDs`, the GTID list at the start of the primary's oldest binary
    /// log (nil when it could not be read). Refused, with every reason that applies, when: the
    /// section, the instance or its membership is unknown; the instance is the primary; it has no
    /// `needs_rejoin` mark; it or the primary cannot be reached or their binary log states are
    /// unknown; it holds transactions the primary never received (`Rejoin.assess`); or the
    /// primary no longer has the binary logs it needs (`InstanceMove.refusals`).
    public static func rejoinPreflight(
        instance name: String, section sectionName: String, topology: Topology, live: [String: Observation],
        primaryOldestBinlogGTIDs: GTIDPosition?
    ) -> (roles: RejoinRoles?, refusals: [String]) {
        guard let section = topology.sections[sectionName] else { return (nil, ["unknown section \(sectionName)"]) }
        guard section.isInitialized, let primary = topology.instances[section.primary] else {
            return (nil, ["section \(sectionName) has no primary"])
        }
        guard let instance = topology.instances[name] else { return (nil, ["unknown instance \(name)"]) }
        guard let membership = instance.sections[sectionName] else { return (nil, ["\(name) is not a member of section \(sectionName)"]) }
        if name == primary.name {
            return (nil, ["\(name) is the primary of \(sectionName): there is nothing to rejoin"])
        }
        guard let mark = membership.needsRejoin else {
            return (
                nil,
                [
                    "\(name) has no needs_rejoin mark in \(sectionName): no failover left it behind "
                        + "(a replica changes source with `marina instance move`)"
                ]
            )
        }

        var refusals = [String]()
        let own = live[name]
        if own?.reachable != true {
            refusals.append(
                "\(name) cannot be reached\(own?.error.map { " (\($0))" } ?? ""): start it, then rejoin it; it stays depooled and marked")
        } else {
            if own?.gtidBinlogState == nil { refusals.append("\(name)'s gtid_binlog_state is unknown: its history cannot be compared") }
            if own?.serverID == nil { refusals.append("\(name)'s server_id is unknown") }
        }
        let source = live[primary.name]
        if source?.reachable != true {
            refusals.append("the primary \(primary.name) cannot be reached\(source?.error.map { " (\($0))" } ?? "")")
        } else if source?.gtidBinlogState == nil {
            refusals.append("the primary \(primary.name)'s gtid_binlog_state is unknown: \(name)'s history cannot be compared with it")
        }
        guard refusals.isEmpty, let oldState = own?.gtidBinlogState, let serverID = own?.serverID, let newState = source?.gtidBinlogState
        else { return (nil, refusals) }
        guard serverID >= 0 && serverID <= Int(UInt32.max) else { return (nil, ["\(name)'s server_id \(serverID) is not a server id"]) }

        switch Rejoin.assess(oldPrimaryBinlogState: oldState, oldPrimaryServerID: UInt32(serverID), newPrimaryBinlogState: newState) {
        case .diverged(let transactions):
            return (nil, [divergedRefusal(name, primary: primary.name, transactions: transactions)])
        case .clean(let startFrom):
            let purged = InstanceMove.refusals(
                mover: name, moverSlavePosition: startFrom, moverSection: sectionName, newSource: primary.name, newSourceSection: sectionName,
                newSourceIsPrimary: true, newSourceLogBin: source?.logBin, newSourceLogSlaveUpdates: nil,
                newSourceOldestBinlogGTIDs: primaryOldestBinlogGTIDs, newSourceReplicatesFromMover: false)
            guard purged.isEmpty else { return (nil, purged) }
            return (RejoinRoles(instance: instance, section: sectionName, primary: primary, mark: mark, startFrom: startFrom), [])
        }
    }

    /// The refusal of an old primary that holds transactions the primary never received.
    public static func divergedRefusal(_ name: String, primary: String, transactions: [String]) -> String {
        "\(name) holds transactions the primary \(primary) never received: \(transactions.joined(separator: ", ")). "
            + "It must not replicate as it is: a human decides whether to rebuild it or to undo those transactions (flashback); "
            + "it stays depooled and marked needs-rejoin"
    }

    /// The three steps of a rejoin: the instance read-only; it replicates from the primary from
    /// `startFrom`; its mark cleared in the source of truth (it stays depooled). The channel gets
    /// `settings` (those of another replica of the primary: TLS, retries, heartbeat period).
    ///
    /// No point of no return: the first step's undo is nothing (the instance stays read-only,
    /// which is safe); the second's stops and forgets the channel; the third's sets the same mark
    /// again, kept in the step's `undo_command` so that the next leader has it after a crash.
    public static func rejoinSteps(_ roles: RejoinRoles, replicationUser: String, settings: ReplicationChannelSettings?) -> [StepRecord] {
        let n = roles.instance.name
        let p = roles.primary.name
        let s = roles.section
        let start = roles.startFrom.description
        return [
            StepRecord(
                name: "\(n) read-only", action: .oldPrimaryReadOnly, subject: n, hosts: [n],
                statements: ["\(n): \(SwitchoverSQL.setReadOnly(true))"], check: "\(n): @@read_only = 1", undo: [],
                timeout: Timeouts.readOnly),
            StepRecord(
                name: "\(n) replicates from \(p)", action: .oldPrimaryReplicates, subject: n, hosts: [n, p],
                statements: [
                    "\(n): \(SwitchoverSQL.stopReplication) (if it has a channel)", "\(n): \(SwitchoverSQL.resetReplication) (if it has a channel)",
                    "\(n): SELECT @@GLOBAL.gtid_binlog_state (compared with \(p)'s again: nothing \(p) lacks)",
                    "\(n): \(SwitchoverSQL.setSlavePosition(start))",
                    "\(n): \(SwitchoverSQL.replicateFrom(roles.primary, user: replicationUser, password: nil, settings: settings))",
                    "\(n): \(SwitchoverSQL.startReplication)",
                ],
                check: "\(n) replicates from \(p) (by server_id) with both threads running and applies \(p)'s gtid_binlog_pos",
                undo: ["\(n): \(SwitchoverSQL.stopReplication)", "\(n): \(SwitchoverSQL.resetReplication)"], timeout: Timeouts.replicate),
            StepRecord(
                name: "clear \(n)'s needs_rejoin mark", action: .commitPrimary, subject: n, hosts: ["etcd"],
                statements: ["etcd: commit: \(n) in \(s) no longer needs a rejoin (it stays depooled)"],
                check: "the committed topology has no needs_rejoin mark on \(n) in \(s)",
                undo: ["etcd: commit \(n) in \(s) \(roles.mark)"], timeout: Timeouts.commit,
                undoCommand: markFields(roles.mark)),
        ]
    }

    private static let markTag = "needs_rejoin"

    private static func markFields(_ mark: RejoinMark) -> [String] {
        [markTag, mark.operation, mark.newPrimary, mark.forkPoint] + (mark.lastKnownPosition.map { [$0] } ?? [])
    }

    /// The mark a rejoin's last step clears, as the plan kept it (nil for any other step).
    public static func rejoinMark(in step: StepRecord) -> RejoinMark? {
        guard let fields = step.undoCommand, fields.count == 4 || fields.count == 5, fields[0] == markTag else { return nil }
        return RejoinMark(operation: fields[1], newPrimary: fields[2], forkPoint: fields[3], lastKnownPosition: fields.count == 5 ? fields[4] : nil)
    }

    // MARK: Move

    /// The reason recorded for a move when the DBA gives none: `move db1003 under db1002`.
    public static func moveReason(mover: String, newSource: String) -> String { "move \(mover) under \(newSource)" }

    /// Who takes part in a move.
    public struct MoveRoles: Equatable, Sendable {
        public var mover: Instance
        public var newSource: Instance
        /// The member it replicates from now, which a rollback points it back at.
        public var originalSource: Instance
        public var section: String
        /// The new source is the section's primary: it has every transaction the mover applied.
        public var newSourceIsPrimary: Bool

        public init(mover: Instance, newSource: Instance, originalSource: Instance, section: String, newSourceIsPrimary: Bool) {
            self.mover = mover
            self.newSource = newSource
            self.originalSource = originalSource
            self.section = section
            self.newSourceIsPrimary = newSourceIsPrimary
        }
    }

    /// Checks moving `mover` (a replica of `section`) under `newSource`, against the committed
    /// topology and the live state (`live`, by name: every member of the section, and the new
    /// source when it is not one), with the GTID list at the start of the new source's oldest
    /// binary log (nil when unknown). Refused, with every reason that applies, when:
    /// `InstanceMove.refusals` refuses (itself, another section, no binary log,
    /// `log_slave_updates` OFF, a cycle, purged binary logs); the mover is the primary, is not a
    /// member, needs a rejoin, cannot be reached or has no replication channel; its current
    /// source is not a member of the section (a rollback could not point it back); it already
    /// replicates from the new source; the new source needs a rejoin (it may hold writes nobody
    /// else has), cannot be reached, or is a replica whose replication does not run.
    ///
    /// The cycle check follows the chain of sources up from the new source through the live
    /// state, so a new source replicating from a replica of the mover is a cycle too.
    public static func movePreflight(
        mover moverName: String, newSource sourceName: String, section sectionName: String, topology: Topology,
        live: [String: Observation], newSourceOldestBinlogGTIDs: GTIDPosition?
    ) -> (roles: MoveRoles?, refusals: [String]) {
        guard let section = topology.sections[sectionName] else { return (nil, ["unknown section \(sectionName)"]) }
        guard section.isInitialized else { return (nil, ["section \(sectionName) has no primary"]) }
        var unknown = [String]()
        for name in [moverName, sourceName] where topology.instances[name] == nil { unknown.append("unknown instance \(name)") }
        guard unknown.isEmpty, let mover = topology.instances[moverName], let newSource = topology.instances[sourceName] else {
            return (nil, Array(Set(unknown)).sorted())
        }
        if moverName == section.primary {
            return (nil, ["\(moverName) is the primary of \(sectionName): it replicates from nobody (`marina switchover` moves the primary)"])
        }
        func sectionOf(_ instance: Instance) -> String? {
            instance.sections[sectionName] != nil ? sectionName : instance.sections.keys.sorted().first
        }
        let newSourceIsPrimary = sourceName == section.primary
        let moverLive = live[moverName]
        let sourceLive = live[sourceName]
        let sameSection = mover.sections[sectionName] != nil && newSource.sections[sectionName] != nil
        var refusals = [String]()
        if moverName == sourceName {
            return (nil, refusalsOfInstanceMove(mover, moverLive, sectionOf(mover), newSource, sourceLive, sectionOf(newSource), false, nil, false))
        }
        if let mark = mover.sections[sectionName]?.needsRejoin {
            refusals.append("\(moverName) \(mark) in \(sectionName): `marina instance rejoin \(moverName)` brings it back")
        }
        if let mark = newSource.sections[sectionName]?.needsRejoin {
            refusals.append("\(sourceName) \(mark) in \(sectionName): nothing may replicate from it until it has rejoined")
        }

        var originalSource: Instance?
        var unreachable = false
        if moverLive?.reachable != true {
            unreachable = true
            refusals.append("\(moverName) cannot be reached\(moverLive?.error.map { " (\($0))" } ?? "")")
        } else if let channel = moverLive?.replication.first {
            originalSource = source(of: channel, among: topology.members(of: sectionName).map(\.instance), live: live)
            if let original = originalSource {
                if original.name == sourceName { refusals.append("\(moverName) already replicates from \(sourceName): nothing to move") }
            } else {
                refusals.append(
                    "\(moverName) replicates from \(channel.sourceHost):\(channel.sourcePort), which is not a member of \(sectionName): "
                        + "it could not be pointed back there if the move failed")
            }
        } else {
            refusals.append("\(moverName) has no replication channel: it is not a replica to move")
        }
        if sourceLive?.reachable != true {
            unreachable = true
            refusals.append("\(sourceName) cannot be reached\(sourceLive?.error.map { " (\($0))" } ?? "")")
        }
        // What cannot be read is not refused again as unknown.
        if unreachable { return (nil, refusals) }

        // A replica with transactions the primary never had is not moved: a human decides first.
        let primaryLive = live[section.primary]
        for (name, observation) in [(moverName, moverLive), (sourceName, sourceLive)] where name != section.primary {
            guard let observation, let state = observation.gtidBinlogState, let primaryState = primaryLive?.gtidBinlogState else {
                refusals.append("\(name)'s or the primary's gtid_binlog_state is unknown: errant transactions cannot be ruled out")
                continue
            }
            let errant = state.errant(comparedWith: primaryState, primaryServerID: primaryLive?.serverID.flatMap(UInt32.init(exactly:)))
            if !errant.isEmpty {
                refusals.append(
                    "\(name) holds transactions the primary \(section.primary) never had: \(errant.map(\.description).joined(separator: ","))")
            }
        }

        var cycle = false
        if sameSection {
            if !newSourceIsPrimary {
                if let channel = sourceLive?.replication.first {
                    if !channel.isRunning {
                        refusals.append(
                            "\(sourceName) does not replicate (IO \(channel.ioThread), SQL \(channel.sqlThread)): "
                                + "\(moverName) would receive nothing more from it")
                    }
                } else {
                    refusals.append("\(sourceName) is not the primary and has no replication channel: \(moverName) would receive nothing from it")
                }
            }
            cycle = chain(from: sourceName, topology: topology, section: sectionName, live: live).contains(moverName)
        }
        refusals += refusalsOfInstanceMove(
            mover, moverLive, sectionOf(mover), newSource, sourceLive, sectionOf(newSource), newSourceIsPrimary, newSourceOldestBinlogGTIDs,
            cycle)
        guard refusals.isEmpty, let originalSource else { return (nil, refusals) }
        return (
            MoveRoles(
                mover: mover, newSource: newSource, originalSource: originalSource, section: sectionName, newSourceIsPrimary: newSourceIsPrimary),
            []
        )
    }

    /// `InstanceMove.refusals` with what was read.
    private static func refusalsOfInstanceMove(
        _ mover: Instance, _ moverLive: Observation?, _ moverSection: String?, _ newSource: Instance, _ sourceLive: Observation?,
        _ sourceSection: String?, _ newSourceIsPrimary: Bool, _ oldest: GTIDPosition?, _ cycle: Bool
    ) -> [String] {
        InstanceMove.refusals(
            mover: mover.name, moverSlavePosition: moverLive?.gtidSlavePos, moverSection: moverSection, newSource: newSource.name,
            newSourceSection: sourceSection, newSourceIsPrimary: newSourceIsPrimary, newSourceLogBin: sourceLive?.logBin,
            newSourceLogSlaveUpdates: sourceLive?.logSlaveUpdates, newSourceOldestBinlogGTIDs: oldest, newSourceReplicatesFromMover: cycle)
    }

    /// The member a replication channel reads from: by the `server_id` its IO thread saw (when
    /// it has connected), else by address.
    public static func source(of channel: ReplicationChannel, among members: [Instance], live: [String: Observation]) -> Instance? {
        if let id = channel.sourceServerID, id != 0, let member = members.first(where: { live[$0.name]?.serverID == id }) {
            return member
        }
        return members.first { $0.host == channel.sourceHost && $0.port == channel.sourcePort }
    }

    /// The names of the sources above `name`, nearest first, as the live state shows them
    /// (up to a member with no channel, one whose source is not a member, or a loop).
    public static func chain(from name: String, topology: Topology, section: String, live: [String: Observation]) -> [String] {
        let members = topology.members(of: section).map(\.instance)
        var names = [String]()
        var current = name
        while let channel = live[current]?.replication.first, let source = source(of: channel, among: members, live: live),
            source.name != name, !names.contains(source.name)
        {
            names.append(source.name)
            current = source.name
        }
        return names
    }

    /// The one step of a move: the mover stops, the new source applies what the mover applied
    /// (unless it is the primary, which has it all), the mover points at the new source from its
    /// own position and starts. Undone by pointing it back at its original source. `hosts` is
    /// `[mover, new source, original source]`, read back by `moveRoles(in:)`.
    public static func moveSteps(_ roles: MoveRoles) -> [StepRecord] {
        let m = roles.mover.name
        let o = roles.newSource.name
        var statements = ["\(m): \(SwitchoverSQL.stopReplication)", "\(m): \(SwitchoverSQL.readSlavePosition)"]
        if !roles.newSourceIsPrimary {
            statements.append("\(o): \(SwitchoverSQL.waitFor("<gtid_slave_pos of \(m)>", timeout: Timeouts.move))")
        }
        statements += ["\(m): \(SwitchoverSQL.moveTo(roles.newSource))", "\(m): \(SwitchoverSQL.startReplication)"]
        return [
            StepRecord(
                name: "move \(m) under \(o)", action: .moveReplicas, subject: m, hosts: [m, o, roles.originalSource.name],
                statements: statements,
                check: "\(m) replicates from \(o) (by server_id) with both threads running and applies \(o)'s gtid_binlog_pos",
                undo: [
                    "\(m): \(SwitchoverSQL.stopReplication)", "\(m): \(SwitchoverSQL.moveTo(roles.originalSource))",
                    "\(m): \(SwitchoverSQL.startReplication)",
                ],
                timeout: Timeouts.move)
        ]
    }

    /// The names a move step works on, as `moveSteps` wrote them (nil for any other step).
    public static func moveRoles(in step: StepRecord) -> (mover: String, newSource: String, originalSource: String)? {
        guard step.action == .moveReplicas, step.hosts.count == 3 else { return nil }
        return (step.hosts[0], step.hosts[1], step.hosts[2])
    }

    // MARK: Binary logs

    /// `SHOW BINLOG EVENTS` of the first two events of a binary log: the format description,
    /// then the GTID list (the binary log state when the file began).
    public static func firstEventsSQL(of file: String) -> String { "SHOW BINLOG EVENTS IN \(SQL.quote(file)) LIMIT 2" }

    /// The last GTID of each domain before a binary log began, from its first events
    /// (`firstEventsSQL`): the `Gtid_list` event's `Info`, such as `[0-1001-5,0-1002-9]` or `[]`.
    /// Nil when there is no such event or it does not parse.
    public static func gtidList(fromEvents rows: [[String: String]]) -> GTIDPosition? {
        guard let info = rows.first(where: { $0["Event_type"] == "Gtid_list" })?["Info"] else { return nil }
        let trimmed = info.filter { !$0.isWhitespace }
        guard trimmed.hasPrefix("["), trimmed.hasSuffix("]") else { return nil }
        guard let state = try? GTIDState(parsing: String(trimmed.dropFirst().dropLast())) else { return nil }
        return GTIDPosition(state.gtids)
    }
}
