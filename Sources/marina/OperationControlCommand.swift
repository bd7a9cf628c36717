import ArgumentParser
import EtcdClient
import Foundation
import MarinaViews
import Operations
import StoredRecords
import TopologyStore

/// `marina operation abort|resume|follow`: acting on an operation that is already requested.
/// The journal is the controller's alone: these commands write requests beside it
/// (`aborts/<id>`, `resume-requests/<id>`), each with an entry in the audit trail, then follow
/// the journal to the operation's end and exit with its status (`marina help exit-codes`).
extension OperationCommand {
    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop an operation: before its point of no return it rolls back; after it, it finishes.",
            discussion: """
                Writes an abort request the running operation reads before each step, then follows it to its end and exits \
                with its status: 4 rolled back; 0 done (the abort came after the point of no return: the journal says so). An \
                operation no controller has taken yet is withdrawn (exit 0). 2: it has already finished; 1: no such operation.
                """)

        @Argument(help: "The operation id.") var id: String
        @Option(help: "Why: recorded in the journal (the operation's error) and in the audit trail.") var reason: String
        @OptionGroup var store: StoreOptions

        func validate() throws {
            try OperationControl.validate(id: id)
            if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--reason must say why") }
        }

        func run() async throws {
            try await running {
                let etcd = EtcdClient(try store.configuration())
                let control = OperationControl(etcd: etcd, keys: try store.keys)
                let actor = store.actor
                let say = OperationControl.notice(json: store.json)
                switch try await control.abort(id, by: actor.author, at: actor.now, reason: reason) {
                case .unknown:
                    throw UsageProblem("no operation \(id) (`marina operation list` shows them)")
                case .finished(let record):
                    printError("operation \(id) has already finished (\(record.state.rawValue)): nothing to abort")
                    throw Exit.refused
                case .withdrawn:
                    if store.json {
                        try printJSON(["id": id, "outcome": "withdrawn"])
                    } else {
                        print("Operation \(id) was withdrawn before any controller took it: nothing changed.")
                    }
                    return
                case .asked(let record):
                    if record.passedPointOfNoReturn {
                        say("Abort asked, but operation \(id) has passed its point of no return: it finishes, and its journal notes the abort.")
                    } else {
                        say("Abort asked: operation \(id) stops before its next step and rolls back (a step under way ends first).")
                    }
                case .alreadyAsked(let request):
                    say("Operation \(id) was already asked to stop, by \(request.by) at \(request.at.formatted(.iso8601)): \(request.reason)")
                case .rollingBack(let record):
                    say("Operation \(id) is already rolling back\(record.failure.map { " (failed at \($0.step): \($0.error))" } ?? "").")
                case .unlocked(let record):
                    printError(unlockedProblem(record, verb: "aborted"))
                    throw Exit.refused
                }
                try await OperationClient(etcd: etcd, keys: try store.keys, json: store.json).follow(id)
            }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Have an unfinished operation go on now, then follow it to its end.",
            discussion: """
                For an operation a controller left (its task ended, the lock was removed by hand), asks the leader to \
                recover it at once (`resume-requests/<id>`: it goes forward or rolls back, as the journal and the hosts \
                decide); for a request no controller has taken, submits it again; for one paused by a test-only hook, \
                releases it. Exits with the operation's status. 2: it has already finished, or no lock names it (removed \
                by hand: the section may have changed since, a human must look); 3: another operation holds its section; 1: no \
                such operation.
                """)

        @Argument(help: "The operation id.") var id: String
        @OptionGroup var store: StoreOptions

        func validate() throws { try OperationControl.validate(id: id) }

        func run() async throws {
            try await running {
                let etcd = EtcdClient(try store.configuration())
                let control = OperationControl(etcd: etcd, keys: try store.keys)
                let actor = store.actor
                let say = OperationControl.notice(json: store.json)
                switch try await control.resume(id, by: actor.author, at: actor.now) {
                case .unknown:
                    throw UsageProblem("no operation \(id) (`marina operation list` shows them)")
                case .finished(let record):
                    printError("operation \(id) has already finished (\(record.state.rawValue)): nothing to resume")
                    throw Exit.refused
                case .blocked(let record, let holder):
                    printError(
                        "refused: the lock of \(record.section) names operation \(holder), not \(id) (\(record.state.rawValue)): it can "
                            + "resume once that one has ended")
                    throw Exit.conflict
                case .unlocked(let record):
                    printError(unlockedProblem(record, verb: "resumed"))
                    throw Exit.refused
                case .resumed(let released, let request):
                    if released { say("Operation \(id) was paused by a test-only hook (pause_before/pause_after): released.") }
                    switch request {
                    case .none: break
                    case .resubmitted: say("Operation \(id) had no request pending: submitted again for the leader to take.")
                    case .waiting: say("Operation \(id) waits for a controller to take it.")
                    case .asked(let record): say("Asked the leader to resume operation \(id) (\(record.state.rawValue)) now.")
                    }
                }
                if try await etcd.value(try store.keys.leader) == nil {
                    say("No controller leads now (is `marina controller` running?): the operation goes on when one does.")
                }
                try await OperationClient(etcd: etcd, keys: try store.keys, json: store.json).follow(id)
            }
        }
    }

    struct Follow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow an operation's journal until it finishes, and exit with its status.",
            discussion: """
                Prints each step as the journal records it (one JSON object per event with --json) and exits with the \
                operation's status (`marina help exit-codes`); 7 if etcd stops answering meanwhile (the operation goes on).
                """)

        @Argument(help: "The operation id.") var id: String
        @OptionGroup var store: StoreOptions

        func validate() throws { try OperationControl.validate(id: id) }

        func run() async throws {
            try await running {
                try await OperationClient(etcd: EtcdClient(try store.configuration()), keys: try store.keys, json: store.json).follow(id)
            }
        }
    }
}

