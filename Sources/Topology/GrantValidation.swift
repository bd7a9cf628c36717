extension Topology {
    /// Every way the managed accounts and variables break the rules: each section named exists;
    /// names, host patterns, objects and privileges are well-formed and canonical; only hashes
    /// (never a plaintext password) authenticate; a role has no host, authentication or limits;
    /// roles granted and default roles are managed roles of the same section; a variable is
    /// not one that follows the instance's role.
    func validateGrantsAndVariables() -> [TopologyIssue] {
        var issues = [TopologyIssue]()
        for (section, accounts) in grants {
            let path = "grants.\(section)"
            if sections[section] == nil { issues.append(.init(path, "names unknown section \"\(section)\"")) }
            for (key, account) in accounts { issues += validate(account, key: key, path: "\(path).\(key)", section: accounts) }
        }
        // An instance in several sections has one set of accounts: a name managed by two of them
        // would be made one way by one section's sync and the other way by the other's.
        for instance in instances.values.sorted(by: { $0.name < $1.name }) {
            var owner = [String: String]()
            for section in instance.sections.keys.sorted() {
                for name in (grants[section] ?? [:]).keys.sorted() {
                    if let other = owner[name] {
                        issues.append(
                            .init(
                                "grants.\(section).\(name)",
                                "is also managed in section \(other), and \(instance.name) is in both: an account is managed by one section"))
                    } else {
                        owner[name] = section
                    }
                }
            }
        }
        for (section, variables) in variables {
            let path = "variables.\(section)"
            if sections[section] == nil { issues.append(.init(path, "names unknown section \"\(section)\"")) }
            for (scope, values) in [("all", variables.all), ("primary", variables.primary), ("replica", variables.replica)] {
                for (name, value) in values {
                    let variablePath = "\(path).\(scope).\(name)"
                    if !GrantNames.isVariableName(name) {
                        issues.append(.init(variablePath, "is not a system variable name (lowercase letters, digits and _)"))
                    } else if ManagedVariables.roleDerived.contains(name) || name.hasPrefix("gtid_") {
                        issues.append(.init(variablePath, "follows the instance's role or identity and cannot be a managed value"))
                    } else if ManagedVariables.startupOnly.contains(name) || name.hasPrefix("ssl_") {
                        issues.append(
                            .init(
                                variablePath,
                                "is read at the server's start, where a wrong value keeps it from starting or breaks replication: it stays in the server's own configuration"
                            ))
                    }
                    if value.isEmpty || value.count > 1024 || value.contains(where: { $0.isNewline || $0 == "\0" || $0 == "'" }) {
                        issues.append(.init(variablePath, "must be a non-empty value on one line, without quotes"))
                    }
                }
            }
        }
        return issues
    }

    private func validate(_ account: ManagedAccount, key: String, path: String, section: [String: ManagedAccount]) -> [TopologyIssue] {
        var issues = [TopologyIssue]()
        if !GrantNames.isAccountName(key) { issues.append(.init(path, "is not a valid account name")) }
        if GrantNames.isReserved(key) {
            issues.append(
                .init(path, "is MariaDB's or Marina's own account (\(key)): it is never managed, so that no sync can lock Marina or the server out"))
        }
        if account.name != key { issues.append(.init("\(path).name", "is \"\(account.name)\" but the account is stored as \"\(key)\"")) }
        switch account.kind {
        case .user:
            if account.hosts.isEmpty { issues.append(.init("\(path).hosts", "a user needs at least one host pattern")) }
            if account.authentication == nil {
                issues.append(.init("\(path).authentication", "a user needs a hash or unix_socket: without one it would log in with no password"))
            }
            for host in account.hosts where !GrantNames.isHostPattern(host) {
                issues.append(.init("\(path).hosts", "\"\(host)\" is not a host pattern"))
            }
        case .role:
            if !account.hosts.isEmpty { issues.append(.init("\(path).hosts", "a role has no host")) }
            if account.authentication != nil { issues.append(.init("\(path).authentication", "a role cannot log in")) }
            if account.tls != .none || !account.limits.isUnlimited {
                issues.append(.init(path, "a role has no TLS requirement or resource limits"))
            }
        }
        if let problem = account.authentication?.problem { issues.append(.init("\(path).authentication.hash", problem)) }
        for (name, value) in [
            ("max_queries_per_hour", account.limits.maxQueriesPerHour), ("max_updates_per_hour", account.limits.maxUpdatesPerHour),
            ("max_connections_per_hour", account.limits.maxConnectionsPerHour), ("max_user_connections", account.limits.maxUserConnections),
        ] where value < 0 || value > 4_294_967_295 {
            issues.append(.init("\(path).limits.\(name)", "must be within 0-4294967295 (is \(value))"))
        }
        for (object, privileges) in account.privileges {
            let objectPath = "\(path).privileges.\(object)"
            if GrantNames.object(object) != object {
                let hint = GrantNames.object(object).map { " (write \($0))" } ?? ""
                issues.append(.init(objectPath, "is not an object in canonical form\(hint)"))
            }
            for privilege in privileges {
                if GrantNames.privilege(privilege) != privilege {
                    let hint = GrantNames.privilege(privilege).map { " (write \($0))" } ?? ""
                    issues.append(.init(objectPath, "\"\(privilege)\" is not a privilege in canonical form\(hint)"))
                } else if GrantNames.object(object) == object, let problem = GrantNames.levelProblem(privilege, on: object) {
                    issues.append(.init(objectPath, problem))
                }
            }
        }
        if account.canonical != account { issues.append(.init(path, "is not in canonical form (sorted lists, no duplicates, no USAGE)")) }
        for role in account.roles where section[role]?.kind != .role {
            issues.append(.init("\(path).roles", "\"\(role)\" is not a managed role of this section"))
        }
        if let role = account.defaultRole, !account.roles.contains(role) {
            issues.append(.init("\(path).default_role", "\"\(role)\" is not one of the roles granted to it"))
        }
        return issues
    }
}
