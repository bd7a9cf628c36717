import ArgumentParser
import EtcdClient
import Foundation
import MarinaViews
import Topology
import TopologyStore

/// The exit statuses of every command: one table, printed by `marina help exit-codes` and
/// kept in `docs/cli.md`. A script can rely on "nothing changed" for 1, 2, 3 and 8.
enum Exit {
    /// An error before anything changed (a bad setting, etcd unreachable before writing).
    static let failure = ExitCode(1)
    /// Refused by a check (validation, a preflight, a plan that changed since it was approved);
    /// nothing changed.
    static let refused = ExitCode(2)
    /// Lost a race with another writer, or a running operation holds the section (its lock);
    /// nothing changed: re-run.
    static let conflict = ExitCode(3)
    /// The operation failed and was rolled back (verified): the section is as it was.
    static let rolledBack = ExitCode(4)
    /// The operation stopped and left the section for a human (read-only, or a rollback failed).
    static let needsHuman = ExitCode(5)
    /// Done, but something needs attention: a host failed after the point of no return, or a
    /// commit stands but a mirror was not written.
    static let attention = ExitCode(6)
    /// The outcome is unknown: etcd stopped answering while this command followed an operation.
    /// The operation goes on without it; its id is printed: `marina operation follow ID`.
    static let unknown = ExitCode(7)
    /// The confirmation was declined (or not answered); nothing changed.
    static let declined = ExitCode(8)
    /// ArgumentParser's status for a wrong flag or argument (`EX_USAGE`); nothing was done.
    static let usage = ExitCode(64)
}

/// A problem with what was asked that is not argument syntax (ArgumentParser reports those):
/// printed as one line, exit 1 (`Exit.failure`).
struct UsageProblem: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data("marina: \(text)\n".utf8))
}

func issueLines(_ issues: [TopologyIssue]) -> String {
    issues.map { "  \($0.path): \($0.message)" }.joined(separator: "\n")
}

/// Prints what a staged edit did and exits with the matching status.
func report(_ outcome: EditOutcome, done: String, json: Bool) throws {
    switch outcome {
    case .applied(let revision):
        if json {
            try printJSON(["outcome": "applied", "revision": String(revision)])
        } else {
            print("\(done) (staged at revision \(revision); `marina config diff` shows it, `marina config commit -m WHY` applies it)")
        }
    case .refused(let issues):
        if json { try printJSON(RefusedOutput(outcome: "refused", issues: issues)) }
        printError("refused, nothing was written; the change would break these rules:\n\(issueLines(issues))")
        throw Exit.refused
    case .conflict(let revision):
        if json { try printJSON(["outcome": "conflict", "read_revision": String(revision)]) }
        printError("the staged topology changed since you read it at revision \(revision); nothing was written: re-run")
        throw Exit.conflict
    }
}

/// Prints the changes a commit makes (or would make), grouped by datacenter.
func renderChanges(_ changes: [ConfigChange]) -> String {
    guard !changes.isEmpty else { return "No difference between the staged objects and the committed configuration." }
    return changes.map { change in
        var lines = ["\(change.datacenter) \(change.key) \(change.entry)"]
        if let before = change.before { lines.append("  - \(before)") }
        if let after = change.after { lines.append("  + \(after)") }
        return lines.joined(separator: "\n")
    }.joined(separator: "\n")
}

/// Runs a command body, printing a thrown error as one line and exiting 1; exit codes and
/// ArgumentParser's own errors pass through.
func running(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch let error as ValidationError {
        throw error
    } catch let error as EtcdError {
        printError("\(error)")
        // A write whose answer was lost may have been applied: nothing can be said of the outcome.
        if case .outcomeUnknown = error.kind { throw Exit.unknown }
        throw Exit.failure
    } catch let error as StoreError {
        printError("\(error)")
        if case .sectionBusy = error { throw Exit.conflict }
        throw ExitCode.failure
    } catch {
        printError("\(error)")
        throw ExitCode.failure
    }
}
