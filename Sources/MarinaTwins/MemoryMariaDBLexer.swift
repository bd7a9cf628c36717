/// The twin's SQL reading: tokens and a cursor over them, enough for the statements Marina
/// sends, parsed by shape (keywords, lists, literals) rather than by exact text, so that a
/// reformatted statement still reads the same.
enum SQLToken: Equatable, Sendable {
    /// An identifier or keyword as written.
    case word(String)
    /// A backtick-quoted identifier, unquoted.
    case quotedName(String)
    /// A string literal, decoded (`'…'`, `"…"`, `X'…'`, with any `_charset` introducer dropped).
    case string(String)
    case number(String)
    /// `@@name`, `@@GLOBAL.name`, `@@SESSION.name`, lowercased, the scope kept (`global.name`).
    case variable(String)
    case symbol(String)

    /// Whether this is the keyword `keyword` (case-insensitive).
    func isWord(_ keyword: String) -> Bool {
        if case .word(let word) = self { return word.uppercased() == keyword }
        return false
    }

    /// An identifier's name, quoted or not.
    var name: String? {
        switch self {
        case .word(let word): word
        case .quotedName(let name): name
        default: nil
        }
    }
}

/// A statement the twin cannot read.
struct SQLSyntaxError: Error {
    var detail: String
}

enum SQLLexer {
    /// The statement's tokens, without a trailing `;`.
    static func tokens(_ sql: String) throws -> [SQLToken] {
        let characters = Array(sql)
        var tokens = [SQLToken]()
        var index = 0
        func peek(_ offset: Int = 0) -> Character? { index + offset < characters.count ? characters[index + offset] : nil }

        while let character = peek() {
            if character.isWhitespace {
                index += 1
            } else if character == "-", peek(1) == "-" {
                while let next = peek(), next != "\n" {
                    index += 1
                    _ = next
                }
            } else if character == "'" || character == "\"" {
                index += 1
                tokens.append(.string(try quoted(characters, &index, closing: character)))
            } else if character == "`" {
                index += 1
                tokens.append(.quotedName(try quoted(characters, &index, closing: "`", escapes: false)))
            } else if character == "X" || character == "x", peek(1) == "'" {
                index += 2
                tokens.append(.string(try hexadecimal(try quoted(characters, &index, closing: "'", escapes: false))))
            } else if character == "@", peek(1) == "@" {
                index += 2
                var name = word(characters, &index).lowercased()
                if ["global", "session", "local"].contains(name), peek() == "." {
                    index += 1
                    name += "." + word(characters, &index).lowercased()
                }
                guard !name.isEmpty, !name.hasSuffix(".") else { throw SQLSyntaxError(detail: "@@ without a name") }
                tokens.append(.variable(name))
            } else if character.isNumber {
                var text = ""
                while let next = peek(), next.isNumber || next == "." {
                    text.append(next)
                    index += 1
                }
                tokens.append(.number(text))
            } else if character.isLetter || character == "_" || character == "$" {
                let text = word(characters, &index)
                // A character set introducer before a literal (`_utf8mb4 X'…'`) changes nothing here.
                if text.hasPrefix("_"), let next = tokensAhead(characters, index), next == "'" || next == "X" || next == "x" { continue }
                tokens.append(.word(text))
            } else {
                let pair = String(characters[index..<min(index + 2, characters.count)])
                if ["<>", "!=", "<=", ">="].contains(pair) {
                    tokens.append(.symbol(pair))
                    index += 2
                } else {
                    tokens.append(.symbol(String(character)))
                    index += 1
                }
            }
        }
        while tokens.last == .symbol(";") { tokens.removeLast() }
        return tokens
    }

    private static func word(_ characters: [Character], _ index: inout Int) -> String {
        var text = ""
        while index < characters.count,
            characters[index].isLetter || characters[index].isNumber || characters[index] == "_" || characters[index] == "$"
        {
            text.append(characters[index])
            index += 1
        }
        return text
    }

    /// The first non-space character from `index`.
    private static func tokensAhead(_ characters: [Character], _ index: Int) -> Character? {
        var position = index
        while position < characters.count, characters[position].isWhitespace { position += 1 }
        return position < characters.count ? characters[position] : nil
    }

