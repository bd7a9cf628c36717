/// One session on a MariaDB server, as Marina's controller and prober use it. `MariaDBClient`
/// implements it over libmariadb; `MemoryMariaDB` (module `MarinaTwins`) is the in-memory twin
/// the decision tests run on.
///
/// The contract:
/// - **One statement at a time.** Calls from several tasks are serialised in order, as one
///   connection requires; a statement that hangs holds up every later one on the session.
/// - **`query(_:checkedBy:)`** runs `check` right before the statement leaves, on the same
///   serial context, and sends nothing if it throws (its error is rethrown as is).
/// - **Errors are `MariaDBError`s.** One the server answered (`refused`) means the statement
///   did not apply. One where the session broke (`isConnectionLost`) means it may or may not
///   have applied, except when `statementNotSent`, which means it was never sent. A session
///   that broke stays broken: every later call fails with `isConnectionLost`.
/// - **No deadline of its own.** A statement runs until the server answers, the connection's
///   read timeout fires (a lost-connection error, the statement possibly still running on the
///   server), or the session is killed. A caller with a deadline (the controller's `Hosts`)
///   stops waiting at it and kills the statement by `threadID` from another session.
/// - **`threadID`** is the server's id for the session (`CONNECTION_ID()`), known from the
///   start, so that another session can `KILL CONNECTION` it while it hangs. A killed
///   session's running statement ends with a lost-connection error.
public protocol DatabaseSession: AnyObject, Sendable {
    var threadID: UInt { get }
    /// Runs a statement and returns its rows.
    func query(_ sql: String) async throws -> QueryResult
    /// Runs a statement after `check` allows it (see the contract).
    func query(_ sql: String, checkedBy check: @escaping @Sendable () throws -> Void) async throws -> QueryResult
    /// Closes the session. Safe to call more than once.
    func close() async
}

/// Opens sessions. "Unreachable" is a `MariaDBError` with operation `.connect`.
public protocol DatabaseConnector: Sendable {
    func connect(_ configuration: MariaDBConfiguration) async throws -> any DatabaseSession
}

extension DatabaseSession {
    /// Runs a statement with `?` placeholders bound to quoted arguments (see `SQL.format`).
    public func query(_ template: String, _ arguments: SQLArgument...) async throws -> QueryResult {
        try await query(try SQL.format(template, arguments))
    }

    /// Runs a statement that returns no rows; gives the number of rows changed.
    @discardableResult
    public func execute(_ sql: String) async throws -> UInt64 {
        try await query(sql).affectedRows
    }

    @discardableResult
    public func execute(_ template: String, _ arguments: SQLArgument...) async throws -> UInt64 {
        try await query(try SQL.format(template, arguments)).affectedRows
    }
}

/// Real servers, over libmariadb.
public struct MariaDBConnector: DatabaseConnector {
    public init() {}

    public func connect(_ configuration: MariaDBConfiguration) async throws -> any DatabaseSession {
        try await MariaDBClient.connect(configuration)
    }
}

extension MariaDBClient: DatabaseSession {}
