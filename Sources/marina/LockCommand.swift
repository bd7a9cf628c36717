import ArgumentParser
import EtcdClient
import Foundation
import MarinaViews
import Operations
import StoredRecords
import TopologyStore

/// `marina lock list|release`: the section locks operations hold (`locks/<section>`, valued
/// with the operation's id). A lock outlives a dead controller on purpose: the next leader
/// finishes or rolls back the operation it names. Only a stale lock (its operation finished,
/// or without a journal) may be released by hand, and the release is kept in the audit trail.
struct LockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock", abstract: "The sections' operation locks: list them, release a stale one.",
        subcommands: [List.self, Release.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every section lock: the operation it names, that operation's state, who requested it, and since when.",
            discussion: "STATE is `missing` for a lock whose operation has no journal, `unreadable` for one whose journal cannot be read.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await running {
                let locks = try await LockView.read(etcd: EtcdClient(try store.configuration()), keys: try store.keys, now: Date())
                if store.json {
                    try printJSON(locks)
                    return
                }
                guard !locks.isEmpty else {
                    print("No section is locked.")
                    return
                }
                let rows = locks.map { lock in
                    [
                        lock.section, lock.operation, lock.state + (lock.stale ? " (stale)" : ""), lock.requestedBy ?? "-",
                        lock.ageSeconds.map { Self.age($0) } ?? "-",
                    ]
                }
                print(Tables.table([["SECTION", "OPERATION", "STATE", "REQUESTED BY", "AGE"]] + rows))
                if locks.contains(where: \.stale) {
                    print("A stale lock keeps its section from every operation: `marina lock release SECTION --reason WHY`.")
                }
            }
        }

        static func age(_ seconds: Double) -> String {
            switch seconds {
            case ..<120: "\(Int(seconds)) s"
            case ..<7200: "\(Int(seconds / 60)) min"
            case ..<172_800: "\(Int(seconds / 3600)) h"
            default: "\(Int(seconds / 86_400)) days"
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Release a stale section lock (its operation finished, or has no journal), with an entry in the audit trail.",
            discussion: """
                Refused (exit 2) while the operation the lock names has not finished: abort it, or resume it. The lock is \
                deleted only if it is still the one read (else exit 3: run it again). `marina audit list` shows the release.
                """)
        @Argument(help: "The section.") var section: String
        @Option(help: "Why: recorded in the audit trail.") var reason: String
        @OptionGroup var store: StoreOptions

        func validate() throws {
            do {
                try OperationRequest.requireName(section, what: "the section")
            } catch let problem as ViewProblem {
                throw ValidationError(problem.description)
            }
            if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--reason must say why") }
        }

        func run() async throws {
            try await running {
                let etcd = EtcdClient(try store.configuration())
                let keys = try store.keys
                let lockKey = keys.lock(section)
                guard let lock = try await etcd.value(lockKey) else {
                    throw UsageProblem("section \(section) holds no lock (`marina lock list` shows them)")
                }
                let id = String(decoding: lock.value, as: UTF8.self)
                let stored = try await etcd.value(keys.operation(id))
                let journal = stored.map { kv in Result { () throws(UnreadableRecord) in try OperationJSON.decode(kv.value, key: kv.key) } }
                let state: String
                switch LockRelease.decide(section: section, operation: id, journal: journal) {
                case .refused(let why):
                    printError("refused, nothing changed: \(why)")
                    throw Exit.refused
                case .allowed(let operationState):
                    state = operationState
                }
                let actor = store.actor
                let entry = AuditRecord(
                    at: actor.now, by: actor.author, action: .lockRelease, subject: "locks/\(section)", operation: id, operationState: state,
                    reason: reason)
                let auditKey = keys.audit(AuditRecord.newName(at: actor.now))
                // The lock as read, and the journal as read (or still absent): a lock taken again, or
                // an operation that came back meanwhile, leaves everything as it is.
                let result = try await etcd.transaction(
                    Transaction(
                        compares: [.unchanged(lockKey, since: lock.modRevision), .unchanged(keys.operation(id), since: stored?.modRevision ?? 0)],
                        success: [.delete(lockKey), .put(auditKey, try StoredJSON.encode(entry))]))
                guard result.succeeded else {
                    printError("the lock of \(section) or the journal of \(id) changed since it was read; nothing changed: run it again")
                    throw Exit.conflict
                }
                if store.json {
                    try printJSON(["section": section, "operation": id, "operation_state": state, "audit": auditKey])
                } else {
                    print("Released the lock of \(section), which named operation \(id) (\(state)); recorded at \(auditKey).")
                }
            }
        }
    }
}

