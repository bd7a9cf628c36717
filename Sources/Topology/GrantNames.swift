/// The canonical spelling of what grants name: objects (`*.*`, `` `db`.* ``, `` `db`.`t` ``,
/// `` PROCEDURE `db`.`p` ``) and privileges (`SELECT`, `REPLICATION SLAVE`, `SELECT (c1, c2)`),
/// as `SHOW GRANTS` prints them, so that desired and observed grants compare as text.
public enum GrantNames {
    /// The privileges MariaDB 10.11 knows, at any level.
    public static let privileges: Set<String> = [
        "ALL PRIVILEGES", "ALTER", "ALTER ROUTINE", "BINLOG ADMIN", "BINLOG MONITOR", "BINLOG REPLAY", "CONNECTION ADMIN", "CREATE",
        "CREATE ROUTINE", "CREATE TABLESPACE", "CREATE TEMPORARY TABLES", "CREATE USER", "CREATE VIEW", "DELETE", "DELETE HISTORY", "DROP",
        "EVENT", "EXECUTE", "FEDERATED ADMIN", "FILE", "GRANT OPTION", "INDEX", "INSERT", "LOCK TABLES", "PROCESS", "READ_ONLY ADMIN",
        "REFERENCES", "RELOAD", "REPLICATION MASTER ADMIN", "REPLICATION SLAVE", "REPLICATION SLAVE ADMIN", "SELECT", "SET USER",
        "SHOW DATABASES", "SHOW VIEW", "SHUTDOWN", "SLAVE MONITOR", "SUPER", "TRIGGER", "UPDATE",
    ]

