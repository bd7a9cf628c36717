import ArgumentParser
import EtcdClient
import Foundation
import MarinaViews
import Operations
import TopologyStore

/// Writes operation requests and follows their journals: the CLI half of every operation
/// (switchover, failover, rejoin, move, grant and variable sync, `marina operation follow`).
struct OperationClient {
    let etcd: EtcdClient
    let keys: StoreKeys
    let progress: ProgressStyle

    init(etcd: EtcdClient, keys: StoreKeys, json: Bool) {
        self.etcd = etcd
        self.keys = keys
        self.progress = json ? .json : isatty(STDOUT_FILENO) == 1 ? .terminal : .lines
    }

    /// How long etcd may fail to answer while an operation is followed before the command gives
    /// up with `Exit.unknown` (the operation goes on without it).
    static let etcdPatience: Double = 15

    static func validate(timeout: Double) throws {
        if !timeout.isFinite || timeout <= 0 || timeout > OperationRequest.longestTimeout {
            throw ValidationError(
                "--timeout must be a positive number of seconds, at most \(Int(OperationRequest.longestTimeout)) (got \(timeout))")
        }
    }

    static func newID(section: String) -> String { OperationRecord.newID(section: section) }

    /// `--dry-run` plans and prints (the planned record is deleted: dry runs are not journaled);
    /// `--yes` runs at once; otherwise, on a terminal, the controller plans first, the DBA
    /// approves that plan, and the request carries its digest so that the controller refuses to
    /// run a different one. Exits with the operation's status (`marina help exit-codes`).
    /// `record(dryRun)` builds the request.
    func run(dryRun: Bool, yes: Bool, timeout: Double, question: String, record: (Bool) throws -> OperationRecord) async throws {
        if dryRun {
            let plan = try await request(record(true), timeout: timeout)
            if plan.state != .planned { throw ExitCode(plan.exitStatus) }
            return
        }
        var request = try record(false)
        var approved: OperationRecord?
        if !yes {
            guard progress != .json else {
                throw UsageProblem("--json needs --yes (or --dry-run): a question would mix with the JSON events on standard output")
            }
            guard isatty(STDIN_FILENO) == 1 else {
                throw UsageProblem("not on a terminal: pass --yes to run it without confirmation (or --dry-run to see the plan)")
            }
            let plan = try await self.request(record(true), timeout: timeout)
            guard plan.state == .planned else { throw ExitCode(plan.exitStatus) }
            guard await Confirmation.ask(question) else {
                print("Nothing changed.")
                throw Exit.declined
            }
            request.approvedPlan = plan.planDigest()
            approved = plan
        }
        let final = try await self.request(request, timeout: timeout)
        if final.state == .refused, let approved, final.approvedPlan != nil, final.planDigest() != approved.planDigest(),
            progress != .json
        {
            print("What changed since you approved the plan:")
            print(PlanComparison.changes(approved: approved, now: final).map { "  " + $0 }.joined(separator: "\n"))
        }
        if final.exitStatus != 0 { throw ExitCode(final.exitStatus) }
    }

    /// Writes the request, waits for a controller to take it (withdrawing it after `timeout`),
    /// shows its progress, and gives the finished record. A dry run's record is deleted once read.
    func request(_ record: OperationRecord, timeout: Double) async throws -> OperationRecord {
        do {
            try await OperationRequest.submit(record, etcd: etcd, keys: keys)
        } catch let error as EtcdError {
            guard case .outcomeUnknown = error.kind else { throw error }
            printError(
                "\(error): the request of operation \(record.id) may have been written; "
                    + "`marina operation follow \(record.id)` says whether it runs")
            throw Exit.unknown
        }
        var printer = ProgressPrinter(style: progress)
        printer.requested(record)
        let final = try await follow(record.id, printer: &printer, withdrawAfter: timeout)
        if final.dryRun {
            // A plan is shown, not kept: the journal holds only what ran.
            _ = try? await etcd.transaction(Transaction(compares: [], success: [.delete(keys.operation(final.id))]))
        }
        return final
    }

