import Topology

extension AccountReader {
    /// An account from what `SHOW CREATE USER` (nil for a role) and `SHOW GRANTS FOR` print
    /// for it. Throws a `GrantsError` for what Marina does not manage (`REQUIRE ISSUER`,
    /// `SUBJECT` or `CIPHER`, `MAX_STATEMENT_TIME`, `ACCOUNT LOCK`, `PASSWORD EXPIRE`, a role
    /// granted `WITH ADMIN OPTION`, `PROXY`) and for a line it cannot read.
    public static func state(_ key: AccountKey, createUser: String?, grants: [String]) throws -> AccountState {
        var state = AccountState(user: key.user, host: key.host, isRole: key.isRole)
        if let createUser { try readCreateUser(createUser, into: &state) }
        var privileges = [String: Set<String>]()
        for line in grants {
            try readGrant(line, key: key, privileges: &privileges, state: &state)
        }
        state.privileges = privileges.compactMapValues { $0.isEmpty ? nil : $0 }.reduce(into: [:]) { result, entry in
            result[entry.key] = PrivilegeLevel(object: entry.key).canonical(entry.value)
        }
        state.roles.sort()
        return state
    }

    // MARK: SHOW CREATE USER

    private static func readCreateUser(_ line: String, into state: inout AccountState) throws {
        let account = state.key.description
        func fail(_ message: String) -> GrantsError { GrantsError(account: account, message: message) }
        guard let tokens = GrantSyntax.tokens(line), tokens.count >= 5, tokens[0].isWord("CREATE"), tokens[1].isWord("USER"),
            tokens[2].name != nil, tokens[3] == .symbol("@"), tokens[4].name != nil
        else { throw fail("cannot read SHOW CREATE USER: \(GrantSyntax.tokens(line).map(GrantSyntax.redacted) ?? "unbalanced quotes")") }
        var rest = tokens[5...]
        while let clause = rest.popFirst() {
            switch clause {
            case .word("IDENTIFIED"):
                (state.plugin, state.authentication) = try readIdentified(&rest, fail: fail)
            case .word("REQUIRE"):
                guard let requirement = rest.popFirst() else { throw fail("REQUIRE without a requirement") }
                switch requirement {
                case .word("NONE"): state.tls = .none
                case .word("SSL"): state.tls = .ssl
                case .word("X509"): state.tls = .x509
                default:
                    throw fail(
                        "REQUIRE \(requirement.redacted) is not supported: Marina manages REQUIRE NONE, SSL or X509 only "
                            + "(ALTER USER … REQUIRE SSL or X509 by hand, then manage it)")
                }
            case .word("WITH"):
                while case .word(let name)? = rest.first, name.hasPrefix("MAX_") {
                    rest.removeFirst()
                    guard case .word(let digits)? = rest.popFirst(), let value = Int(digits) else { throw fail("\(name) without a number") }
                    switch name {
                    case "MAX_QUERIES_PER_HOUR": state.limits.maxQueriesPerHour = value
                    case "MAX_UPDATES_PER_HOUR": state.limits.maxUpdatesPerHour = value
                    case "MAX_CONNECTIONS_PER_HOUR": state.limits.maxConnectionsPerHour = value
                    case "MAX_USER_CONNECTIONS": state.limits.maxUserConnections = value
                    default:
                        throw fail(
                            "\(name) is not supported: Marina manages MAX_QUERIES_PER_HOUR, MAX_UPDATES_PER_HOUR, "
                                + "MAX_CONNECTIONS_PER_HOUR and MAX_USER_CONNECTIONS only")
                    }
                }
            case .word("ACCOUNT"):
                if rest.first == .word("UNLOCK") {
                    rest.removeFirst()
                } else {
                    throw fail("ACCOUNT LOCK is not supported: Marina does not manage locked accounts (ALTER USER … ACCOUNT UNLOCK)")
                }
            case .word("PASSWORD"):
                throw fail("PASSWORD EXPIRE is not supported: Marina does not manage password expiry")
            default:
                throw fail("cannot read SHOW CREATE USER at \(GrantSyntax.redacted([clause] + rest.prefix(3)))")
            }
        }
    }

