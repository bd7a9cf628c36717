import SQLText
import Topology

/// Reads accounts and roles off one server: the list from `mysql.global_priv`, then each with
/// `SHOW CREATE USER` and `SHOW GRANTS FOR` (which print its roles, `WITH ADMIN OPTION` and
/// default role from `mysql.roles_mapping` and the account itself).
///
/// The account running the queries needs `SELECT` on the `mysql` database (`SHOW GRANTS FOR`
/// another account requires it).
public enum AccountReader {
    /// Runs one SQL statement and gives its rows as column → value (nil for SQL NULL).
    public typealias Query = @Sendable (String) async throws -> [[String: String?]]

    /// Every account whose user (or role) name is in `names`, on all hosts.
    public static func read(names: Set<String>, query: Query) async throws -> [AccountKey: AccountState] {
        guard !names.isEmpty else { return [:] }
        // Every account is listed and filtered here: the names compare as bytes, as the
        // server's utf8mb3_bin column does, whatever the connection's character set.
        return try await read(where: "", accept: names.contains, query: query)
    }

    /// Every account whose user name matches a SQL `LIKE` pattern (for import).
    public static func read(matching pattern: String, query: Query) async throws -> [AccountKey: AccountState] {
        try await read(where: " WHERE User LIKE \(SQL.quote(pattern))", accept: { _ in true }, query: query)
    }

    /// The statement that lists accounts: user, host and whether it is a role.
    static let listing = "SELECT User AS user, Host AS host, JSON_VALUE(Priv, '$.is_role') AS is_role FROM mysql.global_priv"

    private static func read(
        where condition: String, accept: (String) -> Bool, query: Query
    ) async throws -> [AccountKey: AccountState] {
        var states = [AccountKey: AccountState]()
        for row in try await query(listing + condition) {
            guard let user = value(row, "user"), accept(user), let host = value(row, "host") else { continue }
            let isRole = ["1", "true"].contains(value(row, "is_role")?.lowercased() ?? "")
            if user.isEmpty { continue }  // anonymous accounts are never a managed name
            let key = AccountKey(user: user, host: isRole ? "" : host)
            if !isRole && host.isEmpty {
                throw GrantsError(account: "'\(user)'@''", message: "an account with an empty host is not supported")
            }
            let createUser = isRole ? nil : try await firstColumn(query("SHOW CREATE USER \(key.sql)")).first
            let grants = try await firstColumn(query("SHOW GRANTS FOR \(key.sql)"))
            states[key] = try state(key, createUser: createUser, grants: grants)
        }
        return states
    }

    private static func value(_ row: [String: String?], _ column: String) -> String? {
        if let value = row[column] { return value }
        return row.first { $0.key.lowercased() == column }?.value ?? nil
    }

    /// The single column of each row (`SHOW GRANTS` and `SHOW CREATE USER` give one).
    private static func firstColumn(_ rows: [[String: String?]]) -> [String] {
        rows.compactMap { row in row.values.first ?? nil }
    }
}
