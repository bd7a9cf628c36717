import MariaDBClient
import MarinaTestSupport
import Testing

/// Strings that break naive quoting: quotes, backslashes, NUL, control bytes, multi-byte
/// characters, and the tricks used to end a literal early.
let hostileStrings: [String] = [
    "", "plain", "O'Reilly", "''", "\\", "a\\", "\\'", "\\\\'", "\"double\"", "`backtick`",
    "nul\u{0}inside", "\u{0}", "\n\r\t\u{1A}\u{8}", "%_", "?", "'; DROP TABLE t; --", "\\'; DROP TABLE t; --",
    "日本語", "Ünïcödé", "emoji 🐬🛢️", "\u{FEFF}bom", "a\u{0}'\\\"`\n",
    String(repeating: "x'", count: 500),
]

@Suite("SQL quoting round-trips any string through a real server")
struct QuotingTests {
    @Test("literals read back as exactly the same bytes", arguments: hostileStrings)
    func literalRoundTrip(_ value: String) async throws {
        let client = try await TestServers.shared().root("db1001")
        let row = try #require(try await client.query("SELECT \(SQL.quote(value)) AS v").first)
        #expect(row.bytes("v") == Array(value.utf8))
        // The same through a placeholder.
        let bound = try #require(try await client.query("SELECT ? AS v, ? AS n", .string(value), nil).first)
        #expect(bound.bytes("v") == Array(value.utf8))
        #expect(bound.bytes("n") == nil)
        await client.close()
    }

    @Test("literals stay correct under NO_BACKSLASH_ESCAPES and ANSI_QUOTES")
    func sqlModes() async throws {
        let client = try await TestServers.shared().root("db1001")
        try await client.execute("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,ANSI_QUOTES'")
        for value in hostileStrings {
            let row = try #require(try await client.query("SELECT \(SQL.quote(value)) AS v").first)
            #expect(row.bytes("v") == Array(value.utf8), "\(value.debugDescription)")
        }
        await client.close()
    }

    @Test("stored in utf8mb4 and binary columns and read back unchanged")
    func storedValues() async throws {
        let client = try await TestServers.shared().root("db1001")
        let database = try SQL.quoteIdentifier("quoting `db` \(UInt32.random(in: 0...UInt32.max))")
        try await client.execute("CREATE DATABASE \(database)")
        try await client.execute("CREATE TABLE \(database).t (id INT PRIMARY KEY, s TEXT CHARACTER SET utf8mb4, b BLOB)")
        for (index, value) in hostileStrings.enumerated() {
            try await client.execute("INSERT INTO \(database).t VALUES (?, ?, ?)", .integer(Int64(index)), .string(value), .string(value))
        }
        let rows = try await client.query("SELECT id, s, b FROM \(database).t ORDER BY id").rows
        #expect(rows.count == hostileStrings.count)
        for row in rows {
            let value = hostileStrings[try #require(row.int("id"))]
            #expect(row.bytes("s") == Array(value.utf8))
            #expect(row.bytes("b") == Array(value.utf8))
        }
        try await client.execute("DROP DATABASE \(database)")
        await client.close()
    }

    @Test("hostile identifiers name exactly the table meant")
    func identifiers() async throws {
        let client = try await TestServers.shared().root("db1001")
        let database = try SQL.quoteIdentifier("ids_\(UInt32.random(in: 0...UInt32.max))")
        try await client.execute("CREATE DATABASE \(database)")
        for name in ["a`b", "``", "x'; DROP DATABASE mysql; --", "spa ce", "日本", "\"q\""] {
            let table = try SQL.quoteIdentifier(name)
            try await client.execute("CREATE TABLE \(database).\(table) (\(table) INT)")
            try await client.execute("INSERT INTO \(database).\(table) VALUES (7)")
            let row = try await client.query("SELECT \(table) AS v FROM \(database).\(table)").first
            #expect(row?.int("v") == 7)
            let listed = try await client.query(
                "SELECT table_name AS n FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                .string(String(database.dropFirst().dropLast())), .string(name))
            #expect(listed.rows.count == 1, "\(name)")
        }
        try await client.execute("DROP DATABASE \(database)")
        await client.close()
    }

    @Test("identifiers with NUL or empty are refused before reaching the server")
    func invalidIdentifiers() {
        #expect(throws: SQLTextError.self) { try SQL.quoteIdentifier("a\u{0}b") }
        #expect(throws: SQLTextError.self) { try SQL.quoteIdentifier("") }
    }

    @Test("placeholders are counted and question marks inside quotes are left alone")
    func placeholders() throws {
        #expect(try SQL.format("SELECT '?', ?, \"?\", `?`", [1]) == "SELECT '?', 1, \"?\", `?`")
        #expect(throws: SQLTextError.self) { try SQL.format("SELECT ?, ?", [1]) }
        #expect(throws: SQLTextError.self) { try SQL.format("SELECT 1", [1]) }
    }
}
