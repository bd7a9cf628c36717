import SQLText
import Topology

/// Desired accounts against accounts read off one instance: the statements that make one the
/// other, and the differences to report. Pure: values in, values out.
///
/// Only accounts whose user (or role) name is in `names` are ever planned; others are
/// neither changed nor dropped, whatever `current` and `target` hold for them.
public enum GrantPlanner {
    /// What the desired accounts of a section mean on one instance: one `AccountState` per
    /// user and host pattern (host in lower case, as the server stores it) and per role.
    public static func expected(_ accounts: [String: ManagedAccount]) -> [AccountKey: AccountState] {
        var states = [AccountKey: AccountState]()
        for (key, account) in accounts {
            let name = account.name.isEmpty ? key : account.name
            var privileges = [String: [String]]()
            for (object, list) in account.privileges {
                let canonicalObject = GrantNames.object(object) ?? object
                let level = PrivilegeLevel(object: canonicalObject)
                let atoms = level.atoms(list.map { GrantNames.privilege($0) ?? $0.uppercased() })
                if !atoms.isEmpty {
                    privileges[canonicalObject, default: []] = level.canonical(atoms.union(level.atoms(privileges[canonicalObject] ?? [])))
                }
            }
            let roles = Array(Set(account.roles)).sorted()
            switch account.kind {
            case .role:
                let state = AccountState(user: name, host: "", isRole: true, privileges: privileges, roles: roles)
                states[state.key] = state
            case .user:
                var plugin = account.authentication?.plugin.rawValue
                var hash = account.authentication?.plugin == .unixSocket ? nil : account.authentication?.hash
                if plugin == Authentication.Plugin.mysqlNativePassword.rawValue && (hash ?? "").isEmpty {
                    plugin = nil
                    hash = nil
                }
                for host in Set(account.hosts.map { $0.lowercased() }) {
                    let state = AccountState(
                        user: name, host: host, plugin: plugin, authentication: hash, tls: account.tls, limits: account.limits,
                        privileges: privileges, roles: roles, defaultRole: account.defaultRole)
                    states[state.key] = state
                }
            }
        }
        return states
    }

    /// The fewest statements that turn `current` into `target` for the accounts whose name
    /// is in `names`, in an order the server accepts:
    ///
    /// 1. `CREATE ROLE`, then `CREATE USER` (with authentication, `REQUIRE`, `WITH MAX_…`);
    /// 2. `ALTER USER` with only what differs;
    /// 3. per object, one `REVOKE` and one `GRANT` of only the privileges that differ;
    /// 4. `GRANT role` / `REVOKE role` (roles exist by now);
    /// 5. `SET DEFAULT ROLE` (its role is granted by now);
    /// 6. `DROP USER`, then `DROP ROLE` (which also takes the role from every grantee, so no
    ///    `REVOKE` of a dropped role is planned).
    ///
    /// `CREATE ROLE` makes the account running it the role's admin (`WITH ADMIN OPTION`): that
    /// is left on purpose, since MariaDB lets only a role's admins grant or revoke it, even
    /// to an account with every privilege.
    public static func statements(
        from current: [AccountKey: AccountState], to target: [AccountKey: AccountState], names: Set<String>
    ) -> [GrantStatement] {
        let current = current.filter { names.contains($0.key.user) }
        let target = target.filter { names.contains($0.key.user) }
        let created = target.keys.filter { current[$0] == nil }.sorted { ($0.isRole ? 0 : 1, $0) < ($1.isRole ? 0 : 1, $1) }
        let dropped = current.keys.filter { target[$0] == nil }.sorted { ($0.isRole ? 1 : 0, $0) < ($1.isRole ? 1 : 0, $1) }
        let droppedRoles = Set(dropped.filter(\.isRole).map(\.user))
        let kept = target.keys.sorted()

        var statements = created.map { create(target[$0]!) }
        for key in kept {
            if let before = current[key], let after = target[key], let alter = alter(from: before, to: after) { statements.append(alter) }
        }
        for key in kept {
            statements += privilegeChanges(from: current[key]?.privileges ?? [:], to: target[key]!.privileges, for: key)
        }
        for key in kept {
            let before = Set(current[key]?.roles ?? [])
            let after = Set(target[key]!.roles)
            for role in after.subtracting(before).sorted() {
                statements.append(StatementText("GRANT \(SQLName.identifier(role)) TO \(key.sql)").statement(for: key))
            }
            for role in before.subtracting(after).subtracting(droppedRoles).sorted() {
                statements.append(StatementText("REVOKE \(SQLName.identifier(role)) FROM \(key.sql)").statement(for: key))
            }
        }
        for key in kept where !key.isRole {
            let after = target[key]!.defaultRole
            if current[key]?.defaultRole != after {
                let role = after.map(SQLName.identifier) ?? "NONE"
                statements.append(StatementText("SET DEFAULT ROLE \(role) FOR \(key.sql)").statement(for: key))
            }
        }
        for key in dropped {
            statements.append(StatementText(key.isRole ? "DROP ROLE \(key.sql)" : "DROP USER \(key.sql)").statement(for: key))
        }
        return statements
    }

