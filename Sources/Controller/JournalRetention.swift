import EtcdClient
import Foundation
import Logging
import Operations
import Topology
import TopologyStore

extension ControllerConfiguration {
    /// `journal:`: which finished journals the leader keeps. A journal goes when it is neither
    /// among the newest `keep` of its section nor younger than `keep_days`; a dry run's record
    /// goes a minute after it was planned (the CLI shows it, and deletes it itself).
    public struct Journal: Sendable, Equatable, Decodable {
        /// The newest finished journals kept in each section, whatever their age. Default 100.
        public var keep: Int
        /// Days a finished journal is kept, whatever the count (0: the count alone). Default 90.
        public var keepDays: Int

        public init(keep: Int = 100, keepDays: Int = 90) {
            self.keep = keep
            self.keepDays = keepDays
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case keep
            case keepDays = "keep_days"
        }

        public init(from decoder: Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Journal()
            self.init(
                keep: try c.decodeIfPresent(Int.self, forKey: .keep) ?? defaults.keep,
                keepDays: try c.decodeIfPresent(Int.self, forKey: .keepDays) ?? defaults.keepDays)
        }

        /// Every value out of its range, each naming its key.
        func problems() -> [String] {
            var problems = [String]()
            if !(1...Self.mostKept).contains(keep) {
                problems.append("journal.keep must be from 1 to \(Self.mostKept) journals per section (got \(keep))")
            }
            if !(0...Self.longestDays).contains(keepDays) {
                problems.append("journal.keep_days must be from 0 to \(Self.longestDays) days (got \(keepDays))")
            }
            return problems
        }

        static let mostKept = 100_000
        static let longestDays = 36_500
    }
}

/// Which journals the leader deletes: a pure decision over what it read (journals, the ids
/// the section locks name) and a clock.
///
/// Never deleted: a journal whose operation has not finished, one a lock names, one that does
/// not decode (a human looks at it; `marina operation list` shows it). A dry run's record
/// (`planned`, or any record with `dry_run`) is deleted once older than `dryRunAge`, whoever
/// left it. Any other finished journal is kept while it is among the newest `keep` of its
/// section or younger than `keepDays`.
public enum JournalRetention {
    /// What the decision needs of one journal.
    public struct Journal: Sendable, Equatable {
        public var id: String
        public var section: String
        public var state: OperationRecord.State
        public var dryRun: Bool
        /// When it finished (else when it was last written).
        public var time: Date

        public init(id: String, section: String, state: OperationRecord.State, dryRun: Bool, time: Date) {
            self.id = id
            self.section = section
            self.state = state
            self.dryRun = dryRun
            self.time = time
        }

        public init(_ record: OperationRecord) {
            self.init(
                id: record.id, section: record.section, state: record.state, dryRun: record.dryRun || record.state == .planned,
                time: record.finishedAt ?? record.updatedAt)
        }
    }

    /// Seconds a dry run's record stays.
    public static let dryRunAge: TimeInterval = 60

    /// The ids to delete, sorted.
    public static func expired(_ journals: [Journal], keep: Int, keepDays: Int, now: Date, locked: Set<String>) -> [String] {
        let period = TimeInterval(keepDays) * 86_400
        var expired = [String]()
        var finished = [String: [Journal]]()
        // An operation left for a human is kept, with its undo, until a human deletes it: it is the
        // record of what each host had before, and nobody has said it is settled.
        for journal in journals where journal.state.isFinished && journal.state != .needsHuman && !locked.contains(journal.id) {
            if journal.dryRun {
                if now.timeIntervalSince(journal.time) > dryRunAge { expired.append(journal.id) }
            } else {
                finished[journal.section, default: []].append(journal)
            }
        }
        for (_, section) in finished {
            let newestFirst = section.sorted { ($0.time, $0.id) > ($1.time, $1.id) }
            for journal in newestFirst.dropFirst(keep) where now.timeIntervalSince(journal.time) > period {
                expired.append(journal.id)
            }
        }
        return expired.sorted()
    }

