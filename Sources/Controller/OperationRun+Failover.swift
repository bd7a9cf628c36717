import Foundation
import MariaDBClient
import Observation
import Operations
import Policy
import Topology

/// The failover: a dead primary replaced by the replica that received the most of its binary
/// log. The same run as a switchover (lock, journal, fence, recovery by the next leader), with
/// its own preflight and steps and no rollback: there is no writer to go back to. A failure
/// before the candidate takes writes leaves the section read-only for a human; after it, the
/// host that failed is noted and the rest goes on.
extension OperationRun {
    var isFailover: Bool { record.kind == "failover" }
    var isSwitchover: Bool { record.kind == "switchover" }

    /// Preflight of a failover against the servers, read now: the primary must be dead on two
    /// witnesses (the controller's own connection, and the primary's agent or every replica);
    /// then the candidate is chosen and the steps planned. False if refused.
    func prepareFailover() async throws -> Bool {
        // Read again now that the lock is held: a failover that finished between the request's
        // read and the lock has changed the primary.
        if let committed = try await context.store.committedTopology() { topology = committed }
        guard let section = topology.sections[record.section] else { return refuseFailover(["unknown section \(record.section)"]) }
        guard section.isInitialized, let primary = topology.instances[section.primary] else {
            return refuseFailover(["section \(section.name) has no primary"])
        }
        record.oldPrimary = primary.name
        var details = record.failover ?? FailoverDetails(automatic: false)
        if let promise = context.failsafe?.noFailoverReason(section.name) { return refuseFailover([promise]) }

        // The controller's own look at the primary runs beside the probes of every member: a
        // frozen primary costs its probe timeout once, not twice.
        async let reachesPrimary = reachesOverSQL(primary, context: context, timeout: context.failover.probeTimeout)
        var live = await probeMembers()
        let reaches = await reachesPrimary
        let agents = (try? await context.store.observations().observations) ?? [:]
        let primaryServerID = live[primary.name]?.serverID ?? agents[primary.name]?.serverID ?? sourceServerID(of: primary, in: live)
        guard let primaryServerID else {
            return refuseFailover([
                "the server_id of \(primary.name) is unknown (no observation of it, no replica connected to it so far): "
                    + "its replicas cannot be told from others"
            ])
        }
        details.primaryServerID = primaryServerID
        let writers = live.values.filter { $0.instance != primary.name && $0.reachable && $0.readOnly == false }.map(\.instance).sorted()
        guard writers.isEmpty else {
            return refuseFailover(["\(writers.joined(separator: ", ")) already takes writes (read_only is OFF): no failover over a writer"])
        }
        let direct = live.values.filter { $0.instance != primary.name && replicatesFrom(primary, serverID: primaryServerID, $0) }
        let health = FailureDetection.assess(
            primaryName: primary.name, controllerReaches: reaches, primary: agents[primary.name],
            replicas: direct, now: Date(), masterFailureTimeout: context.failover.masterFailureTimeout,
            maxObservationAge: context.failover.maxObservationAge)
        let agent = agents[primary.name].flatMap { Date().timeIntervalSince($0.observedAt) <= context.failover.maxObservationAge ? $0 : nil }
        // Set when the primary answers without its lease: fenced over SQL once the failover is
        // known to be possible (a candidate, a commit the source of truth accepts), not before.
        var fenceFirst = false
        switch health {
        case .alive:
            // Alive but unleased, its agent silent: the watch saw the lease go, and nothing but
            // the controller can fence it now.
            guard details.fenceOverSQL == true, agent == nil, try await context.etcd.value(context.keys.primaryLease(section.name)) == nil
            else {
                return refuseFailover(["the primary \(primary.name) is alive (the controller reaches it): use `marina switchover` to move it"])
            }
            fenceFirst = true
        case .unreachable(let because):
            return refuseFailover(["the primary \(primary.name) is unreachable, not dead: \(because)"])
        case .dead(let witnesses):
            details.witnesses += witnesses.filter { !details.witnesses.contains($0) }
            let agentReportsDown = agent?.reachable == false
            switch try await waitOutPrimaryLease(primary.name, agentReportsDown: agentReportsDown) {
            case .refused(let why):
                record.failover = details
                return refuseFailover([why])
            case .over(let waited):
                details.leaseWait = waited
            }
            if !agentReportsDown {
                // Time passed: what the replicas received is read again, and a primary that
                // answers again is not failed over.
                async let again = reachesOverSQL(primary, context: context, timeout: context.failover.probeTimeout)
                live = await probeMembers()
                if await again {
                    record.failover = details
                    return refuseFailover(["the primary \(primary.name) answers again after its lease expired: use `marina switchover` to move it"])
                }
            }
        }

        // A member marked to rejoin (an earlier failover's old primary) takes no part.
        let marked = Set(topology.members(of: section.name).filter { $0.membership.needsRejoin != nil }.map(\.instance.name))
        let replicas = live.values.filter { $0.instance != primary.name && !marked.contains($0.instance) }
        // Depooled members the automatic depool does not manage were taken out by a human.
        let managed = Set((try? await policyState())?.managed.filter { $0.value.section == section.name }.keys.map { $0 } ?? [])
        let humanDepooled = Set(
            topology.members(of: section.name).filter { !$0.membership.pooled && !managed.contains($0.instance.name) }.map(\.instance.name))
        let choice: FailoverChoice
        switch FailoverCandidates.choose(
            section: section, topology: topology, deadPrimary: primary.name, primaryServerID: primaryServerID, replicas: Array(replicas),
            preferred: details.preferred, depooledByHuman: humanDepooled)
        {
        case .failure(let refused):
            details.rejected = refused.reasons
            record.failover = details
            return refuseFailover(refused.reasons.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" })
        case .success(let chosen): choice = chosen
        }
        record.candidate = choice.candidate
        details.rejected = choice.rejected
        for name in marked {
            details.rejected[name] = "needs a rejoin (\(topology.instances[name]?.sections[section.name]?.needsRejoin?.description ?? ""))"
        }
        details.catchUpFrom = choice.catchUpFrom
        var received = [String: GTIDPosition]()
        for replica in replicas { if let position = replica.replication.first?.gtidIOPos { received[replica.instance] = position } }
        details.received = received.mapValues(\.description)
        details.lastKnownPosition = received.values.first { position in received.values.allSatisfy { position.contains($0) } }?.description
        record.failover = details

        // The commit the failover will make: the new primary, and the old one marked (which depools it).
        let mark = RejoinMark(
            operation: record.id, newPrimary: choice.candidate, forkPoint: details.lastKnownPosition ?? "0-\(primaryServerID)-1",
            lastKnownPosition: details.lastKnownPosition)
        let commit =
            promotionEdits(candidate: choice.candidate, section: section.name) + [
                .markNeedsRejoin(instance: primary.name, section: section.name, mark: mark)
            ]
        if let switched = try? commit.reduce(topology, { try $0.applying($1) }) {
            let issues = topology.issuesIntroduced(by: switched)
            if !issues.isEmpty {
                return refuseFailover(issues.map { "the source of truth would refuse \(choice.candidate) as the primary of \(section.name): \($0)" })
            }
        }
        if fenceFirst {
            do {
                let position = try await fenceOverSQL(primary, timeout: 10)
                details.fencedPosition = position
                details.witnesses.append(
                    "\(primary.name) lost its primary lease while its agent is silent; the controller fenced it over SQL at \(position)")
                details.leaseWait = "no wait: \(primary.name) was fenced over SQL by the controller"
                record.failover = details
            } catch {
                return refuseFailover(["the primary \(primary.name) lost its lease but could not be fenced over SQL: \(error)"])
            }
        }
        // A replica with errant transactions is left where it is, for a human: under the new
        // primary its transactions would be everyone's problem.
        let errant = Set(details.rejected.filter { $0.value.hasPrefix("errant transactions") }.keys)
        let others = replicas.filter { $0.reachable && $0.replication.first != nil && !errant.contains($0.instance) }.map(\.instance)
        for name in replicas.map(\.instance).sorted() where !others.contains(name) {
            record.attention.append("\(name) is not repointed: \(details.rejected[name] ?? "it does not replicate")")
        }
        record.steps = FailoverPlan.steps(
            context.failoverPlaybook, section: section.name, deadPrimary: primary.name, choice: choice, instances: topology.instances,
            received: received, others: others)
        return true
    }

    /// The new primary in the source of truth: pooled (a primary must be; the automatic depool
    /// may have taken it out for the lag it has now applied) and named.
    func promotionEdits(candidate: String, section: String) -> [TopologyEdit] {
        var edits = [TopologyEdit]()
        if let membership = topology.instances[candidate]?.sections[section], !membership.pooled || membership.percentage != 100 {
            edits.append(.pool(instance: candidate, section: section, group: nil, percentage: 100))
        }
        return edits + [.setPrimary(section: section, instance: candidate)]
    }

    /// What the automatic depool remembers (which depooled replicas are its own).
    private func policyState() async throws -> PolicyState? {
        guard let stored = try await context.etcd.value(context.keys.policyState) else { return nil }
        return try PolicyJSON.decode(stored.value)
    }

    private func refuseFailover(_ refusals: [String]) -> Bool {
        record.state = .refused
        record.refusals = refusals
        return false
    }

    /// The dead primary's `server_id` as its replicas saw it, when no observation of it says.
    private func sourceServerID(of primary: Instance, in live: [String: Observation]) -> Int? {
        live.values.compactMap { observation in
            observation.replication.first.flatMap { $0.sourceHost == primary.host && $0.sourcePort == primary.port ? $0.sourceServerID : nil }
        }.first
    }

    private func replicatesFrom(_ primary: Instance, serverID: Int?, _ observation: Observation) -> Bool {
        guard let channel = observation.replication.first else { return false }
        if let serverID, let source = channel.sourceServerID, source != 0 { return source == serverID }
        return channel.sourceHost == primary.host && channel.sourcePort == primary.port
    }

    // MARK: Steps

    /// Runs one failover step (`perform` hands them over).
    func performFailover(_ index: Int) async throws {
        let step = steps[index]
        let timeout = step.timeout
        let hosts = context.hosts
        switch step.action {
        case .applyReceived:
            try await applyReceived(try instance(step.subject ?? ""), timeout: timeout)
        case .catchUp:
            let candidate = try candidate
            let source = try instance(step.subject ?? "")
            guard let received = try await receivedPosition(of: source, timeout: timeout) else {
                throw ControllerError.stepFailed(host: source.name, message: "its received position (Gtid_IO_Pos) cannot be read")
            }
            var fromSource = false
            if let channel = try await hosts.query(candidate, "SHOW SLAVE STATUS", timeout: timeout).first {
                fromSource = try await isChannel(channel, from: source, timeout: timeout)
            }
            if !fromSource {
                try await hosts.query(candidate, SwitchoverSQL.stopReplication, timeout: timeout)
                try await hosts.query(candidate, SwitchoverSQL.moveTo(source), timeout: timeout)
                try await hosts.query(candidate, "SET GLOBAL slave_net_timeout = \(FailoverPlan.slaveNetTimeout)", timeout: timeout)
                try await hosts.query(candidate, SwitchoverSQL.startReplication, timeout: timeout)
            }
            try await waitFor(received.description, on: candidate, timeout: timeout)
        case .detachCandidate:
            let candidate = try candidate
            if try await hosts.query(candidate, "SHOW SLAVE STATUS", timeout: timeout).first != nil {
                try await hosts.query(candidate, SwitchoverSQL.stopReplication, timeout: timeout)
                try await hosts.query(candidate, SwitchoverSQL.resetReplication, timeout: timeout)
            }
            guard try await hosts.query(candidate, "SHOW SLAVE STATUS", timeout: timeout).first == nil else {
                throw ControllerError.stepFailed(host: candidate.name, message: "still has a replication channel after RESET SLAVE ALL")
            }
            let fork = try await hosts.value(candidate, SwitchoverSQL.readBinlogPosition, column: "pos", timeout: timeout) ?? ""
            guard (try? GTIDPosition(parsing: fork)) != nil else {
                throw ControllerError.stepFailed(host: candidate.name, message: "gtid_binlog_pos is not a GTID position: \(fork)")
            }
            record.failover?.forkPoint = fork
        case .commitPrimary:
            let old = record.oldPrimary ?? ""
            guard let fork = record.failover?.forkPoint else {
                throw ControllerError.stepFailed(host: record.candidate, message: "no fork point was read when it stopped replicating")
            }
            // The old primary depooled and marked in the same commit: applications never see the
            // dead host as a replica, and `marina instance rejoin` knows where histories part.
            let mark = RejoinMark(
                operation: record.id, newPrimary: record.candidate, forkPoint: fork, lastKnownPosition: record.failover?.lastKnownPosition)
            let edits =
                promotionEdits(candidate: record.candidate, section: record.section) + [
                    .markNeedsRejoin(instance: old, section: record.section, mark: mark)
                ]
            try await commitEdits(
                edits,
                message: "operation \(record.id): failover of \(record.section) from \(old) (dead) to \(record.candidate); "
                    + "\(old) depooled, to rejoin from fork point \(record.failover?.forkPoint ?? "?")")
        case .candidateWritable:
            try await fenceOldPrimary(timeout: timeout)
            try await setReadOnly(false, on: try candidate, timeout: timeout)
        case .repointReplicas:
            let replica = try instance(step.subject ?? "")
            let candidate = try candidate
            if let channel = try await hosts.query(replica, "SHOW SLAVE STATUS", timeout: timeout).first,
                try await isChannel(channel, from: candidate, timeout: timeout), channel["Slave_IO_Running"] == "Yes",
                channel["Slave_SQL_Running"] == "Yes"
            {
                return  // done before a controller died
            }
            try await applyReceived(replica, timeout: timeout)
            try await hosts.query(replica, SwitchoverSQL.stopReplication, timeout: timeout)
            try await hosts.query(replica, SwitchoverSQL.moveTo(candidate), timeout: timeout)
            try await hosts.query(replica, "SET GLOBAL slave_net_timeout = \(FailoverPlan.slaveNetTimeout)", timeout: timeout)
            try await hosts.query(replica, SwitchoverSQL.startReplication, timeout: timeout)
            try await verifyReplicates(replica, from: candidate, timeout: timeout)
        case .exec:
            try await run(step.command ?? [], timeout: timeout)
        default:
            throw ControllerError.stepFailed(host: "controller", message: "\(step.action.rawValue) is not a failover step")
        }
    }

    /// A replica of the dead primary applies what its IO thread received, threads untouched. If
    /// its IO thread is connected to the old primary again, the primary is not dead: the step fails.
    private func applyReceived(_ replica: Instance, timeout: Double) async throws {
        guard let channel = try await context.hosts.query(replica, "SHOW SLAVE STATUS", timeout: timeout).first else {
            return  // nothing to apply: no channel (a candidate detached before a controller died)
        }
        if let fenced = record.failover?.fencedPosition {
            // The old primary is alive and fenced: everything it committed, up to its final
            // position, reaches the replica through its still-connected IO thread.
            if channel["Slave_SQL_Running"] != "Yes", let error = channel["Last_SQL_Error"], !error.isEmpty {
                throw ControllerError.stepFailed(host: replica.name, message: "its SQL thread stopped on an error: \(error)")
            }
            if channel["Slave_SQL_Running"] != "Yes" { try await context.hosts.query(replica, "START SLAVE SQL_THREAD", timeout: timeout) }
            try await waitFor(fenced, on: replica, timeout: timeout)
            return
        }
        if let old = record.oldPrimary, let id = record.failover?.primaryServerID, channel["Slave_IO_Running"] == "Yes",
            channel["Master_Server_Id"] == String(id)
        {
            throw ControllerError.stepFailed(
                host: replica.name, message: "its IO thread is connected to \(old) again: the primary is not dead; nothing was promoted")
        }
        guard let text = channel["Gtid_IO_Pos"], let received = try? GTIDPosition(parsing: text) else {
            throw ControllerError.stepFailed(host: replica.name, message: "its received position (Gtid_IO_Pos) cannot be read")
        }
        if received.entries.isEmpty { return }
        // A SQL thread a DBA stopped is started, alone: the IO thread is left as it is. One that
        // stopped on an error would stop again: that replica cannot apply what it received.
        if channel["Slave_SQL_Running"] != "Yes", let error = channel["Last_SQL_Error"], !error.isEmpty {
            throw ControllerError.stepFailed(host: replica.name, message: "its SQL thread stopped on an error: \(error)")
        }
        if channel["Slave_SQL_Running"] != "Yes" {
            context.logger.notice("operation \(record.id): \(replica.name)'s SQL thread is stopped; starting it to apply its relay log")
            try await context.hosts.query(replica, "START SLAVE SQL_THREAD", timeout: timeout)
        }
        try await waitFor(received.description, on: replica, timeout: timeout)
    }

    private func receivedPosition(of replica: Instance, timeout: Double) async throws -> GTIDPosition? {
        guard let text = try await context.hosts.query(replica, "SHOW SLAVE STATUS", timeout: timeout).first?["Gtid_IO_Pos"] else {
            return nil
        }
        return try? GTIDPosition(parsing: text)
    }

    /// The last look at the old primary before the candidate takes writes. If it answers at all
    /// (back from a freeze, a network that healed), the failover stops for a human: it may hold
    /// writes no replica received, and accounts that write through `read_only` may still be
    /// writing. Only a host that still does not answer (refused, or silent within
    /// `probe_timeout`, as detection found it) lets the candidate take writes.
    private func fenceOldPrimary(timeout: Double) async throws {
        guard let old = record.oldPrimary, let primary = topology.instances[old] else { return }
        guard await reachesOverSQL(primary, context: context, timeout: context.failover.probeTimeout) else { return }
        if let fenced = record.failover?.fencedPosition {
            // Fenced over SQL by this failover: it must still be read-only, at its final position
            // (a session that writes through read_only and came back would have moved it).
            guard try await readOnly(primary, timeout: timeout) == true else {
                throw ControllerError.stepFailed(
                    host: old, message: "read_only is OFF again after the controller fenced it; \(record.candidate) was not made writable")
            }
            let now = try await context.hosts.value(primary, SwitchoverSQL.readBinlogPosition, column: "pos", timeout: timeout) ?? ""
            guard now == fenced else {
                throw ControllerError.stepFailed(
                    host: old, message: "wrote past its fenced position \(fenced) (now \(now)); \(record.candidate) was not made writable")
            }
            return
        }
        throw ControllerError.stepFailed(
            host: old,
            message: "answers again: it may hold writes no replica received, and may still take writes; "
                + "\(record.candidate) was not made writable")
    }

    /// Recovery of a failover a previous leader left: its sessions killed, then forward from the
    /// first step not done (every step reads the hosts first, so running one again is harmless).
    func recoverFailover() async throws {
        var uncleared = [String]()
        if record.state == .running { uncleared = await killPreviousControllerSessions() }
        // A previous leader that decided to stop (its failure journaled) is never overruled.
        let beforeTakingWrites = steps.indices.filter { $0 <= (record.pointOfNoReturnIndex ?? steps.count) }
        if let failure = record.failure
            ?? beforeTakingWrites.first(where: { steps[$0].state == .failed }).map({
                OperationRecord.Failure(step: steps[$0].name, host: steps[$0].host ?? "?", error: steps[$0].error ?? "failed")
            })
        {
            record.failure = failure
            try await leaveForHuman("the failover stopped before \(record.candidate) took writes: \(failure.host): \(failure.error)")
            return
        }
        if record.steps.isEmpty {
            record.state = .rolledBack
            record.failure = OperationRecord.Failure(step: "planning", host: "controller", error: "the controller stopped before the plan was made")
            try await finish()
            return
        }
        if uncleared.contains(record.candidate) {
            record.failure = OperationRecord.Failure(
                step: steps.first { $0.state != .done }?.name ?? "the plan", host: record.candidate,
                error: "the previous controller's sessions on \(record.candidate) could not be cleared")
            try await leaveForHuman(record.failure!.error)
            return
        }
        context.logger.notice("operation \(record.id): the failover goes on from \(steps.first { $0.state != .done }?.name ?? "its end")")
        try await runForward()
    }
}
