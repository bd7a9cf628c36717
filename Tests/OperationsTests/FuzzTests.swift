import Foundation
import FuzzSupport
import Observation
import Operations
import Testing

@Suite("Playbooks and operation records: fuzz")
struct OperationsFuzzTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("random bytes and mutated playbooks give a playbook or one error naming the file, never a crash")
    func playbook() throws {
        let sample = try String(contentsOf: Self.repository.appendingPathComponent("playbooks/switchover.yaml"), encoding: .utf8)
        _ = try Playbook.parse(sample, file: "fuzz.yaml")
        Fuzz.run(seed: 0x9A7B00C, sample: sample, { _ = try Playbook.parse($0, file: "fuzz.yaml") }) { error, input in
            #expect(error is PlaybookError, "\(type(of: error)) \(input)")
            #expect("\(error)".hasPrefix("fuzz.yaml:") && "\(error)".count > "fuzz.yaml: ".count, "\(error) \(input)")
        }
    }

    @Test("random bytes and mutated journals give a record or one error naming the key, never a crash")
    func record() throws {
        var record = OperationRecord(
            id: "20250101-000000-s1-beef", section: "s1", candidate: "db1002", reason: "fuzz", skipReplicas: ["db1003"],
            requestedBy: "fuzz", requestedAt: Date(timeIntervalSince1970: 1_700_000_000))
        record.state = .rolledBack
        record.windowMilliseconds = 12.5
        record.failure = .init(step: "wait-catch-up", host: "db1002", error: "timeout")
        var step = StepRecord(
            name: "wait-catch-up", action: .waitCatchUp, hosts: ["db1002"], statements: ["SELECT 1"], check: "c", undo: [],
            timeout: 5, pointOfNoReturn: false, command: ["true"])
        step.state = .failed
        step.milliseconds = 5000.25
        step.startedAt = Date(timeIntervalSince1970: 1_700_000_001.5)
        record.steps = [step]
        let sample = String(decoding: try OperationJSON.encode(record), as: UTF8.self)
        #expect(try OperationJSON.decode(Array(sample.utf8), key: "k") == record)
        Fuzz.run(seed: 0x0B5E_C0DE, sample: sample, { _ = try OperationJSON.decode(Array($0.utf8), key: "/marina/v1/operations/fuzz") }) {
            error, input in
            guard let unreadable = error as? UnreadableRecord else {
                Issue.record("not an UnreadableRecord: \(error) \(input)")
                return
            }
            #expect(unreadable.key == "/marina/v1/operations/fuzz" && !unreadable.problem.isEmpty, "\(input)")
            #expect(!unreadable.problem.contains("\n"), "\(unreadable.problem)")
        }
    }
}
