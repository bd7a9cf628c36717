import Grants
import Testing
import Topology

/// Lines printed by MariaDB 10.11.19 (Debian 12), collected from a real server.
enum Printed {
    static let hash = "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"
    static let u1 = AccountKey(user: "u1", host: "10.64.%")
    static let u1Create =
        "CREATE USER `u1`@`10.64.%` IDENTIFIED BY PASSWORD '\(hash)' REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 5 MAX_USER_CONNECTIONS 10"
    static let u1Grants = [
        "GRANT `reader` TO `u1`@`10.64.%`",
        "GRANT RELOAD, PROCESS, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `u1`@`10.64.%` IDENTIFIED BY PASSWORD '\(hash)' "
            + "REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 5 MAX_USER_CONNECTIONS 10",
        "GRANT ALL PRIVILEGES ON `wiki%`.* TO `u1`@`10.64.%`",
        "GRANT SELECT (`a`, `c d`), UPDATE (`b`) ON `wiki`.`t` TO `u1`@`10.64.%`",
        "GRANT EXECUTE ON PROCEDURE `wiki`.`p` TO `u1`@`10.64.%`",
        "GRANT EXECUTE, ALTER ROUTINE ON FUNCTION `wiki`.`f` TO `u1`@`10.64.%` WITH GRANT OPTION",
        "SET DEFAULT ROLE `reader` FOR `u1`@`10.64.%`",
    ]
    static let ed25519Hash = "ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY"
    /// `GRANT ALL ON *.*` then `REVOKE SELECT ON *.*`.
    static let globalAllButSelect =
        "GRANT INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, SHUTDOWN, PROCESS, FILE, REFERENCES, INDEX, ALTER, SHOW DATABASES, SUPER, "
        + "CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, BINLOG MONITOR, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, "
        + "ALTER ROUTINE, CREATE USER, EVENT, TRIGGER, CREATE TABLESPACE, DELETE HISTORY, SET USER, FEDERATED ADMIN, CONNECTION ADMIN, "
        + "READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, REPLICATION MASTER ADMIN, BINLOG ADMIN, BINLOG REPLAY, SLAVE MONITOR ON *.* TO `t1`@`x`"
    static let databaseAllButSelect =
        "GRANT INSERT, UPDATE, DELETE, CREATE, DROP, REFERENCES, INDEX, ALTER, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, "
        + "SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER, DELETE HISTORY ON `wiki`.* TO `t2`@`x`"
    static let tableAllButSelect =
        "GRANT INSERT, UPDATE, DELETE, CREATE, DROP, REFERENCES, INDEX, ALTER, CREATE VIEW, SHOW VIEW, TRIGGER, DELETE HISTORY ON `wiki`.`t` TO `t3`@`x`"
}

@Suite("Reading SHOW CREATE USER and SHOW GRANTS of MariaDB 10.11")
struct ReadingTests {
    @Test("a user with every kind of grant: global, database, columns, routines, role, default role, TLS and limits")
    func fullUser() throws {
        let state = try AccountReader.state(Printed.u1, createUser: Printed.u1Create, grants: Printed.u1Grants)
        #expect(state.key == Printed.u1)
        #expect(!state.isRole)
        #expect(state.plugin == "mysql_native_password")
        #expect(state.authentication == Printed.hash)
        #expect(state.tls == .ssl)
        #expect(state.limits == ResourceLimits(maxQueriesPerHour: 5, maxUserConnections: 10))
        #expect(
            state.privileges == [
                "*.*": ["BINLOG MONITOR", "PROCESS", "RELOAD", "REPLICATION SLAVE"],
                "`wiki%`.*": ["ALL PRIVILEGES"],
                "`wiki`.`t`": ["SELECT (A, C D)", "UPDATE (B)"],
                "PROCEDURE `wiki`.`p`": ["EXECUTE"],
                "FUNCTION `wiki`.`f`": ["ALTER ROUTINE", "EXECUTE", "GRANT OPTION"],
            ])
        #expect(state.roles == ["reader"])
        #expect(state.defaultRole == "reader")
        #expect(!state.description.contains(Printed.hash))
        // Every object and privilege read is in the canonical form the source of truth validates.
        for (object, privileges) in state.privileges {
            #expect(GrantNames.object(object) == object)
            for privilege in privileges { #expect(GrantNames.privilege(privilege) == privilege) }
        }
    }

