#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import EtcdClient
import Observation

/// `marina agent --config FILE`: what one agent watches and where it reports.
/// Unknown keys are refused with their path. Sample: `config/agent.example.yaml`.
public struct AgentConfiguration: Decodable, Sendable, Equatable {
    /// Seconds between two probes of an instance. Default 1.
    public var interval: Double
    /// Seconds to connect to an instance. Default 2.
    public var connectTimeout: Int
    /// Seconds a probe query may take; a server that hangs longer (a SIGSTOPped one) is
    /// reported unreachable. Default 2.
    public var readTimeout: Int
    /// Seconds the agent's etcd lease lives without a keep-alive: observations of a dead agent
    /// vanish this long after it dies. Default 10.
    public var leaseTTL: Int
    /// Seconds between two writes of an observation that has not changed meaningfully. Default 10.
    public var refresh: Double
    /// Heartbeat lag boundaries in seconds; crossing one is published at once.
    /// Default [2, 5, 10, 30, 60, 300]; keep the lowest above the heartbeat interval.
    public var lagBands: [Double]
    public var etcd: Etcd
    public var heartbeat: Heartbeat
    public var instances: [Instance]

    /// Where to report.
    public struct Etcd: Decodable, Sendable, Equatable {
        /// Endpoint URLs, tried in order.
        public var endpoints: [String]
        /// TLS: CA to verify etcd, and a client certificate and key.
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        /// Username/password authentication; the password is read from `password_file`.
        public var user: String?
        public var passwordFile: String?
        /// Key prefix of the source of truth. Default `/marina/v1`.
        public var root: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case endpoints, caFile = "ca_file", certFile = "cert_file", keyFile = "key_file", user, passwordFile = "password_file", root
        }
    }

    /// How to measure replication lag, as MediaWiki does.
    public struct Heartbeat: Decodable, Sendable, Equatable {
        /// `database.table` of pt-heartbeat. Default `heartbeat.heartbeat`.
        public var table: String
        /// The primary datacenter: with Wikimedia's `shard`/`datacenter` columns, lag is measured
        /// from the newest row of the instance's shard written in this datacenter.
        public var datacenter: String?
        /// Whether the agent writes the heartbeat itself (instead of pt-heartbeat): once per
        /// probe, on each instance that is the committed primary of its shard and writable.
        public var write: Bool

        public init(table: String = "heartbeat.heartbeat", datacenter: String? = nil, write: Bool = false) {
            self.table = table
            self.datacenter = datacenter
            self.write = write
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case table, datacenter, write }
    }

    /// One `mariadbd` on this host.
    public struct Instance: Decodable, Sendable, Equatable {
        /// Its name in the source of truth (`db1001`, `db1101:3317`).
        public var name: String
        /// A unix socket, or `host` and `port`.
        public var socket: String?
        public var host: String?
        public var port: Int?
        /// An option file with `[client]` `user` and `password`: the agent's own account
        /// (`sql/agent-grants.sql`). Required, with a `user`: there is no default account, so
        /// the agent never connects as `root` (over a socket, perhaps with no password) by mistake.
        /// Optional in this type only for callers that build a `Prober` themselves.
        public var credentialsFile: String?
        /// Its heartbeat shard (its section, `s1`). Without one, or without the Wikimedia
        /// columns, lag is measured from the rows of its source's `server_id`.
        public var shard: String?

        public init(name: String, socket: String? = nil, host: String? = nil, port: Int? = nil, credentialsFile: String? = nil,
                    shard: String? = nil) {
            self.name = name
            self.socket = socket
            self.host = host
            self.port = port
            self.credentialsFile = credentialsFile
            self.shard = shard
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case name, socket, host, port, credentialsFile = "credentials_file", shard }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case interval, connectTimeout = "connect_timeout", readTimeout = "read_timeout", leaseTTL = "lease_ttl", refresh
        case lagBands = "lag_bands", etcd, heartbeat, instances
    }
}

/// A configuration file that cannot be used: where, and why.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var description: String { message }
}

