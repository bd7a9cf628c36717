import EtcdClient
import Foundation
import Operations
import StoredRecords
import Topology
import TopologyStore

/// The journal, the source-of-truth commits an operation makes, and the test-only pauses.
extension OperationRun {
    /// Writes the record (and `operations`) if this controller still leads: the fence first,
    /// then the leader key compared in the same transaction.
    func journal(_ operations: [KVOperation] = [], compares: [Compare] = []) async throws {
        try context.fence.check()
        record.updatedAt = Date()
        let result = try await context.etcd.transaction(
            Transaction(
                compares: [await context.leadership.compare] + compares,
                success: [.put(context.keys.operation(record.id), try OperationJSON.encode(record))] + operations))
        guard result.succeeded else {
            if !compares.isEmpty, await leaderKeyIsOurs() { throw RequestWithdrawn() }
            await context.leadership.lost()
            throw ControllerError.notLeader
        }
    }

    /// Whether the leader key still names this controller (read, without changing anything).
    func leaderKeyIsOurs() async -> Bool {
        let compare = await context.leadership.compare
        guard let kv = try? await context.etcd.value(context.keys.leader), case .value(let expected) = compare.target else { return false }
        return kv.value == expected
    }

    /// The final journal write, which releases the section's lock in the same transaction.
    /// Once written, the operation is counted in the metrics (`counted`: not again when a
    /// recovery only releases the lock of a journal that was already final).
    func finish(counted: Bool = true) async throws {
        record.finishedAt = Date()
        record.pausedBefore = nil
        await noteAbortAtTheEnd()
        context.logger.notice("operation \(record.id) \(record.state.rawValue)")
        // The lock is released only if it is this operation's; a DBA's abort or resume request
        // goes with it.
        let lock = context.keys.lock(record.section)
        var also: [KVOperation] = [.delete(lock), .delete(context.keys.abort(record.id)), .delete(context.keys.resumeRequest(record.id))]
        // A sync's undo holds account hashes: it goes once nothing can need it (a sync left for a
        // human keeps it: it says what each instance had).
        if isSync, record.state != .needsHuman { also.append(.delete(context.keys.operationUndo(record.id))) }
        // A variable sync that ran releases the section's variables to the agents' option files,
        // in the same transaction: a sync that rolled back (or never ran) releases nothing.
        if record.kind == "variable-sync", record.state == .done, !record.dryRun {
            let key = context.keys.syncedVariables(record.section)
            if let variables = topology.variables[record.section] {
                let sequence = try await context.store.read().committed.sequence
                also.append(.put(key, try StoredJSON.encode(CommittedVariables(section: record.section, sequence: sequence, variables: variables))))
            } else {
                also.append(.delete(key))
            }
        }
        // An automatic failover that ran (promoted someone, or stopped for a human) blocks the
        // next one, in the same transaction; one refused by its preflight changed nothing.
        if isFailover, record.failover?.automatic == true, record.state != .refused {
            let now = Date()
            let block = FailoverBlock(
                section: record.section, operation: record.id, blockedAt: now, until: now.addingTimeInterval(context.failover.blockSeconds))
            also.append(.put(context.keys.failoverBlock(record.section), try StoredJSON.encode(block)))
        }
        do {
            try await journal(also, compares: [Compare(key: lock, .equal, .value(Array(record.id.utf8)))])
            if counted { ControllerInstruments.finished(record) }
        } catch is RequestWithdrawn {
            context.logger.error("operation \(record.id): the lock of \(record.section) is not this operation's; its journal was not finished")
        }
    }

    func stillLeader() async -> Bool {
        guard context.fence.isOpen else { return false }
        let compare = await context.leadership.compare
        guard let kv = try? await context.etcd.value(context.keys.leader), case .value(let expected) = compare.target else { return false }
        if kv.value == expected { return true }
        await context.leadership.lost()
        return false
    }