    /// The privileges each level takes (`ALL PRIVILEGES` at a level means all of them; `GRANT
    /// OPTION` goes with every level): a database (`db.*`), a table, a routine.
    public static let databasePrivileges: Set<String> = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "REFERENCES", "INDEX", "ALTER", "CREATE TEMPORARY TABLES", "LOCK TABLES",
        "EXECUTE", "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "EVENT", "TRIGGER", "DELETE HISTORY",
    ]
    public static let tablePrivileges: Set<String> = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "REFERENCES", "INDEX", "ALTER", "CREATE VIEW", "SHOW VIEW", "TRIGGER",
        "DELETE HISTORY",
    ]
    public static let routinePrivileges: Set<String> = ["EXECUTE", "ALTER ROUTINE"]

    /// Why `privilege` (canonical) cannot be granted on `object` (canonical), or nil: a global
    /// privilege on a database, a column list anywhere but on a table.
    public static func levelProblem(_ privilege: String, on object: String) -> String? {
        if privilege == "ALL PRIVILEGES" || privilege == "GRANT OPTION" || object == "*.*" {
            return privilege.contains("(") && object == "*.*" ? "columns are granted on a table, not on *.*" : nil
        }
        let base = privilege.prefix { $0 != "(" }.trimmingSpaces
        let routine = ["PROCEDURE ", "FUNCTION ", "PACKAGE "].contains(where: object.hasPrefix)
        let database = !routine && object.hasSuffix(".*")
        if privilege.contains("(") && (routine || database) { return "columns are granted on a table" }
        let allowed = routine ? routinePrivileges : database ? databasePrivileges : tablePrivileges
        return allowed.contains(base) ? nil : "\(base) is not a privilege of a \(routine ? "routine" : database ? "database" : "table") (only of *.*)"
    }

    /// Privileges that may name columns: `SELECT (a, b)`.
    public static let columnPrivileges: Set<String> = ["SELECT", "INSERT", "UPDATE", "REFERENCES"]

    /// Other spellings MariaDB accepts, mapped to the one `SHOW GRANTS` prints.
    static let aliases: [String: String] = [
        "ALL": "ALL PRIVILEGES", "REPLICATION CLIENT": "BINLOG MONITOR", "READ ONLY ADMIN": "READ_ONLY ADMIN",
    ]

    /// A privilege in canonical form (upper case, single spaces, columns sorted, upper case
    /// and without quotes: MariaDB's column names are case-insensitive, and `SHOW GRANTS`
    /// prints them as the `GRANT` spelled them), or nil when it is not one.
    public static func privilege(_ text: String) -> String? {
        let trimmed = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        if let open = trimmed.firstIndex(of: "("), trimmed.hasSuffix(")") {
            let base = trimmed[..<open].trimmingSpaces.uppercased()
            guard columnPrivileges.contains(base) else { return nil }
            let inner = trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)]
            let columns = inner.split(separator: ",").map { $0.trimmingSpaces.unquoted("`").uppercased() }
            guard !columns.isEmpty, columns.allSatisfy({ !$0.isEmpty }) else { return nil }
            return "\(base) (\(Array(Set(columns)).sorted().joined(separator: ", ")))"
        }
        let upper = trimmed.uppercased()
        let name = aliases[upper] ?? upper
        return privileges.contains(name) ? name : nil
    }

    /// An object in canonical form, or nil when it is not one. `db.*`, `` `db`.* ``, `db.t`,
    /// `PROCEDURE db.p` and `FUNCTION db.f` are accepted; the result is backquoted as `SHOW
    /// GRANTS` prints it.
    public static func object(_ text: String) -> String? {
        var rest = Substring(text.trimmingSpaces)
        var prefix = ""
        for kind in ["PROCEDURE ", "FUNCTION ", "PACKAGE BODY ", "PACKAGE "] where rest.uppercased().hasPrefix(kind) {
            prefix = kind
            rest = rest.dropFirst(kind.count).trimmingSpaces[...]
            break
        }
        if rest == "*.*" { return prefix.isEmpty ? "*.*" : nil }
        guard let (database, afterDatabase) = identifier(rest), afterDatabase.first == "." else { return nil }
        let tail = afterDatabase.dropFirst()
        if tail == "*" { return prefix.isEmpty ? "\(quoted(database)).*" : nil }
        guard let (name, end) = identifier(tail), end.isEmpty else { return nil }
        return "\(prefix)\(quoted(database)).\(quoted(name))"
    }

    /// A role or user name: 1-128 characters, no NUL, quote, backquote or `/` (it is an etcd key's last part).
    public static func isAccountName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 128
            && !name.contains { $0 == "\0" || $0 == "'" || $0 == "`" || $0 == "\"" || $0 == "/" || $0.isNewline }
    }

    /// Names never managed: MariaDB's own accounts, and Marina's (`marina_agent`,
    /// `marina_controller`, `marina_fence`, `marina_settings`, any `marina_…`).
    public static func isReserved(_ name: String) -> Bool {
        ["root", "mariadb.sys", "mysql", "public", "none"].contains(name.lowercased()) || name.hasPrefix("marina_")
    }

    /// A host pattern: 1-255 characters, no NUL, quote or space.
    public static func isHostPattern(_ host: String) -> Bool {
        !host.isEmpty && host.count <= 255 && !host.contains { $0 == "\0" || $0 == "'" || $0 == "`" || $0 == "\"" || $0.isWhitespace }
    }

    /// A system variable name: lowercase letters, digits and `_`.
    public static func isVariableName(_ name: String) -> Bool {
        guard let first = name.first, first >= "a" && first <= "z", name.count <= 64 else { return false }
        return name.allSatisfy { ($0 >= "a" && $0 <= "z") || $0.isASCIIDigit || $0 == "_" }
    }

    /// A name in backquotes, backquotes doubled: how `SHOW GRANTS` prints a database, table or routine.
    public static func quoted(_ name: String) -> String { "`" + name.replacingOccurrences(of: "`", with: "``") + "`" }

    /// One identifier at the start of `text` (backquoted or bare), and what follows it.
    private static func identifier(_ text: Substring) -> (String, Substring)? {
        if text.first == "`" {
            var name = ""
            var index = text.index(after: text.startIndex)
            while index < text.endIndex {
                if text[index] == "`" {
                    let next = text.index(after: index)
                    if next < text.endIndex, text[next] == "`" {
                        name.append("`")
                        index = text.index(after: next)
                        continue
                    }
                    return name.isEmpty ? nil : (name, text[next...])
                }
                name.append(text[index])
                index = text.index(after: index)
            }
            return nil
        }
        let name = text.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "$" || $0 == "%" || $0 == "-" }
        return name.isEmpty ? nil : (String(name), text.dropFirst(name.count))
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }

    func unquoted(_ quote: Character) -> String {
        guard count >= 2, first == quote, last == quote else { return String(self) }
        return String(dropFirst().dropLast())
    }
}