    private static func quoted(_ characters: [Character], _ index: inout Int, closing: Character, escapes: Bool = true) throws -> String {
        var text = ""
        while index < characters.count {
            let character = characters[index]
            index += 1
            if escapes, character == "\\", index < characters.count {
                let escaped = characters[index]
                index += 1
                switch escaped {
                case "n": text.append("\n")
                case "t": text.append("\t")
                case "r": text.append("\r")
                case "0": text.append("\0")
                default: text.append(escaped)
                }
            } else if character == closing {
                if index < characters.count, characters[index] == closing {
                    text.append(closing)
                    index += 1
                } else {
                    return text
                }
            } else {
                text.append(character)
            }
        }
        throw SQLSyntaxError(detail: "unterminated \(closing) quote")
    }

    private static func hexadecimal(_ digits: String) throws -> String {
        let values = digits.compactMap(\.hexDigitValue)
        guard values.count == digits.count, values.count % 2 == 0 else { throw SQLSyntaxError(detail: "bad hexadecimal literal") }
        let bytes = stride(from: 0, to: values.count, by: 2).map { UInt8(values[$0] * 16 + values[$0 + 1]) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Reads tokens left to right.
struct SQLCursor {
    let tokens: [SQLToken]
    var position = 0

    init(_ tokens: [SQLToken]) { self.tokens = tokens }

    var atEnd: Bool { position >= tokens.count }
    var peek: SQLToken? { atEnd ? nil : tokens[position] }
    var rest: ArraySlice<SQLToken> { tokens[min(position, tokens.count)...] }

    mutating func next() -> SQLToken? {
        defer { position += 1 }
        return peek
    }

    /// Consumes the keywords in order if they all come next.
    mutating func accept(_ keywords: String...) -> Bool {
        for (offset, keyword) in keywords.enumerated() {
            guard position + offset < tokens.count, tokens[position + offset].isWord(keyword) else { return false }
        }
        position += keywords.count
        return true
    }

    mutating func accept(symbol: String) -> Bool {
        guard peek == .symbol(symbol) else { return false }
        position += 1
        return true
    }

    mutating func expect(_ keywords: String...) throws {
        for keyword in keywords where !accept(keyword) { throw SQLSyntaxError(detail: "expected \(keyword)") }
    }

    mutating func expect(symbol: String) throws {
        guard accept(symbol: symbol) else { throw SQLSyntaxError(detail: "expected \(symbol)") }
    }

    mutating func expectEnd() throws {
        guard atEnd else { throw SQLSyntaxError(detail: "unexpected text after the statement") }
    }

    /// A literal value: string, (signed) number, or a bare word (`ON`, `slave_pos`).
    mutating func literal() throws -> String {
        let negative = accept(symbol: "-")
        switch next() {
        case .string(let text): return text
        case .number(let text): return negative ? "-" + text : text
        case .word(let text) where !negative: return text
        default: throw SQLSyntaxError(detail: "expected a value")
        }
    }

    /// A possibly qualified name (`db.table`, `` `db`.`table` ``), parts joined by `.`.
    mutating func qualifiedName() throws -> String {
        guard let first = next()?.name else { throw SQLSyntaxError(detail: "expected a name") }
        var parts = [first]
        while peek == .symbol("."), position + 1 < tokens.count, let part = tokens[position + 1].name {
            parts.append(part)
            position += 2
        }
        return parts.joined(separator: ".")
    }

    /// Splits tokens at top-level commas (outside parentheses).
    static func split(_ tokens: ArraySlice<SQLToken>, separator: SQLToken = .symbol(",")) -> [ArraySlice<SQLToken>] {
        var parts = [ArraySlice<SQLToken>]()
        var depth = 0
        var start = tokens.startIndex
        for index in tokens.indices {
            switch tokens[index] {
            case .symbol("("): depth += 1
            case .symbol(")"): depth -= 1
            case separator where depth == 0:
                parts.append(tokens[start..<index])
                start = index + 1
            default: break
            }
        }
        parts.append(tokens[start..<tokens.endIndex])
        return parts
    }

    /// Splits at a top-level keyword (`AND`).
    static func split(_ tokens: ArraySlice<SQLToken>, keyword: String) -> [ArraySlice<SQLToken>] {
        var parts = [ArraySlice<SQLToken>]()
        var depth = 0
        var start = tokens.startIndex
        for index in tokens.indices {
            switch tokens[index] {
            case .symbol("("): depth += 1
            case .symbol(")"): depth -= 1
            case let token where depth == 0 && token.isWord(keyword):
                parts.append(tokens[start..<index])
                start = index + 1
            default: break
            }
        }
        parts.append(tokens[start..<tokens.endIndex])
        return parts
    }
}
