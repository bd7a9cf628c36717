import Foundation
import Operations
import Topology

/// Rollback, the two ends that need a human, and recovery of an operation left unfinished.
extension OperationRun {
    func rollBack(_ failure: OperationRecord.Failure) async throws {
        record.failure = failure
        record.state = .rollingBack
        context.logger.warning("operation \(record.id) failed at \(failure.step) on \(failure.host): \(failure.error); rolling back")
        try await journal()
        try await undoAll()
    }

    /// Undoes, newest first, every step that may have taken effect, then checks that the
    /// section is as it was. Each undo reads the host first, so running it twice is harmless.
    func undoAll() async throws {
        // A sync's steps are independent instances: one that cannot be restored does not keep the
        // others from being restored; the sync is then left for a human with every failure.
        var syncFailures = [String]()
        for index in Recovery.stepsToUndo(steps) {
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
                if isSync {
                    syncFailures.append("undoing \(steps[index].name) failed on \(host): \(message)")
                    try await journal()
                    continue
                }
                try await leaveForHuman("undoing \(steps[index].name) failed on \(host): \(message)")
                return
            }
        }
        if !syncFailures.isEmpty {
            record.attention += syncFailures.dropLast()
            try await leaveForHuman(syncFailures.last!)
            return
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
    /// noted for a human rather than failing the check; only an unreachable one, by the typed
    /// error, never by matching a message.
    func verifyOriginal() async throws {
        switch record.kind {
        case "rejoin": return try await verifyRejoinUndone()
        case "move": return try await verifyMoveUndone()
        case "grant-sync", "variable-sync": return try await verifySyncUndone()
        default: break
        }
        let primary = try oldPrimary
        guard try await context.store.committedTopology()?.sections[record.section]?.primary == primary.name else {
            throw ControllerError.stepFailed(host: "etcd", message: "does not name \(primary.name) the primary of \(record.section)")
        }
        guard try await readOnly(primary, timeout: 5) == false else {
            throw ControllerError.stepFailed(host: primary.name, message: "is not writable")
        }
        let moved = steps.filter { $0.action == .moveReplicas }.compactMap(\.subject)
        for name in [record.candidate] + moved {
            let member = try instance(name)
            do {
                guard try await readOnly(member, timeout: 5) else {
                    throw ControllerError.stepFailed(host: name, message: "is writable")
                }
                try await verifyReplicates(member, from: primary, timeout: 10)
            } catch let error as HostError where error.isUnreachable {
                record.attention.append(
                    "\(error.host) could not be reached to verify the rollback (\(error.message)): check that it replicates from \(primary.name)")
            }
        }
    }

    /// The undo failed: the old primary and the candidate are left read-only, the section
    /// read-only in the configuration, and the operation says so.
    func leaveForHuman(_ problem: String) async throws {
        let left = isSync ? "a human must check the section's instances" : "section \(record.section) left read-only"
        context.logger.error("operation \(record.id) \(isFailover ? "stopped" : "could not roll back"): \(problem); \(left)")
        record.attention.append(problem)
        // Only a switchover's old primary is one of its hosts: a failover's is dead, and a rejoin
        // or a move acts on one replica (`candidate`) while the primary goes on taking writes.
        for name in (isSwitchover ? [record.oldPrimary, record.candidate] : [record.candidate]).compactMap({ $0 }) {
            guard let member = topology.instances[name] else { continue }
            do {
                try await setReadOnly(true, on: member, timeout: 5)
            } catch ControllerError.notLeader {
                throw ControllerError.notLeader
            } catch {
                record.attention.append("\(name) could not be set read-only: \(describe(error).message)")
            }
        }
        guard isSwitchover || isFailover else {
            // A rejoin or a move touches one replica: the section goes on taking writes.
            record.state = .needsHuman
            try await finish()
            return
        }
        do {
            try await commitEdits(
                [
                    .setReadOnly(
                        section: record.section,
                        reason: "Marina operation \(record.id) \(isFailover ? "stopped" : "could not roll back"): a human must look")
                ],
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
    func needsAttention(after index: Int, host: String, message: String) async throws {
        context.logger.warning("operation \(record.id): \(steps[index].name) failed on \(host) after the point of no return: \(message)")
        var note = "\(steps[index].name) failed on \(host): \(message)"
        if let old = record.oldPrimary, steps[index].action == .oldPrimaryReplicates {
            note += "; \(old) is left read-only"
            if topology.instances[old]?.sections[record.section]?.pooled == true {
                do {
                    try await commitEdits(
                        [.depool(instance: old, section: record.section, group: nil)],
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

    // MARK: Recovery

    /// Recovery of a rejoin or a move a previous leader left: its sessions killed, then forward
    /// from the first step not done, or the rollback finished (every step and undo of theirs
    /// reads the host first, so running one again is harmless).
    func recoverUndoable() async throws {
        let uncleared = await killPreviousControllerSessions()
        // A sync's statement the dead controller sent may still be running on the instance of a
        // step it had started: re-reading and re-planning could be undone by it afterwards, so a
        // human looks instead.
        let inFlight = record.steps.filter { [.running, .undoing, .failed].contains($0.state) }.compactMap(\.subject)
        let risky = uncleared.filter { inFlight.contains($0) }
        if isSync, !risky.isEmpty {
            record.failure = OperationRecord.Failure(
                step: "recovery", host: risky.joined(separator: ", "), error: "the previous controller's sessions could not be cleared")
            try await leaveForHuman(
                "the previous controller's sessions on \(risky.joined(separator: ", ")) could not be cleared: a statement of theirs may still apply")
            return
        }
        // A sync whose plan was journaled (its undo written) has nothing to undo when it has no step: it goes forward.
        if isSync, record.steps.isEmpty, try await context.etcd.value(context.keys.operationUndo(record.id)) != nil {
            try await runForward()
            return
        }
        if record.steps.isEmpty {
            record.state = .rolledBack
            record.failure = OperationRecord.Failure(step: "planning", host: "controller", error: "the controller stopped before the plan was made")
            try await finish()
        } else if record.state == .rollingBack {
            try await undoAll()
        } else {
            try await runForward()
        }
    }

    /// Resumes an operation a controller left unfinished. The lease of the controller that ran
    /// it has expired (this one could not lead otherwise), so that controller's fence is closed;
    /// its sessions still open on the section's hosts are killed first, so that a statement it
    /// sent just before its fence closed cannot apply in the middle of what follows. Then the
    /// journal and the candidate's state decide (`Recovery.decide`).
    func recover() async throws {
        context.logger.notice("recovering operation \(record.id) (\(record.state.rawValue)), left by \(record.controller ?? "?")")
        record.controller = context.leadership.id
        switch record.kind {
        case "failover":
            try await recoverFailover()
            return
        case "rejoin", "move", "grant-sync", "variable-sync":
            try await recoverUndoable()
            return
        default: break
        }
        var uncleared = [String]()
        if record.state == .running || record.state == .rollingBack {
            uncleared = await killPreviousControllerSessions()
        }
        var candidateReadOnly: Bool?
        if Recovery.needsCandidateState(record) {
            do {
                candidateReadOnly = try await readOnly(try candidate, timeout: 5)
            } catch ControllerError.notLeader {
                throw ControllerError.notLeader
            } catch {
                // Unreachable, or an answer that is not 0 or 1: unknown, which decides as unknown.
                context.logger.warning("operation \(record.id): the candidate's read_only could not be read: \(describe(error).message)")
                candidateReadOnly = nil
            }
        }
        var decision = Recovery.decide(record, candidateReadOnly: candidateReadOnly)
        // A statement the previous leader sent to the old primary or the candidate may still be
        // in flight there: without its sessions cleared, neither may be made writable.
        let critical = uncleared.filter { $0 == record.oldPrimary || $0 == record.candidate }
        switch decision {
        case .forward, .rollBack:
            if !critical.isEmpty {
                decision = .leaveForHuman(
                    because: "the previous controller's sessions on \(critical.joined(separator: " and ")) could not be cleared")
            }
        case .release, .nothingRan, .leaveForHuman:
            break
        }
        context.logger.notice("operation \(record.id): \(decision)")
        switch decision {
        case .release:
            try await finish(counted: false)
        case .nothingRan:
            record.state = .rolledBack
            record.failure = OperationRecord.Failure(step: "planning", host: "controller", error: "the controller stopped before the plan was made")
            try await finish()
        case .forward:
            if let index = record.pointOfNoReturnIndex { steps[index].state = .done }
            try await runForward()
        case .rollBack(let reason):
            if record.state == .rollingBack {
                try await undoAll()
            } else {
                let interrupted = steps.first { $0.state != .done }?.name ?? "the plan"
                try await rollBack(
                    OperationRecord.Failure(
                        step: interrupted, host: "controller",
                        error: "the controller running the operation stopped (\(reason)); rolled back by \(context.leadership.id)"))
            }
        case .leaveForHuman(let reason):
            record.failure = OperationRecord.Failure(
                step: steps.first { $0.state != .done }?.name ?? "the plan", host: record.candidate, error: reason)
            try await leaveForHuman(reason)
        }
    }

    /// Kills what a previous leader left open on each member of the section (see `recover`).
    /// Gives the members where that could not be done.
    func killPreviousControllerSessions() async -> [String] {
        var uncleared = [String]()
        for member in topology.members(of: record.section).map(\.instance) {
            do {
                var killed = try await context.hosts.killOtherControllerSessions(on: member, timeout: 5)
                // A sync ran its statements as the settings account: a dead controller's may still hang there.
                if isSync, let settings = context.settingsHosts {
                    killed += try await settings.killOtherControllerSessions(on: member, timeout: 5)
                }
                if !killed.isEmpty {
                    context.logger.notice("operation \(record.id): killed \(killed.count) session(s) a previous controller left on \(member.name)")
                }
            } catch {
                uncleared.append(member.name)
                context.logger.warning(
                    "operation \(record.id): could not clear a previous controller's sessions on \(member.name): \(describe(error).message)")
            }
        }
        return uncleared
    }
}