    @Test("a role: no SHOW CREATE USER, its grants and the roles granted to it")
    func role() throws {
        let key = AccountKey(user: "writer", host: "")
        let state = try AccountReader.state(
            key, createUser: nil,
            grants: [
                "GRANT `reader` TO `writer`", "GRANT USAGE ON *.* TO `writer`",
                "GRANT INSERT, UPDATE ON `wiki`.`t` TO `writer` WITH GRANT OPTION",
                // The grants of the role granted to it are printed too, to that role: not the role's own.
                "GRANT `inner` TO `reader`", "GRANT USAGE ON *.* TO `reader`", "GRANT SELECT ON `wiki`.* TO `reader`",
            ])
        #expect(state.isRole)
        #expect(state.key.description == "writer")
        #expect(state.plugin == nil && state.authentication == nil)
        #expect(state.privileges == ["`wiki`.`t`": ["GRANT OPTION", "INSERT", "UPDATE"]])
        #expect(state.roles == ["reader"])
    }

    @Test(
        "authentication forms: ed25519, unix_socket, none, an empty native password, several plugins",
        arguments: [
            ("CREATE USER `e1`@`x` IDENTIFIED VIA ed25519 USING '\(Printed.ed25519Hash)'", "ed25519", Printed.ed25519Hash),
            ("CREATE USER `u1`@`localhost` IDENTIFIED VIA unix_socket", "unix_socket", nil),
            ("CREATE USER `e2`@`x`", nil, nil),
            ("CREATE USER `e3`@`x` IDENTIFIED VIA mysql_native_password USING ''", nil, nil),
            ("CREATE USER `e3`@`x` IDENTIFIED VIA mysql_native_password USING '\(Printed.hash)'", "mysql_native_password", Printed.hash),
            (
                "CREATE USER `u4`@`%` IDENTIFIED VIA mysql_native_password USING '\(Printed.hash)' OR unix_socket",
                "mysql_native_password OR unix_socket", Printed.hash + " OR "
            ),
        ] as [(String, String?, String?)])
    func authentication(line: String, plugin: String?, authentication: String?) throws {
        let state = try AccountReader.state(AccountKey(user: "u", host: "x"), createUser: line, grants: [])
        #expect(state.plugin == plugin)
        #expect(state.authentication == authentication)
    }

    @Test("REQUIRE X509 and every limit")
    func tlsAndLimits() throws {
        let x509 = try AccountReader.state(AccountKey(user: "u2", host: "%"), createUser: "CREATE USER `u2`@`%` REQUIRE X509", grants: [])
        #expect(x509.tls == .x509)
        let limited = try AccountReader.state(
            AccountKey(user: "e3", host: "x"),
            createUser: "CREATE USER `e3`@`x` WITH MAX_QUERIES_PER_HOUR 1 MAX_UPDATES_PER_HOUR 4 MAX_CONNECTIONS_PER_HOUR 3 MAX_USER_CONNECTIONS 2",
            grants: [
                "GRANT USAGE ON *.* TO `e3`@`x` WITH MAX_QUERIES_PER_HOUR 1 MAX_UPDATES_PER_HOUR 4 MAX_CONNECTIONS_PER_HOUR 3 MAX_USER_CONNECTIONS 2"
            ])
        #expect(limited.limits == ResourceLimits(maxQueriesPerHour: 1, maxUpdatesPerHour: 4, maxConnectionsPerHour: 3, maxUserConnections: 2))
        #expect(limited.privileges.isEmpty)
    }

    @Test("GRANT OPTION alone is USAGE … WITH GRANT OPTION; also with limits after it")
    func grantOptionAlone() throws {
        let state = try AccountReader.state(
            AccountKey(user: "t5", host: "x"), createUser: nil,
            grants: [
                "GRANT USAGE ON `wiki`.* TO `t5`@`x` WITH GRANT OPTION",
                "GRANT USAGE ON *.* TO `t5`@`x` WITH GRANT OPTION MAX_USER_CONNECTIONS 3",
            ])
        #expect(state.privileges == ["`wiki`.*": ["GRANT OPTION"], "*.*": ["GRANT OPTION"]])
    }

    @Test("column names compare without case, as MariaDB does: upper case, with the table-wide privilege apart")
    func columnsWithoutCase() throws {
        let state = try AccountReader.state(
            AccountKey(user: "c1", host: "x"), createUser: nil,
            grants: ["GRANT SELECT, SELECT (`A`), INSERT (`a`), UPDATE (`b`) ON `wiki`.`t` TO `c1`@`x`"])
        #expect(state.privileges == ["`wiki`.`t`": ["INSERT (A)", "SELECT", "SELECT (A)", "UPDATE (B)"]])
        #expect(GrantNames.privilege("select (`b`,  a)") == "SELECT (A, B)")
    }

