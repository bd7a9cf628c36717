import Foundation

/// The one JSON encoding of what Marina shows: the CLI's `--json` and the HTTP API's bodies
/// are the same bytes for the same view (keys sorted, dates in ISO 8601).
public enum JSONView {
    public static func encode<Value: Encodable>(_ value: Value) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(value)
    }

    public static func string<Value: Encodable>(_ value: Value) throws -> String {
        String(decoding: try encode(value), as: UTF8.self)
    }

    /// The same encoding on one line: a stream of events, one object per line (`--json` progress).
    public static func line<Value: Encodable>(_ value: Value) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// A view that cannot be given because what it names does not exist, or the request is malformed:
/// the CLI prints the description and exits 1; the API answers 404 or 400 with `code`.
public struct ViewProblem: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// What the request names does not exist.
        case notFound = "not_found"
        /// The request is malformed or asks for something that cannot be.
        case badRequest = "bad_request"
        /// Lost a race with another writer; nothing was written: re-run.
        case conflict
    }

    public var kind: Kind
    public var code: String
    public var description: String

    public init(_ kind: Kind, code: String, _ description: String) {
        self.kind = kind
        self.code = code
        self.description = description
    }

    public static func unknownSection(_ name: String) -> ViewProblem { ViewProblem(.notFound, code: "unknown_section", "unknown section \(name)") }
    public static func unknownInstance(_ name: String) -> ViewProblem {
        ViewProblem(.notFound, code: "unknown_instance", "unknown instance \(name)")
    }
}
