import Foundation
import Operations
import Testing

/// The repository's `playbooks/` directory.
let playbooksDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("playbooks").path

func steps(_ actions: [StepAction]) -> String {
    "operation: switchover\nsteps:\n" + actions.map { "  - action: \($0.rawValue)\n" }.joined()
}

let safeOrder: [StepAction] = [
    .moveReplicas, .sectionReadOnly, .waitPropagation, .oldPrimaryReadOnly, .readFinalPosition, .waitCatchUp, .detachCandidate,
    .commitPrimary, .candidateWritable, .oldPrimaryReplicates, .resetCandidateReplication, .sectionReadWrite,
]

@Suite("Playbooks")
struct PlaybookTests {
    @Test("every file in playbooks/ loads and passes the safety rules")
    func everyPlaybookLoads() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: playbooksDirectory).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.contains("switchover.yaml"))
        for file in files {
            let playbook = try Playbook.load(playbooksDirectory + "/" + file)
            #expect(playbook.safetyProblems().isEmpty, "\(file)")
        }
        let switchover = try Playbook.load(playbooksDirectory + "/switchover.yaml")
        #expect(switchover.steps.map(\.action) == safeOrder)
        #expect(switchover.options.propagationWait == 0)
    }

    @Test("the candidate made writable before the old primary is read-only is refused, naming both steps")
    func writableBeforeReadOnly() {
        var order = safeOrder
        order.swapAt(order.firstIndex(of: .oldPrimaryReadOnly)!, order.firstIndex(of: .candidateWritable)!)
        do {
            _ = try Playbook.parse(steps(order), file: "wrong.yaml")
            Issue.record("a playbook making the candidate writable first was accepted")
        } catch let error as PlaybookError {
            #expect(error.file == "wrong.yaml")
            #expect(
                error.problems.contains {
                    $0.contains("candidate-writable") && $0.contains("old-primary-read-only") && $0.contains("two instances would be writable")
                }, "\(error.problems)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    /// Every ordering rule of `safetyProblems()`, with its reason. Many are implied by others (the
    /// old primary read-only before the candidate writable follows from the chain through the final
    /// position), so a playbook is refused without any one of them: the test asserts each rule's own
    /// problem, which is gone when the rule is.
    static let rules: [(StepAction, StepAction, String)] = [
        (.oldPrimaryReadOnly, .candidateWritable, "two instances would be writable at once"),
        (.readFinalPosition, .candidateWritable, "the candidate would take writes before the old primary's final position is known"),
        (.waitCatchUp, .candidateWritable, "the candidate would take writes before applying everything the old primary committed"),
        (.detachCandidate, .candidateWritable, "the candidate would take writes while still replicating from the old primary"),
        (.commitPrimary, .candidateWritable, "the candidate would take writes before the source of truth names it the primary"),
        (.oldPrimaryReadOnly, .commitPrimary, "the source of truth would name a new primary while the old one takes writes"),
        (.oldPrimaryReadOnly, .readFinalPosition, "the position read before read_only is not final"),
        (.readFinalPosition, .waitCatchUp, "the candidate cannot wait for a position not yet read"),
        (.waitCatchUp, .detachCandidate, "the candidate would stop replicating before catching up"),
        (.moveReplicas, .oldPrimaryReadOnly, "moving replicas inside the write window lengthens it"),
        (.sectionReadOnly, .oldPrimaryReadOnly, "applications must see the section read-only before writes fail"),
        (.sectionReadOnly, .waitPropagation, "the propagation wait must follow the read-only commit"),
        (.waitPropagation, .oldPrimaryReadOnly, "the propagation wait must end before the flip"),
        (.candidateWritable, .oldPrimaryReplicates, "the old primary must not replicate from a candidate that is not yet the primary"),
        (.candidateWritable, .resetCandidateReplication, "the candidate's replication can only be forgotten once it is the primary"),
        (.candidateWritable, .sectionReadWrite, "the section must stay read-only until the new primary takes writes"),
    ]

    @Test("each ordering rule is enforced: breaking it reports that rule, naming both steps", arguments: rules)
    func orderingRules(first: StepAction, second: StepAction, why: String) {
        // Move `first` right after `second`: the rule "first before second" breaks.
        var order = safeOrder.filter { $0 != first }
        order.insert(first, at: order.firstIndex(of: second)! + 1)
        let problems = Playbook(operation: "switchover", steps: order.map { Playbook.Step(action: $0) }).safetyProblems()
        let rule =
            "\(second.rawValue) (step \(order.firstIndex(of: second)! + 1)) comes before \(first.rawValue) (step \(order.firstIndex(of: first)! + 1)): \(why)"
        #expect(problems.contains(rule), "\(problems)")
        let error = #expect(throws: PlaybookError.self) { try Playbook.parse(steps(order), file: "p.yaml") }
        #expect(error?.problems == problems)
    }

    @Test("missing, doubled and unknown steps, bad timeouts and unknown keys are refused with the problem named")
    func malformed() {
        func problems(_ text: String) -> String {
            do {
                _ = try Playbook.parse(text, file: "p.yaml")
                return ""
            } catch {
                return "\(error)"
            }
        }
        #expect(problems(steps(safeOrder.filter { $0 != .waitCatchUp })).contains("the step wait-catch-up is missing"))
        #expect(problems(steps(safeOrder + [.commitPrimary])).contains("commit-primary appears twice"))
        #expect(problems(steps(safeOrder).replacingOccurrences(of: "detach-candidate", with: "detach")).contains("unknown action \"detach\""))
        #expect(
            problems(steps(safeOrder).replacingOccurrences(of: "  - action: wait-catch-up\n", with: "  - action: wait-catch-up\n    timeout: 0\n"))
                .contains("timeout must be positive"))
        #expect(
            problems(steps(safeOrder).replacingOccurrences(of: "  - action: wait-catch-up\n", with: "  - action: wait-catch-up\n    timout: 3\n"))
                .contains("unknown field \"timout\""))
        #expect(problems(steps(safeOrder) + "  - action: exec\n").contains("an exec step needs a command"))
        #expect(problems("operation: promote\nsteps: []\n").contains("operation \"promote\" is not known"))
    }
}
