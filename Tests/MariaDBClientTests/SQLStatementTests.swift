import MariaDBClient
import SQLText
import Testing

/// A secret in SQL text: sent as a plain string literal, shown as `<secret>` everywhere else.
@Suite("SQL statements that carry a secret")
struct SQLStatementTests {
    @Test("the secret is sent with its quotes doubled and shown as <secret>; its description never reveals it")
    func redaction() {
        let password = Secret("pa'ss\"wörd")
        let statement: SQLStatement = "CHANGE MASTER TO MASTER_USER = 'repl', MASTER_PASSWORD = \(secret: password)"
        #expect(statement.text == "CHANGE MASTER TO MASTER_USER = 'repl', MASTER_PASSWORD = 'pa''ss\"wörd'")
        #expect(statement.shown == "CHANGE MASTER TO MASTER_USER = 'repl', MASTER_PASSWORD = <secret>")
        #expect(statement.carriesSecret)
        #expect("\(statement)" == statement.shown)
        #expect("\(password)" == "<secret>" && String(reflecting: password) == "<secret>")
        let plain: SQLStatement = "SELECT \(42)"
        #expect(!plain.carriesSecret && plain.text == "SELECT 42")
    }

    @Test(
        "secrets that no plain literal carries the same way under every sql_mode are named",
        arguments: [
            ("simple-Password_1", nil),
            ("quote'and\"double", nil),
            ("ünïcödé", nil),
            ("back\\slash", "it contains a backslash"),
            ("tab\there", "it contains a control character"),
            (String(repeating: "x", count: 97), "it is longer than 96 characters"),
        ] as [(String, String?)])
    func problems(_ value: String, _ problem: String?) {
        #expect(Secret(value).problemAsTextLiteral == problem)
    }
}
