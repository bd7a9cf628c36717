/// Where and how to connect to one `mariadbd`.
///
/// No automatic reconnect is ever enabled: an orchestrator must see every disconnect, so a
/// lost connection surfaces as a `MariaDBError` whose `isConnectionLost` is true.
public struct MariaDBConfiguration: Sendable, CustomStringConvertible {
    public enum Endpoint: Sendable, Equatable, CustomStringConvertible {
        case tcp(host: String, port: Int)
        case socket(path: String)

        public var description: String {
            switch self {
            case .tcp(let host, let port): return "\(host):\(port)"
            case .socket(let path): return path
            }
        }
    }

    /// TLS settings, mapped to `mysql_ssl_set` and `MYSQL_OPT_SSL_VERIFY_SERVER_CERT`.
    public struct TLS: Sendable {
        public var caFile: String?
        public var certificateFile: String?
        public var keyFile: String?
        /// Check that the server's certificate is signed by `caFile` and names the host.
        public var verifyServerCertificate: Bool

        public init(
            caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil,
            verifyServerCertificate: Bool = true
        ) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.verifyServerCertificate = verifyServerCertificate
        }
    }

    public var endpoint: Endpoint
    public var user: String
    /// Never printed: `description` leaves it out.
    public var password: String?
    public var database: String?
    /// Seconds; libmariadb's granularity is one second.
    public var connectTimeout: Int
    public var readTimeout: Int
    public var writeTimeout: Int
    public var tls: TLS?

    public init(
        endpoint: Endpoint, user: String, password: String? = nil, database: String? = nil,
        connectTimeout: Int = 5, readTimeout: Int = 30, writeTimeout: Int = 30, tls: TLS? = nil
    ) {
        self.endpoint = endpoint
        self.user = user
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.writeTimeout = writeTimeout
        self.tls = tls
    }

    public var description: String {
        "\(user)@\(endpoint)\(database.map { "/\($0)" } ?? "")"
    }
}
