import Grants
import Testing
import Topology

let nativeHash = "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
let edHash = "ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY"

/// A section's desired accounts: a role, a user on two hosts with a role and default role.
func desired() -> [String: ManagedAccount] {
    [
        "reader": ManagedAccount(name: "reader", kind: .role, privileges: ["`wiki`.*": ["SELECT"]]),
        "wikiuser": ManagedAccount(
            name: "wikiuser", hosts: ["10.192.%", "10.64.%"], authentication: Authentication(plugin: .mysqlNativePassword, hash: nativeHash),
            tls: .ssl, limits: ResourceLimits(maxUserConnections: 10),
            privileges: ["`wiki`.*": ["DELETE", "INSERT", "UPDATE"], "`heartbeat`.`heartbeat`": ["SELECT"]], roles: ["reader"],
            defaultRole: "reader"),
        "edu": ManagedAccount(name: "edu", hosts: ["localhost"], authentication: Authentication(plugin: .ed25519, hash: edHash)),
        "sock": ManagedAccount(name: "sock", hosts: ["localhost"], authentication: Authentication(plugin: .unixSocket)),
    ]
}

let managed: Set<String> = ["reader", "wikiuser", "edu", "sock"]

func key(_ user: String, _ host: String = "") -> AccountKey { AccountKey(user: user, host: host) }

