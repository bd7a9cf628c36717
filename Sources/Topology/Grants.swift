/// One managed account of a section, as the operators want it on every instance of the
/// section: a user (one MariaDB account per host pattern, all alike) or a role.
///
/// Only names listed under a section's grants are managed: every account of a managed user
/// name (whatever its host) is Marina's to create, change or drop; every other account is
/// never read into a plan nor touched.
///
/// ```yaml
/// wikiuser:
///   hosts: ["10.64.%", "10.192.%"]
///   authentication: {plugin: mysql_native_password, hash: "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"}
///   privileges:
///     "`wiki%`.*": [DELETE, INSERT, SELECT, UPDATE]
///     "`heartbeat`.`heartbeat`": [SELECT]
///   roles: [reader]
///   default_role: reader
/// ```
public struct ManagedAccount: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case user, role
    }

    /// The user or role name (the etcd key's last part).
    public var name: String
    public var kind: Kind
    /// Host patterns (`10.64.%`, `localhost`); one MariaDB account each. Empty for a role.
    public var hosts: [String]
    /// How the account logs in; nil for a role, or a user that cannot log in with a password.
    public var authentication: Authentication?
    /// `REQUIRE NONE`, `SSL` or `X509`.
    public var tls: TLSRequirement
    public var limits: ResourceLimits
    /// Object (`*.*`, `` `db`.* ``, `` `db`.`t` ``, `` PROCEDURE `db`.`p` ``) → privileges, sorted;
    /// `GRANT OPTION` is one of them. `USAGE` alone is implied and never listed.
    public var privileges: [String: [String]]
    /// Roles granted to it, sorted.
    public var roles: [String]
    /// The role enabled at login (MariaDB keeps one at most).
    public var defaultRole: String?

    public init(
        name: String, kind: Kind = .user, hosts: [String] = [], authentication: Authentication? = nil, tls: TLSRequirement = .none,
        limits: ResourceLimits = ResourceLimits(), privileges: [String: [String]] = [:], roles: [String] = [], defaultRole: String? = nil
    ) {
        self.name = name
        self.kind = kind
        self.hosts = hosts
        self.authentication = authentication
        self.tls = tls
        self.limits = limits
        self.privileges = privileges
        self.roles = roles
        self.defaultRole = defaultRole
    }

    /// The same account with its lists sorted and duplicates removed, empty privilege lists
    /// dropped: the form stored and compared.
    public var canonical: ManagedAccount {
        var account = self
        account.hosts = Array(Set(hosts)).sorted()
        account.roles = Array(Set(roles)).sorted()
        account.privileges = privileges.compactMapValues { list in
            let set = Set(list.map { $0.uppercased() }).subtracting(["USAGE"])
            return set.isEmpty ? nil : set.sorted()
        }
        return account
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, kind, hosts, authentication, tls, limits, privileges, roles
        case defaultRole = "default_role"
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self, extra: ["schema"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decodeIfPresent(String.self, forKey: .name) ?? "",
            kind: try c.decodeIfPresent(Kind.self, forKey: .kind) ?? .user,
            hosts: try c.decodeIfPresent([String].self, forKey: .hosts) ?? [],
            authentication: try c.decodeIfPresent(Authentication.self, forKey: .authentication),
            tls: try c.decodeIfPresent(TLSRequirement.self, forKey: .tls) ?? .none,
            limits: try c.decodeIfPresent(ResourceLimits.self, forKey: .limits) ?? ResourceLimits(),
            privileges: try c.decodeIfPresent([String: [String]].self, forKey: .privileges) ?? [:],
            roles: try c.decodeIfPresent([String].self, forKey: .roles) ?? [],
            defaultRole: try c.decodeIfPresent(String.self, forKey: .defaultRole))
    }
}

/// How an account authenticates. Only a *hash* is ever stored: the CLI computes it from a
/// password read from a file or a prompt, and a plaintext password never reaches etcd.
public struct Authentication: Codable, Sendable, Equatable {
    public enum Plugin: String, Codable, Sendable, CaseIterable {
        case mysqlNativePassword = "mysql_native_password"
        case ed25519
        /// The operating system user of a local socket connection; no secret.
        case unixSocket = "unix_socket"
    }

    public var plugin: Plugin
    /// `*` and 40 uppercase hex digits for `mysql_native_password`; 43 base64 characters for
    /// `ed25519`; nil for `unix_socket`.
    public var hash: String?

    public init(plugin: Plugin, hash: String? = nil) {
        self.plugin = plugin
        self.hash = hash
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case plugin, hash
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(plugin: try c.decode(Plugin.self, forKey: .plugin), hash: try c.decodeIfPresent(String.self, forKey: .hash))
    }