    /// Follows an operation already requested until it finishes: prints its progress and
    /// outcome and throws the exit status of anything but success. Exits `Exit.unknown` when
    /// etcd stops answering for `etcdPatience` seconds.
    @discardableResult
    func follow(_ id: String) async throws -> OperationRecord {
        var printer = ProgressPrinter(style: progress)
        let final = try await follow(id, printer: &printer, withdrawAfter: nil)
        if final.exitStatus != 0 { throw ExitCode(final.exitStatus) }
        return final
    }

    private func follow(_ id: String, printer: inout ProgressPrinter, withdrawAfter timeout: Double?) async throws -> OperationRecord {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now + .milliseconds(Int($0 * 1000)) }
        var lastAnswer = clock.now
        while true {
            let kv: KeyValue?
            do {
                kv = try await etcd.value(keys.operation(id))
                lastAnswer = clock.now
            } catch let error as EtcdError {
                if clock.now - lastAnswer > .milliseconds(Int(Self.etcdPatience * 1000)) {
                    printer.interrupt()
                    printError(
                        "etcd stopped answering while following operation \(id) (\(error)); its outcome is unknown: it goes on "
                            + "without this command. Follow it again with `marina operation follow \(id)`.")
                    throw Exit.unknown
                }
                try await Task.sleep(for: .milliseconds(200))
                continue
            }
            guard let kv else { throw UsageProblem("operation \(id) has no journal (unknown id, or pruned)") }
            let current = try OperationJSON.decode(kv.value, key: kv.key)
            if current.state == .requested, let deadline, clock.now > deadline {
                let withdrawn: TransactionResult
                do {
                    withdrawn = try await etcd.transaction(
                        Transaction(
                            compares: [.unchanged(keys.operation(id), since: kv.modRevision)],
                            success: [.delete(keys.request(id)), .delete(keys.operation(id))]))
                } catch let error as EtcdError {
                    // The request stands unless the withdrawal went through: a controller may still take it.
                    printer.interrupt()
                    printError(
                        "no controller took operation \(id) within \(Seconds.format(timeout ?? 0)) s, and withdrawing it failed (\(error)): "
                            + "it may still run. Follow it with `marina operation follow \(id)`, or `marina operation abort \(id)`.")
                    throw Exit.unknown
                }
                if withdrawn.succeeded {
                    printer.interrupt()
                    let leads = (try? await etcd.value(keys.leader)).map { $0 != nil } ?? true
                    let leader = leads ? "" : " (no controller leads: is `marina controller` running?)"
                    throw UsageProblem(
                        "no controller took the request within \(Seconds.format(timeout ?? 0)) s\(leader); it was withdrawn, nothing changed")
                }
                continue
            }
            printer.show(current)
            if current.state.isFinished {
                printer.finished(current)
                return current
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// How progress is shown: redrawn lines with a running clock on a terminal, plain lines
/// otherwise, one JSON object per event with `--json`.
enum ProgressStyle: Equatable {
    case terminal, lines, json
}

/// One event of an operation as `--json` prints it, one object per line.
struct ProgressEvent: Encodable {
    var event: String
    var id: String
    var at: Date
    var step: String?
    var index: Int?
    var state: String?
    var host: String?
    var milliseconds: Double?
    var error: String?
    var pointOfNoReturn: Bool?
    var exitCode: Int32?
    var record: OperationRecord?

    enum CodingKeys: String, CodingKey {
        case event, id, at, step, index, state, host, milliseconds, error, record
        case pointOfNoReturn = "point_of_no_return"
        case exitCode = "exit_code"
    }

    /// One line of `JSONView`'s encoding (the `record` as `marina operation show --json` gives it).
    /// Only a non-finite number could fail it, and the journal refuses those when it is read.
    var line: String {
        (try? JSONView.line(self)) ?? #"{"event":"unencodable"}"#
    }
}

/// Prints each step when it starts and when it ends (or is undone), once; on a terminal one
/// status line below them names the steps running with the elapsed time, until they end.
struct ProgressPrinter {
    let style: ProgressStyle
    private var shown = [Int: StepRecord.State]()
    private var pausedShown = false
    /// Terminal only: the steps running (by index) and when each started, shown on the status line.
    private var running = [Int: Date]()
    /// Terminal only: whether the status line is on screen (the cursor at its end).
    private var statusDrawn = false
    private var lastDrawn = Date.distantPast

    init(style: ProgressStyle) { self.style = style }

    mutating func requested(_ record: OperationRecord) {
        switch style {
        case .json:
            emit(ProgressEvent(event: record.dryRun ? "planning" : "requested", id: record.id, at: Date()))
        case .terminal, .lines:
            let what = record.dryRun ? "Planning" : "Requested"
            print("\(what) operation \(record.id): \(describeRequest(record))")
        }
    }

    mutating func show(_ record: OperationRecord) {
        if record.dryRun { return }
        if let paused = record.pausedBefore, !pausedShown {
            pausedShown = true
            clearStatus()
            if style == .json {
                emit(ProgressEvent(event: "paused", id: record.id, at: Date(), step: paused))
            } else {
                print("  … paused before \(paused) (pause_before)")
            }
        }
        var changed = false
        for (index, step) in record.steps.enumerated() where shown[index] != step.state {
            let previous = shown[index]
            shown[index] = step.state
            changed = true
            switch step.state {
            case .pending:
                continue
            case .running, .undoing:
                started(record, index, step)
            case .done, .failed, .undone, .undoFailed:
                if previous == nil || previous == .pending { started(record, index, step) }
                ended(record, index, step)
            }
        }
        drawStatus(record, force: changed)
    }

    mutating func finished(_ record: OperationRecord) {
        clearStatus()
        switch style {
        case .json:
            emit(
                ProgressEvent(event: "outcome", id: record.id, at: Date(), state: record.state.rawValue, exitCode: record.exitStatus, record: record))
        case .terminal, .lines:
            if record.dryRun && record.state == .planned { print(renderPlan(record)) }
            print(renderOutcome(record))
        }
    }

    /// Clears the status line before a message of another kind.
    mutating func interrupt() { clearStatus() }

    private mutating func started(_ record: OperationRecord, _ index: Int, _ step: StepRecord) {
        let undoing = step.state == .undoing || step.state == .undone || step.state == .undoFailed
        switch style {
        case .json:
            emit(
                ProgressEvent(
                    event: undoing ? "undo-started" : "step-started", id: record.id, at: Date(), step: step.name, index: index + 1,
                    host: step.hosts.isEmpty ? nil : step.hosts.joined(separator: ","), pointOfNoReturn: step.pointOfNoReturn ? true : nil))
        case .lines:
            print("  → \(undoing ? "undoing " : "")\(step.name)\(step.pointOfNoReturn && !undoing ? "  (point of no return)" : "")")
        case .terminal:
            running[index] = undoing ? Date() : step.startedAt ?? Date()
        }
    }

    private mutating func ended(_ record: OperationRecord, _ index: Int, _ step: StepRecord) {
        running[index] = nil
        clearStatus()
        switch style {
        case .json:
            let undo = step.state == .undone || step.state == .undoFailed
            emit(
                ProgressEvent(
                    event: undo ? "undo-finished" : "step-finished", id: record.id, at: Date(), step: step.name, index: index + 1,
                    state: step.state.rawValue, host: step.host, milliseconds: undo ? step.undoMilliseconds : step.milliseconds,
                    error: undo ? step.undoError : step.error))
        case .terminal, .lines:
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
                break
            }
        }
    }

    /// On a terminal, rewrites the status line (the steps running and the elapsed time of the
    /// oldest), ten times a second or when a step changed.
    private mutating func drawStatus(_ record: OperationRecord, force: Bool) {
        guard style == .terminal, let oldest = running.values.min() else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDrawn) >= 0.1 else { return }
        lastDrawn = now
        let names = running.keys.sorted().compactMap { index in
            index < record.steps.count
                ? (record.steps[index].state == .undoing ? "undoing " : "") + record.steps[index].name
                    + (record.steps[index].pointOfNoReturn ? " (point of no return)" : "")
                : nil
        }
        let elapsed = String(format: "%.1f s", max(0, now.timeIntervalSince(oldest)))
        print("\r\u{1B}[K  … \(names.joined(separator: ", "))  \(elapsed)", terminator: "")
        fflush(nil)
        statusDrawn = true
    }

    private mutating func clearStatus() {
        guard style == .terminal, statusDrawn else { return }
        print("\r\u{1B}[K", terminator: "")
        statusDrawn = false
    }

    private func emit(_ event: ProgressEvent) {
        print(event.line)
        fflush(nil)
    }
}

/// What an operation request asks, in one line, before a controller has planned it.
func describeRequest(_ record: OperationRecord) -> String {
    let target = record.candidate.isEmpty ? "the replica that received the most" : record.candidate
    return record.kind == "rejoin" || record.kind == "move"
        ? describeInstanceOperation(record)
        : record.kind.hasSuffix("-sync") ? "\(record.kind) of \(record.section)" : "\(record.kind) of \(record.section) to \(target)"
}

/// The yes/no question before a change, on a terminal: only `y` or `yes` approves; anything
/// else, or the end of the input, declines. The read blocks, so it runs on a thread of its own.
enum Confirmation {
    static func ask(_ question: String) async -> Bool {
        print("\(question) [y/N] ", terminator: "")
        fflush(nil)
        let answer = await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            Thread.detachNewThread { continuation.resume(returning: readLine()) }
        }
        guard let answer else {
            print("")
            return false
        }
        return ["y", "yes"].contains(answer.trimmingCharacters(in: .whitespaces).lowercased())
    }
}