    /// `BY PASSWORD 'hash'` or `VIA plugin [USING 'string'] [OR plugin …]`.
    private static func readIdentified(
        _ rest: inout ArraySlice<GrantToken>, fail: (String) -> GrantsError
    ) throws -> (String?, String?) {
        if rest.first == .word("BY") {
            rest.removeFirst()
            guard rest.popFirst() == .word("PASSWORD"), case .string(let hash)? = rest.popFirst() else {
                throw fail("cannot read IDENTIFIED BY")
            }
            return hash.isEmpty ? (nil, nil) : ("mysql_native_password", hash)
        }
        guard rest.popFirst() == .word("VIA") else { throw fail("cannot read IDENTIFIED") }
        var plugins = [String]()
        var strings = [String]()
        repeat {
            switch rest.popFirst() {
            case .word(let name)?: plugins.append(name.lowercased())
            case .identifier(let name)?, .string(let name)?: plugins.append(name)
            default: throw fail("IDENTIFIED VIA without a plugin")
            }
            var string = ""
            if rest.first == .word("USING") {
                rest.removeFirst()
                guard case .string(let value)? = rest.popFirst() else { throw fail("cannot read IDENTIFIED VIA … USING") }
                string = value
            }
            strings.append(string)
        } while rest.first == .word("OR") && rest.popFirst() != nil
        if plugins == ["mysql_native_password"] && strings == [""] { return (nil, nil) }
        let authentication = strings.allSatisfy(\.isEmpty) ? nil : strings.joined(separator: " OR ")
        return (plugins.joined(separator: " OR "), authentication)
    }

    // MARK: SHOW GRANTS

    private static func readGrant(
        _ line: String, key: AccountKey, privileges: inout [String: Set<String>], state: inout AccountState
    ) throws {
        let account = key.description
        func fail(_ message: String) -> GrantsError { GrantsError(account: account, message: message) }
        guard let tokens = GrantSyntax.tokens(line), let first = tokens.first else { throw fail("cannot read a SHOW GRANTS line") }
        if first.isWord("SET") {
            // SET DEFAULT ROLE `r` FOR `u`@`h`
            guard tokens.count >= 5, tokens[1].isWord("DEFAULT"), tokens[2].isWord("ROLE"), let role = tokens[3].name else {
                throw fail("cannot read \(GrantSyntax.redacted(tokens.prefix(5)))")
            }
            state.defaultRole = role
            return
        }
        guard first.isWord("GRANT"), tokens.count >= 3 else { throw fail("cannot read \(GrantSyntax.redacted(tokens.prefix(5)))") }
        if let role = tokens[1].name, tokens[2].isWord("TO") {
            // GRANT `r` TO `u`@`h` [WITH ADMIN OPTION]
            guard grantee(tokens, after: 2) == key else { return }
            if tokens.contains(.word("ADMIN")) {
                throw fail(
                    "role \(role) is granted WITH ADMIN OPTION, which Marina does not manage "
                        + "(REVOKE ADMIN OPTION FOR \(SQLName.identifier(role)) FROM \(key.sql))")
            }
            state.roles.append(role)
            return
        }
        // GRANT privileges ON object TO account [IDENTIFIED …] [REQUIRE …] [WITH [GRANT OPTION] …]
        var depth = 0
        guard
            let on = tokens.indices.dropFirst().first(where: { index in
                if tokens[index] == .symbol("(") { depth += 1 }
                if tokens[index] == .symbol(")") { depth -= 1 }
                return depth == 0 && tokens[index].isWord("ON")
            }),
            let to = tokens.indices.dropFirst(on + 1).first(where: { tokens[$0].isWord("TO") })
        else { throw fail("cannot read \(GrantSyntax.redacted(tokens.prefix(8)))") }
        // `SHOW GRANTS FOR` a role also prints the grants of the roles granted to it, to them.
        guard grantee(tokens, after: to) == key else { return }
        if tokens[1].isWord("PROXY") { throw fail("PROXY grants are not supported by Marina") }
        let object = try readObject(tokens[(on + 1)..<to], fail: fail)
        var granted = try readPrivileges(tokens[1..<on], fail: fail)
        let tail = tokens[(to + 1)...]
        if zip(tail, tail.dropFirst()).contains(where: { $0.isWord("GRANT") && $1.isWord("OPTION") }) { granted.insert("GRANT OPTION") }
        let level = PrivilegeLevel(object: object)
        privileges[object, default: []].formUnion(level.atoms(Array(granted)))
    }

