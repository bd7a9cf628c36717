import CoreMetrics
import Foundation
import Operations
import Policy

/// What the controller reports through swift-metrics as it acts (`marina controller` exposes
/// them on `/metrics`; see docs/metrics.md). Only the controller that ran an operation or made
/// an automatic change counts it: on a follower these stay at zero.
public enum ControllerInstruments {
    public static let operations = "marina_operations_total"
    public static let operationDuration = "marina_operation_duration_seconds"
    public static let writeWindow = "marina_write_window_seconds"
    public static let depoolActions = "marina_automatic_depool_actions_total"
    public static let depoolRefusals = "marina_automatic_depool_refusals_total"

    /// The `kind` label: the operations a controller runs (any other kind reads `other`).
    public static let kinds = ["switchover", "failover", "rejoin", "move", "grant-sync", "variable-sync"]

    /// The `outcome` label: the final states of an operation's journal that a run can end in.
    public static let outcomes: [OperationRecord.State] = [.done, .doneNeedsAttention, .rolledBack, .needsHuman, .refused]

    /// Buckets for `operationDuration`: a switchover takes a second or two, a sync of many
    /// instances or a failover that waits for relay logs minutes.
    public static let operationDurationBuckets: [Duration] = [
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30),
        .seconds(60), .seconds(120), .seconds(300), .seconds(600),
    ]

    /// Buckets for `writeWindow`, the seconds without a writable instance: a few milliseconds
    /// when all is well, seconds when a replica is slow to catch up.
    public static let writeWindowBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// The labels an operation is counted under once its journal is final; nil for one that is
    /// not counted (a dry run, or a journal not final yet).
    public static func labels(for record: OperationRecord) -> (kind: String, outcome: String)? {
        guard !record.dryRun, outcomes.contains(record.state) else { return nil }
        return (kind: kinds.contains(record.kind) ? record.kind : "other", outcome: record.state.rawValue)
    }

    /// The `action` label of an automatic change committed; nil for a refusal (counted apart).
    public static func depoolAction(_ change: PolicyAction) -> String? {
        switch change {
        case .depool: "depool"
        case .repool: "repool"
        case .refused: nil
        }
    }

    /// Creates every operation counter, the depool counters and the switchover's write window
    /// at zero, so that a rate over them exists before the first operation (call once the metrics backend is bootstrapped).
    public static func registerCounters() {
        for kind in kinds {
            for outcome in outcomes {
                _ = Counter(label: operations, dimensions: [("kind", kind), ("outcome", outcome.rawValue)])
            }
        }
        // Only a switchover has a window without a writer (a failover's began when the primary died).
        _ = CoreMetrics.Timer(label: writeWindow, dimensions: [("kind", "switchover")])
        for action in ["depool", "repool"] {
            _ = Counter(label: depoolActions, dimensions: [("action", action)])
            _ = Counter(label: depoolRefusals, dimensions: [("action", action)])
        }
    }

    /// Counts an operation this controller finished (its final journal written): its outcome,
    /// its duration from the start, and its window without a writer when it had one.
    static func finished(_ record: OperationRecord) {
        guard let (kind, outcome) = labels(for: record) else { return }
        Counter(label: operations, dimensions: [("kind", kind), ("outcome", outcome)]).increment()
        if let started = record.startedAt, let ended = record.finishedAt, ended >= started {
            CoreMetrics.Timer(label: operationDuration, dimensions: [("kind", kind)]).recordSeconds(ended.timeIntervalSince(started))
        }
        if let window = record.windowMilliseconds, window.isFinite, window >= 0 {
            CoreMetrics.Timer(label: writeWindow, dimensions: [("kind", kind)]).recordMilliseconds(window)
        }
    }

    /// Counts an automatic change committed.
    static func committed(_ change: PolicyAction) {
        guard let action = depoolAction(change) else { return }
        Counter(label: depoolActions, dimensions: [("action", action)]).increment()
    }

    /// Counts an automatic change that a guard rail (or the source of truth's rules) started refusing.
    static func refused(action: String) {
        Counter(label: depoolRefusals, dimensions: [("action", action == "repool" ? "repool" : "depool")]).increment()
    }
}
