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

    /// Why this secret cannot be written as a plain SQL string the same way under every
    /// `sql_mode`, or nil: a backslash (an escape unless `NO_BACKSLASH_ESCAPES`), a control
    /// character, or more than 96 characters (MariaDB's limit for `MASTER_PASSWORD`; a longer
    /// one is refused with an error that quotes it).
    public var problemAsTextLiteral: String? {
        if value.contains("\\") { return "it contains a backslash" }
        if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return "it contains a control character" }
        if value.count > 96 { return "it is longer than 96 characters" }
        return nil
    }
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

    /// A statement built elsewhere with its own redacted form (a grant with a password hash).
    public init(text: String, shown: String) {
        self.text = text
        self.shown = shown
    }

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

        /// A secret as a plain quoted string (quotes doubled), shown as `<secret>`. Plain, not
        /// `SQL.quote`'s hexadecimal form: places such as `MASTER_PASSWORD` take a plain string
        /// only. The secret must pass `Secret.problemAsTextLiteral` (checked where it is read).
        public mutating func appendInterpolation(secret: Secret) {
            text += "'" + String(secret.value.flatMap { $0 == "'" ? ["'", "'"] : [$0] }) + "'"
            shown += "<secret>"
        }

        /// A secret that may be absent: shown as `<secret>` either way, sent as the literal or as the placeholder.
        public mutating func appendInterpolation(secret: Secret?, otherwise placeholder: String) {
            if let secret {
                appendInterpolation(secret: secret)
            } else {
                text += placeholder
                shown += placeholder
            }
        }
    }
}
