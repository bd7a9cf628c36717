import Foundation
import Observation
import Operations
import Testing

/// Playbook numbers that must be refused by name, and records that cannot be written.
@Suite("Playbooks and operation records: bad values")
struct OperationsBadInputTests {
    static let sample = try! String(
        contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("playbooks/switchover.yaml"), encoding: .utf8)

    func problems(_ text: String) -> [String] {
        do {
            _ = try Playbook.parse(text, file: "p.yaml")
            return []
        } catch let error as PlaybookError {
            return error.problems
        } catch {
            return ["\(error)"]
        }
    }

    @Test(
        "a step timeout that is not a positive finite number is refused naming the step",
        arguments: [
            (".nan", "nan"), (".inf", "inf"), ("-.inf", "-inf"), ("1e12", "1000000000000.0"), ("-1", "-1.0"),
        ])
    func stepTimeout(value: String, shown: String) throws {
        let text = Self.sample.replacingOccurrences(
            of: "  - action: wait-catch-up\n    timeout: 5\n", with: "  - action: wait-catch-up\n    timeout: \(value)\n")
        try #require(text != Self.sample)
        let found = problems(text)
        #expect(
            found.count == 1 && found[0].hasSuffix("(wait-catch-up): timeout must be positive and finite, at most 86400 seconds (got \(shown))"),
            "\(found)")
    }

    @Test(
        "an option that is not finite or is out of range is refused naming the key",
        arguments: [
            ("max_lag", ".nan", "nan"), ("max_lag", "1e12", "1000000000000.0"), ("propagation_wait", ".inf", "inf"),
            ("max_transaction_age", "-1", "-1.0"),
        ])
    func option(key: String, value: String, shown: String) {
        let lines = Self.sample.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("  \(key):") }
        let text = lines.joined(separator: "\n").replacingOccurrences(of: "options:\n", with: "options:\n  \(key): \(value)\n")
        let found = problems(text)
        #expect(found.contains { $0.hasSuffix("\(key): must be a finite number of seconds, from 0 to 86400 (got \(shown))") }, "\(found)")
    }

    @Test("a record holding a number JSON cannot carry is not encoded: nothing is written")
    func encodeThrows() {
        var record = OperationRecord(id: "x", section: "s1", candidate: "db1002", reason: "", requestedBy: "t", requestedAt: Date())
        record.windowMilliseconds = .nan
        #expect(throws: EncodingError.self) { try OperationJSON.encode(record) }
        record.windowMilliseconds = 1
        record.steps = [StepRecord(name: "s", action: .waitCatchUp, hosts: [], statements: [], check: "", undo: [], timeout: .infinity)]
        #expect(throws: EncodingError.self) { try OperationJSON.encode(record) }
    }

    @Test("an undecodable record is one error naming its key and the field")
    func undecodable() throws {
        let record = OperationRecord(id: "x", section: "s1", candidate: "db1002", reason: "", requestedBy: "t", requestedAt: Date())
        let json = String(decoding: try OperationJSON.encode(record), as: UTF8.self)
        let cases: [(String, String)] = [
            ("", "the value is empty"),
            ("{", "not JSON: {"),
            ("[]", "the value is not an object"),
            (json.replacingOccurrences(of: "\"state\":\"requested\"", with: "\"state\":7"), "state is not a string"),
            (json.replacingOccurrences(of: "\"section\":\"s1\",", with: ""), "section is missing"),
        ]
        for (text, problem) in cases {
            #expect(throws: UnreadableRecord(key: "/k", problem: problem)) { try OperationJSON.decode(Array(text.utf8), key: "/k") }
        }
    }
}
