#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The JSON shapes of etcd's v3 gateway. Keys and values travel as base64; int64 fields come
/// back as JSON strings; fields at their default value (0, false, empty) are left out.
enum Wire {
    struct Header: Decodable {
        var revision: String?
    }

    struct KV: Decodable {
        var key: String?
        var value: String?
        var create_revision: String?
        var mod_revision: String?
        var version: String?
        var lease: String?

        func model() throws -> KeyValue {
            KeyValue(
                key: String(decoding: try Wire.decode64(key), as: UTF8.self),
                value: try Wire.decode64(value),
                createRevision: Wire.int(create_revision),
                modRevision: Wire.int(mod_revision),
                version: Wire.int(version),
                lease: Wire.int(lease)
            )
        }
    }

    struct RangeResponse: Decodable {
        var header: Header?
        var kvs: [KV]?
        var count: String?

        func model() throws -> RangeResult {
            RangeResult(kvs: try (kvs ?? []).map { try $0.model() }, revision: Wire.int(header?.revision), count: Wire.int(count))
        }
    }

    struct PutResponse: Decodable { var header: Header? }

    struct DeleteResponse: Decodable {
        var header: Header?
        var deleted: String?
    }

    struct ResponseOp: Decodable {
        var response_range: RangeResponse?
        var response_put: PutResponse?
        var response_delete_range: DeleteResponse?
    }

    struct TxnResponse: Decodable {
        var header: Header?
        var succeeded: Bool?
        var responses: [ResponseOp]?
    }

    struct LeaseGrantResponse: Decodable {
        var ID: String?
        var TTL: String?
        var error: String?
    }

    struct LeaseKeepAliveResponse: Decodable {
        struct Result: Decodable {
            var ID: String?
            var TTL: String?
        }
        var result: Result?
    }

    struct LeaseTimeToLiveResponse: Decodable {
        var ID: String?
        var TTL: String?
        var grantedTTL: String?
        var keys: [String]?
    }

    struct AuthenticateResponse: Decodable { var token: String? }

    struct ErrorResponse: Decodable {
        var error: String?
        var message: String?
        var code: Int?
    }

    struct WatchMessage: Decodable {
        struct Result: Decodable {
            var header: Header?
            var created: Bool?
            var canceled: Bool?
            var compact_revision: String?
            var cancel_reason: String?
            var events: [Event]?
        }
        struct Event: Decodable {
            var type: String?
            var kv: KV?
            var prev_kv: KV?
        }
        struct StreamError: Decodable {
            var grpc_code: Int?
            var http_code: Int?
            var message: String?
        }
        var result: Result?
        var error: StreamError?
    }

    static func int(_ value: String?) -> Int64 { value.flatMap { Int64($0) } ?? 0 }

    static func encode64(_ string: String) -> String { Data(string.utf8).base64EncodedString() }

    static func encode64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    static func decode64(_ value: String?) throws -> [UInt8] {
        guard let value else { return [] }
        guard let data = Data(base64Encoded: value) else {
            throw EtcdError(.malformedResponse, "a key or value is not valid base64")
        }
        return Array(data)
    }

    /// The key just after every key that starts with `prefix`, as etcd's `range_end` wants.
    static func prefixEnd(_ prefix: String) -> [UInt8] {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return bytes
            }
            bytes.removeLast()
        }
        return [0]  // every key
    }

    static func rangeBody(_ key: String, prefix: Bool) -> [String: JSONValue] {
        var body: [String: JSONValue] = ["key": .string(encode64(key))]
        if prefix { body["range_end"] = .string(encode64(prefixEnd(key))) }
        return body
    }

    static func compareBody(_ compare: Compare) -> JSONValue {
        var body: [String: JSONValue] = ["key": .string(encode64(compare.key)), "result": .string(compare.result.rawValue)]
        if let rangeEnd = compare.rangeEnd { body["range_end"] = .string(encode64(rangeEnd)) }
        switch compare.target {
        case .value(let value):
            body["target"] = "VALUE"
            body["value"] = .string(encode64(value))
        case .version(let version):
            body["target"] = "VERSION"
            body["version"] = .string(String(version))
        case .createRevision(let revision):
            body["target"] = "CREATE"
            body["create_revision"] = .string(String(revision))
        case .modRevision(let revision):
            body["target"] = "MOD"
            body["mod_revision"] = .string(String(revision))
        }
        return .object(body)
    }

    static func operationBody(_ operation: KVOperation) -> JSONValue {
        switch operation {
        case .get(let key, let prefix):
            return ["request_range": .object(rangeBody(key, prefix: prefix))]
        case .put(let key, let value, let lease):
            var put: [String: JSONValue] = ["key": .string(encode64(key)), "value": .string(encode64(value))]
            if lease != 0 { put["lease"] = .string(String(lease)) }
            return ["request_put": .object(put)]
        case .delete(let key, let prefix):
            return ["request_delete_range": .object(rangeBody(key, prefix: prefix))]
        case .deleteRange(let from, let to):
            return ["request_delete_range": ["key": .string(encode64(from)), "range_end": .string(encode64(to))]]
        }
    }
}

/// A JSON value for request bodies (FoundationEssentials has no JSONSerialization).
enum JSONValue: Encodable, Sendable, ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByDictionaryLiteral {
    case string(String)
    case bool(Bool)
    case array([JSONValue])
    case object([String: JSONValue])

    init(stringLiteral value: String) { self = .string(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(Dictionary(uniqueKeysWithValues: elements)) }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .array(let values): try container.encode(values)
        case .object(let values): try container.encode(values)
        }
    }

    /// The body bytes, keys sorted.
    func data() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }
}
