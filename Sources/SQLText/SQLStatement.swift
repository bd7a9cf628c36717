/// A secret read from a credentials file: a password. It has no public way back to its text
/// but as a quoted SQL literal inside an `SQLStatement`, and it prints as `<secret>`, so
/// neither a log line, an error, a journal nor a dump of a value can show it.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    let value: String

    public init(_ value: String) { self.value = value }

    public var description: String { "<secret>" }
    public var debugDescription: String { "<secret>" }
    /// The text itself, for the one place that needs it: a client library's connect call.
    public var revealedForConnecting: String { value }
}

/// SQL text to send, and what of it may be shown. Built by interpolation; a `Secret` can only
/// enter as `\(secret: password)`, which sends the quoted literal and shows `<secret>`. Errors,
/// logs and journals print `shown`, never `text`.
public struct SQLStatement: Sendable, Equatable, CustomStringConvertible, ExpressibleByStringInterpolation {
    /// What the server receives.
    public let text: String
    /// What may be printed, logged or stored.
    public let shown: String

    public init(_ text: String) {
        self.text = text
        self.shown = text
    }

    public init(stringLiteral value: String) { self.init(value) }

    public init(stringInterpolation: Interpolation) {
        text = stringInterpolation.text
        shown = stringInterpolation.shown
    }

    /// True when `text` and `shown` differ: the statement carries a secret.
    public var carriesSecret: Bool { text != shown }

    public var description: String { shown }

    public struct Interpolation: StringInterpolationProtocol {
        var text = ""
        var shown = ""

        public init(literalCapacity: Int, interpolationCount: Int) {
            text.reserveCapacity(literalCapacity)
            shown.reserveCapacity(literalCapacity)
        }

        public mutating func appendLiteral(_ literal: String) {
            text += literal
            shown += literal
        }

        /// Plain SQL text (already quoted where needed: `SQL.quote`, a number, an identifier).
        public mutating func appendInterpolation(_ sql: String) {
            text += sql
            shown += sql
        }

        public mutating func appendInterpolation(_ value: some BinaryInteger) {
            appendInterpolation(String(value))
        }

        /// A secret as a quoted literal; shown as `<secret>`.
        public mutating func appendInterpolation(secret: Secret) {
            text += SQL.quote(secret.value)
            shown += "<secret>"
        }

        /// A secret that may be absent: shown as `<secret>` either way, sent as the literal or as the placeholder.
        public mutating func appendInterpolation(secret: Secret?, otherwise placeholder: String) {
            if let secret { appendInterpolation(secret: secret) } else {
                text += placeholder
                shown += placeholder
            }
        }
    }
}
