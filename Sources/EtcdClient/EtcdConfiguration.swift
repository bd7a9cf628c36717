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

    public init(
        endpoints: [String], tls: TLS? = nil, credentials: Credentials? = nil,
        connectTimeout: Double = 2, requestTimeout: Double = 5
    ) {
        // A trailing slash is dropped (`http://host:2379/`), but not from `http://`, so that the
        // error for an endpoint without a host shows what was written.
        self.endpoints = endpoints.map { $0.hasSuffix("/") && !$0.hasSuffix("//") ? String($0.dropLast()) : $0 }
        self.tls = tls
        self.credentials = credentials
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
    }

    public var description: String {
        endpoints.joined(separator: ",") + (credentials.map { " as \($0.username)" } ?? "")
    }
}

/// An etcd setting that cannot be used: which one (a flag such as `--etcd`, an environment
/// variable, or a configuration key such as `etcd.endpoints`), and what is wrong with it.
public struct EtcdConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The flag, variable or key, as the user wrote it.
    public var setting: String
    public var problem: String

    public init(setting: String, problem: String) {
        self.setting = setting
        self.problem = problem
    }

    public var description: String { "\(setting) \(problem)" }
}

extension EtcdConfiguration {
    /// The endpoints of a comma-separated list (`--etcd`, `MARINA_ETCD`): blanks around and
    /// between commas are ignored; the list must name at least one `http://` or `https://` URL.
    /// `setting` names where the list came from, for the error.
    public static func endpoints(fromList list: String, setting: String) throws(EtcdConfigurationError) -> [String] {
        let urls = list.split(separator: ",").map { String($0.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()) }
            .filter { !$0.isEmpty }
        try checkEndpoints(urls, setting: setting)
        return urls
    }

    /// Refuses a configuration an `EtcdClient` cannot use: no endpoint, an endpoint that is not
    /// an `http://` or `https://` URL with a host, a timeout that is not a positive, finite
    /// number of seconds. `setting` names the endpoints' flag or key (`--etcd`, `etcd.endpoints`).
    /// Every way Marina builds a configuration from what a user typed goes through this first:
    /// `EtcdClient` itself treats an empty endpoint list as a programming error.
    public func validate(setting: String) throws(EtcdConfigurationError) {
        try Self.checkEndpoints(endpoints, setting: setting)
        for (name, value) in [("connect timeout", connectTimeout), ("request timeout", requestTimeout)]
        where !value.isFinite || value <= 0 || value > Self.longestTimeout {
            throw EtcdConfigurationError(
                setting: setting, problem: "has an unusable \(name) of \(value) seconds (must be above 0 and at most \(Int(Self.longestTimeout)))")
        }
    }

    /// The longest connect or request timeout accepted, in seconds.
    public static let longestTimeout: Double = 3600

    private static func checkEndpoints(_ urls: [String], setting: String) throws(EtcdConfigurationError) {
        guard !urls.isEmpty else {
            throw EtcdConfigurationError(setting: setting, problem: "must list at least one URL (such as http://127.0.0.1:2379)")
        }
        for (index, url) in urls.enumerated() {
            let label = urls.count == 1 ? "" : " (endpoint \(index + 1))"
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw EtcdConfigurationError(setting: setting, problem: "endpoint \"\(url)\"\(label) must start with http:// or https://")
            }
            let host = url.drop { $0 != "/" }.dropFirst(2).prefix { $0 != "/" && $0 != ":" }
            guard !host.isEmpty, !url.contains(where: { $0.isWhitespace || $0.isNewline }) else {
                throw EtcdConfigurationError(setting: setting, problem: "endpoint \"\(url)\"\(label) must name a host, as in http://127.0.0.1:2379")
            }
        }
    }
}
