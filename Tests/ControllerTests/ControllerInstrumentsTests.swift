import Controller
import Foundation
import Operations
import Policy
import Testing

@Suite("Controller metrics: which operations are counted, under which labels")
struct ControllerInstrumentsTests {
    func record(kind: String = "switchover", state: OperationRecord.State, dryRun: Bool = false) -> OperationRecord {
        var record = OperationRecord(
            id: "20250101-000000-s1-beef", kind: kind, section: "s1", candidate: "db1002", reason: "test", dryRun: dryRun, requestedBy: "test",
            requestedAt: Date(timeIntervalSince1970: 0))
        record.state = state
        return record
    }

    @Test("a finished operation is counted under its kind and the journal's final state")
    func finalStates() {
        let expected: [(OperationRecord.State, String)] = [
            (.done, "done"), (.doneNeedsAttention, "done-needs-attention"), (.rolledBack, "rolled-back"), (.needsHuman, "needs-human"),
            (.refused, "refused"),
        ]
        for kind in ControllerInstruments.kinds {
            for (state, outcome) in expected {
                let labels = ControllerInstruments.labels(for: record(kind: kind, state: state))
                #expect(labels?.kind == kind && labels?.outcome == outcome, "\(kind) \(state)")
            }
        }
    }

    @Test("a dry run, an unfinished journal and a request are not counted")
    func notCounted() {
        for state in [OperationRecord.State.requested, .running, .rollingBack, .planned] {
            #expect(ControllerInstruments.labels(for: record(state: state)) == nil, "\(state)")
        }
        #expect(ControllerInstruments.labels(for: record(state: .refused, dryRun: true)) == nil)
        #expect(ControllerInstruments.labels(for: record(state: .done, dryRun: true)) == nil)
    }

    @Test("every outcome label is a final state, and a kind no controller runs reads `other` (the label set stays small)")
    func labelSet() {
        let unfinished = ControllerInstruments.outcomes.filter { !$0.isFinished }
        #expect(unfinished.isEmpty)
        #expect(ControllerInstruments.labels(for: record(kind: "something-new", state: .done))?.kind == "other")
        #expect(Set(ControllerInstruments.kinds).count == 6)
    }

    @Test("an automatic change committed is a depool or a repool; a refusal is counted apart")
    func depoolActions() {
        #expect(ControllerInstruments.depoolAction(.depool(instance: "db1002", section: "s1", reason: "lag")) == "depool")
        #expect(ControllerInstruments.depoolAction(.repool(instance: "db1002", section: "s1", percentage: 25, reason: "ok")) == "repool")
        #expect(ControllerInstruments.depoolAction(.refused(instance: "db1002", section: "s1", action: "depool", reason: "minimum")) == nil)
    }

    @Test("the histogram buckets rise strictly, and the write window's start at a millisecond")
    func buckets() {
        for buckets in [ControllerInstruments.writeWindowBuckets, ControllerInstruments.operationDurationBuckets] {
            let rising = zip(buckets, buckets.dropFirst()).allSatisfy { $0 < $1 }
            #expect(rising)
        }
        #expect(ControllerInstruments.writeWindowBuckets.first == .milliseconds(1))
        #expect(ControllerInstruments.writeWindowBuckets.last == .seconds(10))
    }
}
