import Foundation
import Operations
import TopologyStore

extension SwitchoverRun {
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
        for index in first...last {
            try await pauseIfAsked(before: index)
            let started = ContinuousClock.now
            if steps[index].action == .oldPrimaryReadOnly { windowStart = started }
            do {
                if index == commitIndex {
                    steps[index].state = .done
                    try context.fence.check()
                    // One round trip inside the window: the mirror is written after it (below). A
                    // commit elsewhere meanwhile (another section) costs one more: prepared again.
                    var attempts = 0
                    while true {
                        attempts += 1
                        let outcome = try await context.store.commit(
                            prepared, alongWith: [.put(context.keys.operation(record.id), try OperationJSON.encode(record))],
                            compares: [await context.leadership.compare], writeMirror: false)
                        if case .committed = outcome { break }
                        guard await stillLeader() else { throw ControllerError.notLeader }
                        guard attempts < 3, let again = try await preparedAgainIfSectionUnchanged() else {
                            throw ControllerError.stepFailed(host: "etcd", message: "lost compare-and-swap: section \(record.section) changed in the source of truth since the switch was prepared")
                        }
                        prepared = again
                    }
                } else {
                    try await perform(index)
                }
                try await pauseIfAsked(after: index)
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
        // The store wrote the mirrors with the commit, inside the window (a failure there failed
        // commit-primary, and the switchover rolled back). This writes them again after the
        // window, past the point of no return: the candidate takes writes and the commit stands,
        // so a failure here must not fail the step; it is logged and noted for a human.
        await mirror(prepared.topology)
        return nil
    }

    /// The commit of the new primary, prepared against what is committed now.
    func prepareSwitch() async throws -> Result<TopologyStore.PreparedEdits, TopologyStore.EditsRefused> {
        try await context.store.prepare([.setPrimary(section: record.section, instance: record.candidate)],
                                        message: "operation \(record.id): \(record.candidate) primary of \(record.section)",
                                        by: author, kind: .commit)
    }

    /// After a lost compare-and-swap: the commit prepared again, if what changed meanwhile left
    /// this section as the switchover planned it (humans cannot commit to a locked section; the
    /// automatic depool skips it); nil if the section itself changed.
    func preparedAgainIfSectionUnchanged() async throws -> TopologyStore.PreparedEdits? {
        guard let baseline = flipBaseline, let now = try await context.store.committedTopology(),
              !TopologyStore.sectionsTouched(from: baseline, to: now).contains(record.section),
              case .success(let again) = try await prepareSwitch() else { return nil }
        return again
    }
}
