import CMariaDB

/// One libmariadb connection handle, used synchronously.
///
/// Owns its `MYSQL *` and closes it in `deinit`. It is deliberately not `Sendable`: a handle
/// must be used by one thread at a time. `MariaDBClient` wraps it for `async` callers and keeps
/// every call off Swift's cooperative pool. Every call here blocks.
public final class MariaDBConnection {
    private let handle: UnsafeMutablePointer<MYSQL>
    public let configuration: MariaDBConfiguration
    private var isOpen = true

    /// Connects, or throws a `MariaDBError` with the client or server error code.
    public init(_ configuration: MariaDBConfiguration) throws {
        try LibraryInitialization.ensure()
        guard let handle = mysql_init(nil) else {
            throw MariaDBError(
                code: UInt32(CR_OUT_OF_MEMORY), sqlState: "HY000", message: "mysql_init returned no handle (out of memory)",
                operation: .initialize, endpoint: configuration.endpoint.description)
        }
        self.handle = handle
        self.configuration = configuration
        let started = ContinuousClock.now
        do {
            try applyOptions()
            try connect()
        } catch var error as MariaDBError {
            mysql_close(handle)
            isOpen = false
            error.timedOut = Self.ranOutOfTime(error, since: started, limit: configuration.connectTimeout)
            throw error
        }
    }

    deinit {
        if isOpen { mysql_close(handle) }
    }

    /// Closes the connection now; later calls fail with a connection-lost error.
    public func close() {
        if isOpen {
            mysql_close(handle)
            isOpen = false
        }
    }

    /// Runs one statement and returns its rows (none for a statement that returns no rows).
    /// If the statement returns several result sets (a procedure call), the first one is
    /// returned and the others are read and discarded, so the connection stays usable.
    public func query(_ sql: String) throws -> QueryResult {
        guard isOpen else {
            throw MariaDBError(
                code: UInt32(CR_SERVER_GONE_ERROR), sqlState: "HY000", message: "the connection was closed",
                operation: .query, endpoint: configuration.endpoint.description)
        }
        let started = ContinuousClock.now
        do {
            let length = UInt(sql.utf8.count)
            let status = sql.withCString { mysql_real_query(handle, $0, length) }
            guard status == 0 else { throw lastError(.query) }

            let first = try readResult()
            while mysql_more_results(handle) != 0 {
                let next = mysql_next_result(handle)
                if next > 0 { throw lastError(.fetch) }
                if next < 0 { break }
                _ = try readResult()
            }
            return first
        } catch var error as MariaDBError {
            error.timedOut = Self.ranOutOfTime(error, since: started, limit: configuration.readTimeout)
            throw error
        }
    }

    /// A lost connection noticed after the whole timeout has passed is that timeout firing.
    static func ranOutOfTime(_ error: MariaDBError, since start: ContinuousClock.Instant, limit seconds: Int) -> Bool {
        guard error.code == UInt32(CR_SERVER_LOST) || error.code == UInt32(CR_SERVER_LOST_EXTENDED) else { return false }
        return ContinuousClock.now - start >= .seconds(seconds) - .milliseconds(100)
    }

    /// Runs one statement that returns no rows and gives the number of rows it changed.
    @discardableResult
    public func execute(_ sql: String) throws -> UInt64 {
        try query(sql).affectedRows
    }

    /// The server's thread id for this connection (what `KILL` takes).
    public var serverThreadID: UInt { mysql_thread_id(handle) }

    private func readResult() throws -> QueryResult {
        guard let result = mysql_store_result(handle) else {
            if mysql_field_count(handle) != 0 { throw lastError(.fetch) }
            return QueryResult(columns: [], rows: [], affectedRows: mysql_affected_rows(handle))
        }
        defer { mysql_free_result(result) }

        let fieldCount = Int(mysql_num_fields(result))
        var columns = [String]()
        columns.reserveCapacity(fieldCount)
        if let fields = mysql_fetch_fields(result) {
            for index in 0..<fieldCount {
                columns.append(String(cString: fields[index].name))
            }
        }

        var rows = [Row]()
        rows.reserveCapacity(Int(mysql_num_rows(result)))
        while let row = mysql_fetch_row(result) {
            guard let lengths = mysql_fetch_lengths(result) else { throw lastError(.fetch) }
            var values = [[UInt8]?]()
            values.reserveCapacity(fieldCount)
            for index in 0..<fieldCount {
                if let cell = row[index] {
                    let buffer = UnsafeRawBufferPointer(start: cell, count: Int(lengths[index]))
                    values.append(Array(buffer))
                } else {
                    values.append(nil)
                }
            }
            rows.append(Row(columns: columns, values: values))
        }
        if mysql_errno(handle) != 0 { throw lastError(.fetch) }
        return QueryResult(columns: columns, rows: rows, affectedRows: 0)
    }