    /// Commits edits to the source of truth, re-reading up to three times if someone else
    /// commits meanwhile. Edits that are already committed (a step run again after a crash) are done.
    ///
    /// The store writes the site mirror (MediaWiki's etcd v2 keys) and the controller's own
    /// `mirror:` after the commit. While the operation runs forward, a mirror that was not
    /// written fails the step (`etcd-v2`), although the commit stands: applications would not
    /// see the change, so a `section-read-only` that MediaWiki never saw must not let the
    /// switchover go on to make the primary read-only; the rollback then commits the section
    /// as it was, which is what MediaWiki still reads. While rolling back (or leaving the
    /// section for a human) the commit is what matters: a mirror failure there is logged and
    /// noted in the journal for a human, and the undo goes on.
    func commitEdits(_ edits: [TopologyEdit], message: String) async throws {
        for _ in 1...3 {
            switch try await context.store.prepare(edits, message: message, by: author, kind: .commit) {
            case .failure(let refused):
                throw ControllerError.stepFailed(host: "etcd", message: refused.description)
            case .success(let prepared):
                try context.fence.check()
                let outcome: CommitOutcome
                do {
                    outcome = try await context.store.commit(
                        prepared, compares: [await context.leadership.compare], alsoMirror: context.mirror ?? ConfigMirror())
                } catch let failure as MirrorWriteFailed {
                    guard record.state == .running else {
                        mirrorNotWritten(failure)
                        return
                    }
                    throw ControllerError.stepFailed(host: "etcd-v2", message: failure.description)
                }
                switch outcome {
                case .committed, .nothingToCommit:
                    return
                case .conflict, .invalid:
                    guard await stillLeader() else { throw ControllerError.notLeader }
                }
            }
        }
        throw ControllerError.stepFailed(host: "etcd", message: "the source of truth kept changing: three commits lost their compare-and-swap")
    }

    /// Writes the mirrors of `topology`, committed earlier (the flip's commit, after its window).
    /// A failure is logged and noted for a human; it does not fail anything.
    func mirror(_ topology: Topology) async {
        do {
            try await context.store.writeMirror(topology.generatedConfigs(), also: context.mirror ?? ConfigMirror())
        } catch let failure as MirrorWriteFailed {
            mirrorNotWritten(failure)
        } catch {
            mirrorNotWritten(MirrorWriteFailed(entry: nil, written: [], failures: [MirrorFailure(target: "the mirrors", message: "\(error)")]))
        }
    }

    /// A commit stands while its mirror is stale: logged, and in the journal for a human.
    private func mirrorNotWritten(_ failure: MirrorWriteFailed) {
        context.logger.error("operation \(record.id): \(failure)")
        let note =
            "the configuration mirror was not written: \(failure.failures.map(\.description).joined(separator: "; ")); "
            + "run `marina config mirror --sync` once it can be"
        if !record.attention.contains(note) { record.attention.append(note) }
    }

    var author: ChangeAuthor {
        ChangeAuthor(author: "marina-controller (\(context.leadership.id)) for \(record.requestedBy)", now: Date())
    }

    /// Test only: waits before the chosen step until the resume key exists (or, before the
    /// point of no return, an abort request). The journal says where. True if it paused.
    @discardableResult
    func pauseIfAsked(before index: Int) async throws -> Bool {
        guard !pausedOnce, let pause = context.pauseBefore, steps[index].action.rawValue == pause || steps[index].name == pause else {
            return false
        }
        pausedOnce = true
        record.pausedBefore = steps[index].name
        try await journal()
        context.logger.notice("operation \(record.id) paused before \(steps[index].name) (pause_before)")
        let pointOfNoReturn = record.pointOfNoReturnIndex ?? (isSwitchover || isFailover ? -1 : steps.count)
        try await waitForResume(orAbort: index <= pointOfNoReturn)
        record.pausedBefore = nil
        return true
    }

    /// Test only (`pause_before: take-lock`): waits before the section's lock is taken, with
    /// the request read, signalled by `<resume key>/paused` and nothing written to the journal.
    func pauseIfAsked(beforeLocking: Void) async throws {
        guard context.pauseBefore == "take-lock" else { return }
        _ = try await context.etcd.put(context.keys.resume + record.id + "/paused", "take-lock")
        context.logger.notice("operation \(record.id) paused before taking the lock (pause_before)")
        try await waitForResume()
    }

    /// Test only: waits after the chosen step's SQL ran and before the journal records it, as a
    /// controller killed in the middle of a step would leave things. Signals the pause with a
    /// key of its own (`<resume key>/paused`), not in the journal, which must stay as it was.
    func pauseIfAsked(after index: Int) async throws {
        guard !pausedOnce, let pause = context.pauseAfter, steps[index].action.rawValue == pause || steps[index].name == pause else { return }
        pausedOnce = true
        _ = try await context.etcd.put(context.keys.resume + record.id + "/paused", steps[index].name)
        context.logger.notice("operation \(record.id) paused after \(steps[index].name) ran, before it is journaled (pause_after)")
        try await waitForResume()
    }

    private func waitForResume(orAbort: Bool = false) async throws {
        while try await context.etcd.value(context.keys.resume + record.id) == nil {
            if orAbort, try await context.etcd.value(context.keys.abort(record.id)) != nil { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// A journal write that compared the request as read found it changed: the CLI withdrew it.
struct RequestWithdrawn: Error {}
