import EtcdClient
import Foundation
import Operations
import StoredRecords
import TopologyStore

/// Operations as `marina operation list|show` and `GET /api/v1/operations[/{id}]` give them,
/// and the requests `marina switchover|failover` and `POST .../switchover|failover` write: the
/// same record, through the same etcd transaction.
public enum OperationsView {
    /// The latest `limit` journals, newest first, and those that cannot be read. A dry run's
    /// record (a plan shown, not an operation that ran) is not listed: the CLI deletes it once
    /// read, and the leader's retention a minute after, whoever left it.
    public static func list(etcd: EtcdClient, keys: StoreKeys, limit: Int) async throws -> (
        records: [OperationRecord], unreadable: [UnreadableRecord]
    ) {
        guard limit >= 1 else { throw ViewProblem(.badRequest, code: "invalid_limit", "limit must be 1 or more (got \(limit))") }
        var readable = [OperationRecord]()
        var unreadable = [UnreadableRecord]()
        for kv in try await etcd.get(keys.operations, prefix: true).kvs {
            do {
                let record = try OperationJSON.decode(kv.value, key: kv.key)
                if record.dryRun || record.state == .planned { continue }
                readable.append(record)
            } catch {
                unreadable.append(error)
            }
        }
        return (Array(readable.sorted { $0.requestedAt > $1.requestedAt }.prefix(limit)), unreadable)
    }

    /// One journal.
    public static func show(etcd: EtcdClient, keys: StoreKeys, id: String) async throws -> OperationRecord {
        guard let kv = try await etcd.value(keys.operation(id)) else {
            throw ViewProblem(.notFound, code: "unknown_operation", "no operation \(id) (`marina operation list` shows them)")
        }
        return try OperationJSON.decode(kv.value, key: kv.key)
    }

    /// A list of journals as JSON: each record in its stored encoding.
    public static func listJSON(_ records: [OperationRecord]) throws -> String {
        "[" + (try records.map { String(decoding: try OperationJSON.encode($0), as: UTF8.self) }).joined(separator: ",") + "]"
    }

    /// One journal as JSON, in its stored encoding.
    public static func json(_ record: OperationRecord) throws -> String { String(decoding: try OperationJSON.encode(record), as: UTF8.self) }
}

/// The operation requests a DBA makes, built the same way whether they come from the CLI or the API.
public enum OperationRequest {
    /// The longest time a request may wait for a controller, in seconds.
    public static let longestTimeout: Double = 86_400

    /// `marina switchover SECTION --to CANDIDATE`.
    public static func switchover(
        section: String, to candidate: String, reason: String, skipReplicas: [String] = [], dryRun: Bool = false,
        forceLongTransactions: Bool = false, author: String, at now: Date
    ) throws -> OperationRecord {
        try requireName(section, what: "the section")
        try requireName(candidate, what: "the candidate (to)")
        for replica in skipReplicas { try requireName(replica, what: "a skipped replica") }
        var record = OperationRecord(
            id: OperationRecord.newID(section: section), section: section, candidate: candidate, reason: reason,
            skipReplicas: skipReplicas, dryRun: dryRun, requestedBy: author, requestedAt: now)
        record.forceLongTransactions = forceLongTransactions ? true : nil
        return record
    }

    /// `marina failover SECTION [--to CANDIDATE]`: promote a replica of a dead primary.
    public static func failover(
        section: String, to preferred: String?, reason: String, dryRun: Bool = false, author: String, at now: Date
    ) throws -> OperationRecord {
        try requireName(section, what: "the section")
        if let preferred { try requireName(preferred, what: "the candidate (to)") }
        var record = OperationRecord(
            id: OperationRecord.newID(section: section), kind: "failover", section: section, candidate: preferred ?? "", reason: reason,
            dryRun: dryRun, requestedBy: author, requestedAt: now)
        record.failover = FailoverDetails(automatic: false, preferred: preferred)
        return record
    }

    /// Writes the request (the journal record and the request key, in one transaction that
    /// fails if the id exists). The leading controller takes it from there.
    public static func submit(_ record: OperationRecord, etcd: EtcdClient, keys: StoreKeys) async throws {
        let result = try await etcd.transaction(
            Transaction(
                compares: [.absent(keys.operation(record.id))],
                success: [.put(keys.operation(record.id), try OperationJSON.encode(record)), .put(keys.request(record.id), record.id)]))
        guard result.succeeded else {
            throw ViewProblem(.conflict, code: "operation_exists", "operation id \(record.id) exists already: re-run")
        }
    }

    /// A name that can be part of an etcd key: ASCII letters, digits, `-`, `_`, `.`, `:`, not
    /// made of dots alone.
    public static func requireName(_ name: String, what: String) throws {
        let allowed = name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.:".unicodeScalars.contains($0)) }
        guard !name.isEmpty, name.count <= 253, allowed, !name.allSatisfy({ $0 == "." }) else {
            throw ViewProblem(
                .badRequest, code: "invalid_name", "\(what) must be a name of letters, digits, '-', '_', '.' or ':' (got \"\(name)\")")
        }
    }
}

/// `marina failover ack SECTION` and `POST /api/v1/sections/{name}/failover/ack`.
public enum FailoverAcknowledgement {
    public enum Outcome: Sendable, Equatable {
        /// No automatic failover block was set.
        case notBlocked
        /// The block is lifted; `operation` is the failover that set it, when readable.
        case acknowledged(operation: String?)
    }

    /// Lifts the block (a compare-and-delete: a block changed meanwhile is a conflict to re-run).
    public static func acknowledge(section: String, etcd: EtcdClient, keys: StoreKeys) async throws -> Outcome {
        try OperationRequest.requireName(section, what: "the section")
        let key = keys.failoverBlock(section)
        guard let stored = try await etcd.value(key) else { return .notBlocked }
        let block = try? StoredJSON.decode(FailoverBlock.self, from: stored.value)
        let result = try await etcd.transaction(Transaction(compares: [.unchanged(key, since: stored.modRevision)], success: [.delete(key)]))
        guard result.succeeded else {
            throw ViewProblem(.conflict, code: "conflict", "the block of \(section) changed meanwhile: run it again")
        }
        return .acknowledged(operation: block?.operation)
    }
}