    /// The account or role named after `TO` (at `index`).
    private static func grantee(_ tokens: [GrantToken], after index: Int) -> AccountKey? {
        guard index + 1 < tokens.count, let user = tokens[index + 1].name else { return nil }
        guard index + 3 < tokens.count, tokens[index + 2] == .symbol("@"), let host = tokens[index + 3].name else {
            return AccountKey(user: user, host: "")
        }
        return AccountKey(user: user, host: host)
    }

    /// `*.*`, `` `db`.* ``, `` `db`.`t` ``, `` PROCEDURE `db`.`p` `` in canonical form.
    private static func readObject(_ tokens: ArraySlice<GrantToken>, fail: (String) -> GrantsError) throws -> String {
        var rest = tokens
        var prefix = ""
        if case .word(let kind)? = rest.first, ["PROCEDURE", "FUNCTION", "PACKAGE"].contains(kind) {
            rest.removeFirst()
            prefix = kind + " "
            if kind == "PACKAGE", rest.first == .word("BODY") {
                rest.removeFirst()
                prefix = "PACKAGE BODY "
            }
        }
        let parts = Array(rest)
        let text: String?
        switch parts.count {
        case 3 where parts == [.symbol("*"), .symbol("."), .symbol("*")]:
            text = prefix.isEmpty ? "*.*" : nil
        case 3 where parts[1] == .symbol("."):
            guard let database = parts[0].name else {
                text = nil
                break
            }
            if parts[2] == .symbol("*") {
                text = prefix.isEmpty ? "\(GrantNames.quoted(database)).*" : nil
            } else if let name = parts[2].name {
                text = "\(prefix)\(GrantNames.quoted(database)).\(GrantNames.quoted(name))"
            } else {
                text = nil
            }
        default:
            text = nil
        }
        guard let text, GrantNames.object(text) == text else { throw fail("cannot read the object \(GrantSyntax.redacted(tokens))") }
        return text
    }

    /// `SELECT, REPLICATION SLAVE, SELECT (`a`, `b`)` in canonical forms; `USAGE` kept out.
    private static func readPrivileges(_ tokens: ArraySlice<GrantToken>, fail: (String) -> GrantsError) throws -> Set<String> {
        var result = Set<String>()
        var words = [String]()
        var columns: [String]?
        var inColumns = false
        func finish() throws {
            guard !words.isEmpty else { throw fail("cannot read the privileges \(GrantSyntax.redacted(tokens))") }
            let name = words.joined(separator: " ")
            if let list = columns {
                for column in list where column.contains(where: { ",()`".contains($0) }) {
                    throw fail("column \(GrantNames.quoted(column)) has a name Marina cannot manage")
                }
                result.insert("\(name) (\(Array(Set(list.map { $0.uppercased() })).sorted().joined(separator: ", ")))")
            } else if name != "USAGE" {
                result.insert(name)
            }
            words = []
            columns = nil
        }
        for token in tokens {
            switch token {
            case .word(let word) where !inColumns && columns == nil: words.append(word)
            case .symbol("(") where !inColumns && columns == nil:
                inColumns = true
                columns = []
            case .identifier(let column) where inColumns: columns?.append(column)
            case .symbol(",") where inColumns: continue
            case .symbol(")") where inColumns: inColumns = false
            case .symbol(",") where !inColumns: try finish()
            default: throw fail("cannot read the privileges \(GrantSyntax.redacted(tokens))")
            }
        }
        try finish()
        return result
    }
}
