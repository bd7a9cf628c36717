import BlockingIO
@_exported import SQLText

/// An `async` connection to one `mariadbd`.
///
/// Each client owns one `MariaDBConnection` and one serial `BlockingQueue`: every libmariadb
/// call runs there, in order, never on Swift's cooperative pool. The client is `Sendable`; calls
/// from several tasks are serialised on its queue, as one connection requires.
public final class MariaDBClient: Sendable {
    private let queue: BlockingQueue
    private let connection: ConnectionBox
    public let configuration: MariaDBConfiguration
    /// The server's thread id for this connection, read when it opened: what `KILL` takes. Kept
    /// here because a statement that hangs blocks the connection's queue, and killing it is
    /// exactly when the id is needed.
    public let threadID: UInt

    private init(queue: BlockingQueue, connection: ConnectionBox, configuration: MariaDBConfiguration, threadID: UInt) {
        self.queue = queue
        self.connection = connection
        self.configuration = configuration
        self.threadID = threadID
    }

    /// Opens a connection; throws `MariaDBError` (see `isAccessDenied`, `isConnectionLost`, `isTimeout`).
    public static func connect(_ configuration: MariaDBConfiguration) async throws -> MariaDBClient {
        let queue = BlockingQueue(label: "mariadb \(configuration.endpoint)")
        let (box, threadID) = try await queue.run {
            let connection = try MariaDBConnection(configuration)
            return (ConnectionBox(connection), connection.serverThreadID)
        }
        return MariaDBClient(queue: queue, connection: box, configuration: configuration, threadID: threadID)
    }

    /// Runs a statement and returns its rows.
    public func query(_ sql: String) async throws -> QueryResult {
        let box = connection
        return try await queue.run { try box.connection.query(sql) }
    }

    /// Runs a statement after `check` allows it, both on the connection's own thread, so that
    /// nothing can come between the check and the statement leaving for the server but the
    /// send itself. `check` throws to refuse; the statement is then not sent.
    public func query(_ sql: String, checkedBy check: @escaping @Sendable () throws -> Void) async throws -> QueryResult {
        let box = connection
        return try await queue.run {
            try check()
            return try box.connection.query(sql)
        }
    }

    // `query(_:_:)` with placeholders and `execute` come with `DatabaseSession`.

    /// The server thread id of this connection.
    public func serverThreadID() async throws -> UInt {
        let box = connection
        return try await queue.run { box.connection.serverThreadID }
    }

    /// Closes the connection. Safe to call more than once.
    public func close() async {
        let box = connection
        _ = try? await queue.run { box.connection.close() }
    }
}

/// Carries the connection into the queue's closures. Only ever touched on that queue, which
/// is what makes the unchecked conformance sound.
private final class ConnectionBox: @unchecked Sendable {
    let connection: MariaDBConnection
    init(_ connection: MariaDBConnection) { self.connection = connection }
}
