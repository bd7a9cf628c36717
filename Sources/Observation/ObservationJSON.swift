#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How Marina stores its own records in etcd (observations, operation journals, the policy
/// state): JSON with sorted keys and ISO 8601 times with milliseconds (whole seconds would make
/// two probes half a second apart look simultaneous).
public enum StoredRecordJSON {
    public static func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(style))
        }
        return Array(try encoder.encode(value))
    }

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

    /// What is wrong with a stored value that `decode` refused, in one line that names the
    /// field (`steps[2].timeout: ...`), for a person; `bytes` are the value, to tell an empty
    /// or non-JSON value apart.
    public static func describe(_ error: any Error, bytes: [UInt8]) -> String {
        if bytes.isEmpty { return "the value is empty" }
        guard let decoding = error as? DecodingError else { return oneLine("\(error)") }
        func at(_ path: [any CodingKey]) -> String {
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
        switch decoding {
        case .keyNotFound(let key, let context):
            return "\(at(context.codingPath + [key])) is missing"
        case .typeMismatch(let type, let context):
            return "\(at(context.codingPath)) is not \(expected(type))"
        case .valueNotFound(let type, let context):
            return "\(at(context.codingPath)) is null, not \(expected(type))"
        case .dataCorrupted(let context):
            // A syntax error: reported at the top, with or without the parser's own error.
            if context.codingPath.isEmpty && (context.underlyingError != nil || context.debugDescription.contains("not valid JSON")) {
                return "not JSON: " + oneLine(String(decoding: bytes.prefix(60), as: UTF8.self))
            }
            return "\(at(context.codingPath)): \(oneLine(context.debugDescription))"
        @unknown default:
            return oneLine("\(decoding)")
        }
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

/// How observations are stored (`StoredRecordJSON`).
public enum ObservationJSON {
    public static func encode(_ observation: Observation) throws -> [UInt8] { try StoredRecordJSON.encode(observation) }
    public static func decode(_ bytes: [UInt8]) throws -> Observation { try StoredRecordJSON.decode(Observation.self, from: bytes) }
}