/// The reads and the transactions of `abort` and `resume`: each decides from the journal as
/// read and writes with a compare, reading again when it lost one.
struct OperationControl {
    let etcd: EtcdClient
    let keys: StoreKeys

    /// How many times a write that lost its compare is tried again (the journal of a running
    /// operation changes at every step).
    static let attempts = 50

    static func validate(id: String) throws {
        do {
            try OperationRequest.requireName(id, what: "the operation id")
        } catch let problem as ViewProblem {
            throw ValidationError(problem.description)
        }
    }

    /// Prints a line for a person; with `--json` on standard error, so that standard output
    /// holds the events alone.
    static func notice(json: Bool) -> (String) -> Void {
        { json ? printError($0) : print($0) }
    }

    enum AbortOutcome {
        case unknown
        case finished(OperationRecord)
        /// A request no controller had taken: deleted, with its journal.
        case withdrawn
        case asked(OperationRecord)
        case alreadyAsked(AbortRequest)
        case rollingBack(OperationRecord)
        /// Unfinished, but no lock names it: no controller runs it.
        case unlocked(OperationRecord)
    }

    func abort(_ id: String, by: String, at now: Date, reason: String) async throws -> AbortOutcome {
        let abortKey = keys.abort(id)
        for _ in 0..<Self.attempts {
            guard let kv = try await etcd.value(keys.operation(id)) else { return .unknown }
            let record = try OperationJSON.decode(kv.value, key: kv.key)
            if record.state.isFinished { return .finished(record) }
            let audit = try auditEntry(.abort, record, by: by, at: now, reason: reason)
            switch record.state {
            case .requested:
                // Not taken yet: withdrawn as the CLI withdraws a request nobody took in time.
                let withdrawn = try await etcd.transaction(
                    Transaction(
                        compares: [.unchanged(kv.key, since: kv.modRevision)], success: [.delete(keys.request(id)), .delete(kv.key), audit]))
                if withdrawn.succeeded { return .withdrawn }
                continue
            case .rollingBack:
                return .rollingBack(record)
            default:
                break
            }
            if let existing = try await etcd.value(abortKey) {
                return .alreadyAsked(
                    (try? AbortRequest.decode(existing.value, key: existing.key)) ?? AbortRequest(operation: id, by: "?", at: now, reason: "?"))
            }
            let put = KVOperation.put(abortKey, try StoredJSON.encode(AbortRequest(operation: id, by: by, at: now, reason: reason)))
            // While the operation runs, its section's lock names it (its final journal write deletes
            // both): an abort written under that compare is always read, or deleted with the lock.
            let underLock = try await etcd.transaction(
                Transaction(
                    compares: [.absent(abortKey), Compare(key: keys.lock(record.section), .equal, .value(Array(id.utf8)))], success: [put, audit]))
            if underLock.succeeded { return .asked(record) }
            // No lock names it (removed by hand): no controller runs it or will, so nobody would
            // read an abort.
            if try await etcd.value(keys.lock(record.section)).map({ $0.value != Array(id.utf8) }) ?? true {
                return .unlocked(record)
            }
        }
        printError("operation \(id) kept changing while the abort was written; nothing was written: run it again")
        throw Exit.conflict
    }

