import ArgumentParser
import EtcdClient
import Foundation
import MarinaViews
import Operations
import TopologyStore

struct SwitchoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchover",
        abstract: "Move the primary of a section to one of its candidates, through a state with no writable instance, with rollback.",
        discussion: """
            Writes a request into etcd; the leading controller takes the section's lock, checks, plans and runs it, and this \
            command shows each step as it starts and ends (`--json`: one JSON object per event). On a terminal it first shows \
            the controller's plan and asks; the request then carries that plan's digest, and the controller refuses to run a \
            different one. Exit status: 0 done; 2 refused (nothing changed); 3 the section is busy; 4 failed and rolled back; \
            5 left read-only for a human; 6 done, but a host needs attention; 7 etcd lost while following; 8 not confirmed \
            (`marina help exit-codes`).
            """)

    @Argument(help: "The section.") var section: String
    @Option(help: "The instance that becomes the primary (a configured candidate).") var to: String
    @Option(help: "Why: recorded in the journal and in the read-only reason applications see.") var reason = ""
    @Option(name: .customLong("skip-replica"), help: "A replica to leave out (it is depooled); repeat for several.") var skipReplicas: [String] = []
    @Flag(help: "Print the plan (every step, host and statement, and the point of no return) and change nothing.") var dryRun = false
    @Flag(help: "Do not ask for confirmation.") var yes = false
    @Flag(
        help: """
            Start even if the primary runs a transaction or statement older than the playbook's max_transaction_age         (the flip's read-only step may then wait for it, time out and roll back).
            """) var forceLongTransactions = false
    @Option(help: "Seconds to wait for a controller to take the request.") var timeout: Double = 30
    @OptionGroup var store: StoreOptions

    func validate() throws {
        if section.isEmpty { throw ValidationError("the section must not be empty") }
        if to.isEmpty { throw ValidationError("--to must name an instance") }
        try OperationClient.validate(timeout: timeout)
    }

    func run() async throws {
        try await running {
            let client = OperationClient(etcd: EtcdClient(try store.configuration()), keys: try store.keys, json: store.json)
            try await client.run(dryRun: dryRun, yes: yes, timeout: timeout, question: "Run this switchover?") { try record(dryRun: $0) }
        }
    }

    private func record(dryRun: Bool) throws -> OperationRecord {
        let actor = store.actor
        return try OperationRequest.switchover(
            section: section, to: to, reason: reason, skipReplicas: skipReplicas, dryRun: dryRun,
            forceLongTransactions: forceLongTransactions, author: actor.author, at: actor.now)
    }
}

func milliseconds(_ value: Double?) -> String {
    guard let value else { return "" }
    return value < 10 ? String(format: "%.1f ms", value) : String(format: "%.0f ms", value)
}

func renderPlan(_ record: OperationRecord) -> String {
    if record.kind == "rejoin" || record.kind == "move" { return renderInstancePlan(record) }
    if record.kind.hasSuffix("-sync") { return SyncRendering.plan(record) }
    var lines = [
        "Plan: \(record.kind) of \(record.section) from \(record.oldPrimary ?? "?")\(record.kind == "failover" ? " (dead)" : "") to \(record.candidate)"
    ]
    if let failover = record.failover {
        lines += failover.witnesses.map { "  witness: " + $0 }
        lines += failover.rejected.sorted { $0.key < $1.key }.map { "  not chosen: \($0.key): \($0.value)" }
        if let source = failover.catchUpFrom { lines.append("  two phases: \(record.candidate) first catches up from \(source)") }
    }
    for (index, step) in record.steps.enumerated() {
        lines.append(
            String(format: "%2d. ", index + 1) + step.name + "  (timeout \(Seconds.format(step.timeout)) s)"
                + (step.pointOfNoReturn ? "  ← POINT OF NO RETURN: failures after it are not undone" : ""))
        lines += step.statements.map { "      " + $0 }
        if !step.check.isEmpty { lines.append("      check: " + step.check) }
        lines.append(
            "      undo: "
                + (step.undo.isEmpty
                    ? (index > (record.pointOfNoReturnIndex ?? 0) ? "none (after the point of no return)" : "nothing to undo")
                    : step.undo.joined(separator: "; ")))
    }
    return lines.joined(separator: "\n")
}

func renderOutcome(_ record: OperationRecord) -> String {
    if record.kind == "rejoin" || record.kind == "move" { return renderInstanceOutcome(record) }
    if record.kind.hasSuffix("-sync") { return SyncRendering.outcome(record) }
    var lines = [String]()
    switch record.state {
    case .planned: lines.append("Dry run: nothing changed.")
    case .refused: lines.append("Refused, nothing changed:\n" + record.refusals.map { "  - " + $0 }.joined(separator: "\n"))
    case .done:
        lines.append(
            "Done: \(record.candidate) is the primary of \(record.section)"
                + (record.windowMilliseconds.map { "; no instance took writes for \(milliseconds($0))" } ?? "") + ".")
        if let failover = record.failover {
            lines.append(
                "\(record.oldPrimary ?? "The old primary") is depooled; fork point \(failover.forkPoint ?? "?"): "
                    + "`marina instance rejoin \(record.oldPrimary ?? "NAME")` once it is back.")
        }
    case .doneNeedsAttention:
        lines.append("Done: \(record.candidate) is the primary of \(record.section), but a host needs attention:")
        lines += record.attention.map { "  - " + $0 }
    case .rolledBack:
        if let failure = record.failure { lines.append("Failed at \(failure.step) on \(failure.host): \(failure.error)") }
        lines.append("Rolled back and verified: \(record.oldPrimary ?? "the old primary") is the primary of \(record.section) again.")
        lines += record.attention.map { "  - " + $0 }
    case .needsHuman:
        if let failure = record.failure { lines.append("Failed at \(failure.step) on \(failure.host): \(failure.error)") }
        lines.append(
            record.kind == "failover"
                ? "FAILOVER STOPPED before a new primary took writes: section \(record.section) is left read-only for a human:"
                : "COULD NOT ROLL BACK: section \(record.section) is left read-only for a human:")
        lines += record.attention.map { "  - " + $0 }
    case .requested, .running, .rollingBack:
        lines.append("Operation \(record.id) is \(record.state.rawValue).")
    }
    return lines.joined(separator: "\n")
}