    @Test("a level granted in full reads as ALL PRIVILEGES; one short of it as the list")
    func allPrivileges() throws {
        let global = try AccountReader.state(AccountKey(user: "t1", host: "x"), createUser: nil, grants: [Printed.globalAllButSelect])
        #expect(global.privileges["*.*"]?.count == 37)
        #expect(global.privileges["*.*"]?.contains("SELECT") == false)
        let database = try AccountReader.state(AccountKey(user: "t2", host: "x"), createUser: nil, grants: [Printed.databaseAllButSelect])
        #expect(database.privileges["`wiki`.*"]?.count == 18)
        let table = try AccountReader.state(AccountKey(user: "t3", host: "x"), createUser: nil, grants: [Printed.tableAllButSelect])
        #expect(table.privileges["`wiki`.`t`"]?.count == 12)
        // The same with SELECT added is the whole level.
        let whole = try AccountReader.state(
            AccountKey(user: "t2", host: "x"), createUser: nil,
            grants: [Printed.databaseAllButSelect, "GRANT SELECT ON `wiki`.* TO `t2`@`x`"])
        #expect(whole.privileges["`wiki`.*"] == ["ALL PRIVILEGES"])
    }

    @Test(
        "what Marina does not manage is refused with the account named and no secret",
        arguments: [
            ("CREATE USER `u3`@`%` REQUIRE ISSUER 'foo'", "REQUIRE ISSUER"),
            ("CREATE USER `e4`@`x` REQUIRE SUBJECT 'a''b' CIPHER 'c'", "REQUIRE SUBJECT"),
            (
                "CREATE USER `e3`@`x` IDENTIFIED BY PASSWORD '\(Printed.hash)' WITH MAX_UPDATES_PER_HOUR 4 MAX_STATEMENT_TIME 1.500000",
                "MAX_STATEMENT_TIME"
            ),
            ("CREATE USER `e3`@`x` IDENTIFIED BY PASSWORD '\(Printed.hash)' ACCOUNT LOCK", "ACCOUNT LOCK"),
            ("CREATE USER `e3`@`x` IDENTIFIED BY PASSWORD '\(Printed.hash)' PASSWORD EXPIRE INTERVAL 5 DAY", "PASSWORD EXPIRE"),
            ("CREATE USER `e3`@`x` IDENTIFIED BY PASSWORD '\(Printed.hash)' SOMETHING NEW", "SOMETHING"),
        ])
    func refusedCreateUser(line: String, mentions: String) throws {
        let error = try #require(throws: GrantsError.self) {
            try AccountReader.state(AccountKey(user: "u3", host: "%"), createUser: line, grants: [])
        }
        #expect(error.account == "'u3'@'%'")
        #expect(error.description.contains(mentions))
        #expect(!error.description.contains(Printed.hash))
    }

    @Test(
        "grants Marina does not manage are refused: a role WITH ADMIN OPTION, PROXY, an unreadable line",
        arguments: [
            ("GRANT `writer` TO `u1`@`10.64.%` WITH ADMIN OPTION", "WITH ADMIN OPTION"),
            ("GRANT PROXY ON ``@`%` TO `u1`@`10.64.%` WITH GRANT OPTION", "PROXY"),
            ("REVOKE SELECT ON *.* FROM `u1`@`10.64.%`", "cannot read"),
            ("GRANT SELECT ON `unterminated TO `u1`@`10.64.%`", "cannot read"),
        ])
    func refusedGrants(line: String, mentions: String) throws {
        let error = try #require(throws: GrantsError.self) {
            try AccountReader.state(Printed.u1, createUser: Printed.u1Create, grants: [line])
        }
        #expect(error.description.contains(mentions))
        #expect(!error.description.contains(Printed.hash))
    }

    @Test("names with backquotes, quotes and non-ASCII characters read back exactly")
    func oddNames() throws {
        let key = AccountKey(user: "we'ird", host: "h\\x")
        let state = try AccountReader.state(
            key, createUser: "CREATE USER `we'ird`@`h\\x`",
            grants: ["GRANT SELECT ON `da``ta`.`tä ble` TO `we'ird`@`h\\x`", "GRANT `rö le` TO `we'ird`@`h\\x`"])
        #expect(state.privileges == ["`da``ta`.`tä ble`": ["SELECT"]])
        #expect(state.roles == ["rö le"])
        #expect(key.description == "'we'ird'@'h\\x'")
    }
}
