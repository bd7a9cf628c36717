import EtcdClient
import Foundation
import Operations

/// A DBA's abort (`aborts/<id>`, written by `marina operation abort`), read before each step.
/// Before the point of no return the operation stops there and rolls back as for any failure
/// (`failure.step` is the step it stopped before, on host `controller`); after it, the journal
/// notes that the abort came too late and the operation goes on to its usual end.
///
/// Checked before every step, after a test-only pause, and inside the propagation wait. A
/// statement already sent is not interrupted: a step waiting on a host ends (or times out)
/// first. Inside the flip's window, where each round trip lengthens the time without a writer,
/// only a test-only pause checks it.
extension OperationRun {
    /// The abort a DBA asked for that the journal has not noted yet. An abort request that does
    /// not decode counts as one, naming its problem: stopping is the safe side.
    func pendingAbort() async throws -> AbortRequest? {
        guard record.abort == nil else { return nil }
        guard let kv = try await context.etcd.value(context.keys.abort(record.id)) else { return nil }
        do {
            return try AbortRequest.decode(kv.value, key: kv.key)
        } catch {
            return AbortRequest(operation: record.id, by: "?", at: Date(), reason: "an abort request that cannot be read: \(error)")
        }
    }

    /// Before step `index`: the failure to roll back with if an abort came before the point of
    /// no return (the step at `pointOfNoReturn` has not started); after it, the journal notes
    /// the abort came too late, and nil.
    func abortBefore(_ index: Int, pointOfNoReturn: Int) async throws -> OperationRecord.Failure? {
        guard let request = try await pendingAbort() else { return nil }
        let step = steps.indices.contains(index) ? steps[index].name : "the end"
        if index <= pointOfNoReturn {
            record.abort = AbortNote(request, tooLate: false, outcome: "stopped before \(step)")
            context.logger.warning("operation \(record.id): \(request.error); stopping before \(step)")
            return OperationRecord.Failure(step: step, host: "controller", error: request.error)
        }
        let passed = steps.indices.contains(pointOfNoReturn) ? steps[pointOfNoReturn].name : "the point of no return"
        record.abort = AbortNote(
            request, tooLate: true, outcome: "came after the point of no return (\(passed)): the operation went on to its end")
        context.logger.notice("operation \(record.id): \(request.error); too late, past \(passed): it goes on")
        try await journal()
        return nil
    }

    /// Stops for an abort before the point of no return: as a failure there (a switchover, a
    /// rejoin, a move or a sync rolls back; a failover stops for a human, having no primary to
    /// go back to).
    func stop(for failure: OperationRecord.Failure) async throws {
        guard isFailover else { return try await rollBack(failure) }
        record.failure = failure
        try await journal()
        try await leaveForHuman("the failover stopped before \(record.candidate) took writes: \(failure.error)")
    }

    /// Waits `seconds`, reading the abort key every half second: an abort ends the wait with
    /// `OperationAborted` (noted in the journal by the failure that follows).
    func abortableWait(seconds: Double) async throws {
        let clock = ContinuousClock()
        let end = clock.now + .milliseconds(Int(seconds * 1000))
        while clock.now < end {
            if let request = try await pendingAbort() {
                record.abort = AbortNote(request, tooLate: false, outcome: "stopped during the wait")
                throw OperationAborted(request: request)
            }
            try await Task.sleep(until: min(end, clock.now + .milliseconds(500)), clock: clock)
        }
    }

    /// An abort that came after the last step checked it, or while the operation was already
    /// rolling back: noted in the final journal write.
    func noteAbortAtTheEnd() async {
        guard let request = try? await pendingAbort() else { return }
        let outcome =
            switch record.state {
            case .rolledBack, .needsHuman: "came while it was already rolling back: nothing left to stop"
            default: "came as it was ending (\(record.state.rawValue)): nothing left to stop"
            }
        record.abort = AbortNote(request, tooLate: true, outcome: outcome)
    }
}

/// A step ended early by a DBA's abort.
struct OperationAborted: Error, CustomStringConvertible {
    let request: AbortRequest
    var description: String { request.error }
}
