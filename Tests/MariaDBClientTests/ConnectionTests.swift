import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Testing

@Suite("MariaDBClient against a real mariadbd")
struct ConnectionTests {
    @Test("connects over TCP with a password and over the unix socket as root")
    func connectsByTCPAndSocket() async throws {
        let sandbox = try await TestServers.shared()
        let tcp = try await MariaDBClient.connect(try sandbox.adminConfiguration("db1001"))
        let overTCP = try await tcp.query("SELECT CURRENT_USER() AS who, @@port AS port").first
        #expect(overTCP?["who"] == "marina@127.0.0.1")
        #expect(overTCP?.int("port") == sandbox.instance(named: "db1001")?.port)
        await tcp.close()

        let socket = try await sandbox.root("db1002")
        let overSocket = try await socket.query("SELECT CURRENT_USER() AS who, @@server_id AS id").first
        #expect(overSocket?["who"] == "root@localhost")
        #expect(overSocket?.int("id") == 1002)
        await socket.close()
    }

    @Test("a wrong password is an access-denied error that does not print the password")
    func wrongPasswordIsAccessDenied() async throws {
        let sandbox = try await TestServers.shared()
        var configuration = try sandbox.adminConfiguration("db1001")
        configuration.password = "not-the-password-xyzzy"
        let error = try await #require(throws: MariaDBError.self) {
            try await MariaDBClient.connect(configuration)
        }
        #expect(error.code == 1045)
        #expect(error.sqlState == "28000")
        #expect(error.operation == .connect)
        #expect(error.isAccessDenied)
        #expect(!error.isConnectionLost)
        #expect(!error.description.contains("xyzzy"))
        #expect(!String(describing: configuration).contains("xyzzy"))
    }

    @Test("nothing listening gives a connection error, not a hang")
    func refusedConnection() async throws {
        let port = try Ports.findFreeBlock(count: 1)
        let error = try await #require(throws: MariaDBError.self) {
            try await MariaDBClient.connect(MariaDBConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port), user: "x", connectTimeout: 2))
        }
        #expect(error.code == 2002 || error.code == 2003)
        #expect(error.isConnectionLost)
        #expect(error.endpoint == "127.0.0.1:\(port)")
    }

    @Test("SQL NULL is nil and the empty string is empty, with column names")
    func nullVersusEmptyString() async throws {
        let client = try await TestServers.shared().root("db1001")
        let result = try await client.query("SELECT NULL AS missing, '' AS empty, 0 AS zero, 'x' AS Mixed")
        #expect(result.columns == ["missing", "empty", "zero", "Mixed"])
        let row = try #require(result.first)
        #expect(row.bytes("missing") == nil)
        #expect(row.has("missing"))
        #expect(row.bytes("empty") == [])
        #expect(row["empty"] == "")
        #expect(row.int("zero") == 0)
        #expect(row["mixed"] == "x")
        #expect(row.bytes("no_such_column") == nil)
        #expect(!row.has("no_such_column"))
        await client.close()
    }

    @Test("statements report affected rows; errors keep errno, SQLSTATE and the operation")
    func statementsAndErrors() async throws {
        let client = try await TestServers.shared().root("db1001")
        let database = "stmt_\(UInt32.random(in: 0...UInt32.max))"
        try await client.execute("CREATE DATABASE \(try SQL.quoteIdentifier(database))")
        try await client.execute("CREATE TABLE \(try SQL.quoteIdentifier(database)).t (id INT PRIMARY KEY, v VARCHAR(10))")
        let inserted = try await client.execute("INSERT INTO \(try SQL.quoteIdentifier(database)).t VALUES (1, 'a'), (2, 'b'), (3, NULL)")
        #expect(inserted == 3)
        let updated = try await client.execute("UPDATE \(try SQL.quoteIdentifier(database)).t SET v = 'z' WHERE id >= ?", .integer(2))
        #expect(updated == 2)
        let error = try await #require(throws: MariaDBError.self) {
            try await client.execute("INSERT INTO \(try SQL.quoteIdentifier(database)).t VALUES (1, 'dup')")
        }
        #expect(error.code == 1062)
        #expect(error.sqlState == "23000")
        #expect(error.operation == .query)
        let syntax = try await #require(throws: MariaDBError.self) { try await client.query("SELEC 1") }
        #expect(syntax.code == 1064)
        #expect(syntax.sqlState == "42000")
        // The connection is still usable after server errors.
        #expect(try await client.query("SELECT COUNT(*) AS n FROM \(try SQL.quoteIdentifier(database)).t").first?.int("n") == 3)
        try await client.execute("DROP DATABASE \(try SQL.quoteIdentifier(database))")
        await client.close()
    }

    @Test("a write on a read_only replica is classified as read-only")
    func readOnlyClassifier() async throws {
        let sandbox = try await TestServers.shared()
        let primary = try await sandbox.root("db1001")
        let suffix = UInt32.random(in: 0...UInt32.max)
        let database = "ro_\(suffix)"
        let user = "ro_\(suffix)"
        try await primary.execute("CREATE DATABASE \(database)")
        try await primary.execute("CREATE TABLE \(database).t (id INT PRIMARY KEY)")
        try await primary.execute("CREATE USER ?@'localhost'", .string(user))
        try await primary.execute("GRANT INSERT, SELECT ON \(database).* TO ?@'localhost'", .string(user))
        let position = try await primary.query("SELECT @@gtid_binlog_pos AS p").first?["p"] ?? ""
        let replicaRoot = try await sandbox.root("db1002")
        #expect(try await replicaRoot.query("SELECT MASTER_GTID_WAIT(?, 10) AS w", .string(position)).first?.int("w") == 0)

        let replica = try #require(sandbox.instance(named: "db1002"))
        let limited = try await MariaDBClient.connect(MariaDBConfiguration(endpoint: .socket(path: replica.socket), user: user))
        let error = try await #require(throws: MariaDBError.self) {
            try await limited.execute("INSERT INTO \(database).t VALUES (1)")
        }
        #expect(error.isReadOnly)
        #expect(error.code == 1290)
        #expect(try await replicaRoot.query("SELECT COUNT(*) AS n FROM \(database).t").first?.int("n") == 0)
        await limited.close()
        try await primary.execute("DROP USER ?@'localhost'", .string(user))
        try await primary.execute("DROP DATABASE \(database)")
        await replicaRoot.close()
        await primary.close()
    }

    @Test("a query longer than the read timeout fails with a timeout error")
    func readTimeoutFires() async throws {
        let sandbox = try await TestServers.shared()
        let member = try #require(sandbox.instance(named: "db1003"))
        let client = try await MariaDBClient.connect(
            MariaDBConfiguration(endpoint: .socket(path: member.socket), user: "root", readTimeout: 1))
        let error = try await #require(throws: MariaDBError.self) { try await client.query("SELECT SLEEP(10)") }
        #expect(error.isTimeout)
        #expect(error.isConnectionLost)
        // No silent reconnect: the handle stays dead.
        let after = try await #require(throws: MariaDBError.self) { try await client.query("SELECT 1") }
        #expect(after.isConnectionLost)
        await client.close()
    }
}
