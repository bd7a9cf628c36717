#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The one codec of Marina's records in etcd: the source of truth's objects, observations,
/// operation journals, the policy state. JSON with sorted keys, slashes unescaped, and ISO 8601
/// times with milliseconds (whole seconds would make two probes half a second apart look
/// simultaneous); times without fractional seconds, as older values were written, are read too.
/// FoundationEssentials only, so that the agent can use it without ICU.
public enum StoredJSON {
    /// Throws when the value cannot be written as JSON (a NaN, an infinity): nothing is then
    /// written, rather than bytes that are not the value.
    public static func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(style))
        }
        return Array(try encoder.encode(value))
    }

    /// A value that encodes as a JSON object, with `"schema": schema` added beside its fields
    /// (a section or an instance of the source of truth, whose model has no such field).
    public static func encode<Value: Encodable>(_ value: Value, addingSchema schema: Int) throws -> [UInt8] {
        try encode(WithSchema(value: value, schema: schema))
    }

    /// The value, or the decoder's error (`describe` turns it into one line for a person).
    public static func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = (try? style.parse(text)) ?? (try? Date.ISO8601FormatStyle().parse(text)) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(text) is not an ISO 8601 time"))
            }
            return date
        }
        return try decoder.decode(type, from: Data(bytes))
    }

    /// A value that must carry `"schema": schema`: one that does not parse, has another schema
    /// or does not decode is refused as an `UnreadableValue` naming `key`.
    public static func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8], key: String, schema: Int) throws -> Value {
        let probe: SchemaProbe
        do {
            probe = try decode(SchemaProbe.self, from: bytes)
        } catch {
            throw UnreadableValue(key: key, problem: "is not a JSON object: \(String(decoding: bytes.prefix(60), as: UTF8.self))")
        }
        guard probe.schema == schema else {
            throw UnreadableValue(key: key, problem: "has schema \(probe.schema.map(String.init) ?? "missing"); this Marina reads schema \(schema)")
        }
        do {
            return try decode(type, from: bytes)
        } catch {
            throw UnreadableValue(key: key, problem: describe(error, bytes: bytes))
        }
    }

    /// What is wrong with a stored value that `decode` refused, in one line that names the
    /// field (`steps[2].timeout: ...`), for a person; `bytes` are the value, to tell an empty
    /// or non-JSON value apart.
    public static func describe(_ error: any Error, bytes: [UInt8]) -> String {
        if bytes.isEmpty { return "the value is empty" }
        guard let decoding = error as? DecodingError else { return oneLine("\(error)") }
        switch decoding {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])) is missing"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) is not \(expected(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) is null, not \(expected(type))"
        case .dataCorrupted(let context):
            // A syntax error: reported at the top, with or without the parser's own error.
            if context.codingPath.isEmpty && (context.underlyingError != nil || context.debugDescription.contains("not valid JSON")) {
                return "not JSON: " + oneLine(String(decoding: bytes.prefix(60), as: UTF8.self))
            }
            return "\(path(context.codingPath)): \(oneLine(context.debugDescription))"
        @unknown default:
            return oneLine("\(decoding)")
        }
    }

    /// `steps[2].timeout`: a coding path as a person writes it.
    private static func path(_ path: [any CodingKey]) -> String {
        var text = ""
        for key in path {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return text.isEmpty ? "the value" : text
    }

    private static func expected(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int.Type, is Int64.Type: return "a whole number"
        case is Double.Type: return "a number"
        default:
            let name = String(describing: type)
            return name.hasPrefix("Array") ? "a list" : name.hasPrefix("Dictionary") ? "an object" : "a \(name)"
        }
    }

    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }

    /// FoundationEssentials' ISO 8601 style: no ICU (ISO8601DateFormatter would load it, costing
    /// the agent megabytes of resident memory).
    private static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
}

/// A stored value that cannot be used: its key, and what is wrong with it (never its content
/// beyond its first 60 bytes when it is not JSON at all).
public struct UnreadableValue: Error, Equatable, CustomStringConvertible {
    public var key: String
    public var problem: String

    public init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }

    public var description: String { "etcd key \(key) \(problem)" }
}

private struct SchemaProbe: Decodable { var schema: Int? }

/// The value's own fields and `schema`, in one JSON object (the encoder merges the two keyed
/// containers of the same level).
private struct WithSchema<Value: Encodable>: Encodable {
    var value: Value
    var schema: Int

    private enum Key: String, CodingKey { case schema }

    func encode(to encoder: any Encoder) throws {
        try value.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(schema, forKey: .schema)
    }
}
