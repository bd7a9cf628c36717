#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The YAML the agent's configuration (and the sandbox's `etcd.yaml`) is written in, turned
/// into JSON for `JSONDecoder`.
///
/// The agent reads a subset of YAML, parsed here rather than by Yams because Yams links all of
/// Foundation (with ICU), which would double the agent's resident memory. Supported: block
/// mappings and sequences by indentation (`- key: value` items included), flow sequences and
/// flow mappings of scalars (`[a, b]`, `{name: x, port: 1}`), single- and double-quoted and
/// plain scalars (numbers, `true`/`false`, `null`/`~`), comments and blank lines. Anything else
/// (anchors, tags, multi-line strings, tabs for indentation) is refused with its line number.
public enum ConfigurationYAML {
    indirect enum Node {
        case scalar(String, quoted: Bool)
        case sequence([Node])
        case mapping([(String, Node)])
    }

    struct Line {
        var number: Int
        var indent: Int
        var text: String
    }

    /// The document as JSON; a `ConfigurationError` naming the line for anything outside the subset.
    public static func json(_ text: String) throws -> Data {
        var lines = [Line]()
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let content = try stripComment(String(raw), line: index + 1)
            guard !content.trimmed().isEmpty else { continue }
            let indent = content.prefix { $0 == " " }.count
            if content.dropFirst(indent).first == "\t" { throw error(index + 1, "tabs cannot indent YAML") }
            lines.append(Line(number: index + 1, indent: indent, text: String(content.dropFirst(indent)).trimmed()))
        }
        var position = 0
        let root = lines.isEmpty ? Node.mapping([]) : try block(&lines, &position, indent: lines[0].indent)
        if position < lines.count { throw error(lines[position].number, "unexpected indentation") }
        return Data(render(root).utf8)
    }

    private static func block(_ lines: inout [Line], _ position: inout Int, indent: Int) throws -> Node {
        lines[position].text.hasPrefix("- ") || lines[position].text == "-"
            ? try sequence(&lines, &position, indent: indent) : try mapping(&lines, &position, indent: indent)
    }

    private static func sequence(_ lines: inout [Line], _ position: inout Int, indent: Int) throws -> Node {
        var items = [Node]()
        while position < lines.count, lines[position].indent == indent, lines[position].text.hasPrefix("-") {
            let line = lines[position]
            let rest = String(line.text.dropFirst()).trimmed()
            if rest.isEmpty {
                position += 1
                guard position < lines.count, lines[position].indent > indent else { throw error(line.number, "an empty list item") }
                items.append(try block(&lines, &position, indent: lines[position].indent))
            } else if splitKey(rest) != nil && !rest.hasPrefix("{") && !rest.hasPrefix("[") {
                // `- key: value` starts a mapping whose keys sit two columns in.
                lines[position] = Line(number: line.number, indent: indent + 2, text: rest)
                items.append(try mapping(&lines, &position, indent: indent + 2))
            } else {
                items.append(try value(rest, line: line.number))
                position += 1
            }
        }
        return .sequence(items)
    }

    private static func mapping(_ lines: inout [Line], _ position: inout Int, indent: Int) throws -> Node {
        var entries = [(String, Node)]()
        while position < lines.count, lines[position].indent == indent, !lines[position].text.hasPrefix("- ") {
            let line = lines[position]
            guard let (key, rest) = splitKey(line.text) else { throw error(line.number, "expected `key: value`") }
            if entries.contains(where: { $0.0 == key }) { throw error(line.number, "\(key) appears twice") }
            position += 1
            if !rest.isEmpty {
                entries.append((key, try value(rest, line: line.number)))
            } else if position < lines.count,
                lines[position].indent > indent
                    || (lines[position].indent == indent && lines[position].text.hasPrefix("- "))
            {
                entries.append((key, try block(&lines, &position, indent: lines[position].indent)))
            } else {
                entries.append((key, .scalar("null", quoted: false)))
            }
        }
        if position < lines.count, lines[position].indent > indent { throw error(lines[position].number, "unexpected indentation") }
        return .mapping(entries)
    }

    /// `key: rest` with the key unquoted; nil when the line is not a mapping entry.
    private static func splitKey(_ text: String) -> (String, String)? {
        var quote: Character?
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == ":" {
                let next = text.index(after: index)
                if next == text.endIndex || text[next] == " " {
                    let key = unquote(String(text[..<index]).trimmed())
                    return (key, String(text[next...]).trimmed())
                }
            }
            index = text.index(after: index)
        }
        return nil
    }

    private static func value(_ text: String, line: Int) throws -> Node {
        if text.hasPrefix("[") {
            guard text.hasSuffix("]") else { throw error(line, "a flow list must end on its line with ]") }
            return .sequence(try splitFlow(String(text.dropFirst().dropLast()), line: line).map { try scalar($0, line: line) })
        }
        if text.hasPrefix("{") {
            guard text.hasSuffix("}") else { throw error(line, "a flow mapping must end on its line with }") }
            return .mapping(
                try splitFlow(String(text.dropFirst().dropLast()), line: line).map { item in
                    guard let (key, rest) = splitKey(item) else { throw error(line, "expected `key: value` in { }") }
                    return (key, try scalar(rest, line: line))
                })
        }
        if let first = text.first, "&*!|>%@`".contains(first) { throw error(line, "this YAML feature (\(first)) is not supported here") }
        return try scalar(text, line: line)
    }

    private static func scalar(_ text: String, line: Int) throws -> Node {
        if text.hasPrefix("\"") || text.hasPrefix("'") {
            guard text.count >= 2, text.last == text.first else { throw error(line, "unterminated quote") }
            return .scalar(unquote(text), quoted: true)
        }
        return .scalar(text, quoted: false)
    }

    private static func unquote(_ text: String) -> String {
        guard text.count >= 2, let first = text.first, first == text.last, first == "\"" || first == "'" else { return text }
        let inner = String(text.dropFirst().dropLast())
        if first == "'" { return inner.replacingAll("''", with: "'") }
        var result = ""
        var escaped = false
        for character in inner {
            if escaped {
                switch character {
                case "n": result.append("\n")
                case "t": result.append("\t")
                default: result.append(character)
                }
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                result.append(character)
            }
        }
        return result
    }

    private static func splitFlow(_ text: String, line: Int) throws -> [String] {
        var items = [String]()
        var current = ""
        var quote: Character?
        for character in text {
            if let open = quote {
                current.append(character)
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
                current.append(character)
            } else if character == "," {
                items.append(current.trimmed())
                current = ""
            } else if character == "[" || character == "{" {
                throw error(line, "nested flow collections are not supported here")
            } else {
                current.append(character)
            }
        }
        if quote != nil { throw error(line, "unterminated quote") }
        let last = current.trimmed()
        if !last.isEmpty { items.append(last) }
        return items
    }

    private static func stripComment(_ line: String, line number: Int) throws -> String {
        var quote: Character?
        var previous: Character = " "
        for (offset, character) in line.enumerated() {
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "#" && (previous == " " || offset == 0) {
                return String(line.prefix(offset))
            }
            previous = character
        }
        return line
    }

    private static func render(_ node: Node) -> String {
        switch node {
        case .scalar(let text, let quoted):
            if !quoted {
                if text == "true" || text == "false" { return text }
                if text == "null" || text == "~" { return "null" }
                if isJSONNumber(text) { return text }
            }
            return JSONText.quoted(text)
        case .sequence(let items):
            return "[" + items.map(render).joined(separator: ",") + "]"
        case .mapping(let entries):
            return "{" + entries.map { JSONText.quoted($0.0) + ":" + render($0.1) }.joined(separator: ",") + "}"
        }
    }

    /// Whether a plain scalar is a number JSON can carry and `Double` can hold: JSON's grammar
    /// (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`) and finite. Anything else (`.nan`,
    /// `.inf`, `1e400`, `0x10`) stays a string, which a numeric key then refuses by name.
    public static func isJSONNumber(_ text: String) -> Bool {
        var characters = Substring(text)
        func digits() -> Int {
            let count = characters.prefix { $0 >= "0" && $0 <= "9" && $0.isASCII }.count
            characters = characters.dropFirst(count)
            return count
        }
        if characters.first == "-" { characters = characters.dropFirst() }
        let leading = characters.first
        let whole = digits()
        guard whole > 0, leading != "0" || whole == 1 else { return false }
        if characters.first == "." {
            characters = characters.dropFirst()
            guard digits() > 0 else { return false }
        }
        if characters.first == "e" || characters.first == "E" {
            characters = characters.dropFirst()
            if characters.first == "+" || characters.first == "-" { characters = characters.dropFirst() }
            guard digits() > 0 else { return false }
        }
        return characters.isEmpty && (Double(text)?.isFinite ?? false)
    }

    private static func error(_ line: Int, _ message: String) -> ConfigurationError {
        ConfigurationError(message: "line \(line): \(message)")
    }
}