    private func applyOptions() throws {
        let config = configuration
        try check(marina_mysql_option_uint(handle, MYSQL_OPT_CONNECT_TIMEOUT, UInt32(config.connectTimeout)), "connect timeout")
        try check(marina_mysql_option_uint(handle, MYSQL_OPT_READ_TIMEOUT, UInt32(config.readTimeout)), "read timeout")
        try check(marina_mysql_option_uint(handle, MYSQL_OPT_WRITE_TIMEOUT, UInt32(config.writeTimeout)), "write timeout")
        // Never reconnect behind the caller's back.
        try check(marina_mysql_option_bool(handle, MYSQL_OPT_RECONNECT, 0), "reconnect")
        try check(marina_mysql_option_string(handle, MYSQL_SET_CHARSET_NAME, "utf8mb4"), "character set")
        // Read no option file: what is configured here is all that applies.
        if case .socket = config.endpoint {
            var protocolValue = UInt32(MYSQL_PROTOCOL_SOCKET.rawValue)
            try check(mysql_options(handle, MYSQL_OPT_PROTOCOL, &protocolValue), "protocol")
        } else {
            var protocolValue = UInt32(MYSQL_PROTOCOL_TCP.rawValue)
            try check(mysql_options(handle, MYSQL_OPT_PROTOCOL, &protocolValue), "protocol")
        }
        if let tls = config.tls {
            // Errors in these files are reported by mysql_real_connect.
            _ = mysql_ssl_set(handle, tls.keyFile, tls.certificateFile, tls.caFile, nil, nil)
            try check(marina_mysql_option_bool(handle, MYSQL_OPT_SSL_ENFORCE, 1), "TLS enforce")
            try check(
                marina_mysql_option_bool(handle, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, tls.verifyServerCertificate ? 1 : 0),
                "TLS verify")
        }
    }

    private func connect() throws {
        let config = configuration
        let connected: UnsafeMutablePointer<MYSQL>?
        switch config.endpoint {
        case .tcp(let host, let port):
            connected = mysql_real_connect(handle, host, config.user, config.password, config.database, UInt32(port), nil, 0)
        case .socket(let path):
            connected = mysql_real_connect(handle, nil, config.user, config.password, config.database, 0, path, 0)
        }
        guard connected != nil else { throw lastError(.connect) }
    }

    private func check(_ status: Int32, _ what: String) throws {
        guard status == 0 else {
            throw MariaDBError(
                code: UInt32(CR_UNKNOWN_ERROR), sqlState: "HY000", message: "could not set the \(what) option",
                operation: .configure, endpoint: configuration.endpoint.description)
        }
    }

    private func lastError(_ operation: MariaDBError.Operation) -> MariaDBError {
        MariaDBError(
            code: mysql_errno(handle),
            sqlState: String(cString: mysql_sqlstate(handle)),
            message: String(cString: mysql_error(handle)),
            operation: operation,
            endpoint: configuration.endpoint.description
        )
    }
}

/// `mysql_library_init` must run once, before any thread uses the library.
enum LibraryInitialization {
    private static let status: Int32 = marina_mysql_library_init()

    static func ensure() throws {
        guard status == 0 else {
            throw MariaDBError(code: UInt32(CR_UNKNOWN_ERROR), sqlState: "HY000", message: "mysql_library_init failed", operation: .initialize)
        }
    }
}

extension MariaDBConnection {
    /// The version of the libmariadb this program runs with.
    public static var libraryVersion: String { String(cString: mysql_get_client_info()) }
}