    // MARK: Accounts

    private static func create(_ state: AccountState) -> GrantStatement {
        let key = state.key
        if key.isRole { return StatementText("CREATE ROLE \(key.sql)").statement(for: key) }
        var text = StatementText("CREATE USER \(key.sql)")
        if state.plugin != nil { identified(state, into: &text) }
        if state.tls != .none { text.append(" REQUIRE \(state.tls.rawValue)") }
        let limits = GrantText.limitClauses(state.limits).filter { $0.value != 0 }
        if !limits.isEmpty { text.append(" WITH " + limits.map { "\($0.name) \($0.value)" }.joined(separator: " ")) }
        return text.statement(for: key)
    }

    private static func alter(from current: AccountState, to target: AccountState) -> GrantStatement? {
        let key = target.key
        guard !key.isRole else { return nil }
        var text = StatementText("ALTER USER \(key.sql)")
        var changed = false
        if current.plugin != target.plugin || current.authentication != target.authentication {
            identified(target, into: &text)
            changed = true
        }
        if current.tls != target.tls {
            text.append(" REQUIRE \(target.tls.rawValue)")
            changed = true
        }
        let before = GrantText.limitClauses(current.limits)
        let limits = zip(before, GrantText.limitClauses(target.limits)).filter { $0.value != $1.value }.map(\.1)
        if !limits.isEmpty {
            text.append(" WITH " + limits.map { "\($0.name) \($0.value)" }.joined(separator: " "))
            changed = true
        }
        return changed ? text.statement(for: key) : nil
    }

    /// ` IDENTIFIED …` for the state's plugin; no plugin is an empty `mysql_native_password`.
    private static func identified(_ state: AccountState, into text: inout StatementText) {
        switch state.plugin {
        case nil:
            text.append(" IDENTIFIED VIA mysql_native_password USING ''")
        case "mysql_native_password"?:
            text.append(" IDENTIFIED BY PASSWORD ")
            text.appendSecret(SQL.quote(state.authentication ?? ""))
        case "unix_socket"?:
            text.append(" IDENTIFIED VIA unix_socket")
        case let plugin?:
            text.append(" IDENTIFIED VIA \(plugin == "ed25519" ? plugin : SQLName.identifier(plugin))")
            if let authentication = state.authentication {
                text.append(" USING ")
                text.appendSecret(SQL.quote(authentication))
            }
        }
    }

    // MARK: Privileges

    private static func privilegeChanges(from current: [String: [String]], to target: [String: [String]], for key: AccountKey) -> [GrantStatement] {
        var statements = [GrantStatement]()
        for object in Set(current.keys).union(target.keys).sorted() {
            let level = PrivilegeLevel(object: object)
            let before = level.atoms(current[object] ?? [])
            let after = level.atoms(target[object] ?? [])
            let revoked = before.subtracting(after)
            let granted = after.subtracting(before)
            if !revoked.isEmpty {
                let option = revoked.contains("GRANT OPTION")
                // `ALL PRIVILEGES, GRANT OPTION ON …` is not valid MariaDB: with GRANT OPTION, the list is spelled out.
                var list = option ? sqlList(revoked.subtracting(["GRANT OPTION"]), level: nil) : sqlList(revoked, level: level)
                if option { list.append("GRANT OPTION") }
                statements.append(StatementText("REVOKE \(list.joined(separator: ", ")) ON \(object) FROM \(key.sql)").statement(for: key))
            }
            if !granted.isEmpty {
                let plain = granted.subtracting(["GRANT OPTION"])
                let list = plain.isEmpty ? ["USAGE"] : sqlList(plain, level: level)
                let option = granted.contains("GRANT OPTION") ? " WITH GRANT OPTION" : ""
                statements.append(StatementText("GRANT \(list.joined(separator: ", ")) ON \(object) TO \(key.sql)\(option)").statement(for: key))
            }
        }
        return statements
    }

    /// Privileges as SQL: `ALL PRIVILEGES` for a full level (when `level` is given), column
    /// names backquoted.
    private static func sqlList(_ atoms: Set<String>, level: PrivilegeLevel?) -> [String] {
        let canonical = level?.canonical(atoms) ?? PrivilegeLevel.routine.canonical(atoms)
        return canonical.map { privilege in
            guard let (base, columns) = PrivilegeLevel.columns(of: privilege) else { return privilege }
            return "\(base) (\(columns.map(SQLName.identifier).joined(separator: ", ")))"
        }
    }
}
