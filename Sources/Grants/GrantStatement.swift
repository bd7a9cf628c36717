/// One statement of a plan, for one account. `sql` may hold a password hash; `redacted` is the
/// same statement with every hash written `'<redacted>'`: the only form ever printed,
/// journaled or logged.
public struct GrantStatement: Codable, Sendable, Equatable, CustomStringConvertible {
    /// `AccountKey.description` of the account it changes.
    public var account: String
    public var sql: String
    public var redacted: String

    public init(account: String, sql: String, redacted: String) {
        self.account = account
        self.sql = sql
        self.redacted = redacted
    }

    public var description: String { redacted }
}

/// Builds a statement's text and its redacted twin together.
struct StatementText {
    private(set) var sql = ""
    private(set) var redacted = ""

    init(_ text: String) { append(text) }

    mutating func append(_ text: String) {
        sql += text
        redacted += text
    }

    /// A secret string literal.
    mutating func appendSecret(_ literal: String) {
        sql += literal
        redacted += "'<redacted>'"
    }

    func statement(for key: AccountKey) -> GrantStatement {
        GrantStatement(account: key.description, sql: sql, redacted: redacted)
    }
}