    /// Why `hash` is not one the plugin accepts, or nil. The message never repeats the value.
    public var problem: String? {
        switch plugin {
        case .unixSocket:
            return hash == nil ? nil : "unix_socket takes no hash"
        case .mysqlNativePassword:
            guard let hash else { return "mysql_native_password needs a hash (marina grant set --password-file computes it)" }
            let digits = hash.dropFirst()
            let valid = hash.first == "*" && digits.count == 40 && digits.allSatisfy { $0.isHexDigit && !$0.isLowercase }
            return valid ? nil : "is not a mysql_native_password hash (\"*\" and 40 uppercase hex digits); a plaintext password is never accepted"
        case .ed25519:
            guard let hash else { return "ed25519 needs a hash (marina grant set --password-file computes it)" }
            let base64 = hash.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "/") }
            return hash.count == 43 && base64 ? nil : "is not an ed25519 hash (43 base64 characters); a plaintext password is never accepted"
        }
    }
}

public enum TLSRequirement: String, Codable, Sendable, CaseIterable {
    case none = "NONE"
    case ssl = "SSL"
    case x509 = "X509"
}

/// `WITH MAX_…` limits; 0 is unlimited.
public struct ResourceLimits: Codable, Sendable, Equatable {
    public var maxQueriesPerHour: Int
    public var maxUpdatesPerHour: Int
    public var maxConnectionsPerHour: Int
    public var maxUserConnections: Int

    public init(maxQueriesPerHour: Int = 0, maxUpdatesPerHour: Int = 0, maxConnectionsPerHour: Int = 0, maxUserConnections: Int = 0) {
        self.maxQueriesPerHour = maxQueriesPerHour
        self.maxUpdatesPerHour = maxUpdatesPerHour
        self.maxConnectionsPerHour = maxConnectionsPerHour
        self.maxUserConnections = maxUserConnections
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxQueriesPerHour = "max_queries_per_hour"
        case maxUpdatesPerHour = "max_updates_per_hour"
        case maxConnectionsPerHour = "max_connections_per_hour"
        case maxUserConnections = "max_user_connections"
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            maxQueriesPerHour: try c.decodeIfPresent(Int.self, forKey: .maxQueriesPerHour) ?? 0,
            maxUpdatesPerHour: try c.decodeIfPresent(Int.self, forKey: .maxUpdatesPerHour) ?? 0,
            maxConnectionsPerHour: try c.decodeIfPresent(Int.self, forKey: .maxConnectionsPerHour) ?? 0,
            maxUserConnections: try c.decodeIfPresent(Int.self, forKey: .maxUserConnections) ?? 0)
    }

    public var isUnlimited: Bool { self == ResourceLimits() }
}

/// Desired global system variables of a section: for every instance, and overrides for the
/// primary and for replicas. Values are the text `SET GLOBAL` takes (`2`, `0.5`, `ON`).
public struct ManagedVariables: Codable, Sendable, Equatable {
    public var all: [String: String]
    public var primary: [String: String]
    public var replica: [String: String]

    public init(all: [String: String] = [:], primary: [String: String] = [:], replica: [String: String] = [:]) {
        self.all = all
        self.primary = primary
        self.replica = replica
    }

    public var isEmpty: Bool { all.isEmpty && primary.isEmpty && replica.isEmpty }

    /// What an instance of the section should have: `all`, overridden by its role's values.
    public func values(isPrimary: Bool) -> [String: String] {
        all.merging(isPrimary ? primary : replica) { _, role in role }
    }

    /// Variables that follow an instance's role or identity: Marina sets them itself (or the
    /// server does), so they can never be desired values.
    public static let roleDerived: Set<String> = [
        "read_only", "event_scheduler", "rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled", "server_id", "gtid_slave_pos",
        "gtid_binlog_state", "gtid_domain_id", "sql_log_bin", "super_read_only",
    ]

    /// Startup options where a wrong value keeps a server from starting, or breaks replication
    /// or every host-based grant at the next restart: they stay in the server's own configuration.
    public static let startupOnly: Set<String> = [
        "port", "socket", "bind_address", "skip_networking", "skip_name_resolve", "datadir", "basedir", "tmpdir", "pid_file", "log_error",
        "log_bin", "log_bin_basename", "log_bin_index", "relay_log", "relay_log_basename", "relay_log_index", "relay_log_info_file",
        "log_slave_updates", "gtid_strict_mode", "gtid_pos_auto_engines", "lower_case_table_names", "innodb_page_size",
        "innodb_data_home_dir", "innodb_data_file_path", "innodb_log_group_home_dir", "init_file", "plugin_load", "plugin_load_add",
        "plugin_dir", "secure_file_priv", "character_sets_dir", "innodb_force_recovery", "innodb_read_only", "innodb_undo_directory",
        "innodb_undo_tablespaces", "innodb_temp_data_file_path", "skip_slave_start", "skip_grant_tables",
    ]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case all, primary, replica
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self, extra: ["schema"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            all: try c.decodeIfPresent([String: String].self, forKey: .all) ?? [:],
            primary: try c.decodeIfPresent([String: String].self, forKey: .primary) ?? [:],
            replica: try c.decodeIfPresent([String: String].self, forKey: .replica) ?? [:])
    }
}
