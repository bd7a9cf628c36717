import SQLText
import Topology

/// One MariaDB account (`'user'@'host'`) or role (host `""`): how plans, differences and
/// errors name it.
public struct AccountKey: Hashable, Codable, Sendable, Comparable, CustomStringConvertible {
    public var user: String
    /// The host pattern; `""` for a role (MariaDB stores a user's empty host as `%`).
    public var host: String

    public init(user: String, host: String) {
        self.user = user
        self.host = host
    }

    public var isRole: Bool { host.isEmpty }

    /// `'user'@'host'`, or the role's name. Never a secret.
    public var description: String { isRole ? user : "'\(user)'@'\(host)'" }

    public static func < (lhs: AccountKey, rhs: AccountKey) -> Bool {
        (lhs.user, lhs.host) < (rhs.user, rhs.host)
    }

    /// The account as SQL names it: `` `user`@`host` `` or `` `role` ``.
    var sql: String { isRole ? SQLName.identifier(user) : "\(SQLName.identifier(user))@\(SQLName.identifier(host))" }
}

/// One account or role as read from a server, or as the desired state means it on one
/// instance. Every list is sorted; privileges are in `GrantNames`' canonical forms, with
/// `ALL PRIVILEGES` written whenever an object's level is granted in full (as `SHOW GRANTS`
/// prints it), `GRANT OPTION` included and `USAGE` dropped.
///
/// `authentication` is a secret (a password hash): never print it. `description` leaves it out.
public struct AccountState: Codable, Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var host: String
    public var isRole: Bool
    /// `mysql_native_password`, `ed25519`, `unix_socket`, another plugin's name, or several
    /// joined by ` OR `; nil when the account has no password (and for a role).
    public var plugin: String?
    /// The hash or authentication string as `SHOW CREATE USER` prints it (several joined by
    /// ` OR `); nil when there is none.
    public var authentication: String?
    public var tls: TLSRequirement
    public var limits: ResourceLimits
    /// Canonical object → sorted canonical privileges.
    public var privileges: [String: [String]]
    /// Roles granted to it, sorted.
    public var roles: [String]
    public var defaultRole: String?

    public init(
        user: String, host: String, isRole: Bool = false, plugin: String? = nil, authentication: String? = nil, tls: TLSRequirement = .none,
        limits: ResourceLimits = ResourceLimits(), privileges: [String: [String]] = [:], roles: [String] = [], defaultRole: String? = nil
    ) {
        self.user = user
        self.host = host
        self.isRole = isRole
        self.plugin = plugin
        self.authentication = authentication
        self.tls = tls
        self.limits = limits
        self.privileges = privileges
        self.roles = roles
        self.defaultRole = defaultRole
    }

    public var key: AccountKey { AccountKey(user: user, host: isRole ? "" : host) }

    /// The account without its authentication string.
    public var description: String {
        var parts = [key.description, isRole ? "role" : "plugin \(plugin ?? "none")"]
        if tls != .none { parts.append("REQUIRE \(tls.rawValue)") }
        if !limits.isUnlimited { parts.append(GrantText.limits(limits)) }
        for object in privileges.keys.sorted() { parts.append(GrantText.privileges(privileges[object] ?? [], on: object)) }
        if !roles.isEmpty { parts.append("roles \(roles.joined(separator: ", "))") }
        if let defaultRole { parts.append("default role \(defaultRole)") }
        return parts.joined(separator: "; ")
    }
}

/// Names in SQL text.
enum SQLName {
    /// A user, host, role, column or plugin name in backquotes. Account names are never empty
    /// nor hold a NUL (validation refuses them); were one to, it is written as a string literal,
    /// which the server then refuses or reads as the same name.
    static func identifier(_ name: String) -> String {
        (try? SQL.quoteIdentifier(name)) ?? SQL.quote(name)
    }
}
