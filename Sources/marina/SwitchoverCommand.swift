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
            command prints each step as the journal records it. Exit status: 0 done; 1 failed and rolled back; 2 refused by a \
            preflight check (nothing changed); 3 could not roll back, the section is left read-only for a human; 4 done, but a \
            host needs attention.
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
            let client = OperationClient(etcd: EtcdClient(try store.configuration()), keys: StoreKeys(), json: store.json)
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

/// Writes operation requests and follows their journals.
struct OperationClient {
    let etcd: EtcdClient
    let keys: StoreKeys
    let json: Bool

    static func validate(timeout: Double) throws {
        if !timeout.isFinite || timeout <= 0 || timeout > OperationRequest.longestTimeout {
            throw ValidationError(
                "--timeout must be a positive number of seconds, at most \(Int(OperationRequest.longestTimeout)) (got \(timeout))")
        }
    }

    /// Asks on a terminal (after showing the plan the controller made) unless `yes` or
    /// `dryRun`, runs, and exits with the operation's status. `record(dryRun)` builds the request.
    func run(dryRun: Bool, yes: Bool, timeout: Double, question: String, record: (Bool) throws -> OperationRecord) async throws {
        if !dryRun && !yes {
            guard isatty(STDIN_FILENO) == 1 else {
                throw UsageProblem("not on a terminal: pass --yes to run it without confirmation (or --dry-run to see the plan)")
            }
            let plan = try await request(record(true), timeout: timeout, live: false)
            guard plan.state == .planned else { throw ExitCode(plan.state.exitCode) }
            print("\(question) [y/N] ", terminator: "")
            guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                print("Nothing changed.")
                return
            }
        }
        let final = try await request(record(dryRun), timeout: timeout, live: !dryRun)
        if final.state.exitCode != 0 { throw ExitCode(final.state.exitCode) }
    }

    static func newID(section: String) -> String { OperationRecord.newID(section: section) }

    /// Writes the request, waits for a controller to take it, prints the journal as it grows
    /// (live) or the plan (dry run), and gives the finished record.
    func request(_ record: OperationRecord, timeout: Double, live: Bool) async throws -> OperationRecord {
        try await OperationRequest.submit(record, etcd: etcd, keys: keys)
        if !json {
            let what = record.dryRun ? "Planning" : "Requested"
            let target = record.candidate.isEmpty ? "the replica that received the most" : record.candidate
            let operation =
                record.kind == "rejoin" || record.kind == "move"
                ? describeInstanceOperation(record)
                : record.kind.hasSuffix("-sync") ? "\(record.kind) of \(record.section)" : "\(record.kind) of \(record.section) to \(target)"
            print("\(what) operation \(record.id): \(operation)")
        }
        let deadline = Date().addingTimeInterval(timeout)
        var printer = JournalPrinter()
        while true {
            guard let kv = try await etcd.value(keys.operation(record.id)) else {
                throw UsageProblem("the journal of operation \(record.id) disappeared")
            }
            let current = try OperationJSON.decode(kv.value, key: kv.key)
            if current.state == .requested && Date() > deadline {
                let withdrawn = try await etcd.transaction(
                    Transaction(
                        compares: [.unchanged(keys.operation(record.id), since: kv.modRevision)],
                        success: [.delete(keys.request(record.id)), .delete(keys.operation(record.id))]))
                if withdrawn.succeeded {
                    let leader = try await etcd.value(keys.leader) == nil ? " (no controller leads: is `marina controller` running?)" : ""
                    throw UsageProblem(
                        "no controller took the request within \(Seconds.format(timeout)) s\(leader); it was withdrawn, nothing changed")
                }
                continue
            }
            if live && !json { printer.printNew(current) }
            if current.state.isFinished {
                if json {
                    print(String(decoding: try OperationJSON.encode(current), as: UTF8.self))
                } else {
                    if current.dryRun && current.state == .planned { print(renderPlan(current)) }
                    print(renderOutcome(current))
                }
                return current
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// Prints each step once, when the journal shows how it ended (or that it is undone).
struct JournalPrinter {
    private var printed = [String: StepRecord.State]()
    private var pausedShown = false

    mutating func printNew(_ record: OperationRecord) {
        if let paused = record.pausedBefore, !pausedShown {
            pausedShown = true
            print("  … paused before \(paused) (pause_before)")
        }
        for step in record.steps {
            let key = step.name
            guard printed[key] != step.state else { continue }
            switch step.state {
            case .done:
                print("  ✓ \(step.name)\(step.pointOfNoReturn ? "  (point of no return)" : "")  \(milliseconds(step.milliseconds))")
            case .failed:
                print("  ✗ \(step.name)  \(milliseconds(step.milliseconds))  \(step.host ?? ""): \(step.error ?? "")")
            case .undone:
                print("  ↺ undid \(step.name)  \(milliseconds(step.undoMilliseconds))")
            case .undoFailed:
                print("  ✗ undoing \(step.name) failed: \(step.undoError ?? "")")
            case .pending, .running, .undoing:
                continue
            }
            printed[key] = step.state
        }
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
