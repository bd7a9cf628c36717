/// The tokens of one line of `SHOW GRANTS` or `SHOW CREATE USER` output.
enum GrantToken: Equatable {
    /// A bare word (keyword, number), upper-cased.
    case word(String)
    /// A backquoted name, unquoted.
    case identifier(String)
    /// A `'…'` string, unquoted.
    case string(String)
    /// `(`, `)`, `,`, `@`, `.`, `*`, `=`.
    case symbol(Character)

    /// A name written either way (`` `r` `` or `'r'`).
    var name: String? {
        switch self {
        case .identifier(let name), .string(let name): return name
        case .word, .symbol: return nil
        }
    }

    func isWord(_ word: String) -> Bool { self == .word(word) }

    /// The token as text, a string shown as `'<redacted>'`: what an error may print.
    var redacted: String {
        switch self {
        case .word(let word): return word
        case .identifier(let name): return "`\(name)`"
        case .string: return "'<redacted>'"
        case .symbol(let symbol): return String(symbol)
        }
    }
}

enum GrantSyntax {
    /// Splits a line into tokens; nil when a quote is not closed or a character is unknown.
    static func tokens(_ line: String) -> [GrantToken]? {
        var tokens = [GrantToken]()
        let characters = Array(line)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character.isWhitespace {
                index += 1
            } else if character == "`" || character == "'" {
                guard let (text, next) = quoted(characters, from: index) else { return nil }
                tokens.append(character == "`" ? .identifier(text) : .string(text))
                index = next
            } else if "(),@.*=".contains(character) {
                tokens.append(.symbol(character))
                index += 1
            } else if character.isLetter || character.isNumber || character == "_" || character == "$" {
                var word = ""
                while index < characters.count,
                    characters[index].isLetter || characters[index].isNumber || characters[index] == "_" || characters[index] == "$"
                {
                    word.append(characters[index])
                    index += 1
                }
                tokens.append(.word(word.uppercased()))
            } else {
                return nil
            }
        }
        return tokens
    }

    /// A quoted name or string from `start` (its opening quote): the quote doubled stands for
    /// itself; in a string, a backslash escapes the next character.
    private static func quoted(_ characters: [Character], from start: Int) -> (String, Int)? {
        let quote = characters[start]
        var text = ""
        var index = start + 1
        while index < characters.count {
            let character = characters[index]
            if character == quote {
                if index + 1 < characters.count, characters[index + 1] == quote {
                    text.append(quote)
                    index += 2
                    continue
                }
                return (text, index + 1)
            }
            if quote == "'" && character == "\\" && index + 1 < characters.count {
                text.append(characters[index + 1])
                index += 2
                continue
            }
            text.append(character)
            index += 1
        }
        return nil
    }

    static func redacted(_ tokens: some Collection<GrantToken>) -> String {
        tokens.map(\.redacted).joined(separator: " ")
    }
}
