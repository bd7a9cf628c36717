import EtcdClient
import Foundation
import Logging
import MariaDBClient
import Observation
import Operations
import Probing
import Topology
import TopologyStore

/// What an operation needs from the controller running it.
struct OperationContext: Sendable {
    let etcd: any CoordinationStore
    let store: TopologyStore
    let leadership: Leadership
    let hosts: Hosts
    let playbook: Playbook
    /// The controller's own MariaDB account: its sessions are never killed as privileged writers.
    let controllerUser: String
    let replicationUser: String
    let replicationPassword: Secret
    let mirror: ConfigMirror?
    let pauseBefore: String?
    let pauseAfter: String?
    let logger: Logger
    /// The failover playbook (`playbooks/failover.yaml`).
    var failoverPlaybook: Playbook = .standardFailover
    /// Connections of the settings account (`mariadb.settings_group`), for grant and variable
    /// sync; nil when none is configured (syncs are refused).
    var settingsHosts: Hosts?
    /// The sync playbooks (`playbooks/grant-sync.yaml`, `variable-sync.yaml`).
    var grantSyncPlaybook: Playbook = .standardGrantSync
    var variableSyncPlaybook: Playbook = .standardVariableSync
    /// How dead primaries are told and which sections fail over on their own.
    var failover = ControllerConfiguration.Failover()
    /// The failsafe mode's grants and promises, when `failover.failsafe_listen` is set.
    var failsafe: FailsafeDesk?
    /// What the leader's failover watch saw of each section's primary lease.
    var leaseSightings = LeaseSightings()

    var keys: StoreKeys { store.keys }
    var fence: LeaseFence { leadership.fence }
}