extension AgentConfiguration {
    public init(from decoder: Decoder) throws {
        try Self.rejectUnknown(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        interval = try c.decodeIfPresent(Double.self, forKey: .interval) ?? 1
        connectTimeout = try c.decodeWholeIfPresent(forKey: .connectTimeout) ?? 2
        readTimeout = try c.decodeWholeIfPresent(forKey: .readTimeout) ?? 2
        leaseTTL = try c.decodeWholeIfPresent(forKey: .leaseTTL) ?? 10
        refresh = try c.decodeIfPresent(Double.self, forKey: .refresh) ?? 10
        lagBands = try c.decodeIfPresent([Double].self, forKey: .lagBands) ?? [2, 5, 10, 30, 60, 300]
        etcd = try c.decode(Etcd.self, forKey: .etcd)
        heartbeat = try c.decodeIfPresent(Heartbeat.self, forKey: .heartbeat) ?? Heartbeat()
        instances = try c.decode([Instance].self, forKey: .instances)
    }

    static func rejectUnknown<Keys: CodingKey & CaseIterable>(_ decoder: Decoder, _ keys: Keys.Type) throws {
        let known = Set(Keys.allCases.map(\.stringValue))
        for key in try decoder.container(keyedBy: ConfigurationKey.self).allKeys where !known.contains(key.stringValue) {
            let path = configurationPath(decoder.codingPath + [key])
            throw ConfigurationError(message: "\(path): unknown key (known: \(known.sorted().joined(separator: ", ")))")
        }
    }

    /// Reads and checks a configuration file; every problem names the file and the key.
    public static func load(_ path: String) throws -> AgentConfiguration {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError(message: "cannot read \(path)")
        }
        return try parse(text, file: path)
    }

    /// Decodes and checks a configuration's text; every problem is one `ConfigurationError`
    /// naming `file` and the key.
    public static func parse(_ text: String, file path: String) throws -> AgentConfiguration {
        let configuration: AgentConfiguration
        do {
            configuration = try JSONDecoder().decode(AgentConfiguration.self, from: try ConfigurationYAML.json(text))
        } catch let error as ConfigurationError {
            throw ConfigurationError(message: "\(path): \(error.message)")
        } catch let DecodingError.dataCorrupted(context) where context.underlyingError is ConfigurationError {
            throw ConfigurationError(message: "\(path): \((context.underlyingError as? ConfigurationError)?.message ?? "")")
        } catch let DecodingError.keyNotFound(key, context) {
            throw ConfigurationError(message: "\(path): \(configurationPath(context.codingPath + [key])) is required")
        } catch let DecodingError.typeMismatch(type, context) {
            throw ConfigurationError(message: "\(path): \(configurationPath(context.codingPath)) must be \(expected(type))")
        } catch let DecodingError.valueNotFound(type, context) {
            throw ConfigurationError(message: "\(path): \(configurationPath(context.codingPath)) must be \(expected(type)), not null")
        } catch let DecodingError.dataCorrupted(context) {
            // A number JSON can hold but Swift cannot (such as 1 followed by 400 zeros).
            let key = configurationPath(context.codingPath)
            throw ConfigurationError(message: "\(path): \(key.isEmpty ? "the file" : key) is unusable: \(context.debugDescription)")
        } catch {
            throw ConfigurationError(message: "\(path): \(error)")
        }
        try configuration.check(path)
        return configuration
    }

    /// What a value of `type` is, for a person.
    private static func expected(_ type: Any.Type) -> String {
        switch type {
        case is Double.Type: "a finite number (.nan and .inf are not numbers here)"
        case is Int.Type: "a whole number"
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        default:
            String(describing: type).hasPrefix("Array") ? "a list" : String(describing: type).hasPrefix("Dictionary") ? "a mapping" : "a mapping of its keys"
        }
    }

    /// The largest number of seconds any duration of the file may be (lease TTLs included).
    public static let longestSeconds: Double = 3600

    /// Every value is checked against its range here, so that nothing downstream (a duration
    /// in milliseconds, a libmariadb timeout, an etcd lease) can overflow or be disabled.
    func check(_ path: String) throws {
        func fail(_ message: String) throws { throw ConfigurationError(message: "\(path): \(message)") }
        let longest = Self.longestSeconds
        if !interval.isFinite || interval < 0.01 || interval > longest {
            try fail("interval must be positive, from 0.01 to \(Int(longest)) seconds (got \(interval))")
        }
        if !refresh.isFinite || refresh <= 0 || refresh > longest {
            try fail("refresh must be positive, at most \(Int(longest)) seconds (got \(refresh))")
        }
        for (index, band) in lagBands.enumerated() where !band.isFinite || band <= 0 || band > longest {
            try fail("lag_bands[\(index)] must be positive, at most \(Int(longest)) seconds (got \(band))")
        }
        for (key, value) in [("connect_timeout", connectTimeout), ("read_timeout", readTimeout)] where !(1...Int(longest)).contains(value) {
            try fail("\(key) must be from 1 to \(Int(longest)) seconds (got \(value)): libmariadb counts whole seconds")
        }
        if !(2...Int(longest)).contains(leaseTTL) { try fail("lease_ttl must be from 2 to \(Int(longest)) seconds (got \(leaseTTL))") }
        do {
            try EtcdConfiguration(endpoints: etcd.endpoints).validate(setting: "etcd.endpoints")
        } catch {
            try fail("\(error)")
        }
        if instances.isEmpty { try fail("instances must list at least one instance") }
        if heartbeat.table.isEmpty { try fail("heartbeat.table must not be empty") }
        if heartbeat.write && heartbeat.datacenter == nil { try fail("heartbeat.write needs heartbeat.datacenter (written in each row)") }
        var seen = Set<String>()
        for (index, instance) in instances.enumerated() {
            if instance.name.isEmpty { try fail("instances[\(index)].name must not be empty") }
            if !seen.insert(instance.name).inserted { try fail("instances[\(index)].name \(instance.name) appears twice") }
            if instance.socket == nil && instance.host == nil { try fail("instances[\(index)] (\(instance.name)) needs a socket or a host") }
            if let port = instance.port, !(1...65535).contains(port) {
                try fail("instances[\(index)].port must be from 1 to 65535 (got \(port))")
            }
            if instance.credentialsFile == nil {
                try fail("instances[\(index)].credentials_file is required (\(instance.name)): \(Self.credentialsFileHelp)")
            }
        }
    }

