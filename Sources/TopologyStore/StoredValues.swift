import Foundation
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
        case schema, sequence, kind, author, at, message, basedOnRevision = "based_on_revision", revision, changes, topology
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

/// Encoding and decoding of stored values: JSON with sorted keys and a `schema` field; a value
/// that does not parse, has another schema or unknown fields is refused naming its key.
enum StoredJSON {
    /// Throws when the value cannot be written as JSON: nothing is then written, rather than
    /// bytes that are not the value.
    static func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return Array(try encoder.encode(value))
    }

    /// A section or instance with `"schema": 1` added beside its fields.
    static func encodeWithSchema<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let data = Data(try encode(value))
        guard var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "a stored object must encode as a JSON object"))
        }
        object["schema"] = schemaVersion
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    static func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8], key: String) throws -> Value {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let data = Data(bytes)
        let probe: SchemaProbe
        do {
            probe = try decoder.decode(SchemaProbe.self, from: data)
        } catch {
            throw StoreError.corrupt(key: key, problem: "is not a JSON object: \(String(decoding: bytes.prefix(60), as: UTF8.self))")
        }
        guard probe.schema == schemaVersion else {
            throw StoreError.corrupt(key: key, problem: "has schema \(probe.schema.map(String.init) ?? "missing"); this Marina reads schema \(schemaVersion)")
        }
        do {
            return try decoder.decode(Value.self, from: data)
        } catch {
            throw StoreError.corrupt(key: key, problem: SchemaError.from(error, root: "value").description)
        }
    }
}

private struct SchemaProbe: Decodable { var schema: Int? }

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
            return "etcd refused a transaction of \(operations) operations (\(detail)): start etcd with a larger --max-txn-ops and --max-request-bytes (see docs/etcd-keys.md)"
        case .sectionBusy(let section, let operation):
            return "section \(section) is busy: operation \(operation) holds its lock (`marina operation show \(operation)`); nothing was written: try again when it has finished"
        }
    }
}