/// One section lock as `marina lock list` shows it.
struct LockView: Encodable {
    var section: String
    var operation: String
    /// The operation's state, `missing` (no journal) or `unreadable`.
    var state: String
    var requestedBy: String?
    /// When the operation took the lock (its start), if its journal says.
    var since: Date?
    var ageSeconds: Double?
    /// Whether `marina lock release` would release it.
    var stale: Bool

    enum CodingKeys: String, CodingKey {
        case section, operation, state
        case requestedBy = "requested_by"
        case since
        case ageSeconds = "age_seconds"
        case stale
    }

    static func read(etcd: EtcdClient, keys: StoreKeys, now: Date) async throws -> [LockView] {
        var views = [LockView]()
        for lock in try await etcd.get(keys.locks, prefix: true).kvs {
            let section = String(lock.key.dropFirst(keys.locks.count))
            let id = String(decoding: lock.value, as: UTF8.self)
            let journal = try await etcd.value(keys.operation(id)).map { kv in
                Result { () throws(UnreadableRecord) in try OperationJSON.decode(kv.value, key: kv.key) }
            }
            let record = try? journal?.get()
            let since = record.map { $0.startedAt ?? $0.requestedAt }
            let state: String =
                switch journal {
                case nil: "missing"
                case .failure: "unreadable"
                case .success(let record): record.state.rawValue
                }
            let stale: Bool =
                switch LockRelease.decide(section: section, operation: id, journal: journal) {
                case .allowed: true
                case .refused: false
                }
            views.append(
                LockView(
                    section: section, operation: id, state: state, requestedBy: record?.requestedBy, since: since,
                    ageSeconds: since.map { max(0, now.timeIntervalSince($0)) }, stale: stale))
        }
        return views
    }
}

/// `marina audit list`: the audit trail of hand-made changes to the operations' state (a lock
/// released, an abort, a resume), newest first.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "The audit trail: locks released by hand, aborts and resumes, who did them and why.",
        subcommands: [List.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The latest entries, newest first.",
            discussion: "The leader keeps them as long as finished journals (journal.keep_days of its configuration).")
        @OptionGroup var latest: LatestOption
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await running {
                let keys = try store.keys
                let kvs = try await EtcdClient(try store.configuration()).get(keys.audit, prefix: true).kvs
                var entries = [AuditRecord]()
                for kv in kvs.reversed().prefix(latest.limit) {
                    do {
                        entries.append(try AuditRecord.decode(kv.value, key: kv.key))
                    } catch {
                        printError("warning: \(error)")
                    }
                }
                if store.json {
                    try printJSON(entries)
                    return
                }
                guard !entries.isEmpty else {
                    print("No audit entries.")
                    return
                }
                let rows = entries.map { entry in
                    [
                        entry.at.formatted(.iso8601), entry.by, entry.action.rawValue, entry.subject,
                        entry.operation.map { "\($0) (\(entry.operationState ?? "?"))" } ?? "-", entry.reason,
                    ]
                }
                print(Tables.table([["AT", "BY", "ACTION", "SUBJECT", "OPERATION", "REASON"]] + rows))
            }
        }
    }
}
