import Foundation
import MariaDBClient
import Observation
import Operations
import Probing
import Topology

/// `marina instance rejoin`: an old primary that a failover replaced while it was dead comes
/// back as a read-only replica of the primary, if it holds nothing the primary lacks; its
/// `needs_rejoin` mark is cleared and it stays depooled for a human to repool. Three steps
/// (`RejoinPlan.rejoinSteps`), no point of no return, each undone on failure; every step and
/// undo reads the host first, so the next leader may run one again after a crash.
///
/// `record.candidate` is the rejoining instance; `record.finalPosition` where it starts
/// replicating; `record.channelSettings` the settings its channel copies from another replica.
/// `record.oldPrimary` stays nil: the primary is the section's (its lock keeps it so), and a
/// rollback that needs a human sets read-only only the instances the record names.
extension OperationRun {
    func prepareRejoin() async throws -> Bool {
        let live = await probeMembers()
        var oldest: GTIDPosition?
        if let primaryName = topology.sections[record.section]?.primary, let primary = topology.instances[primaryName],
            live[primaryName]?.reachable == true
        {
            oldest = try? await oldestBinlogGTIDs(of: primary, timeout: 5)
        }
        let (roles, refusals) = RejoinPlan.rejoinPreflight(
            instance: record.candidate, section: record.section, topology: topology, live: live, primaryOldestBinlogGTIDs: oldest)
        guard let roles else { return refuseUndoable(refusals) }
        do {
            try await context.hosts.verify([roles.instance, roles.primary], timeout: 5)
        } catch let error as HostError {
            return refuseUndoable(["\(error.host) could not be reached: \(error.message)"])
        }
        record.finalPosition = roles.startFrom.description
        record.channelSettings = await replicaChannelSettings(of: roles.primary, except: roles.instance.name, live: live)
        record.steps = RejoinPlan.rejoinSteps(roles, replicationUser: context.replicationUser, settings: record.channelSettings)
        return true
    }

    func refuseUndoable(_ refusals: [String]) -> Bool {
        record.state = .refused
        record.refusals = refusals
        return false
    }

    /// The section's primary, from the committed topology the run started with (the section's
    /// lock keeps it from changing while the operation runs).
    var sectionPrimary: Instance {
        get throws {
            guard let name = topology.sections[record.section]?.primary, !name.isEmpty else {
                throw ControllerError.stepFailed(host: "etcd", message: "section \(record.section) has no primary")
            }
            return try instance(name)
        }
    }

    func performRejoin(_ index: Int) async throws {
        let step = steps[index]
        let rejoining = try candidate
        switch step.action {
        case .oldPrimaryReadOnly:
            try await setReadOnly(true, on: rejoining, timeout: step.timeout)
        case .oldPrimaryReplicates:
            try await replicateFromPrimary(rejoining, timeout: step.timeout)
        case .commitPrimary:
            try await commitEdits(
                [.clearNeedsRejoin(instance: rejoining.name, section: record.section)],
                message: "operation \(record.id): \(rejoining.name) rejoined \(record.section) as a read-only replica of "
                    + "\(try sectionPrimary.name); needs_rejoin cleared, it stays depooled")
        default:
            throw ControllerError.stepFailed(host: "controller", message: "\(step.action.rawValue) is not a rejoin step")
        }
    }

