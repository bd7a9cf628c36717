import Foundation
import StoredRecords
import Topology

/// What a `marina config commit` (or restore, or automatic action) recorded.
public struct HistoryEntry: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case commit, restore, automatic }

    public var schema: Int
    public var sequence: Int
    public var kind: Kind
    public var author: String
    public var at: Date
    public var message: String
    /// The etcd revision of the staged objects the commit was computed from.
    public var basedOnRevision: Int64
    /// The etcd revision the commit was written at; filled in when read back.
    public var revision: Int64?
    public var changes: [ConfigChange]
    /// The whole staged topology committed, so that `restore` needs nothing else.
    public var topology: TopologyDocument

    enum CodingKeys: String, CodingKey {
        case schema, sequence, kind, author, at, message
        case basedOnRevision = "based_on_revision"
        case revision, changes, topology
    }
}

/// The value stored under `generated/<datacenter>`.
public struct StoredGeneratedConfig: Codable, Sendable, Equatable {
    public var schema: Int
    public var datacenter: String
    /// The commit that wrote it.
    public var sequence: Int
    public var config: GeneratedConfig
}

/// The value stored under `committed-variables/<section>` (written by every commit that changes
/// them) and `synced-variables/<section>` (written by a variable sync that finished: what agents
/// keep in their option files).
public struct CommittedVariables: Codable, Sendable, Equatable {
    public var schema: Int
    public var section: String
    /// The committed head when it was written (a commit that changed them, or the end of a sync).
    public var sequence: Int
    public var variables: ManagedVariables

    public init(section: String, sequence: Int, variables: ManagedVariables) {
        self.schema = schemaVersion
        self.section = section
        self.sequence = sequence
        self.variables = variables
    }
}

struct StoredHead: Codable {
    var schema: Int
    var sequence: Int
}

struct StoredDatacenter: Codable {
    var schema: Int
    var name: String
}

struct StoredMarker: Codable {
    var schema: Int
    var author: String
    var at: Date
    var change: String
}

/// The store's use of the one codec (`StoredJSON`): every value carries `"schema": 1`; a value
/// that does not parse, has another schema or unknown fields is refused naming its key.
extension StoredJSON {
    /// A section or instance with `"schema": 1` added beside its fields.
    static func encodeWithSchema<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        try encode(value, addingSchema: schemaVersion)
    }

    static func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8], key: String) throws -> Value {
        do {
            return try decode(type, from: bytes, key: key, schema: schemaVersion)
        } catch let error as UnreadableValue {
            throw StoreError.corrupt(key: error.key, problem: error.problem)
        }
    }
}

/// A store failure that is not a lost race: corrupt data, or a transaction etcd refused.
public enum StoreError: Error, CustomStringConvertible, Equatable {
    case corrupt(key: String, problem: String)
    case unknownRevision(Int64)
    case tooLarge(operations: Int, detail: String)
    /// A running operation holds the section's lock: a human's edit or commit touching the
    /// section would silently undo what the operation does. Nothing was written.
    case sectionBusy(section: String, operation: String)

    public var description: String {
        switch self {
        case .corrupt(let key, let problem):
            return "etcd key \(key) holds an invalid value: \(problem). Fix or delete it (etcdctl), or restore a commit; nothing was changed"
        case .unknownRevision(let revision):
            return "no commit at revision \(revision): see `marina config history`"
        case .tooLarge(let operations, let detail):
            return
                "etcd refused a transaction of \(operations) operations (\(detail)): start etcd with a larger --max-txn-ops and --max-request-bytes (see docs/etcd-keys.md)"
        case .sectionBusy(let section, let operation):
            return
                "section \(section) is busy: operation \(operation) holds its lock (`marina operation show \(operation)`); nothing was written: try again when it has finished"
        }
    }
}
