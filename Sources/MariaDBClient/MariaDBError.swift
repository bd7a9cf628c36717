import CMariaDB

/// An error reported by libmariadb or the server, with the native code kept.
///
/// `code` is `mysql_errno` (client errors are 2000-2999, server errors below 2000 or 4000+),
/// `sqlState` the five-character SQLSTATE, `operation` what Marina was doing when it failed.
/// The description never contains a password: it names the operation, the endpoint and the
/// server's message only.
public struct MariaDBError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What the client was doing when the error happened.
    public enum Operation: String, Sendable {
        case initialize, configure, connect, query, fetch, quote, close
    }

    public var code: UInt32
    public var sqlState: String
    public var message: String
    public var operation: Operation
    /// `host:port` or the socket path, when known.
    public var endpoint: String?
    /// The call failed after running for the whole connect or read timeout. libmariadb
    /// reports such a timeout with the same code as a lost connection (2013), so the
    /// connection classifies it where it happens, knowing its own timeouts.
    public var timedOut: Bool = false

    public init(code: UInt32, sqlState: String, message: String, operation: Operation, endpoint: String? = nil) {
        self.code = code
        self.sqlState = sqlState
        self.message = message
        self.operation = operation
        self.endpoint = endpoint
    }

    public var description: String {
        let place = endpoint.map { " on \($0)" } ?? ""
        return "MariaDB \(operation.rawValue) failed\(place): [\(code)/\(sqlState)] \(message)"
    }

    /// The connection is gone: the server went away, was killed, or the network dropped.
    /// The handle that saw this error cannot be used again; open a new one.
    public var isConnectionLost: Bool {
        switch code {
        case UInt32(CR_SERVER_GONE_ERROR), UInt32(CR_SERVER_LOST), UInt32(CR_CONNECTION_ERROR),
            UInt32(CR_CONN_HOST_ERROR), UInt32(CR_SERVER_LOST_EXTENDED), 1053 /* ER_SERVER_SHUTDOWN */,
            1927 /* ER_CONNECTION_KILLED */:
            return true
        default:
            return false
        }
    }

    /// The statement never reached the server: sending it failed (`CR_SERVER_GONE_ERROR`), so it
    /// cannot have run and may be retried once on a new connection. A connection lost *during* a
    /// statement (`CR_SERVER_LOST`, also what a server-side close of an idle connection looks
    /// like, since the write still succeeds) leaves the outcome unknown: read it back.
    public var statementNotSent: Bool {
        code == UInt32(CR_SERVER_GONE_ERROR) && operation == .query
    }

    /// The server refused the credentials or the privilege needed.
    public var isAccessDenied: Bool {
        switch code {
        case 1044 /* ER_DBACCESS_DENIED_ERROR */, 1045 /* ER_ACCESS_DENIED_ERROR */,
            1142 /* ER_TABLEACCESS_DENIED_ERROR */, 1143 /* ER_COLUMNACCESS_DENIED_ERROR */,
            1227 /* ER_SPECIFIC_ACCESS_DENIED_ERROR */, 1698 /* ER_ACCESS_DENIED_NO_PASSWORD_ERROR */:
            return true
        default:
            return false
        }
    }

    /// The server refused a write because it runs with `read_only` (or `super_read_only`).
    public var isReadOnly: Bool {
        if code == 1836 /* ER_READ_ONLY_MODE */ { return true }
        // ER_OPTION_PREVENTS_STATEMENT is shared by several options; only the read-only ones count.
        return code == 1290 && message.contains("read-only")
    }

    /// A connect, read or write timeout fired (the server did not answer in time).
    public var isTimeout: Bool {
        if timedOut { return true }
        let lowered = message.lowercased()
        return lowered.contains("timeout") || lowered.contains("timed out") || lowered.contains("(110)")
    }
}