    /// The keys that go with a journal: its undo, an abort or resume request, the test hooks'.
    public static func companionKeys(of id: String, keys: StoreKeys) -> [String] {
        [keys.operationUndo(id), keys.abort(id), keys.resumeRequest(id), keys.resume + id, keys.resume + id + "/paused"]
    }

    /// Journals deleted per transaction: six keys each stays under etcd's default of 128
    /// operations per transaction.
    static let batch = 16

    /// Reads the journals and the locks at one revision, decides, and deletes what expired with
    /// its companion keys, each batch in a transaction that compares every journal as read
    /// (and `compares`: the leader's). Audit entries older than `keepDays` go too. Gives the
    /// ids deleted; a batch that lost its compare is left for the next pass.
    @discardableResult
    public static func prune(
        etcd: any KeyValueStore, keys: StoreKeys, keep: Int, keepDays: Int, now: Date, compares: [Compare] = [], logger: Logger? = nil
    ) async throws -> [String] {
        let read = try await etcd.transaction(
            Transaction(compares: [], success: [.get(keys.operations, prefix: true), .get(keys.locks, prefix: true)]))
        let ranges = read.results.compactMap { result -> RangeResult? in
            if case .get(let range) = result { return range }
            return nil
        }
        guard ranges.count == 2 else { throw EtcdError(.malformedResponse, "the journal read returned \(ranges.count) ranges") }
        let locked = Set(ranges[1].kvs.map { String(decoding: $0.value, as: UTF8.self) })
        var journals = [Journal]()
        var revisions = [String: Int64]()
        for kv in ranges[0].kvs {
            guard let record = try? OperationJSON.decode(kv.value, key: kv.key) else { continue }
            // A journal whose key does not match its id is not touched.
            guard kv.key == keys.operation(record.id) else { continue }
            journals.append(Journal(record))
            revisions[record.id] = kv.modRevision
        }
        let expired = expired(journals, keep: keep, keepDays: keepDays, now: now, locked: locked)
        var deleted = [String]()
        for start in stride(from: 0, to: expired.count, by: batch) {
            let ids = expired[start..<min(expired.count, start + batch)]
            let result = try await etcd.transaction(
                Transaction(
                    compares: compares + ids.map { .unchanged(keys.operation($0), since: revisions[$0] ?? 0) },
                    success: ids.flatMap { id in ([keys.operation(id)] + companionKeys(of: id, keys: keys)).map { KVOperation.delete($0) } }))
            if result.succeeded {
                deleted += ids
            } else {
                logger?.debug("journal retention: \(ids.count) journals changed since read; left for the next pass")
            }
        }
        if keepDays > 0 {
            let cutoff = keys.audit(AuditRecord.stamp(at: now.addingTimeInterval(-TimeInterval(keepDays) * 86_400)))
            _ = try await etcd.transaction(Transaction(compares: compares, success: [.deleteRange(from: keys.audit, to: cutoff)]))
        }
        return deleted
    }
}

/// The leader's journal retention: a pass every `interval` seconds while it leads.
actor JournalPruner {
    let context: OperationContext
    let settings: ControllerConfiguration.Journal
    let interval: Double
    private var failing = false

    init(context: OperationContext, settings: ControllerConfiguration.Journal, interval: Double = 180) {
        self.context = context
        self.settings = settings
        self.interval = interval
    }

    /// Runs while `leading()` says so; returns when cancelled. The first pass comes one
    /// interval after this controller starts leading.
    func run(leading: @Sendable () async -> Bool) async {
        var next = ContinuousClock.now + .seconds(interval)
        while !Task.isCancelled {
            if await !leading() {
                next = ContinuousClock.now + .seconds(interval)
            } else if ContinuousClock.now >= next {
                next = ContinuousClock.now + .seconds(interval)
                do {
                    try context.fence.check()
                    let deleted = try await JournalRetention.prune(
                        etcd: context.etcd, keys: context.keys, keep: settings.keep, keepDays: settings.keepDays, now: Date(),
                        compares: [await context.leadership.compare], logger: context.logger)
                    if !deleted.isEmpty { context.logger.info("journal retention: deleted \(deleted.count) finished journals") }
                    failing = false
                } catch {
                    if !failing { context.logger.warning("journal retention: \(error)") }
                    failing = true
                }
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
