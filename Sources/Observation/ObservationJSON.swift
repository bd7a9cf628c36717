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

    /// FoundationEssentials' ISO 8601 style: no ICU (ISO8601DateFormatter would load it, costing
    /// the agent megabytes of resident memory).
    private static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
}

/// How observations are stored (`StoredRecordJSON`).
public enum ObservationJSON {
    public static func encode(_ observation: Observation) throws -> [UInt8] { try StoredRecordJSON.encode(observation) }
    public static func decode(_ bytes: [UInt8]) throws -> Observation { try StoredRecordJSON.decode(Observation.self, from: bytes) }
}
