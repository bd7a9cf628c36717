/// How to reach an etcd cluster through its v3 JSON gateway.
public struct EtcdConfiguration: Sendable, CustomStringConvertible {
    /// Client TLS: a CA to verify the servers, and a certificate and key to present.
    public struct TLS: Sendable {
        public var caFile: String?
        public var certificateFile: String?
        public var keyFile: String?
        public var verifyServer: Bool

        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, verifyServer: Bool = true) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.verifyServer = verifyServer
        }
    }

    /// etcd's username/password authentication. The password is never printed.
    public struct Credentials: Sendable {
        public var username: String
        public var password: String

        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }
    }

    /// Base URLs such as `http://127.0.0.1:2379`, tried in order; a request that cannot reach
    /// one endpoint goes to the next.
    public var endpoints: [String]
    public var tls: TLS?
    public var credentials: Credentials?
    /// Seconds to establish a TCP (and TLS) connection to one endpoint.
    public var connectTimeout: Double
    /// Seconds for a whole unary request.
    public var requestTimeout: Double

    public init(endpoints: [String], tls: TLS? = nil, credentials: Credentials? = nil,
                connectTimeout: Double = 2, requestTimeout: Double = 5) {
        self.endpoints = endpoints.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.tls = tls
        self.credentials = credentials
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
    }

    public var description: String {
        endpoints.joined(separator: ",") + (credentials.map { " as \($0.username)" } ?? "")
    }
}