    enum ResumeOutcome {
        case unknown
        case finished(OperationRecord)
        /// Another operation holds its section's lock.
        case blocked(OperationRecord, holder: String)
        /// Unfinished, but no lock names it (removed by hand): the section may have changed since.
        case unlocked(OperationRecord)
        /// What was done: a test-only pause `released`, and `request`.
        case resumed(released: Bool, request: ResumeAction)
    }

    enum ResumeAction {
        /// Nothing more (a released pause is enough, or the operation finished meanwhile).
        case none
        /// A request whose request key was gone: written again.
        case resubmitted
        /// A request waiting for a controller.
        case waiting
        /// The leader is asked to recover it (`resume-requests/<id>`).
        case asked(OperationRecord)
    }

    func resume(_ id: String, by: String, at now: Date) async throws -> ResumeOutcome {
        var released = false
        for _ in 0..<Self.attempts {
            guard let kv = try await etcd.value(keys.operation(id)) else { return released ? .resumed(released: true, request: .none) : .unknown }
            let record = try OperationJSON.decode(kv.value, key: kv.key)
            if record.state.isFinished { return released ? .resumed(released: true, request: .none) : .finished(record) }
            let audit = try auditEntry(.resume, record, by: by, at: now, reason: "resume")
            // A lock removed by hand let commits, the automatic depool and other operations change
            // the section since: going forward or back from this journal could act on a topology
            // it no longer describes (two writers). Only a human can judge it; nothing is written.
            let holder = record.state == .requested ? nil : try await etcd.value(keys.lock(record.section))
            if record.state != .requested, holder == nil {
                return released ? .resumed(released: true, request: .none) : .unlocked(record)
            }
            // A test-only pause: before a step (the journal says so), after one or before the lock (a
            // key says so). Released, and the leader asked as well: a pause the journal shows may be
            // one a dead controller left.
            let paused = record.pausedBefore != nil ? true : try await etcd.value(keys.resume + id + "/paused") != nil
            if !released, paused {
                let release = try await etcd.transaction(
                    Transaction(compares: [.absent(keys.resume + id)], success: [.put(keys.resume + id, "resumed by \(by)"), audit]))
                released = release.succeeded
            }
            if record.state == .requested {
                if try await etcd.value(keys.request(id)) != nil { return .resumed(released: released, request: .waiting) }
                let submitted = try await etcd.transaction(
                    Transaction(
                        compares: [.unchanged(kv.key, since: kv.modRevision), .absent(keys.request(id))],
                        success: [.put(keys.request(id), id), audit]))
                if submitted.succeeded { return .resumed(released: released, request: .resubmitted) }
                continue
            }
            if let holder, holder.value != Array(id.utf8) {
                let name = String(decoding: holder.value, as: UTF8.self)
                return released ? .resumed(released: true, request: .none) : .blocked(record, holder: name)
            }
            let request = try StoredJSON.encode(ResumeRequest(operation: id, by: by, at: now))
            let asked = try await etcd.transaction(
                Transaction(
                    compares: [.unchanged(kv.key, since: kv.modRevision), Compare(key: keys.lock(record.section), .equal, .value(Array(id.utf8)))],
                    success: [.put(keys.resumeRequest(id), request), audit]))
            if asked.succeeded { return .resumed(released: released, request: .asked(record)) }
        }
        printError("operation \(id) kept changing while the resume request was written; nothing more was written: run it again")
        throw Exit.conflict
    }

    private func auditEntry(_ action: AuditRecord.Action, _ record: OperationRecord, by: String, at now: Date, reason: String) throws -> KVOperation {
        let entry = AuditRecord(
            at: now, by: by, action: action, subject: "operations/\(record.id)", operation: record.id, operationState: record.state.rawValue,
            reason: reason)
        return .put(keys.audit(AuditRecord.newName(at: now)), try StoredJSON.encode(entry))
    }
}

/// Why an unfinished operation that no lock names is neither resumed nor aborted.
func unlockedProblem(_ record: OperationRecord, verb: String) -> String {
    "refused: operation \(record.id) is \(record.state.rawValue), but no lock names it (the lock of \(record.section) was removed by hand): "
        + "the section may have changed since, and going forward or back from this journal could act on a topology it no longer "
        + "describes; nothing was \(verb). Look at the section (`marina status \(record.section)`, `marina drift`) and finish by hand"
}
