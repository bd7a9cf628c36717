import ConfigurationFiles
import MariaDBClient
import Observation

/// Whether the agent's account may run the heartbeat writer on an instance.
///
/// The writer is safe only because `SET GLOBAL read_only = ON` stops it on an old primary. An
/// account holding a privilege that writes through `read_only` would go on writing there, so
/// such an account is refused: `READ_ONLY ADMIN` (MariaDB 10.5.2 and later), `SUPER` (which
/// includes it before 10.11, and is refused on every version to be safe), and `ALL PRIVILEGES`,
/// which includes both. Only global grants (`ON *.*`) can hold them.
///
/// The check reads `SHOW GRANTS` (the account's own grants, those of `PUBLIC`, and those of the
/// role enabled at login with the roles under it), then enables each role granted to the
/// account (`SET ROLE`, on the check's own connection) and reads `SHOW GRANTS` again, which
/// lists that role's grants and those of the roles granted to it. A role whose grants cannot
/// be read is reported in `unreadableRoles` (the caller logs a warning) and not held against
/// the account.
public enum WriterPrivileges {
    /// The global privileges that write through `read_only`, normalised by `normalise(_:)`.
    static let writingThroughReadOnly: Set<String> = ["ALL", "ALL PRIVILEGES", "SUPER", "READ ONLY ADMIN"]

    /// A global grant that writes through `read_only`.
    public struct Finding: Equatable, Hashable, Sendable, CustomStringConvertible {
        /// As `SHOW GRANTS` spells it: `READ_ONLY ADMIN`, `ALL PRIVILEGES`.
        public var privilege: String
        /// `` `marina`@`localhost` ``, `` `role` `` or `PUBLIC`, as `SHOW GRANTS` writes it.
        public var grantee: String
        /// Whether the grantee is an account (`user@host`) rather than a role or `PUBLIC`.
        public var granteeIsAccount: Bool

        public var description: String {
            if granteeIsAccount { return "\(privilege) ON *.*" }
            return "\(privilege) ON *.* (granted to \(grantee.uppercased() == "PUBLIC" ? "PUBLIC" : "role " + grantee))"
        }
    }

    /// What the check read on one instance.
    public struct Report: Sendable, Equatable {
        /// `CURRENT_USER()`: the account the server matched, `marina_agent@localhost`.
        public var account: String
        /// The grants that write through `read_only`; empty when the writer may run.
        public var findings: [Finding]
        /// Roles granted to the account whose grants could not be read, with the reason.
        public var unreadableRoles: [String: String]
    }

    /// Connects with `configuration` (the agent's own account and endpoint), reads the grants,
    /// and closes. Throws when the instance cannot be reached or `SHOW GRANTS` fails.
    public static func check(_ configuration: MariaDBConfiguration) async throws -> Report {
        let client = try await MariaDBClient.connect(configuration)
        do {
            let report = try await check(client)
            await client.close()
            return report
        } catch {
            await client.close()
            throw error
        }
    }

    static func check(_ client: MariaDBClient) async throws -> Report {
        let account = try await client.query("SELECT CURRENT_USER() AS account").first?["account"] ?? client.configuration.user
        let lines = try await grantLines(client)
        var found = findings(in: lines)
        var unreadable = [String: String]()
        for role in grantedRoles(in: lines) {
            do {
                try await client.execute("SET ROLE " + SQL.quoteIdentifier(role))
                found += findings(in: try await grantLines(client))
            } catch let error as MariaDBError where error.isConnectionLost || error.isTimeout {
                throw error
            } catch {
                unreadable[role] = "\(error)"
            }
        }
        var seen = Set<Finding>()
        return Report(account: account, findings: found.filter { seen.insert($0).inserted }, unreadableRoles: unreadable)
    }

    private static func grantLines(_ client: MariaDBClient) async throws -> [String] {
        try await client.query("SHOW GRANTS").rows.compactMap { $0.values.isEmpty ? nil : $0[0] }
    }

    // MARK: Reading SHOW GRANTS (pure)

    /// The grants among `lines` (of `SHOW GRANTS`) that write through `read_only`: a privilege of
    /// `writingThroughReadOnly` granted `ON *.*`, to whichever grantee the line names (the
    /// account, `PUBLIC`, or an enabled role).
    public static func findings(in lines: [String]) -> [Finding] {
        lines.compactMap(GrantLine.init(parsing:)).flatMap { grant -> [Finding] in
            guard case .privileges(let privileges, let object) = grant.kind, object.filter({ $0 != " " }) == "*.*" else { return [] }
            return privileges.filter { writingThroughReadOnly.contains(normalise($0)) }
                .map { Finding(privilege: $0, grantee: grant.grantee, granteeIsAccount: grant.granteeIsAccount) }
        }
    }

    /// The roles granted to an account among `lines`: those the account may enable with
    /// `SET ROLE`. Roles granted to a role or to `PUBLIC` are not listed: `SHOW GRANTS` shows
    /// their grants whenever it shows those of the role or of `PUBLIC`.
    public static func grantedRoles(in lines: [String]) -> [String] {
        var roles = [String]()
        for grant in lines.compactMap(GrantLine.init(parsing:)) where grant.granteeIsAccount {
            if case .roles(let names) = grant.kind { roles += names.filter { !roles.contains($0) } }
        }
        return roles
    }

    /// `read_only admin` → `READ ONLY ADMIN`: upper case, underscores as spaces, single spaces.
    static func normalise(_ privilege: String) -> String {
        privilege.uppercased().replacingAll("_", with: " ").split(separator: " ").joined(separator: " ")
    }
}

