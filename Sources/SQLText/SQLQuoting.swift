/// Quoting of literals and identifiers for MariaDB, correct for any input.
///
/// String literals are written as `_utf8mb4 X'…'` hexadecimal literals when they contain
/// anything outside printable ASCII without quotes or backslashes: a hex literal means the same
/// bytes whatever `sql_mode` (`NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES`) and whatever the
/// connection character set, so no input can end the literal early. Plain strings keep their
/// readable `'…'` form, which is unambiguous because it contains neither quote nor backslash.
public enum SQL {
    /// A string literal that the server reads back as exactly `value`'s UTF-8 bytes.
    public static func quote(_ value: String) -> String {
        quote(bytes: Array(value.utf8))
    }

    /// A literal for arbitrary bytes, read back by the server as exactly those bytes in utf8mb4.
    public static func quote(bytes: [UInt8]) -> String {
        let plain = bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "'") && $0 != UInt8(ascii: "\\") && $0 != UInt8(ascii: "\"") }
        if plain {
            return "'" + String(decoding: bytes, as: UTF8.self) + "'"
        }
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0x0F)])
        }
        return "_utf8mb4 X'" + String(decoding: hex, as: UTF8.self) + "'"
    }

    /// A literal for an optional: `NULL` for nil.
    public static func quote(_ value: String?) -> String {
        value.map { quote($0) } ?? "NULL"
    }

    /// An identifier (database, table, column, user name part) in backticks, with backticks
    /// doubled. MariaDB identifiers cannot contain NUL, so such a name is refused.
    public static func quoteIdentifier(_ name: String) throws -> String {
        guard !name.isEmpty else {
            throw SQLTextError(sqlState: "42000", message: "an identifier cannot be empty")
        }
        guard !name.utf8.contains(0) else {
            throw SQLTextError(sqlState: "42000", message: "an identifier cannot contain a NUL byte")
        }
        return "`" + String(name.flatMap { $0 == "`" ? ["`", "`"] : [$0] }) + "`"
    }

    /// `'user'@'host'` for account management statements.
    public static func account(user: String, host: String) -> String {
        quote(user) + "@" + quote(host)
    }

    /// Replaces each `?` outside quotes in `template` with the next argument, quoted.
    /// `nil` becomes `NULL`; integers are written as numbers.
    public static func format(_ template: String, _ arguments: [SQLArgument]) throws -> String {
        var output = ""
        var remaining = arguments[...]
        var quoteCharacter: Character?
        for character in template {
            if let open = quoteCharacter {
                output.append(character)
                if character == open { quoteCharacter = nil }
            } else if character == "'" || character == "\"" || character == "`" {
                quoteCharacter = character
                output.append(character)
            } else if character == "?" {
                guard let argument = remaining.popFirst() else {
                    throw SQLTextError(sqlState: "07001", message: "more placeholders than arguments in: \(template)")
                }
                output += argument.literal
            } else {
                output.append(character)
            }
        }
        guard remaining.isEmpty else {
            throw SQLTextError(sqlState: "07001", message: "more arguments than placeholders in: \(template)")
        }
        return output
    }
}

/// A value bound to a `?` placeholder by `SQL.format`.
public enum SQLArgument: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByNilLiteral {
    case string(String)
    case integer(Int64)
    case unsigned(UInt64)
    case null

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(nilLiteral: ()) { self = .null }

    var literal: String {
        switch self {
        case .string(let value): return SQL.quote(value)
        case .integer(let value): return String(value)
        case .unsigned(let value): return String(value)
        case .null: return "NULL"
        }
    }
}

/// SQL text that cannot be built: an empty identifier, placeholders and arguments that do not match.
public struct SQLTextError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The SQLSTATE the server would have answered with.
    public var sqlState: String
    public var message: String

    public init(sqlState: String, message: String) {
        self.sqlState = sqlState
        self.message = message
    }

    public var description: String { "SQL text refused: [\(sqlState)] \(message)" }
}