@Suite("Planning grants")
struct PlanningTests {
    @Test("expected: one state per host pattern and per role; hosts in lower case; a full level is ALL PRIVILEGES")
    func expected() {
        var accounts = desired()
        accounts["wikiuser"]?.hosts.append("LocalHost")
        accounts["full"] = ManagedAccount(
            name: "full", hosts: ["%"],
            privileges: [
                "`wiki`.`t`": [
                    "ALTER", "CREATE", "CREATE VIEW", "DELETE", "DELETE HISTORY", "DROP", "INDEX", "INSERT", "REFERENCES", "SELECT", "SELECT (A)",
                    "SHOW VIEW", "TRIGGER", "UPDATE",
                ],
                "PROCEDURE `wiki`.`p`": ["ALL PRIVILEGES"],
            ])
        let states = GrantPlanner.expected(accounts)
        #expect(
            Set(states.keys) == [
                key("reader"), key("wikiuser", "10.192.%"), key("wikiuser", "10.64.%"), key("wikiuser", "localhost"), key("edu", "localhost"),
                key("sock", "localhost"), key("full", "%"),
            ])
        let user = states[key("wikiuser", "10.64.%")]
        #expect(user?.plugin == "mysql_native_password")
        #expect(user?.authentication == nativeHash)
        #expect(user?.defaultRole == "reader")
        #expect(states[key("reader")]?.isRole == true)
        #expect(states[key("sock", "localhost")]?.plugin == "unix_socket")
        #expect(states[key("sock", "localhost")]?.authentication == nil)
        #expect(
            states[key("full", "%")]?.privileges == [
                "`wiki`.`t`": ["ALL PRIVILEGES", "SELECT (A)"], "PROCEDURE `wiki`.`p`": ["ALTER ROUTINE", "EXECUTE"],
            ])
    }

    @Test("from nothing: roles created first, then users, privileges, role grants, default roles; every hash redacted")
    func fromNothing() {
        let statements = GrantPlanner.statements(from: [:], to: GrantPlanner.expected(desired()), names: managed)
        #expect(
            statements.map(\.redacted) == [
                "CREATE ROLE `reader`",
                "CREATE USER `edu`@`localhost` IDENTIFIED VIA ed25519 USING '<redacted>'",
                "CREATE USER `sock`@`localhost` IDENTIFIED VIA unix_socket",
                "CREATE USER `wikiuser`@`10.192.%` IDENTIFIED BY PASSWORD '<redacted>' REQUIRE SSL WITH MAX_USER_CONNECTIONS 10",
                "CREATE USER `wikiuser`@`10.64.%` IDENTIFIED BY PASSWORD '<redacted>' REQUIRE SSL WITH MAX_USER_CONNECTIONS 10",
                "GRANT SELECT ON `wiki`.* TO `reader`",
                "GRANT SELECT ON `heartbeat`.`heartbeat` TO `wikiuser`@`10.192.%`",
                "GRANT DELETE, INSERT, UPDATE ON `wiki`.* TO `wikiuser`@`10.192.%`",
                "GRANT SELECT ON `heartbeat`.`heartbeat` TO `wikiuser`@`10.64.%`",
                "GRANT DELETE, INSERT, UPDATE ON `wiki`.* TO `wikiuser`@`10.64.%`",
                "GRANT `reader` TO `wikiuser`@`10.192.%`",
                "GRANT `reader` TO `wikiuser`@`10.64.%`",
                "SET DEFAULT ROLE `reader` FOR `wikiuser`@`10.192.%`",
                "SET DEFAULT ROLE `reader` FOR `wikiuser`@`10.64.%`",
            ])
        #expect(statements[1].sql == "CREATE USER `edu`@`localhost` IDENTIFIED VIA ed25519 USING '\(edHash)'")
        #expect(statements[3].sql.contains("'\(nativeHash)'"))
        #expect(statements[3].account == "'wikiuser'@'10.192.%'")
        for statement in statements {
            #expect(!statement.redacted.contains(nativeHash) && !statement.redacted.contains(edHash))
            #expect(!statement.description.contains(nativeHash))
        }
    }

    @Test("the same state plans nothing")
    func convergedPlansNothing() {
        let states = GrantPlanner.expected(desired())
        #expect(GrantPlanner.statements(from: states, to: states, names: managed).isEmpty)
        #expect(GrantPlanner.differences(expected: states, observed: states, names: managed).isEmpty)
    }

    @Test(
        "one change on one account is exactly one statement",
        arguments: [
            (
                "add a privilege", { @Sendable (s: inout AccountState) in s.privileges["`wiki`.*"]?.append("SELECT") },
                "GRANT SELECT ON `wiki`.* TO `wikiuser`@`10.64.%`"
            ),
            (
                "remove a privilege", { @Sendable (s: inout AccountState) in s.privileges["`wiki`.*"] = ["DELETE", "UPDATE"] },
                "REVOKE INSERT ON `wiki`.* FROM `wikiuser`@`10.64.%`"
            ),
            (
                "a new object", { @Sendable (s: inout AccountState) in s.privileges["*.*"] = ["PROCESS"] },
                "GRANT PROCESS ON *.* TO `wikiuser`@`10.64.%`"
            ),
            (
                "an object gone", { @Sendable (s: inout AccountState) in s.privileges["`heartbeat`.`heartbeat`"] = nil },
                "REVOKE SELECT ON `heartbeat`.`heartbeat` FROM `wikiuser`@`10.64.%`"
            ),
            (
                "add GRANT OPTION", { @Sendable (s: inout AccountState) in s.privileges["`wiki`.*"]?.append("GRANT OPTION") },
                "GRANT USAGE ON `wiki`.* TO `wikiuser`@`10.64.%` WITH GRANT OPTION"
            ),
            (
                "a column", { @Sendable (s: inout AccountState) in s.privileges["`heartbeat`.`heartbeat`"]?.append("UPDATE (TS)") },
                "GRANT UPDATE (`TS`) ON `heartbeat`.`heartbeat` TO `wikiuser`@`10.64.%`"
            ),
            (
                "a limit", { @Sendable (s: inout AccountState) in s.limits.maxQueriesPerHour = 100 },
                "ALTER USER `wikiuser`@`10.64.%` WITH MAX_QUERIES_PER_HOUR 100"
            ),
            ("TLS", { @Sendable (s: inout AccountState) in s.tls = .x509 }, "ALTER USER `wikiuser`@`10.64.%` REQUIRE X509"),
            (
                "the password", { @Sendable (s: inout AccountState) in s.authentication = "*0000000000000000000000000000000000000000" },
                "ALTER USER `wikiuser`@`10.64.%` IDENTIFIED BY PASSWORD '<redacted>'"
            ),
            (
                "no password",
                { @Sendable (s: inout AccountState) in
                    s.plugin = nil
                    s.authentication = nil
                }, "ALTER USER `wikiuser`@`10.64.%` IDENTIFIED VIA mysql_native_password USING ''"
            ),
            ("a role", { @Sendable (s: inout AccountState) in s.roles = [] }, "REVOKE `reader` FROM `wikiuser`@`10.64.%`"),
            ("no default role", { @Sendable (s: inout AccountState) in s.defaultRole = nil }, "SET DEFAULT ROLE NONE FOR `wikiuser`@`10.64.%`"),
        ] as [(String, @Sendable (inout AccountState) -> Void, String)])
    func oneChange(_ name: String, change: @Sendable (inout AccountState) -> Void, statement: String) {
        let current = GrantPlanner.expected(desired())
        var target = current
        change(&target[key("wikiuser", "10.64.%")]!)
        let plan = GrantPlanner.statements(from: current, to: target, names: managed)
        #expect(plan.map(\.redacted) == [statement], "\(name)")
        #expect(plan.first?.account == "'wikiuser'@'10.64.%'")
    }

    @Test("GRANT OPTION is revoked alone, or with privileges spelled out (ALL PRIVILEGES, GRANT OPTION ON is not MariaDB)")
    func revokeGrantOption() {
        let base = AccountState(user: "u", host: "h", privileges: ["`wiki`.*": ["ALL PRIVILEGES", "GRANT OPTION"]])
        var onlyOption = base
        onlyOption.privileges["`wiki`.*"] = ["ALL PRIVILEGES"]
        #expect(
            GrantPlanner.statements(from: [base.key: base], to: [base.key: onlyOption], names: ["u"]).map(\.sql) == [
                "REVOKE GRANT OPTION ON `wiki`.* FROM `u`@`h`"
            ])
        var nothing = base
        nothing.privileges = ["`wiki`.*": ["SELECT"]]
        let plan = GrantPlanner.statements(from: [base.key: base], to: [base.key: nothing], names: ["u"]).map(\.sql)
        #expect(plan.count == 1)
        #expect(plan.first?.hasPrefix("REVOKE ALTER, ALTER ROUTINE, CREATE, ") == true)
        #expect(plan.first?.hasSuffix("TRIGGER, UPDATE, GRANT OPTION ON `wiki`.* FROM `u`@`h`") == true)
        #expect(plan.first?.contains("SELECT") == false)
        // From ALL PRIVILEGES to all but one: one REVOKE of that one.
        var allButSelect = base
        allButSelect.privileges["`wiki`.*"] = PrivilegeSets.database.subtracting(["SELECT"]).sorted() + ["GRANT OPTION"]
        #expect(
            GrantPlanner.statements(from: [base.key: base], to: [base.key: allButSelect], names: ["u"]).map(\.sql) == [
                "REVOKE SELECT ON `wiki`.* FROM `u`@`h`"
            ])
        // And back: the level is whole again.
        #expect(
            GrantPlanner.statements(from: [base.key: allButSelect], to: [base.key: base], names: ["u"]).map(\.sql) == [
                "GRANT SELECT ON `wiki`.* TO `u`@`h`"
            ])
    }

    @Test("managed names absent from the target are dropped, users before roles, after everything else; other names are never touched")
    func drops() {
        var current = GrantPlanner.expected(desired())
        current[key("dba", "%")] = AccountState(user: "dba", host: "%", privileges: ["*.*": ["ALL PRIVILEGES"]])
        current[key("wikiuser", "10.1.%")] = current[key("wikiuser", "10.64.%")]!
        current[key("wikiuser", "10.1.%")]!.host = "10.1.%"
        var accounts = desired()
        accounts["reader"] = nil
        accounts["wikiuser"]?.roles = []
        accounts["wikiuser"]?.defaultRole = nil
        let target = GrantPlanner.expected(accounts)
        let plan = GrantPlanner.statements(from: current, to: target, names: managed).map(\.sql)
        #expect(
            plan == [
                "SET DEFAULT ROLE NONE FOR `wikiuser`@`10.192.%`",
                "SET DEFAULT ROLE NONE FOR `wikiuser`@`10.64.%`",
                "DROP USER `wikiuser`@`10.1.%`",
                "DROP ROLE `reader`",
            ])
        #expect(!plan.contains { $0.contains("dba") })
        // A target that is not managed is not created either.
        #expect(
            GrantPlanner.statements(from: [:], to: current, names: ["reader"]).map(\.sql) == [
                "CREATE ROLE `reader`", "GRANT SELECT ON `wiki`.* TO `reader`",
            ])
    }

    @Test("an account with a name that needs quoting is written with backquotes, never a literal the server refuses")
    func quotedNames() {
        let state = AccountState(user: "we`ird ü", host: "h\\x", plugin: "unix_socket", roles: ["rö le"])
        let plan = GrantPlanner.statements(from: [:], to: [state.key: state], names: ["we`ird ü"]).map(\.sql)
        #expect(plan == ["CREATE USER `we``ird ü`@`h\\x` IDENTIFIED VIA unix_socket", "GRANT `rö le` TO `we``ird ü`@`h\\x`"])
    }
}

/// What ALL PRIVILEGES is at each level in MariaDB 10.11 (read off a real server: see `Printed`).
enum PrivilegeSets {
    static let database: Set<String> = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "REFERENCES", "INDEX", "ALTER", "CREATE TEMPORARY TABLES", "LOCK TABLES",
        "EXECUTE", "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "EVENT", "TRIGGER", "DELETE HISTORY",
    ]
}