/// One `GRANT` line of `SHOW GRANTS`, as far as the heartbeat writer cares.
struct GrantLine: Equatable, Sendable {
    enum Kind: Equatable, Sendable {
        /// `GRANT <privileges> ON <object> TO <grantee>`: each privilege upper-cased, with its
        /// column list dropped (`SELECT (a, b)` → `SELECT`); the object as written (`*.*`,
        /// `` `heartbeat`.* ``, `` PROCEDURE `db`.`p` ``).
        case privileges([String], object: String)
        /// `GRANT <role>[, <role>] TO <grantee>`: the role names, unquoted.
        case roles([String])
    }

    var kind: Kind
    /// `` `user`@`host` ``, `` `role` `` or `PUBLIC`, as written.
    var grantee: String
    /// Whether the grantee is an account (`user@host`).
    var granteeIsAccount: Bool

    /// Nil for anything that is not a well-formed `GRANT ... TO ...` line (`SET DEFAULT ROLE`,
    /// an unterminated quote).
    init?(parsing line: String) {
        guard let tokens = GrantLine.tokens(line), let first = tokens.first, first.isWord("GRANT"),
            let to = tokens.firstIndex(where: { $0.isWord("TO") }), to > 1, to + 1 < tokens.count
        else { return nil }
        let before = tokens[1..<to]
        if let on = before.firstIndex(where: { $0.isWord("ON") }) {
            guard on > 1, on + 1 < to else { return nil }
            var privileges = [String]()
            var words = [String]()
            for token in tokens[1..<on] {
                switch token.kind {
                case .comma:
                    if !words.isEmpty { privileges.append(words.joined(separator: " ")) }
                    words = []
                case .word: words.append(token.text.uppercased())
                case .quoted, .group, .at: continue
                }
            }
            if !words.isEmpty { privileges.append(words.joined(separator: " ")) }
            let start = tokens[on + 1].range.lowerBound
            let end = tokens[to - 1].range.upperBound
            kind = .privileges(privileges, object: String(line[start..<end]))
        } else {
            let names = before.filter { $0.kind == .word || $0.kind == .quoted }.map(\.text)
            guard !names.isEmpty, before.allSatisfy({ $0.kind != .group && $0.kind != .at }) else { return nil }
            kind = .roles(names)
        }
        let grantee = tokens[to + 1]
        if to + 3 < tokens.count, tokens[to + 2].kind == .at {
            self.grantee = String(line[grantee.range.lowerBound..<tokens[to + 3].range.upperBound])
            granteeIsAccount = true
        } else {
            self.grantee = String(line[grantee.range])
            granteeIsAccount = false
        }
    }

    struct Token {
        enum Kind: Equatable { case word, quoted, group, comma, at }
        var kind: Kind
        /// A word as written, a quoted name without its quotes.
        var text: String
        var range: Range<String.Index>

        func isWord(_ keyword: String) -> Bool { kind == .word && text.uppercased() == keyword }
    }

    /// Words, quoted names (`` `a``b` ``, `'x'`, `"x"`), parenthesised groups (column lists),
    /// commas and `@`. Nil on an unterminated quote or parenthesis.
    static func tokens(_ line: String) -> [Token]? {
        var tokens = [Token]()
        var index = line.startIndex
        func isSpace(_ c: Character) -> Bool { c == " " || c == "\t" || c == "\n" || c == "\r" }
        while index < line.endIndex {
            let character = line[index]
            let start = index
            if isSpace(character) {
                index = line.index(after: index)
            } else if character == "," || character == "@" {
                index = line.index(after: index)
                tokens.append(Token(kind: character == "," ? .comma : .at, text: String(character), range: start..<index))
            } else if character == "`" || character == "'" || character == "\"" {
                guard let (text, end) = quoted(line, from: index) else { return nil }
                index = end
                tokens.append(Token(kind: .quoted, text: text, range: start..<end))
            } else if character == "(" {
                var depth = 0
                while true {
                    guard index < line.endIndex else { return nil }
                    let c = line[index]
                    if c == "`" || c == "'" || c == "\"" {
                        guard let (_, end) = quoted(line, from: index) else { return nil }
                        index = end
                        continue
                    }
                    if c == "(" { depth += 1 } else if c == ")" { depth -= 1 }
                    index = line.index(after: index)
                    if depth == 0 { break }
                }
                tokens.append(Token(kind: .group, text: String(line[start..<index]), range: start..<index))
            } else {
                while index < line.endIndex, !isSpace(line[index]), !",@`'\"()".contains(line[index]) {
                    index = line.index(after: index)
                }
                if index == start { index = line.index(after: index) }  // a stray `)`
                tokens.append(Token(kind: .word, text: String(line[start..<index]), range: start..<index))
            }
        }
        return tokens
    }

    /// The text of the quoted name at `start` (a doubled quote stands for one; in `'` and `"`
    /// strings a backslash escapes the next character) and the index after its closing quote.
    private static func quoted(_ line: String, from start: String.Index) -> (String, String.Index)? {
        let quote = line[start]
        var text = ""
        var index = line.index(after: start)
        while index < line.endIndex {
            let character = line[index]
            let next = line.index(after: index)
            if character == "\\" && quote != "`" && next < line.endIndex {
                text.append(line[next])
                index = line.index(after: next)
            } else if character == quote {
                if next < line.endIndex && line[next] == quote {
                    text.append(quote)
                    index = line.index(after: next)
                } else {
                    return (text, next)
                }
            } else {
                text.append(character)
                index = next
            }
        }
        return nil
    }
}
