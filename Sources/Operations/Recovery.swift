import Foundation

/// What a controller does with an operation it finds unfinished (its own task ended early, or
/// the controller that ran it died or lost its lease), decided from the journal and what the
/// hosts say now. Pure: no I/O, no clock.
public enum RecoveryDecision: Equatable, Sendable {
    /// The journal shows it ended: release its lock.
    case release
    /// It stopped before planning: nothing ran, record it rolled back.
    case nothingRan
    /// The candidate took writes: finish forward, from the first step not done.
    case forward(because: String)
    /// The candidate cannot have taken writes: undo every step that may have taken effect.
    case rollBack(because: String)
    /// Neither direction is safe without a human (the candidate's state is unknown).
    case leaveForHuman(because: String)
}

public enum Recovery {
    /// Whether deciding needs the candidate's `read_only`: when the point of no return may have
    /// been crossed without the journal recording it (its step started, not finished), and when
    /// the journal says it was crossed (the candidate must still be the writer to go forward).
    public static func needsCandidateState(_ record: OperationRecord) -> Bool {
        guard record.state == .running, let index = record.pointOfNoReturnIndex else { return false }
        switch record.steps[index].state {
        case .done: return true
        case .running: return record.steps.contains { $0.action == .commitPrimary && $0.state == .done }
        default: return false
        }
    }

    /// Forward or back, and why. `candidateReadOnly` is what the candidate answered for
    /// `@@read_only` (nil: it could not be read), needed when `needsCandidateState` says so.
    public static func decide(_ record: OperationRecord, candidateReadOnly: Bool?) -> RecoveryDecision {
        switch record.state {
        case .rollingBack:
            return .rollBack(because: "it was rolling back")
        case .running:
            guard let index = record.pointOfNoReturnIndex else { return .nothingRan }
            switch record.steps[index].state {
            case .done:
                // Read-only now, after it was made writable: a controller that was leaving the
                // section for a human stopped between setting it read-only and journaling that.
                if candidateReadOnly == true {
                    return .leaveForHuman(
                        because: "the candidate was made writable (journaled) but answers read_only = 1 now: "
                            + "a controller leaving the section for a human stopped half-way")
                }
                return .forward(because: "the candidate took writes (journaled)")
            case .pending:
                return .rollBack(because: "it stopped before the candidate could take writes")
            case .running where record.steps.contains { $0.action == .commitPrimary && $0.state == .done }:
                switch candidateReadOnly {
                case false?: return .forward(because: "the candidate answers read_only = 0: it took writes")
                case true?: return .rollBack(because: "the candidate answers read_only = 1: it never took writes")
                case nil:
                    return .leaveForHuman(because: "the candidate could not be read: it may take writes, so the old primary may not")
                }
            case .running:
                // The new primary is committed before the candidate is made writable; without the commit it never was.
                return .rollBack(because: "the new primary was never committed, so the candidate was never made writable")
            case .failed, .undoing, .undone, .undoFailed:
                return .leaveForHuman(because: "the point of no return is journaled as \(record.steps[index].state.rawValue) in a running operation")
            }
        case .requested, .planned, .refused, .done, .doneNeedsAttention, .rolledBack, .needsHuman:
            return .release
        }
    }

    /// The steps a rollback undoes, newest first: every one that may have taken effect.
    public static func stepsToUndo(_ steps: [StepRecord]) -> [Int] {
        steps.indices.reversed().filter { mayHaveTakenEffect(steps[$0].state) }
    }

    public static func mayHaveTakenEffect(_ state: StepRecord.State) -> Bool {
        switch state {
        case .done, .running, .failed, .undoing, .undoFailed: true
        case .pending, .undone: false
        }
    }

    /// Undoing the old primary's read-only step makes it writable again. That is safe only when
    /// the candidate is read-only: it answered so, or the journal shows its writable step never
    /// started (it was read-only at preflight and nothing else makes it writable). Unknown is
    /// never read-only. Gives nil when safe, else why not.
    public static func oldPrimaryMayTakeWrites(candidateWritableStep: StepRecord.State?, candidateReadOnly: Bool?) -> String? {
        if candidateReadOnly == true { return nil }
        if candidateReadOnly == false { return "the candidate is writable: the old primary stays read-only" }
        if candidateWritableStep == .pending { return nil }
        return "the candidate could not be read and may have been made writable: the old primary stays read-only"
    }
}