    /// The rejoining instance replicates from the primary. Done already (a controller died
    /// after it) when its channel reads from the primary: only started if stopped, then checked.
    /// Otherwise its channel (if any) is forgotten, its binary log compared with the primary's
    /// again (it was writable until the first step: nothing may have been written since), and it
    /// starts from its own last GTID of each domain.
    private func replicateFromPrimary(_ rejoining: Instance, timeout: Double) async throws {
        let hosts = context.hosts
        let primary = try sectionPrimary
        if let channel = try await hosts.query(rejoining, "SHOW SLAVE STATUS", timeout: timeout).first,
            try await isChannel(channel, from: primary, timeout: timeout)
        {
            if channel["Slave_IO_Running"] != "Yes" || channel["Slave_SQL_Running"] != "Yes" {
                try await hosts.query(rejoining, SwitchoverSQL.startReplication, timeout: timeout)
            }
            try await verifyReplicates(rejoining, from: primary, timeout: timeout)
            return
        }
        try await forgetChannel(of: rejoining, timeout: timeout)
        let startFrom = try await startPosition(of: rejoining, primary: primary, timeout: timeout)
        if startFrom.description != record.finalPosition {
            context.logger.notice(
                "operation \(record.id): \(rejoining.name) starts from \(startFrom) (\(record.finalPosition ?? "nothing") at preflight)")
        }
        try await hosts.query(rejoining, SwitchoverSQL.setSlavePosition(startFrom.description), timeout: timeout)
        try await hosts.query(
            rejoining,
            SwitchoverSQL.replicateFrom(
                primary, user: context.replicationUser, password: context.replicationPassword, settings: record.channelSettings),
            timeout: timeout)
        try await hosts.query(rejoining, SwitchoverSQL.startReplication, timeout: timeout)
        try await verifyReplicates(rejoining, from: primary, timeout: timeout)
    }

    /// `Rejoin.assess` on the two binary log states read now: the position to start from, or
    /// the step fails naming the transactions the primary lacks.
    private func startPosition(of rejoining: Instance, primary: Instance, timeout: Double) async throws -> GTIDPosition {
        let query = "SELECT @@GLOBAL.gtid_binlog_state AS state, @@GLOBAL.server_id AS id"
        let own = try await context.hosts.query(rejoining, query, timeout: timeout).first
        let theirs = try await context.hosts.query(primary, query, timeout: timeout).first
        guard let ownText = own?["state"], let ownState = try? GTIDState(parsing: ownText), let id = own?["id"].flatMap({ UInt32($0) })
        else {
            throw ControllerError.stepFailed(host: rejoining.name, message: "its gtid_binlog_state or server_id could not be read")
        }
        guard let theirText = theirs?["state"], let theirState = try? GTIDState(parsing: theirText) else {
            throw ControllerError.stepFailed(host: primary.name, message: "its gtid_binlog_state could not be read")
        }
        switch Rejoin.assess(oldPrimaryBinlogState: ownState, oldPrimaryServerID: id, newPrimaryBinlogState: theirState) {
        case .clean(let startFrom):
            return startFrom
        case .diverged(let transactions):
            throw ControllerError.stepFailed(
                host: rejoining.name, message: RejoinPlan.divergedRefusal(rejoining.name, primary: primary.name, transactions: transactions))
        }
    }

    /// `STOP SLAVE` and `RESET SLAVE ALL` when the instance has a channel, then checked gone.
    private func forgetChannel(of instance: Instance, timeout: Double) async throws {
        guard try await context.hosts.query(instance, "SHOW SLAVE STATUS", timeout: timeout).first != nil else { return }
        try await context.hosts.query(instance, SwitchoverSQL.stopReplication, timeout: timeout)
        try await context.hosts.query(instance, SwitchoverSQL.resetReplication, timeout: timeout)
        guard try await context.hosts.query(instance, "SHOW SLAVE STATUS", timeout: timeout).first == nil else {
            throw ControllerError.stepFailed(host: instance.name, message: "still has a replication channel after RESET SLAVE ALL")
        }
    }

    func undoRejoin(_ index: Int) async throws {
        let step = steps[index]
        let rejoining = try candidate
        let timeout = max(step.timeout, 5)
        switch step.action {
        case .oldPrimaryReadOnly:
            break  // it stays read-only: safe, and what a human expects of an instance out of service
        case .oldPrimaryReplicates:
            try await forgetChannel(of: rejoining, timeout: timeout)
        case .commitPrimary:
            let committed = try await context.store.committedTopology()
            guard committed?.instances[rejoining.name]?.sections[record.section]?.needsRejoin == nil else { return }
            guard let mark = RejoinPlan.rejoinMark(in: step) ?? topology.instances[rejoining.name]?.sections[record.section]?.needsRejoin else {
                throw ControllerError.stepFailed(host: "controller", message: "the mark to set again on \(rejoining.name) is not in the journal")
            }
            try await commitEdits(
                [.markNeedsRejoin(instance: rejoining.name, section: record.section, mark: mark)],
                message: "operation \(record.id) rolled back: \(rejoining.name) marked needs-rejoin again (\(mark))")
        default:
            break
        }
    }

