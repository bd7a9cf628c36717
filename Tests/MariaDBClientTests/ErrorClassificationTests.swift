import MariaDBClient
import Testing

/// Which failed statements may be sent again: only one that never left (the connection was
/// already gone when it was written). One lost while the server had it has an unknown outcome.
@Suite("Error classification")
struct ErrorClassificationTests {
    @Test(
        "sent or not",
        arguments: [
            (UInt32(2006), MariaDBError.Operation.query, true),  // CR_SERVER_GONE_ERROR: the write failed
            (2013, .query, false),  // CR_SERVER_LOST: lost while waiting for the answer
            (2055, .query, false),  // CR_SERVER_LOST_EXTENDED
            (1927, .query, false),  // ER_CONNECTION_KILLED
            (2006, .connect, false),  // not a statement
            (1290, .query, false),  // read-only refusal: it reached the server
        ] as [(UInt32, MariaDBError.Operation, Bool)])
    func notSent(_ code: UInt32, _ operation: MariaDBError.Operation, _ expected: Bool) {
        let error = MariaDBError(code: code, sqlState: "HY000", message: "", operation: operation)
        #expect(error.statementNotSent == expected)
    }
}