/// What differs between the plan a DBA approved and the one the controller made when asked to
/// run it, step by step, for the refusal's explanation.
enum PlanComparison {
    static func changes(approved: OperationRecord, now: OperationRecord) -> [String] {
        var lines = [String]()
        if approved.oldPrimary != now.oldPrimary {
            lines.append("the primary was \(approved.oldPrimary ?? "?"), is now \(now.oldPrimary ?? "?")")
        }
        if approved.candidate != now.candidate { lines.append("the candidate was \(approved.candidate), is now \(now.candidate)") }
        let before = Dictionary(approved.steps.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(now.steps.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for step in approved.steps where after[step.name] == nil { lines.append("- step \(step.name) is gone") }
        for step in now.steps {
            guard let old = before[step.name] else {
                lines.append("+ step \(step.name) is new: \(step.statements.joined(separator: "; "))")
                continue
            }
            if old.hosts != step.hosts {
                lines.append("~ \(step.name): hosts \(old.hosts.joined(separator: ",")) → \(step.hosts.joined(separator: ","))")
            }
            for statement in old.statements where !step.statements.contains(statement) { lines.append("~ \(step.name): - \(statement)") }
            for statement in step.statements where !old.statements.contains(statement) { lines.append("~ \(step.name): + \(statement)") }
            if old.undo != step.undo { lines.append("~ \(step.name): its undo changed") }
            if old.check != step.check || old.timeout != step.timeout || old.pointOfNoReturn != step.pointOfNoReturn {
                lines.append("~ \(step.name): its check, timeout or point of no return changed")
            }
        }
        if approved.steps.map(\.name) != now.steps.map(\.name), lines.isEmpty { lines.append("the steps are in another order") }
        return lines.isEmpty ? ["(the plans differ in a detail not shown here: `marina operation show \(now.id)`)"] : lines
    }
}
