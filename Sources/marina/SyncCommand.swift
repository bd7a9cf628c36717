import ArgumentParser
import EtcdClient
import Foundation
import Operations
import TopologyStore

/// `marina grant sync` and `marina variable sync`: an operation the leading controller runs
/// like a switchover (lock, plan, journal, rollback), followed here step by step.
struct SyncOptions: ParsableArguments {
    @Argument(help: "The section.") var section: String
    @Option(help: "Why: recorded in the journal.") var reason = ""
    @Option(name: .customLong("skip-replica"), help: "A replica to leave out (down for maintenance); repeat for several.")
    var skipReplicas: [String] = []
    @Flag(help: "Print every statement per instance (hashes redacted) and change nothing.") var dryRun = false
    @Flag(help: "Do not ask for confirmation.") var yes = false
    @Option(help: "Seconds to wait for a controller to take the request.") var timeout: Double = 30
    @OptionGroup var store: StoreOptions

    func validate() throws {
        if section.isEmpty { throw ValidationError("the section must not be empty") }
        try OperationClient.validate(timeout: timeout)
    }

    func run(kind: String, question: String) async throws {
        try await running {
            let client = OperationClient(etcd: EtcdClient(try store.configuration()), keys: try store.keys, json: store.json)
            try await client.run(dryRun: dryRun, yes: yes, timeout: timeout, question: question) { dryRun in
                let actor = store.actor
                return OperationRecord(
                    id: OperationClient.newID(section: section), kind: kind, section: section, candidate: "", reason: reason,
                    skipReplicas: skipReplicas, dryRun: dryRun, requestedBy: actor.author, requestedAt: actor.now)
            }
        }
    }
}

struct GrantSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Make every instance's managed accounts what is committed, or restore them all.",
        discussion: """
            One step per instance whose accounts differ (replicas first, the primary last), each run with \
            `SET STATEMENT sql_log_bin = 0 FOR`, read back, and checked to have written nothing to the binary log. If an \
            instance fails, every instance touched is restored to what was read before and read back. Exit status: 0 done; \
            2 refused (nothing changed); 4 failed and rolled back (the message names the instance); 5 could not restore, \
            left for a human (`marina help exit-codes`).
            """)
    @OptionGroup var options: SyncOptions

    func run() async throws { try await options.run(kind: "grant-sync", question: "Apply these statements?") }
}

struct VariableSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "SET GLOBAL every instance's managed variables to what is committed, or restore them all.",
        discussion: """
            Variables that cannot change at runtime are not set: each agent writes them to its managed option file, and \
            drift shows them as pending a restart. Exit status as for `marina grant sync`.
            """)
    @OptionGroup var options: SyncOptions

    func run() async throws { try await options.run(kind: "variable-sync", question: "Apply these statements?") }
}

/// How a sync's plan and outcome read.
enum SyncRendering {
    static func plan(_ record: OperationRecord) -> String {
        let what = record.kind == "grant-sync" ? "grant sync" : "variable sync"
        guard !record.steps.isEmpty else { return "Plan: \(what) of \(record.section): every instance is already as committed." }
        var lines = ["Plan: \(what) of \(record.section), \(record.steps.flatMap(\.statements).count) statements"]
        for (index, step) in record.steps.enumerated() {
            lines.append(String(format: "%2d. ", index + 1) + step.name + "  (timeout \(Seconds.format(step.timeout)) s)")
            lines += step.statements.map { "      " + $0 }
            lines.append("      check: " + step.check)
            lines.append("      undo: " + (step.undo.isEmpty ? "nothing to undo" : step.undo.joined(separator: "; ")))
        }
        return lines.joined(separator: "\n")
    }

    static func outcome(_ record: OperationRecord) -> String {
        let what = record.kind == "grant-sync" ? "managed accounts" : "managed variables"
        var lines = [String]()
        switch record.state {
        case .planned: lines.append("Dry run: nothing changed.")
        case .refused: lines.append("Refused, nothing changed:\n" + record.refusals.map { "  - " + $0 }.joined(separator: "\n"))
        case .done, .doneNeedsAttention:
            let count = record.steps.filter { $0.action == .applyGrants || $0.action == .applyVariables }.count
            lines.append(
                count == 0
                    ? "Nothing to do: every instance of \(record.section) already has its \(what) as committed."
                    : "Done: the \(what) of \(count) instance\(count == 1 ? "" : "s") of \(record.section) are as committed.")
            lines += record.attention.map { "  - " + $0 }
        case .rolledBack:
            if let failure = record.failure { lines.append("Failed at \(failure.step) on \(failure.host): \(failure.error)") }
            lines.append("Rolled back and verified: every instance of \(record.section) has its \(what) as before.")
            lines += record.attention.map { "  - " + $0 }
        case .needsHuman:
            if let failure = record.failure { lines.append("Failed at \(failure.step) on \(failure.host): \(failure.error)") }
            lines.append("COULD NOT RESTORE: a human must check the \(what) of \(record.section):")
            lines += record.attention.map { "  - " + $0 }
        case .requested, .running, .rollingBack:
            lines.append("Operation \(record.id) is \(record.state.rawValue).")
        }
        return lines.joined(separator: "\n")
    }
}
