import Topology

/// Managed accounts from the accounts of a live server, for `marina grant import`.
public enum GrantImport {
    /// One `ManagedAccount` per user name with all its hosts, and one per role, in canonical
    /// form. Throws a `GrantsError` naming the user when its hosts differ in anything but the
    /// host, when a user and a role share the name, for a plugin other than
    /// `mysql_native_password`, `ed25519` and `unix_socket`, or for a hash or privilege the
    /// source of truth would refuse. An account without a password gets no authentication.
    public static func accounts(from states: [AccountKey: AccountState]) throws -> [String: ManagedAccount] {
        var accounts = [String: ManagedAccount]()
        let byName = Dictionary(grouping: states.values, by: \.user)
        for name in byName.keys.sorted() {
            let group = byName[name]!.sorted { $0.key < $1.key }
            func fail(_ message: String) -> GrantsError { GrantsError(account: name, message: message) }
            if group.contains(where: \.isRole) && group.contains(where: { !$0.isRole }) {
                throw fail("is both a role and a user; Marina manages a name as one or the other")
            }
            let first = group[0]
            for privilege in first.privileges.values.joined() where privilege != "ALL PRIVILEGES" {
                let base = PrivilegeLevel.columns(of: privilege)?.0 ?? privilege
                guard GrantNames.privilege(base) == base else { throw fail("privilege \(privilege) is not one Marina manages") }
            }
            if first.isRole {
                accounts[name] = ManagedAccount(name: name, kind: .role, privileges: first.privileges, roles: first.roles).canonical
                continue
            }
            for other in group.dropFirst() {
                let differing = fields(first).filter { field, value in fields(other)[field] != value }.keys.sorted()
                if !differing.isEmpty {
                    throw fail(
                        "its hosts \(first.host) and \(other.host) differ in \(differing.joined(separator: ", ")); "
                            + "Marina keeps every host of a user alike: make them alike, or rename one, before importing")
                }
            }
            let authentication = try authentication(first, fail: fail)
            accounts[name] =
                ManagedAccount(
                    name: name, kind: .user, hosts: group.map(\.host), authentication: authentication, tls: first.tls, limits: first.limits,
                    privileges: first.privileges, roles: first.roles, defaultRole: first.defaultRole
                ).canonical
        }
        return accounts
    }

    /// What must be alike on every host, by name (the values are compared, never printed).
    private static func fields(_ state: AccountState) -> [String: String] {
        [
            "authentication": "\(state.plugin ?? "")\u{0}\(state.authentication ?? "")", "tls": state.tls.rawValue,
            "limits": GrantText.limits(state.limits),
            "privileges": state.privileges.keys.sorted().map { "\($0)=\(state.privileges[$0]!)" }.joined(separator: ";"),
            "roles": state.roles.joined(separator: ","), "default role": state.defaultRole ?? "",
        ]
    }

    private static func authentication(_ state: AccountState, fail: (String) -> GrantsError) throws -> Authentication? {
        guard let pluginName = state.plugin else { return nil }
        guard let plugin = Authentication.Plugin(rawValue: pluginName) else {
            throw fail(
                "authenticates with \(pluginName), which Marina does not manage (only "
                    + Authentication.Plugin.allCases.map(\.rawValue).joined(separator: ", ") + ")")
        }
        let authentication = Authentication(plugin: plugin, hash: plugin == .unixSocket ? nil : state.authentication)
        if let problem = authentication.problem { throw fail("its authentication string \(problem)") }
        return authentication
    }
}
