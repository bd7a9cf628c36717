import Agent
import EtcdClient
import Foundation
import Logging
import MariaDBClient
import Observation
import Operations
import Topology
import TopologyStore

/// What an operation needs from the controller running it.
struct OperationContext: Sendable {
    let etcd: EtcdClient
    let store: TopologyStore
    let leadership: Leadership
    let hosts: Hosts
    let playbook: Playbook
    let replicationUser: String
    let replicationPassword: String?
    let mirror: ConfigMirror?
    let pauseBefore: String?
    let logger: Logger

    var keys: StoreKeys { store.keys }
}

/// One switchover: lock, preflight, plan, then each step journaled before and after it runs,
/// with rollback of the completed steps if one fails before the point of no return. The
/// journal in etcd is the only state that matters: a controller that dies leaves enough in it
/// for `recover()` (on the next leader) to finish or roll back after re-reading the hosts.
actor SwitchoverRun {
    private var record: OperationRecord
    private let context: OperationContext
    private let topology: Topology
    private var pausedOnce = false

    init(record: OperationRecord, context: OperationContext, topology: Topology) {
        self.record = record
        self.context = context
        self.topology = topology
    }

    private var steps: [StepRecord] {
        get { record.steps }
        set { record.steps = newValue }
    }

    // MARK: Starting

    /// Handles a new request: a dry run plans and stops; a real one takes the section's lock,
    /// checks, plans and runs.
    func start() async throws {
        if record.dryRun {
            _ = try await prepare()
            if record.state != .refused { record.state = .planned }
            record.finishedAt = Date()
            try await journal([.delete(context.keys.request(record.id))])
            return
        }
        record.state = .running
        record.controller = context.leadership.id
        record.startedAt = Date()
        let lock = context.keys.lock(record.section)
        let result = try await context.etcd.transaction(Transaction(
            compares: [await context.leadership.compare, .absent(lock)],
            success: [.put(lock, record.id), .put(context.keys.operation(record.id), OperationJSON.encode(record)),
                      .delete(context.keys.request(record.id))],
            failure: [.get(context.keys.leader), .get(lock)]))
        if !result.succeeded {
            guard await stillLeader() else { throw ControllerError.notLeader }
            var holder = "another operation"
            if case .get(let range) = result.results.last, let kv = range.kvs.first { holder = "operation " + String(decoding: kv.value, as: UTF8.self) }
            record.state = .refused
            record.refusals = ["section \(record.section) is busy: \(holder) holds its lock"]
            record.finishedAt = Date()
            try await journal([.delete(context.keys.request(record.id))])
            return
        }
        guard try await prepare() else {
            try await finish()
            return
        }
        try await journal()
        try await runForward()
    }

    /// Preflight against the live state of every member, then the plan. False if refused.
    private func prepare() async throws -> Bool {
        let live = await probeMembers()
        let (roles, refusals) = Switchover.preflight(record, playbook: context.playbook, topology: topology, live: live)
        guard let roles else {
            record.state = .refused
            record.refusals = refusals
            return false
        }
        record.oldPrimary = roles.oldPrimary.name
        record.previousReadOnlyReason = roles.section.readOnly ? roles.section.readOnlyReason : nil
        record.steps = Switchover.plan(context.playbook, roles: roles, reason: record.reason, replicationUser: context.replicationUser)
        return true
    }

    /// Every member of the section read directly (not from the agents' observations, which may be seconds old).
    private func probeMembers() async -> [String: Observation] {
        guard let section = topology.sections[record.section] else { return [:] }
        let members = topology.members(of: section.name).map(\.instance)
        var probers = [Prober]()
        for member in members {
            probers.append(Prober(
                instance: AgentConfiguration.Instance(name: member.name, host: member.host, port: member.port, shard: section.name),
                configuration: await context.hosts.configuration(for: member, readTimeout: 2),
                heartbeat: AgentConfiguration.Heartbeat(datacenter: section.datacenter), agent: "marina-controller", agentStartedAt: Date()))
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

    private func runForward() async throws {
        guard let pointOfNoReturn = record.pointOfNoReturnIndex,
              let flipStart = steps.firstIndex(where: { $0.action == .oldPrimaryReadOnly }) else {
            throw ControllerError.stepFailed(host: "controller", message: "the plan has no flip")
        }
        var index = 0
        while index < steps.count {
            if steps[index].state == .done || steps[index].state == .undone {
                index += 1
                continue
            }
            if index == flipStart {
                if let failure = try await flip(from: flipStart, through: pointOfNoReturn) {
                    try await rollBack(failure)
                    return
                }
                index = pointOfNoReturn + 1
                continue
            }
            try await pauseIfAsked(index)
            steps[index].state = .running
            steps[index].startedAt = Date()
            steps[index].error = nil
            try await journal()
            let started = ContinuousClock.now
            do {
                try await perform(index)
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
                if index < pointOfNoReturn {
                    try await rollBack(OperationRecord.Failure(step: steps[index].name, host: host, error: message))
                    return
                }
                try await needsAttention(after: index, host: host, message: message)
            }
            index += 1
        }
        record.state = record.attention.isEmpty ? .done : .doneNeedsAttention
        try await finish()
    }

    /// The flip, from the old primary going read-only to the candidate going writable. The
    /// window without a writer holds only these steps, so the journal is written around it:
    /// once before (every flip step `running`: it may have taken effect), once inside the
    /// source-of-truth commit (the steps done so far, in the same transaction), once after.
    /// Recovery re-reads the hosts, so it does not need a journal write per flip step.
    private func flip(from first: Int, through last: Int) async throws -> OperationRecord.Failure? {
        guard let commitIndex = steps.firstIndex(where: { $0.action == .commitPrimary }), (first...last).contains(commitIndex) else {
            throw ControllerError.stepFailed(host: "controller", message: "commit-primary is not inside the flip")
        }
        // Prepared before the window, so that the commit inside it is one round trip.
        let prepared: TopologyStore.PreparedEdits
        switch try await context.store.prepare([.setPrimary(section: record.section, instance: record.candidate)],
                                               message: "operation \(record.id): \(record.candidate) primary of \(record.section)",
                                               by: author, kind: .commit) {
        case .success(let edits): prepared = edits
        case .failure(let refused):
            steps[commitIndex].state = .failed
            steps[commitIndex].error = refused.description
            steps[commitIndex].host = "etcd"
            return OperationRecord.Failure(step: steps[commitIndex].name, host: "etcd", error: refused.description)
        }
        let now = Date()
        for index in first...last {
            steps[index].state = .running
            steps[index].startedAt = now
        }
        try await journal()

        var windowStart: ContinuousClock.Instant?
        for index in first...last {
            try await pauseIfAsked(index)
            let started = ContinuousClock.now
            if steps[index].action == .oldPrimaryReadOnly { windowStart = started }
            do {
                if index == commitIndex {
                    steps[index].state = .done
                    let outcome = try await context.store.commit(
                        prepared, alongWith: [.put(context.keys.operation(record.id), OperationJSON.encode(record))],
                        compares: [await context.leadership.compare])
                    guard case .committed = outcome else {
                        guard await stillLeader() else { throw ControllerError.notLeader }
                        throw ControllerError.stepFailed(host: "etcd", message: "lost compare-and-swap: the source of truth changed since the switch was prepared")
                    }
                } else {
                    try await perform(index)
                }
                steps[index].state = .done
                steps[index].milliseconds = Seconds.milliseconds(since: started)
            } catch ControllerError.notLeader {
                throw ControllerError.notLeader
            } catch {
                let (host, message) = describe(error)
                steps[index].state = .failed
                steps[index].milliseconds = Seconds.milliseconds(since: started)
                steps[index].error = message
                steps[index].host = host
                for later in steps.indices where later > index && later <= last {
                    steps[later].state = .pending
                    steps[later].startedAt = nil
                }
                return OperationRecord.Failure(step: steps[index].name, host: host, error: message)
            }
        }
        if let windowStart { record.windowMilliseconds = Seconds.milliseconds(since: windowStart) }
        try await journal()
        await mirror(prepared.topology)
        return nil
    }

    // MARK: Steps

    private func instance(_ name: String) throws -> Instance {
        guard let instance = topology.instances[name] else {
            throw ControllerError.stepFailed(host: name, message: "not in the committed topology")
        }
        return instance
    }

    private var oldPrimary: Instance { get throws { try instance(record.oldPrimary ?? "") } }
    private var candidate: Instance { get throws { try instance(record.candidate) } }

    private func perform(_ index: Int) async throws {
        let step = steps[index]
        let hosts = context.hosts
        let timeout = step.timeout
        switch step.action {
        case .moveReplicas:
            let replica = try instance(step.subject ?? ""), candidate = try candidate
            try await hosts.query(replica, SwitchoverSQL.stopReplication, timeout: timeout)
            guard let position = try await hosts.value(replica, SwitchoverSQL.readSlavePosition, column: "pos", timeout: timeout) else {
                throw ControllerError.stepFailed(host: replica.name, message: "no gtid_slave_pos")
            }
            try await waitFor(position, on: candidate, timeout: timeout)
            try await hosts.query(replica, SwitchoverSQL.moveTo(candidate), timeout: timeout)
            try await hosts.query(replica, SwitchoverSQL.startReplication, timeout: timeout)
            try await verifyReplicates(replica, from: candidate, timeout: timeout)
        case .sectionReadOnly:
            let skipped = record.skipReplicas.filter { topology.instances[$0]?.sections[record.section]?.pooled == true }
            record.depooled = skipped
            try await commitEdits([.setReadOnly(section: record.section, reason: Switchover.readOnlyReason(record.reason))]
                                  + skipped.map { .depool(instance: $0, section: record.section, group: nil) },
                                  message: "operation \(record.id): section \(record.section) read-only for a switchover to \(record.candidate)")
        case .waitPropagation:
            try await Task.sleep(for: .milliseconds(Int(context.playbook.options.propagationWait * 1000)))
        case .oldPrimaryReadOnly:
            try await setReadOnly(true, on: try oldPrimary, timeout: timeout)
        case .readFinalPosition:
            let primary = try oldPrimary
            guard let position = try await hosts.value(primary, SwitchoverSQL.readBinlogPosition, column: "pos", timeout: timeout),
                  (try? GTIDPosition(parsing: position)) != nil else {
                throw ControllerError.stepFailed(host: primary.name, message: "gtid_binlog_pos is not a GTID position")
            }
            record.finalPosition = position
        case .waitCatchUp:
            try await waitFor(record.finalPosition ?? "", on: try candidate, timeout: timeout)
        case .detachCandidate:
            let candidate = try candidate
            try await hosts.query(candidate, SwitchoverSQL.stopReplication, timeout: timeout)
            if let channel = try await hosts.query(candidate, "SHOW SLAVE STATUS", timeout: timeout).first,
               channel["Slave_IO_Running"] == "Yes" || channel["Slave_SQL_Running"] == "Yes" {
                throw ControllerError.stepFailed(host: candidate.name, message: "replication still runs after STOP SLAVE")
            }
        case .commitPrimary:
            break  // inside the flip
        case .candidateWritable:
            try await setReadOnly(false, on: try candidate, timeout: timeout)
        case .oldPrimaryReplicates:
            let primary = try oldPrimary, candidate = try candidate
            let channel = try await hosts.query(primary, "SHOW SLAVE STATUS", timeout: timeout).first
            if channel?["Master_Port"] == String(candidate.port), channel?["Master_Host"] == candidate.host,
               channel?["Slave_IO_Running"] == "Yes", channel?["Slave_SQL_Running"] == "Yes" {
                return  // done before a controller died
            }
            if channel != nil { try await hosts.query(primary, SwitchoverSQL.stopReplication, timeout: timeout) }
            try await hosts.query(primary, SwitchoverSQL.setSlavePosition(record.finalPosition ?? ""), timeout: timeout)
            try await hosts.query(primary, SwitchoverSQL.replicateFrom(candidate, user: context.replicationUser,
                                                                       password: context.replicationPassword ?? ""), timeout: timeout)
            try await hosts.query(primary, SwitchoverSQL.startReplication, timeout: timeout)
            try await verifyReplicates(primary, from: candidate, timeout: timeout)
        case .resetCandidateReplication:
            let candidate = try candidate
            if try await hosts.query(candidate, "SHOW SLAVE STATUS", timeout: timeout).first != nil {
                try await hosts.query(candidate, SwitchoverSQL.resetReplication, timeout: timeout)
            }
        case .sectionReadWrite:
            try await commitEdits([.setReadOnly(section: record.section, reason: record.previousReadOnlyReason)],
                                  message: "operation \(record.id): section \(record.section) takes writes on \(record.candidate)")
        case .exec:
            try await run(step.command ?? [], timeout: timeout)
        }
    }

    private func undo(_ index: Int) async throws {
        let step = steps[index]
        let hosts = context.hosts
        let timeout = max(step.timeout, 5)
        switch step.action {
        case .moveReplicas:
            let replica = try instance(step.subject ?? ""), primary = try oldPrimary
            let channel = try await hosts.query(replica, "SHOW SLAVE STATUS", timeout: timeout).first
            let underPrimary = channel?["Master_Port"] == String(primary.port) && channel?["Master_Host"] == primary.host
            let running = channel?["Slave_IO_Running"] == "Yes" && channel?["Slave_SQL_Running"] == "Yes"
            if !underPrimary {
                try await hosts.query(replica, SwitchoverSQL.stopReplication, timeout: timeout)
                try await hosts.query(replica, SwitchoverSQL.moveTo(primary), timeout: timeout)
            }
            if !underPrimary || !running { try await hosts.query(replica, SwitchoverSQL.startReplication, timeout: timeout) }
            try await verifyReplicates(replica, from: primary, timeout: timeout)
        case .sectionReadOnly:
            try await commitEdits([.setReadOnly(section: record.section, reason: record.previousReadOnlyReason)]
                                  + record.depooled.map { .pool(instance: $0, section: record.section, group: nil, percentage: nil) },
                                  message: "operation \(record.id) rolled back: section \(record.section) as it was")
        case .oldPrimaryReadOnly:
            // Never two writers: the old primary takes writes again only while the candidate is read-only.
            let candidate = try candidate
            if let readOnly = try? await hosts.value(candidate, "SELECT @@GLOBAL.read_only AS ro", column: "ro", timeout: timeout), readOnly != "1" {
                throw ControllerError.stepFailed(host: candidate.name, message: "is writable: the old primary stays read-only")
            }
            try await setReadOnly(false, on: try oldPrimary, timeout: timeout)
        case .detachCandidate:
            let candidate = try candidate
            try await hosts.query(candidate, SwitchoverSQL.startReplication, timeout: timeout)
            try await verifyReplicates(candidate, from: try oldPrimary, timeout: timeout)
        case .commitPrimary:
            if try await context.store.committedTopology()?.sections[record.section]?.primary == record.candidate {
                try await commitEdits([.setPrimary(section: record.section, instance: record.oldPrimary ?? "")],
                                      message: "operation \(record.id) rolled back: \(record.oldPrimary ?? "") primary of \(record.section) again")
            }
        case .exec:
            if let undo = step.undoCommand { try await run(undo, timeout: timeout) }
        case .waitPropagation, .readFinalPosition, .waitCatchUp, .candidateWritable, .oldPrimaryReplicates, .resetCandidateReplication,
             .sectionReadWrite:
            break
        }
    }

    private func setReadOnly(_ on: Bool, on instance: Instance, timeout: Double) async throws {
        try await context.hosts.query(instance, SwitchoverSQL.setReadOnly(on), timeout: timeout)
        let value = try await context.hosts.value(instance, "SELECT @@GLOBAL.read_only AS ro", column: "ro", timeout: timeout)
        guard value == (on ? "1" : "0") else {
            throw ControllerError.stepFailed(host: instance.name, message: "read_only is \(value ?? "unknown") after setting it \(on ? "ON" : "OFF")")
        }
    }

    private func waitFor(_ position: String, on instance: Instance, timeout: Double) async throws {
        let waited = try await context.hosts.value(instance, SwitchoverSQL.waitFor(position, timeout: timeout), column: "waited",
                                                   timeout: timeout + 2)
        guard waited == "0" else {
            throw ControllerError.stepFailed(host: instance.name, message: "did not apply \(position) within \(Seconds.format(timeout)) s")
        }
    }

    /// Both threads running from `source`, then caught up with the source's binlog position.
    private func verifyReplicates(_ replica: Instance, from source: Instance, timeout: Double) async throws {
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int(timeout * 1000))
        var last = "no replication configured"
        while true {
            let channel = try await context.hosts.query(replica, "SHOW SLAVE STATUS", timeout: timeout).first
            if let channel {
                guard channel["Master_Host"] == source.host, channel["Master_Port"] == String(source.port) else {
                    throw ControllerError.stepFailed(host: replica.name, message: "replicates from \(channel["Master_Host"] ?? ""):\(channel["Master_Port"] ?? "") instead of \(source.name)")
                }
                if channel["Slave_IO_Running"] == "Yes" && channel["Slave_SQL_Running"] == "Yes" { break }
                last = "IO \(channel["Slave_IO_Running"] ?? "?"), SQL \(channel["Slave_SQL_Running"] ?? "?")"
                let error = [channel["Last_IO_Error"], channel["Last_SQL_Error"]].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "; ")
                if !error.isEmpty { last += ": " + error }
            }
            guard ContinuousClock.now < deadline else {
                throw ControllerError.stepFailed(host: replica.name, message: "does not replicate from \(source.name) within \(Seconds.format(timeout)) s (\(last))")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        guard let position = try await context.hosts.value(source, SwitchoverSQL.readBinlogPosition, column: "pos", timeout: timeout) else { return }
        let remaining = max(0.5, timeout - Seconds.milliseconds(since: start) / 1000)
        try await waitFor(position, on: replica, timeout: remaining)
    }

    /// Commits edits to the source of truth, re-reading up to three times if someone else commits meanwhile.
    private func commitEdits(_ edits: [TopologyEdit], message: String) async throws {
        for _ in 1...3 {
            switch try await context.store.prepare(edits, message: message, by: author, kind: .commit) {
            case .failure(let refused):
                throw ControllerError.stepFailed(host: "etcd", message: refused.description)
            case .success(let prepared):
                switch try await context.store.commit(prepared, compares: [await context.leadership.compare]) {
                case .committed:
                    await mirror(prepared.topology)
                    return
                case .conflict, .nothingToCommit, .invalid:
                    guard await stillLeader() else { throw ControllerError.notLeader }
                }
            }
        }
        throw ControllerError.stepFailed(host: "etcd", message: "the source of truth kept changing: three commits lost their compare-and-swap")
    }

    private func mirror(_ topology: Topology) async {
        guard let mirror = context.mirror, !mirror.isEmpty else { return }
        do {
            _ = try await mirror.write(topology.generatedConfigs(), etcd: context.etcd)
        } catch {
            context.logger.warning("operation \(record.id): the configuration mirror was not written: \(error)")
        }
    }

    private var author: Actor {
        Actor(author: "marina-controller (\(context.leadership.id)) for \(record.requestedBy)", now: Date())
    }

    private func run(_ command: [String], timeout: Double) async throws {
        guard let program = command.first else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : "/usr/bin/env")
        process.arguments = program.hasPrefix("/") ? Array(command.dropFirst()) : command
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                throw ControllerError.stepFailed(host: "controller", message: "\(command.joined(separator: " ")) did not finish within \(Seconds.format(timeout)) s")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        guard process.terminationStatus == 0 else {
            throw ControllerError.stepFailed(host: "controller", message: "\(command.joined(separator: " ")) exited with status \(process.terminationStatus)")
        }
    }

    // MARK: Rollback, attention, end

    private func rollBack(_ failure: OperationRecord.Failure) async throws {
        record.failure = failure
        record.state = .rollingBack
        context.logger.warning("operation \(record.id) failed at \(failure.step) on \(failure.host): \(failure.error); rolling back")
        try await journal()
        try await undoAll()
    }

    /// Undoes, newest first, every step that may have taken effect, then checks that the
    /// section is as it was. Each undo reads the host first, so running it twice is harmless.
    private func undoAll() async throws {
        for index in steps.indices.reversed() where [.done, .running, .failed, .undoing, .undoFailed].contains(steps[index].state) {
            steps[index].state = .undoing
            try await journal()
            let started = ContinuousClock.now
            do {
                try await undo(index)
                steps[index].state = .undone
                steps[index].undoMilliseconds = Seconds.milliseconds(since: started)
                try await journal()
            } catch ControllerError.notLeader {
                throw ControllerError.notLeader
            } catch {
                let (host, message) = describe(error)
                steps[index].state = .undoFailed
                steps[index].undoError = "\(host): \(message)"
                try await leaveForHuman("undoing \(steps[index].name) failed on \(host): \(message)")
                return
            }
        }
        do {
            try await verifyOriginal()
        } catch ControllerError.notLeader {
            throw ControllerError.notLeader
        } catch {
            let (host, message) = describe(error)
            try await leaveForHuman("after the rollback, \(host) \(message)")
            return
        }
        record.state = .rolledBack
        try await finish()
    }

    /// After a rollback: the old primary writable and committed, every member read-only and
    /// replicating from it. An instance that cannot be reached (the candidate that died) is
    /// noted for a human rather than failing the check.
    private func verifyOriginal() async throws {
        let primary = try oldPrimary
        guard try await context.store.committedTopology()?.sections[record.section]?.primary == primary.name else {
            throw ControllerError.stepFailed(host: "etcd", message: "does not name \(primary.name) the primary of \(record.section)")
        }
        guard try await context.hosts.value(primary, "SELECT @@GLOBAL.read_only AS ro", column: "ro", timeout: 5) == "0" else {
            throw ControllerError.stepFailed(host: primary.name, message: "is not writable")
        }
        let moved = steps.filter { $0.action == .moveReplicas }.compactMap(\.subject)
        for name in [record.candidate] + moved {
            let member = try instance(name)
            do {
                guard try await context.hosts.value(member, "SELECT @@GLOBAL.read_only AS ro", column: "ro", timeout: 5) == "1" else {
                    throw ControllerError.stepFailed(host: name, message: "is writable")
                }
                try await verifyReplicates(member, from: primary, timeout: 10)
            } catch ControllerError.stepFailed(let host, let message) where message.contains("Can't connect") || message.contains("no answer")
                        || message.contains("Lost connection") || message.contains("gone away") {
                record.attention.append("\(host) could not be reached to verify the rollback (\(message)): check that it replicates from \(primary.name)")
            }
        }
    }

    /// The undo failed: the old primary and the candidate are left read-only, the section
    /// read-only in the configuration, and the operation says so.
    private func leaveForHuman(_ problem: String) async throws {
        context.logger.error("operation \(record.id) could not roll back: \(problem); section \(record.section) left read-only")
        record.attention.append(problem)
        for name in [record.oldPrimary, record.candidate].compactMap({ $0 }) {
            guard let member = topology.instances[name] else { continue }
            do {
                try await setReadOnly(true, on: member, timeout: 5)
            } catch {
                record.attention.append("\(name) could not be set read-only: \(describe(error).message)")
            }
        }
        do {
            try await commitEdits([.setReadOnly(section: record.section, reason: "Marina operation \(record.id) could not roll back: a human must look")],
                                  message: "operation \(record.id) could not roll back: section \(record.section) left read-only")
        } catch ControllerError.notLeader {
            throw ControllerError.notLeader
        } catch {
            record.attention.append("the section could not be marked read-only in the configuration: \(describe(error).message)")
        }
        record.state = .needsHuman
        try await finish()
    }

    /// After the point of no return a failure is not undone: the old primary stays read-only
    /// and is depooled, and the operation finishes with this host needing attention.
    private func needsAttention(after index: Int, host: String, message: String) async throws {
        context.logger.warning("operation \(record.id): \(steps[index].name) failed on \(host) after the point of no return: \(message)")
        var note = "\(steps[index].name) failed on \(host): \(message)"
        if let old = record.oldPrimary, steps[index].action == .oldPrimaryReplicates {
            note += "; \(old) is left read-only"
            if topology.instances[old]?.sections[record.section]?.pooled == true {
                do {
                    try await commitEdits([.depool(instance: old, section: record.section, group: nil)],
                                          message: "operation \(record.id): \(old) depooled, it does not replicate")
                    note += " and depooled"
                } catch ControllerError.notLeader {
                    throw ControllerError.notLeader
                } catch {
                    note += "; depooling it failed: \(describe(error).message)"
                }
            }
        }
        record.attention.append(note)
        try await journal()
    }

    /// The final journal write, which releases the section's lock in the same transaction.
    private func finish() async throws {
        record.finishedAt = Date()
        record.pausedBefore = nil
        context.logger.notice("operation \(record.id) \(record.state.rawValue)")
        try await journal([.delete(context.keys.lock(record.section))])
    }

    // MARK: Recovery

    /// Resumes an operation a controller left unfinished: after the point of no return it is
    /// finished; before it (or if the candidate never became writable) it is rolled back.
    func recover() async throws {
        context.logger.notice("recovering operation \(record.id) (\(record.state.rawValue)), left by \(record.controller ?? "?")")
        record.controller = context.leadership.id
        switch record.state {
        case .rollingBack:
            try await undoAll()
        case .running:
            guard let pointOfNoReturn = record.pointOfNoReturnIndex else {
                record.state = .rolledBack
                record.failure = OperationRecord.Failure(step: "planning", host: "controller", error: "the controller stopped before the plan was made")
                try await finish()
                return
            }
            var passed = steps[pointOfNoReturn].state == .done
            if steps[pointOfNoReturn].state == .running, steps.contains(where: { $0.action == .commitPrimary && $0.state == .done }) {
                let readOnly = try? await context.hosts.value(try candidate, "SELECT @@GLOBAL.read_only AS ro", column: "ro", timeout: 5)
                passed = readOnly == "0"
                if passed { steps[pointOfNoReturn].state = .done }
            }
            if passed {
                try await runForward()
            } else {
                let interrupted = steps.first { $0.state != .done }?.name ?? "the plan"
                try await rollBack(OperationRecord.Failure(step: interrupted, host: "controller",
                                                           error: "the controller running the operation stopped; rolled back by \(context.leadership.id)"))
            }
        default:
            try await finish()
        }
    }

    // MARK: Journal

    private func journal(_ operations: [KVOperation] = []) async throws {
        record.updatedAt = Date()
        let result = try await context.etcd.transaction(Transaction(
            compares: [await context.leadership.compare],
            success: [.put(context.keys.operation(record.id), OperationJSON.encode(record))] + operations))
        guard result.succeeded else {
            await context.leadership.lost()
            throw ControllerError.notLeader
        }
    }

    private func stillLeader() async -> Bool {
        let compare = await context.leadership.compare
        guard let kv = try? await context.etcd.value(context.keys.leader), case .value(let expected) = compare.target else { return false }
        if kv.value == expected { return true }
        await context.leadership.lost()
        return false
    }

    /// Test only: waits before the chosen step until the resume key exists.
    private func pauseIfAsked(_ index: Int) async throws {
        guard !pausedOnce, let pause = context.pauseBefore, steps[index].action.rawValue == pause || steps[index].name == pause else { return }
        pausedOnce = true
        record.pausedBefore = steps[index].name
        try await journal()
        context.logger.notice("operation \(record.id) paused before \(steps[index].name) (pause_before)")
        while try await context.etcd.value(context.keys.resume + record.id) == nil {
            try await Task.sleep(for: .milliseconds(20))
        }
        record.pausedBefore = nil
    }

    private func describe(_ error: Error) -> (host: String, message: String) {
        if case ControllerError.stepFailed(let host, let message) = error { return (host, message) }
        if let error = error as? EtcdError { return ("etcd", "\(error)") }
        return ("controller", "\(error)")
    }
}
