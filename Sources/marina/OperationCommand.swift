import ArgumentParser
import EtcdClient
import Foundation
import MarinaViews
import Operations
import TopologyStore

struct OperationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operation", abstract: "Read the journals of operations; follow, abort or resume one.",
        subcommands: [List.self, Show.self, Follow.self, Abort.self, Resume.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The latest operations, newest first.",
            discussion: "A journal that cannot be read is listed as unreadable, with its key and the problem, after the others.")
        @OptionGroup var latest: LatestOption
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await running {
                let (records, unreadable) = try await OperationsView.list(
                    etcd: EtcdClient(try store.configuration()), keys: try store.keys, limit: latest.limit)
                if store.json {
                    // Standard output stays a JSON list of records; what could not be read goes to standard error.
                    print(try OperationsView.listJSON(records))
                    for record in unreadable { printError("warning: unreadable: \(record.key): \(record.problem)") }
                    return
                }
                defer { for record in unreadable { print("unreadable  \(record.key): \(record.problem)") } }
                guard !records.isEmpty else {
                    if unreadable.isEmpty { print("No operations.") }
                    return
                }
                let rows = records.map { record in
                    [
                        record.id, record.state.rawValue, record.section, roles(record),
                        record.requestedBy, record.requestedAt.formatted(.iso8601),
                        record.finishedAt.map { milliseconds($0.timeIntervalSince(record.startedAt ?? record.requestedAt) * 1000) } ?? "",
                        record.windowMilliseconds.map { milliseconds($0) } ?? "",
                    ]
                }
                print(Tables.table([["ID", "STATE", "SECTION", "PRIMARY", "REQUESTED BY", "REQUESTED AT", "TOOK", "WRITE WINDOW"]] + rows))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One operation: the request, the plan and every step's journal.")
        @Argument(help: "The operation id.") var id: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await running {
                let record = try await OperationsView.show(etcd: EtcdClient(try store.configuration()), keys: try store.keys, id: id)
                if store.json {
                    print(try OperationsView.json(record))
                    return
                }
                print(renderJournal(record))
            }
        }
    }
}

/// What an operation does, in one line: `switchover of s1 from db1001 to db1002`, `rejoin of db1001 in s1`.
func describeOperation(_ record: OperationRecord) -> String {
    switch record.kind {
    case "rejoin", "move": describeInstanceOperation(record)
    case "grant-sync", "variable-sync": "\(record.kind) of \(record.section)"
    default: "\(record.kind) of \(record.section) from \(record.oldPrimary ?? "?") to \(record.candidate.isEmpty ? "?" : record.candidate)"
    }
}

/// The list's PRIMARY column: the primary's move, or for a rejoin or a move the replica's.
func roles(_ record: OperationRecord) -> String {
    switch record.kind {
    case "rejoin": "\(record.candidate) rejoins"
    case "move": "\(record.candidate) → under \(record.newSource ?? "?")"
    case "grant-sync", "variable-sync": "\(record.steps.filter { $0.action != .exec }.count) instances"
    default: "\(record.oldPrimary ?? "?") → \(record.candidate)"
    }
}

func renderJournal(_ record: OperationRecord) -> String {
    var lines = [
        "Operation \(record.id): \(describeOperation(record))\(record.dryRun ? " (dry run)" : "")",
        "  state:        \(record.state.rawValue)",
        "  requested by: \(record.requestedBy) at \(record.requestedAt.formatted(.iso8601))",
        "  reason:       \(record.reason.isEmpty ? "(none given)" : record.reason)",
    ]
    if let controller = record.controller { lines.append("  controller:   \(controller)") }
    if !record.skipReplicas.isEmpty { lines.append("  skipped:      \(record.skipReplicas.joined(separator: ", "))") }
    if let position = record.finalPosition { lines.append("  final GTID position of the old primary: \(position)") }
    if let window = record.windowMilliseconds { lines.append("  no instance took writes for \(milliseconds(window))") }
    if let failover = record.failover {
        let by = failover.automatic ? "by the controller on its own" : "by a DBA"
        lines.append("  started:      \(by)\(failover.preferred.map { ", --to \($0)" } ?? "")")
        lines += failover.witnesses.map { "  witness:      " + $0 }
        lines += failover.rejected.sorted { $0.key < $1.key }.map { "  not chosen:   \($0.key): \($0.value)" }
        if let source = failover.catchUpFrom { lines.append("  two phases:   \(record.candidate) caught up from \(source) first") }
        lines += failover.received.sorted { $0.key < $1.key }.map { "  received:     \($0.key) \($0.value)" }
        if let last = failover.lastKnownPosition { lines.append("  the old primary's last position a replica had: \(last)") }
        if let fork = failover.forkPoint { lines.append("  fork point (\(record.candidate)'s gtid_binlog_pos when promoted): \(fork)") }
    }
    if !record.steps.isEmpty { lines.append("Steps:") }
    for (index, step) in record.steps.enumerated() {
        var line = String(format: "%3d. ", index + 1) + step.state.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0) + " " + step.name
        if let took = step.milliseconds { line += "  " + milliseconds(took) }
        if step.pointOfNoReturn { line += "  (point of no return)" }
        lines.append(line)
        if let error = step.error { lines.append("       error on \(step.host ?? "?"): \(error)") }
        if let undoError = step.undoError { lines.append("       undo failed: \(undoError)") }
    }
    lines.append(renderOutcome(record))
    return lines.joined(separator: "\n")
}
