#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A MySQL/MariaDB option file (`my.cnf` format), read as the MariaDB client reads it: `[group]`
/// headers, `key=value` and bare `key` lines, `#` and `;` comment lines, a `#` after a value
/// starting a comment unless quoted, values in matching single or double quotes, the escapes
/// `\n \t \r \b \s \" \' \\`, `-` and `_` alike in keys, and a later value of a key replacing an
/// earlier one. What the client would not accept (an option before any group, a header
/// without `]`, `!include`) is refused with its line number. Errors name the file and the
/// line, never a value: these files hold passwords.
public struct OptionFile: Sendable, Equatable, CustomStringConvertible {
    /// Where it was read from, for messages.
    public var path: String

    /// The file and its groups, never a value (printed by mistake, it shows no password).
    public var description: String { "option file \(path) (groups: \(entries.keys.sorted().joined(separator: ", ")))" }
    /// Each group's options (keys with `_` written `-`), in the order of the file.
    private var entries: [String: [Entry]]

    private struct Entry: Sendable, Equatable {
        var key: String
        var value: String
    }

    /// Reads and parses `path`.
    public static func load(_ path: String) throws -> OptionFile {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError(message: "cannot read the credentials file \(path)")
        }
        return try OptionFile(parsing: text, path: path)
    }

    public init(parsing text: String, path: String) throws {
        self.path = path
        entries = [:]
        var group: String?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            func refuse(_ problem: String) -> ConfigurationError {
                ConfigurationError(message: "\(path) line \(index + 1): \(problem)")
            }
            let line = raw.trimmed()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("!") {
                throw refuse("directives such as !include are not supported here: put the options in this file")
            }
            if line.hasPrefix("[") {
                let header = Self.removingComment(line).trimmed()
                guard header.hasSuffix("]"), header.count > 2 else { throw refuse("a group header must be [name]") }
                let name = String(header.dropFirst().dropLast()).trimmed()
                guard !name.isEmpty else { throw refuse("a group header must be [name]") }
                group = name
                continue
            }
            guard let group else { throw refuse("an option before any [group]") }
            let content = Self.removingComment(line)
            let key: String
            let value: String
            if let equals = content.firstIndex(of: "=") {
                key = content[..<equals].trimmed()
                guard let unquoted = Self.value(content[content.index(after: equals)...].trimmed()) else {
                    throw refuse("a value's quote is not closed")
                }
                value = unquoted
            } else {
                key = content.trimmed()
                value = ""
            }
            guard !key.isEmpty else { throw refuse("an option without a name") }
            let normalized = Self.normalized(key)
            entries[group, default: []].removeAll { $0.key == normalized }
            entries[group, default: []].append(Entry(key: normalized, value: value))
        }
    }

    /// The value of `key` in `group` (`_` and `-` alike), or nil when the group does not set it.
    public func value(_ key: String, in group: String) -> String? {
        let wanted = Self.normalized(key)
        return entries[group]?.last { $0.key == wanted }?.value
    }

    /// Every option of `group`, in the order of the file, keys with `-` written `_` (as system
    /// variables are named); empty when the file has no such group.
    public func options(in group: String) -> [(key: String, value: String)] {
        (entries[group] ?? []).map { ($0.key.replacingAll("-", with: "_"), $0.value) }
    }

    /// `user` and `password` of one group (`[client]` by default).
    public func account(in group: String = "client") -> (user: String?, password: String?) {
        (value("user", in: group), value("password", in: group))
    }

    /// `user` and `password` of one group of the file at `path`.
    public static func clientCredentials(_ path: String, group: String = "client") throws -> (user: String?, password: String?) {
        try load(path).account(in: group)
    }

    public static func == (left: OptionFile, right: OptionFile) -> Bool {
        left.path == right.path && left.entries == right.entries
    }

    private static func normalized(_ key: String) -> String { key.replacingAll("_", with: "-") }

    /// The line up to a `#` outside quotes.
    private static func removingComment(_ line: String) -> String {
        var quote: Character?
        var escaped = false
        var result = ""
        for character in line {
            if quote == nil && character == "#" { break }
            if !escaped, character == "\"" || character == "'" {
                if quote == nil { quote = character } else if quote == character { quote = nil }
            }
            escaped = quote != nil && character == "\\" && !escaped
            result.append(character)
        }
        return result
    }

    /// A value without its quotes and with its escapes; nil when a quote opens and never closes.
    private static func value(_ text: String) -> String? {
        var inner = Substring(text)
        if let first = text.first, first == "\"" || first == "'" {
            guard text.count >= 2, text.last == first else { return nil }
            inner = text.dropFirst().dropLast()
        }
        var result = ""
        var escaped = false
        for character in inner {
            if escaped {
                switch character {
                case "n": result.append("\n")
                case "t": result.append("\t")
                case "r": result.append("\r")
                case "b": result.append("\u{8}")
                case "s": result.append(" ")
                case "\"", "'", "\\": result.append(character)
                default: result += "\\" + String(character)
                }
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                result.append(character)
            }
        }
        if escaped { result.append("\\") }
        return result
    }
}
