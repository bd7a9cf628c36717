import Grants
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import SQLText
import Testing
import Topology

/// A root session on the shared sandbox's primary that never writes the binary log (as the
/// controller runs plans), so that the replicas never see the test's accounts.
struct RootSession {
    let client: MariaDBClient

    static func open() async throws -> RootSession {
        let client = try await TestServers.shared().root("db1001")
        _ = try await client.execute("SET SESSION sql_log_bin = 0")
        return RootSession(client: client)
    }

    func run(_ statements: [String]) async throws {
        for statement in statements { _ = try await client.execute(statement) }
    }

    var query: AccountReader.Query {
        let client = client
        return { sql in
            let result = try await client.query(sql)
            return result.rows.map { row in
                var values = [String: String?]()
                for (index, column) in result.columns.enumerated() { values[column] = row[index] }
                return values
            }
        }
    }

    /// Runs `body`, then `cleanup` (each statement's error ignored) and closes the session,
    /// whether `body` threw or not.
    func run(cleanup: [String], _ body: () async throws -> Void) async throws {
        var failure: (any Error)?
        do { try await body() } catch { failure = error }
        for statement in cleanup { _ = try? await client.execute(statement) }
        await client.close()
        if let failure { throw failure }
    }

    /// Loads the ed25519 plugin unless it is; false when the server has none.
    func ed25519() async throws -> Bool {
        let loaded = "SELECT PLUGIN_STATUS AS status FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'"
        if try await client.query(loaded).first?["status"] == "ACTIVE" { return true }
        do {
            _ = try await client.execute("INSTALL SONAME 'auth_ed25519'")
        } catch let error as MariaDBError {
            // Another test may have loaded it in between (1968: already installed); a server without the library gives 1126.
            if error.code == 1126 { return false }
        }
        return try await client.query(loaded).first?["status"] == "ACTIVE"
    }
}

/// Names no other test uses: `g<random>_<suffix>`.
struct TestNames {
    let prefix = "g\(UInt32.random(in: 0...UInt32.max))"
    func callAsFunction(_ suffix: String) -> String { "\(prefix)_\(suffix)" }
}

@Suite("Grants against a real mariadbd")
struct ServerTests {
    @Test("accounts made by hand are read, imported, dropped, planned from nothing, applied, read back alike, and converge")
    func roundTrip() async throws {
        let session = try await RootSession.open()
        let name = TestNames()
        let database = try SQL.quoteIdentifier(name("db"))
        let (app, role, inner, edu, sock) = (name("app"), name("role"), name("inner"), name("ed"), name("sock"))
        let cleanup = [
            "DROP USER IF EXISTS `\(app)`@'10.64.%', `\(app)`@'10.192.%', `\(edu)`@'localhost', `\(sock)`@'localhost'",
            "DROP ROLE IF EXISTS `\(role)`", "DROP ROLE IF EXISTS `\(inner)`", "DROP DATABASE IF EXISTS \(database)",
        ]
        try await session.run(cleanup: cleanup) {
            try await roundTrip(session, name: name, database: database, names: (app, role, inner, edu, sock))
        }
    }

