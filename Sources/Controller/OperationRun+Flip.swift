import Foundation
import Operations
import TopologyStore

extension OperationRun {
    /// The flip, from the old primary going read-only to the candidate going writable. The
    /// window without a writer holds only these steps, so the journal is written around it:
    /// once before (every flip step `running`: it may have taken effect), once inside the
    /// source-of-truth commit (the steps done so far, in the same transaction), once after.
    /// Recovery re-reads the hosts, so it does not need a journal write per flip step.
    func flip(from first: Int, through last: Int) async throws -> OperationRecord.Failure? {
        guard let commitIndex = steps.firstIndex(where: { $0.action == .commitPrimary }), (first...last).contains(commitIndex) else {
            throw ControllerError.stepFailed(host: "controller", message: "commit-primary is not inside the flip")
        }
        // Prepared before the window, so that the commit inside it is one round trip.
        var prepared: TopologyStore.PreparedEdits
        flipBaseline = try await context.store.committedTopology()
        switch try await prepareSwitch() {
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
        var index = first
        while index <= last {
            // Detaching the candidate (a host) and committing the new primary (etcd) do not depend
            // on each other, and both end before the candidate is made writable: they overlap,
            // so the window holds the longer of the two rather than their sum. The test-only
            // pauses need them one after the other.
            if steps[index].action == .detachCandidate, index + 1 == commitIndex, context.pauseBefore == nil, context.pauseAfter == nil {
                if let failure = try await detachWhileCommitting(detach: index, commit: commitIndex, prepared: &prepared, last: last) {
                    return failure
                }
                index += 2
                continue
            }
            // Only after a test-only pause: inside the window every round trip counts.
            if try await pauseIfAsked(before: index), let failure = try await abortBefore(index, pointOfNoReturn: last) {
                for later in index...last {
                    steps[later].state = .pending
                    steps[later].startedAt = nil
                }
                return failure
            }
            let started = ContinuousClock.now
            if steps[index].action == .oldPrimaryReadOnly { windowStart = started }
            do {
                if index == commitIndex {
                    prepared = try await commitSwitch(prepared)
                } else {
                    try await perform(index)
                }
                try await pauseIfAsked(after: index)
                steps[index].state = .done
                steps[index].milliseconds = Seconds.milliseconds(since: started)
            } catch ControllerError.notLeader {
                throw ControllerError.notLeader
            } catch {
                return failed(index, error, started: started, last: last)
            }
            index += 1
        }
        if let windowStart { record.windowMilliseconds = Seconds.milliseconds(since: windowStart) }
        try await journal()
        // The store wrote the mirrors with the commit, inside the window (a failure there failed
        // commit-primary, and the switchover rolled back). This writes them again after the
        // window, past the point of no return: the candidate takes writes and the commit stands,
        // so a failure here must not fail the step; it is logged and noted for a human.
        await mirror(prepared.topology)
        return nil
    }

    /// The commit of the new primary, prepared against what is committed now.
    func prepareSwitch() async throws -> Result<TopologyStore.PreparedEdits, TopologyStore.EditsRefused> {
        try await context.store.prepare(
            [.setPrimary(section: record.section, instance: record.candidate)],
            message: "operation \(record.id): \(record.candidate) primary of \(record.section)",
            by: author, kind: .commit)
    }

    /// After a lost compare-and-swap: the commit prepared again, if what changed meanwhile left
    /// this section as the switchover planned it (humans cannot commit to a locked section; the
    /// automatic depool skips it); nil if the section itself changed.
    func preparedAgainIfSectionUnchanged() async throws -> TopologyStore.PreparedEdits? {
        guard let baseline = flipBaseline, let now = try await context.store.committedTopology(),
            !TopologyStore.sectionsTouched(from: baseline, to: now).contains(record.section),
            case .success(let again) = try await prepareSwitch()
        else { return nil }
        return again
    }

    /// The commit of the new primary inside the window, with the journal in the same
    /// transaction: one round trip (the mirror is written after the window). A commit elsewhere
    /// meanwhile (another section) costs one more: prepared again. Gives what was committed.
    func commitSwitch(_ prepared: TopologyStore.PreparedEdits) async throws -> TopologyStore.PreparedEdits {
        guard let commitIndex = steps.firstIndex(where: { $0.action == .commitPrimary }) else { return prepared }
        steps[commitIndex].state = .done
        var prepared = prepared
        var attempts = 0
        while true {
            attempts += 1
            try context.fence.check()
            let outcome = try await context.store.commit(
                prepared, alongWith: [.put(context.keys.operation(record.id), try OperationJSON.encode(record))],
                compares: [await context.leadership.compare], writeMirror: false)
            if case .committed = outcome { return prepared }
            guard await stillLeader() else { throw ControllerError.notLeader }
            guard attempts < 3, let again = try await preparedAgainIfSectionUnchanged() else {
                throw ControllerError.stepFailed(
                    host: "etcd",
                    message: "lost compare-and-swap: section \(record.section) changed in the source of truth since the switch was prepared")
            }
            prepared = again
        }
    }

    /// `detach-candidate` and `commit-primary` at once (see `flip`). If either fails, both are
    /// journaled as they ended and the rollback undoes what may have taken effect.
    private func detachWhileCommitting(
        detach: Int, commit: Int, prepared: inout TopologyStore.PreparedEdits,
        last: Int
    ) async throws -> OperationRecord.Failure? {
        let started = ContinuousClock.now
        let toCommit = prepared
        async let detached = outcome { try await self.perform(detach) }
        async let committed = outcome { try await self.commitSwitch(toCommit) }
        let (detachResult, commitResult) = await (detached, committed)
        let elapsed = Seconds.milliseconds(since: started)
        if case .failure(ControllerError.notLeader) = detachResult { throw ControllerError.notLeader }
        if case .failure(ControllerError.notLeader) = commitResult { throw ControllerError.notLeader }
        if case .success(let done) = commitResult {
            prepared = done
            steps[commit].milliseconds = elapsed
        }
        if case .success = detachResult {
            steps[detach].state = .done
            steps[detach].milliseconds = elapsed
        }
        if case .failure(let error) = detachResult {
            if case .failure = commitResult { steps[commit].state = .failed }  // journaled below with the detach's failure
            return failed(detach, error, started: started, last: last, keep: commit)
        }
        if case .failure(let error) = commitResult { return failed(commit, error, started: started, last: last) }
        return nil
    }

    private func outcome<T: Sendable>(_ body: () async throws -> T) async -> Result<T, Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    /// Records a flip step's failure; the flip steps after it never ran (but `keep`, which
    /// ran alongside it, keeps its state).
    private func failed(_ index: Int, _ error: Error, started: ContinuousClock.Instant, last: Int, keep: Int? = nil) -> OperationRecord.Failure {
        let (host, message) = describe(error)
        steps[index].state = .failed
        steps[index].milliseconds = Seconds.milliseconds(since: started)
        steps[index].error = message
        steps[index].host = host
        for later in steps.indices where later > index && later <= last && later != keep {
            steps[later].state = .pending
            steps[later].startedAt = nil
        }
        return OperationRecord.Failure(step: steps[index].name, host: host, error: message)
    }
}