/// One switchover: lock, preflight, plan, then each step journaled before and after it runs,
/// with rollback of the completed steps if one fails before the point of no return. The
/// journal in etcd is the only state that matters: a controller that dies leaves enough in it
/// for `recover()` (on the next leader) to finish or roll back after re-reading the hosts.
///
/// The run is spread over files by concern: this one starts and runs forward; `+Flip` is the
/// window without a writer; `+Steps` each step's SQL and its undo; `+Rollback` rollback,
/// recovery and the ends that need a human; `+Journal` the journal and the source of truth.
actor OperationRun {
    var record: OperationRecord
    let context: OperationContext
    /// The committed topology the operation acts on (a failover reads it again once it holds the lock).
    var topology: Topology
    var pausedOnce = false
    /// `@@server_id` of each instance, read once: replication sources are compared by it.
    var serverIDs = [String: String]()
    /// The user names that write through `read_only` on the old primary, read in preflight:
    /// their sessions are killed in the flip.
    var privilegedUsers = [String]()
    /// What was committed when the flip's commit was prepared: a commit elsewhere meanwhile is
    /// told from one that changed this section by comparing with it.
    var flipBaseline: Topology?

    /// The etcd revision at which the request's journal was read (`start` only): taking the
    /// section's lock compares it, so a request the CLI withdrew meanwhile is never run.
    let requestRevision: Int64?

    init(record: OperationRecord, context: OperationContext, topology: Topology, requestRevision: Int64? = nil) {
        self.record = record
        self.context = context
        self.topology = topology
        self.requestRevision = requestRevision
    }

    var steps: [StepRecord] {
        get { record.steps }
        set { record.steps = newValue }
    }

    // MARK: Starting

    /// Handles a new request: a dry run plans and stops; a real one takes the section's lock,
    /// checks, plans and runs.
    func start() async throws {
        let request = requestCompares
        if record.dryRun {
            _ = try await prepare()
            if record.state != .refused { record.state = .planned }
            record.finishedAt = Date()
            do {
                try await journal([.delete(context.keys.request(record.id))], compares: request)
            } catch is RequestWithdrawn {
                context.logger.notice("operation \(record.id): the request was withdrawn before its plan was written")
            }
            return
        }
        try await pauseIfAsked(beforeLocking: ())
        record.state = .running
        record.controller = context.leadership.id
        record.startedAt = Date()
        let lock = context.keys.lock(record.section)
        try context.fence.check()
        let result = try await context.etcd.transaction(
            Transaction(
                compares: [await context.leadership.compare, .absent(lock)] + request,
                success: [
                    .put(lock, record.id), .put(context.keys.operation(record.id), try OperationJSON.encode(record)),
                    .delete(context.keys.request(record.id)),
                ],
                failure: [.get(context.keys.leader), .get(context.keys.operation(record.id)), .get(lock)]))
        if !result.succeeded {
            guard await leaderKeyIsOurs() else {
                await context.leadership.lost()
                throw ControllerError.notLeader
            }
            // Withdrawn by the CLI (or changed) since it was read: not this controller's to run or to answer.
            if let revision = requestRevision, result.results.count == 3, case .get(let range) = result.results[1],
                range.kvs.first?.modRevision != revision
            {
                context.logger.notice("operation \(record.id) was withdrawn before it took the lock of \(record.section); nothing done")
                return
            }
            var holder = "another operation"
            if case .get(let range) = result.results.last, let kv = range.kvs.first {
                holder = "operation " + String(decoding: kv.value, as: UTF8.self)
            }
            record.state = .refused
            record.refusals = [OperationRecord.busyRefusal(section: record.section, holder: holder)]
            record.finishedAt = Date()
            try await journal([.delete(context.keys.request(record.id))])
            ControllerInstruments.finished(record)
            return
        }
        guard try await prepare() else {
            try await finish()
            return
        }
        if let refusal = approvalRefusal() {
            // The new plan stays in the refused record, for the CLI to show what changed.
            _ = refuse([refusal])
            try await finish()
            return
        }
        try await journal()
        try await runForward()
    }

    /// The refusal of a request whose plan is not the one the DBA approved (`approved_plan`,
    /// the digest of the dry run the DBA was shown); nil when it is, or when none was given.
    func approvalRefusal() -> String? {
        guard let approved = record.approvedPlan else { return nil }
        let now = record.planDigest()
        guard approved != now else { return nil }
        return "the plan changed since it was approved (approved \(OperationRecord.shortDigest(approved)), "
            + "now \(OperationRecord.shortDigest(now))): review it again"
    }

    /// The request as it was read: its journal unchanged since.
    private var requestCompares: [Compare] {
        requestRevision.map { [.unchanged(context.keys.operation(record.id), since: $0)] } ?? []
    }

    /// Preflight against the live state of every member, then the plan. False if refused.
    func prepare() async throws -> Bool {
        switch record.kind {
        case "failover": return try await prepareFailover()
        case "rejoin": return try await prepareRejoin()
        case "move": return try await prepareMove()
        case "grant-sync", "variable-sync": return try await prepareSync()
        default: break
        }
        let live = await probeMembers()
        let (roles, refusals) = Switchover.preflight(record, playbook: context.playbook, topology: topology, live: live)
        guard let roles else { return refuse(refusals) }
        // Each connection kept since an earlier operation is checked (or reopened) now, before
        // the first statement, so that one the server closed meanwhile does not fail a step.
        do {
            try await context.hosts.verify([roles.oldPrimary, roles.candidate] + roles.replicasToMove, timeout: 5)
        } catch let error as HostError {
            return refuse(["\(error.host) could not be reached: \(error.message)"])
        }
        let sessions = try await sessionRefusals(on: roles.oldPrimary)
        guard sessions.isEmpty else { return refuse(sessions) }
        do {
            privilegedUsers = try await context.hosts.query(roles.oldPrimary, ServerSessions.privilegedUsersSQL, timeout: 5).rows
                .compactMap { $0["name"] }.filter { $0 != context.controllerUser }
        } catch let error as HostError {
            return refuse(["the accounts that write through read_only on \(roles.oldPrimary.name) could not be read: \(error.message)"])
        }
        // Read now, not inside the window: the position checks of the flip compare by it.
        do {
            _ = try await serverID(of: roles.oldPrimary, timeout: 5)
        } catch {
            return refuse(["\(roles.oldPrimary.name) could not be read: \(describe(error).message)"])
        }
        record.oldPrimary = roles.oldPrimary.name
        record.previousReadOnlyReason = roles.section.readOnly ? roles.section.readOnlyReason : nil
        do {
            record.channelSettings = try await channelSettings(of: roles.candidate)
        } catch let error as HostError {
            return refuse(["the replication settings of \(roles.candidate.name) could not be read: \(error.message)"])
        }
        record.steps = Switchover.plan(context.playbook, roles: roles, reason: record.reason, replicationUser: context.replicationUser)
        return true
    }

    func refuse(_ refusals: [String]) -> Bool {
        record.state = .refused
        record.refusals = refusals
        return false
    }

    /// Sessions on the old primary that would hold `read_only = ON` back in the flip.
    private func sessionRefusals(on primary: Instance) async throws -> [String] {
        guard record.forceLongTransactions != true else { return [] }
        let rows: QueryResult
        do {
            rows = try await context.hosts.query(primary, ServerSessions.listSQL, timeout: 5)
        } catch let error as HostError {
            return ["the sessions of the primary \(primary.name) could not be read: \(error.message)"]
        }
        let sessions = ServerSessions.sessions(
            from: rows.rows.map { row in
                Dictionary(uniqueKeysWithValues: rows.columns.compactMap { column in row[column].map { (column, $0) } })
            })
        return ServerSessions.longRunning(sessions, on: primary.name, limit: context.playbook.options.maxTransactionAge)
    }

    /// The candidate's channel settings, to be given to the old primary's new channel.
    private func channelSettings(of candidate: Instance) async throws -> ReplicationChannelSettings? {
        guard let channel = try await context.hosts.query(candidate, "SHOW SLAVE STATUS", timeout: 5).first else { return nil }
        let period = try await context.hosts.value(candidate, "SHOW GLOBAL STATUS LIKE 'Slave_heartbeat_period'", column: "Value", timeout: 5)
        var row = [String: String]()
        for column in ReplicationChannelSettings.columns { row[column] = channel[column] }
        return ReplicationChannelSettings(channel: row, heartbeatPeriod: period)
    }

    /// Every member of the section read directly (not from the agents' observations, which may be seconds old).
    func probeMembers() async -> [String: Observation] {
        guard let section = topology.sections[record.section] else { return [:] }
        let members = topology.members(of: section.name).map(\.instance)
        var probers = [Prober]()
        for member in members {
            probers.append(
                Prober(
                    instance: ProbeTarget(name: member.name, shard: section.name),
                    configuration: await context.hosts.configuration(for: member, readTimeout: 2),
                    heartbeat: HeartbeatTable(datacenter: section.datacenter), agent: "marina-controller", agentStartedAt: Date(),
                    connector: context.hosts.connector))
        }
        return await withTaskGroup(of: Observation.self) { group in
            for prober in probers {
                group.addTask {
                    let observation = await prober.probe(now: Date())
                    await prober.disconnect()
                    return observation
                }
            }
            var live = [String: Observation]()
            for await observation in group { live[observation.instance] = observation }
            return live
        }
    }

    // MARK: Running forward

    func runForward() async throws {
        // A switchover and a failover have one point of no return; a rejoin or a move may have
        // none (every step of theirs can be undone).
        guard let pointOfNoReturn = record.pointOfNoReturnIndex ?? (isSwitchover || isFailover ? nil : steps.count) else {
            throw ControllerError.stepFailed(host: "controller", message: "the plan has no point of no return")
        }
        // Only a switchover has a flip (a failover's window began when the primary died).
        let flipStart = isSwitchover ? steps.firstIndex(where: { $0.action == .oldPrimaryReadOnly }) : nil
        guard !isSwitchover || flipStart != nil else {
            throw ControllerError.stepFailed(host: "controller", message: "the plan has no flip")
        }
        var index = 0
        while index < steps.count {
            if steps[index].state == .done || steps[index].state == .undone {
                index += 1
                continue
            }
            if let failure = try await abortBefore(index, pointOfNoReturn: pointOfNoReturn) {
                try await stop(for: failure)
                return
            }
            if let flipStart, index == flipStart {
                if let failure = try await flip(from: flipStart, through: pointOfNoReturn) {
                    try await rollBack(failure)
                    return
                }
                index = pointOfNoReturn + 1
                continue
            }
            if try await pauseIfAsked(before: index), let failure = try await abortBefore(index, pointOfNoReturn: pointOfNoReturn) {
                try await stop(for: failure)
                return
            }
            steps[index].state = .running
            steps[index].startedAt = Date()
            steps[index].error = nil
            try await journal()
            let started = ContinuousClock.now
            do {
                try await perform(index)
                try await pauseIfAsked(after: index)
                steps[index].state = .done
                steps[index].milliseconds = Seconds.milliseconds(since: started)
                try await journal()
            } catch ControllerError.notLeader {
                throw ControllerError.notLeader
            } catch {
                let (host, message) = describe(error)
                steps[index].state = .failed
                steps[index].milliseconds = Seconds.milliseconds(since: started)
                steps[index].error = message
                steps[index].host = host
                // A failover's point of no return failing leaves it for a human too: the candidate's
                // read_only may be either, and the old primary may have answered.
                if index < pointOfNoReturn || (isFailover && index == pointOfNoReturn) {
                    let failure = OperationRecord.Failure(step: steps[index].name, host: host, error: message)
                    if isFailover {
                        // Nothing to roll back to: the primary is dead. The decision to stop is
                        // journaled first, so that a next leader never goes forward from it.
                        record.failure = failure
                        try await journal()
                        try await leaveForHuman("the failover stopped before \(record.candidate) took writes: \(host): \(message)")
                    } else {
                        try await rollBack(failure)
                    }
                    return
                }
                try await needsAttention(after: index, host: host, message: message)
            }
            index += 1
        }
        record.state = record.attention.isEmpty ? .done : .doneNeedsAttention
        try await finish()
    }

    func describe(_ error: Error) -> (host: String, message: String) {
        if let error = error as? HostError { return (error.host, error.message) }
        if let error = error as? OperationAborted { return ("controller", error.description) }
        if let error = error as? MirrorWriteFailed { return ("etcd-v2", "\(error)") }
        if case ControllerError.stepFailed(let host, let message) = error { return (host, message) }
        if let error = error as? EtcdError { return ("etcd", "\(error)") }
        return ("controller", "\(error)")
    }
}