    private func roundTrip(
        _ session: RootSession, name: TestNames, database: String, names accounts: (String, String, String, String, String)
    ) async throws {
        let (app, role, inner, edu, sock) = accounts
        let names: Set<String> = [app, role, inner, edu, sock]
        let hasEd25519 = try await session.ed25519()
        try #require(hasEd25519, "the ed25519 plugin (auth_ed25519) cannot be loaded on this server")
        try await session.run([
            "CREATE DATABASE \(database)", "CREATE TABLE \(database).t (a INT, `b c` INT)", "CREATE PROCEDURE \(database).p() SELECT 1",
            "CREATE ROLE `\(inner)`", "GRANT SELECT ON \(database).t TO `\(inner)`",
            "CREATE ROLE `\(role)`", "GRANT SELECT, SHOW VIEW ON \(database).* TO `\(role)`", "GRANT `\(inner)` TO `\(role)`",
        ])
        for host in ["10.64.%", "10.192.%"] {
            let account = "`\(app)`@'\(host)'"
            try await session.run([
                "CREATE USER \(account) IDENTIFIED BY 'app-secret' REQUIRE SSL WITH MAX_USER_CONNECTIONS 7 MAX_QUERIES_PER_HOUR 1000",
                "GRANT INSERT, UPDATE ON \(database).* TO \(account)", "GRANT SELECT (a, `b c`) ON \(database).t TO \(account)",
                "GRANT EXECUTE ON PROCEDURE \(database).p TO \(account)", "GRANT PROCESS, REPLICATION CLIENT ON *.* TO \(account)",
                "GRANT `\(role)` TO \(account)", "SET DEFAULT ROLE `\(role)` FOR \(account)",
            ])
        }
        try await session.run([
            "CREATE USER `\(edu)`@localhost IDENTIFIED VIA ed25519 USING PASSWORD('ed-secret')",
            "GRANT ALL PRIVILEGES ON \(database).* TO `\(edu)`@localhost WITH GRANT OPTION",
            "CREATE USER `\(sock)`@localhost IDENTIFIED VIA unix_socket", "GRANT USAGE ON \(database).* TO `\(sock)`@localhost WITH GRANT OPTION",
        ])

        // Read what was made by hand.
        let read = try await AccountReader.read(names: names, query: session.query)
        #expect(
            Set(read.keys) == [
                AccountKey(user: app, host: "10.64.%"), AccountKey(user: app, host: "10.192.%"), AccountKey(user: role, host: ""),
                AccountKey(user: inner, host: ""), AccountKey(user: edu, host: "localhost"), AccountKey(user: sock, host: "localhost"),
            ])
        let appState = try #require(read[AccountKey(user: app, host: "10.64.%")])
        #expect(appState.plugin == "mysql_native_password")
        #expect(appState.authentication?.count == 41)
        #expect(appState.tls == .ssl)
        #expect(appState.limits == ResourceLimits(maxQueriesPerHour: 1000, maxUserConnections: 7))
        let db = GrantNames.quoted(name("db"))
        #expect(
            appState.privileges == [
                "*.*": ["BINLOG MONITOR", "PROCESS"], "\(db).*": ["INSERT", "UPDATE"], "\(db).`t`": ["SELECT (A, B C)"],
                "PROCEDURE \(db).`p`": ["EXECUTE"],
            ])
        #expect(appState.roles == [role])
        #expect(appState.defaultRole == role)
        #expect(read[AccountKey(user: role, host: "")]?.roles == [inner])
        #expect(read[AccountKey(user: role, host: "")]?.privileges == ["\(db).*": ["SELECT", "SHOW VIEW"]])
        #expect(read[AccountKey(user: edu, host: "localhost")]?.plugin == "ed25519")
        #expect(read[AccountKey(user: edu, host: "localhost")]?.authentication?.count == 43)
        #expect(read[AccountKey(user: edu, host: "localhost")]?.privileges == ["\(db).*": ["ALL PRIVILEGES", "GRANT OPTION"]])
        #expect(read[AccountKey(user: sock, host: "localhost")]?.plugin == "unix_socket")
        #expect(read[AccountKey(user: sock, host: "localhost")]?.privileges == ["\(db).*": ["GRANT OPTION"]])
        // The same by LIKE pattern (import).
        #expect(try await AccountReader.read(matching: "\(name.prefix)\\_%", query: session.query) == read)

        // Import: one account per name, valid hashes, and it means exactly what was read.
        let accounts = try GrantImport.accounts(from: read)
        #expect(accounts[app]?.hosts == ["10.192.%", "10.64.%"])
        #expect(accounts[app]?.authentication?.problem == nil)
        #expect(accounts[edu]?.authentication?.plugin == .ed25519)
        #expect(accounts[role]?.kind == .role)
        let expected = GrantPlanner.expected(accounts)
        #expect(expected == read)
        #expect(GrantPlanner.statements(from: read, to: expected, names: names).isEmpty)

        // Gone from the server: the plan from nothing recreates them.
        let drops = GrantPlanner.statements(from: read, to: [:], names: names)
        #expect(drops.map(\.sql).allSatisfy { $0.hasPrefix("DROP ") } && drops.count == 6)
        try await session.run(drops.map(\.sql))
        #expect(try await AccountReader.read(names: names, query: session.query).isEmpty)

        let plan = GrantPlanner.statements(from: [:], to: expected, names: names)
        try await session.run(plan.map(\.sql))
        for statement in plan { #expect(!statement.redacted.contains(appState.authentication!)) }
        let after = try await AccountReader.read(names: names, query: session.query)
        #expect(after == expected)
        #expect(GrantPlanner.differences(expected: expected, observed: after, names: names).isEmpty)
        #expect(GrantPlanner.statements(from: after, to: expected, names: names).isEmpty)

        // The roles Marina created keep the creating account (here root) as their admin: MariaDB
        // lets only a role's admins grant it, even to an account with every privilege.
        let admins = try await session.client.query(
            "SELECT COUNT(*) AS n FROM mysql.roles_mapping WHERE User = 'root' AND Host = 'localhost' AND Admin_option = 'Y' AND Role IN (?, ?)",
            .string(role), .string(inner))
        #expect(admins.first?.int("n") == 2)

        // One privilege less on one account: one statement, and it converges.
        var changed = expected
        changed[AccountKey(user: app, host: "10.64.%")]?.privileges["\(db).*"] = ["INSERT"]
        changed[AccountKey(user: edu, host: "localhost")]?.privileges["\(db).*"] = ["ALL PRIVILEGES"]
        let small = GrantPlanner.statements(from: after, to: changed, names: names)
        #expect(
            small.map(\.sql) == [
                "REVOKE UPDATE ON \(db).* FROM `\(app)`@`10.64.%`", "REVOKE GRANT OPTION ON \(db).* FROM `\(edu)`@`localhost`",
            ])
        try await session.run(small.map(\.sql))
        #expect(try await AccountReader.read(names: names, query: session.query) == changed)

        // Everything back, then every change of kind at once converges too.
        var reshaped = expected
        reshaped[AccountKey(user: app, host: "10.64.%")] = nil
        reshaped[AccountKey(user: app, host: "10.192.%")]?.tls = .x509
        reshaped[AccountKey(user: app, host: "10.192.%")]?.limits = ResourceLimits(maxUpdatesPerHour: 5)
        reshaped[AccountKey(user: app, host: "10.192.%")]?.roles = [inner]
        reshaped[AccountKey(user: app, host: "10.192.%")]?.defaultRole = nil
        reshaped[AccountKey(user: app, host: "10.192.%")]?.privileges["*.*"] = ["ALL PRIVILEGES", "GRANT OPTION"]
        reshaped[AccountKey(user: edu, host: "localhost")]?.plugin = "mysql_native_password"
        reshaped[AccountKey(user: edu, host: "localhost")]?.authentication = appState.authentication
        reshaped[AccountKey(user: sock, host: "localhost")]?.plugin = nil
        reshaped[AccountKey(user: role, host: "")] = nil
        try await session.run(GrantPlanner.statements(from: changed, to: reshaped, names: names).map(\.sql))
        let reshapedRead = try await AccountReader.read(names: names, query: session.query)
        #expect(reshapedRead == reshaped)
        #expect(GrantPlanner.statements(from: reshapedRead, to: reshaped, names: names).isEmpty)

        // And dropped by a plan: nothing of those names is left.
        try await session.run(GrantPlanner.statements(from: reshapedRead, to: [:], names: names).map(\.sql))
        #expect(try await AccountReader.read(names: names, query: session.query).isEmpty)
    }

    @Test("what Marina does not manage is refused when read, naming the account")
    func refusals() async throws {
        let session = try await RootSession.open()
        let name = TestNames()
        let (issuer, admin, role) = (name("issuer"), name("admin"), name("role"))
        try await session.run(cleanup: ["DROP USER IF EXISTS `\(issuer)`@'%', `\(admin)`@'%'", "DROP ROLE IF EXISTS `\(role)`"]) {
            try await refusals(session, issuer: issuer, admin: admin, role: role)
        }
    }

    private func refusals(_ session: RootSession, issuer: String, admin: String, role: String) async throws {
        try await session.run([
            "CREATE USER `\(issuer)`@'%' REQUIRE ISSUER '/CN=ca'", "CREATE USER `\(admin)`@'%'", "CREATE ROLE `\(role)` WITH ADMIN `\(admin)`@'%'",
        ])
        let tls = try await #require(throws: GrantsError.self) { try await AccountReader.read(names: [issuer], query: session.query) }
        #expect(
            tls.description == "'\(issuer)'@'%': REQUIRE ISSUER is not supported: Marina manages REQUIRE NONE, SSL or X509 only "
                + "(ALTER USER … REQUIRE SSL or X509 by hand, then manage it)")
        let adminOption = try await #require(throws: GrantsError.self) { try await AccountReader.read(names: [admin], query: session.query) }
        #expect(adminOption.description.contains("WITH ADMIN OPTION"))
        // Names not asked for are never read: root's grants (PROXY) and the role alone read fine.
        #expect(try await AccountReader.read(names: [role], query: session.query).keys.map(\.description) == [role])
    }
}