    /// After a rollback: the instance has no replication channel and is read-only (or cannot be
    /// reached, noted for a human), and the source of truth marks it needs-rejoin again.
    func verifyRejoinUndone() async throws {
        let rejoining = try candidate
        do {
            if try await context.hosts.query(rejoining, "SHOW SLAVE STATUS", timeout: 5).first != nil {
                throw ControllerError.stepFailed(host: rejoining.name, message: "still has a replication channel")
            }
            guard try await readOnly(rejoining, timeout: 5) else {
                throw ControllerError.stepFailed(host: rejoining.name, message: "is writable")
            }
        } catch let error as HostError where error.isUnreachable {
            record.attention.append(
                "\(error.host) could not be reached to verify the rollback (\(error.message)): check that it is read-only and does not replicate")
        }
        guard try await context.store.committedTopology()?.instances[rejoining.name]?.sections[record.section]?.needsRejoin != nil else {
            throw ControllerError.stepFailed(host: "etcd", message: "does not mark \(rejoining.name) needs-rejoin in \(record.section)")
        }
    }

    // MARK: Shared with the move

    /// The GTID list at the start of the instance's oldest binary log (`SHOW BINARY LOGS`, then
    /// its first events), nil when it has none or it does not parse.
    func oldestBinlogGTIDs(of instance: Instance, timeout: Double) async throws -> GTIDPosition? {
        guard let first = try await context.hosts.value(instance, "SHOW BINARY LOGS", column: "Log_name", timeout: timeout), !first.isEmpty else {
            return nil
        }
        let events = try await context.hosts.query(instance, RejoinPlan.firstEventsSQL(of: first), timeout: timeout)
        return RejoinPlan.gtidList(
            fromEvents: events.rows.map { row in
                Dictionary(uniqueKeysWithValues: events.columns.compactMap { column in row[column].map { (column, $0) } })
            })
    }

    /// The channel settings of a replica that reads from `source` (TLS, retries, heartbeat
    /// period), for a new channel to be like the others; Marina's heartbeat period alone when
    /// no other replica reads from it or none can be read.
    func replicaChannelSettings(of source: Instance, except: String, live: [String: Observation]) async -> ReplicationChannelSettings {
        let fallback = ReplicationChannelSettings(heartbeatPeriod: Double(FailoverPlan.heartbeatPeriod))
        guard let sourceID = live[source.name]?.serverID else { return fallback }
        let siblings = live.values.filter { observation in
            observation.instance != except && observation.instance != source.name && observation.replication.first?.sourceServerID == sourceID
        }.map(\.instance).sorted()
        for name in siblings {
            guard let sibling = topology.instances[name] else { continue }
            do {
                guard let channel = try await context.hosts.query(sibling, "SHOW SLAVE STATUS", timeout: 5).first else { continue }
                let period = try await context.hosts.value(sibling, "SHOW GLOBAL STATUS LIKE 'Slave_heartbeat_period'", column: "Value", timeout: 5)
                var row = [String: String]()
                for column in ReplicationChannelSettings.columns { row[column] = channel[column] }
                return ReplicationChannelSettings(channel: row, heartbeatPeriod: period)
            } catch {
                continue
            }
        }
        return fallback
    }

    /// One instance read directly, as `probeMembers` reads each member.
    func probe(_ instance: Instance, shard: String, datacenter: String) async -> Observation {
        let prober = Prober(
            instance: ProbeTarget(name: instance.name, shard: shard),
            configuration: await context.hosts.configuration(for: instance, readTimeout: 2),
            heartbeat: HeartbeatTable(datacenter: datacenter), agent: "marina-controller", agentStartedAt: Date(),
            connector: context.hosts.connector)
        let observation = await prober.probe(now: Date())
        await prober.disconnect()
        return observation
    }
}