    /// What `credentials_file` must give, for the error when it is missing.
    static let credentialsFileHelp = """
        an option file whose [client] group has the user and password of the agent's account (sql/agent-grants.sql); \
        the agent never connects as root by default
        """
}

extension AgentConfiguration.Etcd {
    /// The client configuration, with the password read from `password_file` (never from the YAML).
    public func clientConfiguration() throws -> EtcdConfiguration {
        var credentials: EtcdConfiguration.Credentials?
        if let user {
            guard let passwordFile, let password = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw ConfigurationError(message: "etcd.user needs a readable etcd.password_file")
            }
            credentials = .init(username: user, password: password.trimmingWhitespace())
        }
        let tls = (caFile ?? certFile ?? keyFile) == nil ? nil : EtcdConfiguration.TLS(caFile: caFile, certificateFile: certFile, keyFile: keyFile)
        let configuration = EtcdConfiguration(endpoints: endpoints, tls: tls, credentials: credentials)
        do {
            try configuration.validate(setting: "etcd.endpoints")
        } catch {
            throw ConfigurationError(message: "\(error)")
        }
        return configuration
    }

    public init(from decoder: Decoder) throws {
        try AgentConfiguration.rejectUnknown(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        endpoints = try c.decode([String].self, forKey: .endpoints)
        caFile = try c.decodeIfPresent(String.self, forKey: .caFile)
        certFile = try c.decodeIfPresent(String.self, forKey: .certFile)
        keyFile = try c.decodeIfPresent(String.self, forKey: .keyFile)
        user = try c.decodeIfPresent(String.self, forKey: .user)
        passwordFile = try c.decodeIfPresent(String.self, forKey: .passwordFile)
        root = try c.decodeIfPresent(String.self, forKey: .root)
    }
}

extension AgentConfiguration.Heartbeat {
    public init(from decoder: Decoder) throws {
        try AgentConfiguration.rejectUnknown(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        table = try c.decodeIfPresent(String.self, forKey: .table) ?? "heartbeat.heartbeat"
        datacenter = try c.decodeIfPresent(String.self, forKey: .datacenter)
        write = try c.decodeIfPresent(Bool.self, forKey: .write) ?? false
    }
}

extension AgentConfiguration.Instance {
    public init(from decoder: Decoder) throws {
        try AgentConfiguration.rejectUnknown(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        socket = try c.decodeIfPresent(String.self, forKey: .socket)
        host = try c.decodeIfPresent(String.self, forKey: .host)
        port = try c.decodeWholeIfPresent(forKey: .port)
        credentialsFile = try c.decodeIfPresent(String.self, forKey: .credentialsFile)
        shard = try c.decodeIfPresent(String.self, forKey: .shard)
    }
}

extension KeyedDecodingContainer {
    /// A whole number, read as a number first so that `1.5` or `1e30` is refused naming its key
    /// (rather than as JSON that does not parse).
    func decodeWholeIfPresent(forKey key: Key) throws -> Int? {
        guard let value = try decodeIfPresent(Double.self, forKey: key) else { return nil }
        guard value.isFinite, value.rounded() == value, abs(value) <= 1e15 else {
            throw ConfigurationError(message: "\(configurationPath(codingPath + [key])) must be a whole number (got \(value))")
        }
        return Int(value)
    }
}

/// Any key of a mapping, to find the ones a configuration does not know.
private struct ConfigurationKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// `instances[0].socket`: a decoding path as a person writes it.
func configurationPath(_ path: [CodingKey]) -> String {
    var text = ""
    for key in path {
        if let index = key.intValue ?? (key.stringValue.hasPrefix("Index ") ? Int(key.stringValue.dropFirst(6)) : nil) {
            text += "[\(index)]"
        } else {
            text += (text.isEmpty ? "" : ".") + key.stringValue
        }
    }
    return text
}
