import ConfigurationFiles
import EtcdClient
import FailsafeLink
import MariaDBClient
import MarinaLogging
import Observation
import Probing

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

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
    /// Where to report (the `etcd:` section shared with the controller).
    public var etcd: EtcdSection
    public var heartbeat: Heartbeat
    public var instances: [Instance]
    /// The primary lease and the self-fence (`docs/operations/fencing.md`); nil: this agent
    /// holds no lease and never fences (a failover then waits the controller's full lease time).
    public var fencing: Fencing?
    /// The option file the agent keeps with the committed managed variables (`docs/agent.md`,
    /// "Managed variables"); nil: it keeps none (it still observes the managed variables).
    public var variables: Variables?
    /// `address:port` (IPv4) where the agent serves its Prometheus metrics at `/metrics`
    /// (`docs/agent.md`, "Metrics"); nil: only on the instances' health listeners, if any.
    public var metricsListen: String?
    /// `log_format`: `text` (the default) or `json`, one JSON object a line on standard error.
    public var logFormat: LogFormat
    /// `allow_root`: whether the agent may run as root. Default false: started as root, it exits
    /// at once saying so, since it needs no privilege beyond reading its files and the socket
    /// (`docs/deployment.md`); a sandbox or a test run as root sets it.
    public var allowRoot: Bool
    /// `tls`: TLS for every instance the agent reaches over TCP (`host`/`port`), unless the
    /// instance has a `tls` of its own; nil: plain TCP. Never used over a socket.
    public var tls: TLS?

    /// `tls:`: how the agent's connections to an instance over TCP are encrypted and checked
    /// (mapped onto libmariadb's `mysql_ssl_set`, with TLS enforced: never a silent fallback to
    /// plain TCP). The files are checked readable when the agent starts.
    public struct TLS: Decodable, Sendable, Equatable {
        /// PEM file of the CA that signed the servers' certificates. Required.
        public var caFile: String
        /// PEM client certificate and its key, for accounts `REQUIRE X509`: both or neither.
        public var certificateFile: String?
        public var keyFile: String?
        /// Whether the server's certificate must be signed by `ca_file` and name the host the
        /// agent connects to (an IP SAN when `host` is an address). Default true.
        public var verifyServerCertificate: Bool

        public init(caFile: String, certificateFile: String? = nil, keyFile: String? = nil, verifyServerCertificate: Bool = true) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.verifyServerCertificate = verifyServerCertificate
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case caFile = "ca_file"
            case certificateFile = "certificate_file"
            case keyFile = "key_file"
            case verifyServerCertificate = "verify_server_certificate"
        }

        public init(from decoder: Decoder) throws {
            try decoder.refuseUnknownConfigurationKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            caFile = try c.decode(String.self, forKey: .caFile)
            certificateFile = try c.decodeIfPresent(String.self, forKey: .certificateFile)
            keyFile = try c.decodeIfPresent(String.self, forKey: .keyFile)
            verifyServerCertificate = try c.decodeIfPresent(Bool.self, forKey: .verifyServerCertificate) ?? true
        }

        /// The first problem of the block under `key` (`tls`, `instances[2].tls`), if any.
        func problem(_ key: String) -> String? {
            let files =
                [("ca_file", caFile)]
                + [("certificate_file", certificateFile), ("key_file", keyFile)].compactMap { name, value in value.map { (name, $0) } }
            for (name, value) in files where !value.hasPrefix("/") {
                return "\(key).\(name) must be an absolute path (got \(value.isEmpty ? "an empty string" : value))"
            }
            if (certificateFile == nil) != (keyFile == nil) {
                return "\(key).certificate_file and \(key).key_file go together: give both or neither"
            }
            return nil
        }

        /// What libmariadb is given.
        public var client: MariaDBConfiguration.TLS {
            MariaDBConfiguration.TLS(
                caFile: caFile, certificateFile: certificateFile, keyFile: keyFile, verifyServerCertificate: verifyServerCertificate)
        }
    }

    /// `variables:`: where the agent keeps each instance's managed variables for restarts.
    public struct Variables: Decodable, Sendable, Equatable {
        /// An absolute path, in a directory the server's configuration includes
        /// (`!includedir /etc/mysql/conf.d`): a `[mariadbd]` group of the managed variables that
        /// are applied at runtime or wait for a restart. `{instance}` in it is replaced by the
        /// instance's name; required when the agent watches more than one instance (each
        /// instance has a file of its own). Required.
        public var optionFile: String

        public init(optionFile: String) { self.optionFile = optionFile }

        /// The path for one instance.
        public func optionFile(for instance: String) -> String { optionFile.replacingAll("{instance}", with: instance) }

        enum CodingKeys: String, CodingKey, CaseIterable { case optionFile = "option_file" }

        public init(from decoder: Decoder) throws {
            try decoder.refuseUnknownConfigurationKeys(CodingKeys.self)
            optionFile = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .optionFile)
        }
    }

    /// The primary lease this agent holds for the committed primaries it watches, and what it
    /// does when it cannot renew it.
    public struct Fencing: Decodable, Sendable, Equatable {
        /// The etcd lease's time-to-live, whole seconds. Default 10.
        public var leaseTTL: Int
        /// Seconds before the lease can expire by which the primary is read-only. Default 3.
        public var margin: Double
        /// Seconds between two keep-alives. Default 1.
        public var renewInterval: Double
        /// Seconds one keep-alive may take. Default 1.
        public var requestTimeout: Double
        /// Seconds the fence may take: `SET GLOBAL read_only = ON` (a second try after killing
        /// the sessions that block it) and the kills. Default 2.
        public var fenceTimeout: Double
        /// An option file with `[client]` `user` and `password` of the fence account
        /// (`READ_ONLY ADMIN, CONNECTION ADMIN, PROCESS`, `sql/agent-grants.sql`), never the
        /// heartbeat writer's. Required.
        public var credentialsFile: String
        /// An executable run after the fence, the last escalation (for example, dropping the
        /// port with nftables). Optional.
        public var hook: String?
        /// Seconds the hook may run before it is killed. Default 5.
        public var hookTimeout: Double
        /// The failsafe mode for etcd outages (`docs/operations/fencing.md`); nil: off, a
        /// primary that cannot renew its lease is always fenced.
        public var failsafe: Failsafe?

        /// `fencing.failsafe`: while etcd does not answer, the primary stays writable as long as
        /// a controller and a majority of its section's replica agents answer, directly, that
        /// they cannot reach etcd either.
        public struct Failsafe: Decodable, Sendable, Equatable {
            /// `address:port` where this agent answers the failsafe requests of other agents.
            public var listen: String
            /// `address:port` of each controller's `failover.failsafe_listen`.
            public var controllers: [String]

            enum CodingKeys: String, CodingKey, CaseIterable { case listen, controllers }

            public init(from decoder: Decoder) throws {
                try decoder.refuseUnknownConfigurationKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                listen = try c.decode(String.self, forKey: .listen)
                controllers = try c.decode([String].self, forKey: .controllers)
            }
        }

        public var timing: FencingTiming {
            FencingTiming(
                ttl: leaseTTL, margin: margin, renewInterval: renewInterval, requestTimeout: requestTimeout, fenceTimeout: fenceTimeout)
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case leaseTTL = "lease_ttl"
            case margin
            case renewInterval = "renew_interval"
            case requestTimeout = "request_timeout"
            case fenceTimeout = "fence_timeout"
            case credentialsFile = "credentials_file"
            case hook
            case hookTimeout = "hook_timeout"
            case failsafe
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
        /// `address:port` (IPv4) where the agent answers the load balancers' checks of this
        /// instance: `/primary`, `/replica?lag=SECONDS`, `/health`, and `/metrics` (`docs/agent.md`,
        /// "Health checks for load balancers"). Nil: no health listener for it.
        public var healthListen: String?
        /// TLS for this instance over TCP, instead of the agent-wide `tls` (the whole block
        /// replaces it). Refused on an instance reached over its socket.
        public var tls: TLS?

        public init(
            name: String, socket: String? = nil, host: String? = nil, port: Int? = nil, credentialsFile: String? = nil,
            shard: String? = nil, healthListen: String? = nil, tls: TLS? = nil
        ) {
            self.name = name
            self.socket = socket
            self.host = host
            self.port = port
            self.credentialsFile = credentialsFile
            self.shard = shard
            self.healthListen = healthListen
            self.tls = tls
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, socket, host, port
            case credentialsFile = "credentials_file"
            case shard
            case healthListen = "health_listen"
            case tls
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case interval
        case connectTimeout = "connect_timeout"
        case readTimeout = "read_timeout"
        case leaseTTL = "lease_ttl"
        case refresh
        case lagBands = "lag_bands"
        case etcd, heartbeat, instances, fencing, variables
        case metricsListen = "metrics_listen"
        case logFormat = "log_format"
        case allowRoot = "allow_root"
        case tls
    }
}

extension AgentConfiguration {
    public init(from decoder: Decoder) throws {
        try decoder.refuseUnknownConfigurationKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        interval = try c.decodeIfPresent(Double.self, forKey: .interval) ?? 1
        connectTimeout = try c.decodeWholeIfPresent(forKey: .connectTimeout) ?? 2
        readTimeout = try c.decodeWholeIfPresent(forKey: .readTimeout) ?? 2
        leaseTTL = try c.decodeWholeIfPresent(forKey: .leaseTTL) ?? 10
        refresh = try c.decodeIfPresent(Double.self, forKey: .refresh) ?? 10
        lagBands = try c.decodeIfPresent([Double].self, forKey: .lagBands) ?? [2, 5, 10, 30, 60, 300]
        etcd = try c.decode(EtcdSection.self, forKey: .etcd)
        heartbeat = try c.decodeIfPresent(Heartbeat.self, forKey: .heartbeat) ?? Heartbeat()
        instances = try c.decode([Instance].self, forKey: .instances)
        fencing = try c.decodeIfPresent(Fencing.self, forKey: .fencing)
        variables = try c.decodeIfPresent(Variables.self, forKey: .variables)
        metricsListen = try c.decodeIfPresent(String.self, forKey: .metricsListen)
        logFormat = try c.decodeIfPresent(LogFormat.self, forKey: .logFormat) ?? .text
        allowRoot = try c.decodeIfPresent(Bool.self, forKey: .allowRoot) ?? false
        tls = try c.decodeIfPresent(TLS.self, forKey: .tls)
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
            String(describing: type).hasPrefix("Array")
                ? "a list" : String(describing: type).hasPrefix("Dictionary") ? "a mapping" : "a mapping of its keys"
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
        if let problem = etcd.problems().first { try fail(problem) }
        if let fencing {
            if let problem = fencing.timing.problems().first { try fail(problem) }
            if fencing.leaseTTL > Int(longest) { try fail("fencing.lease_ttl must be at most \(Int(longest)) seconds (got \(fencing.leaseTTL))") }
            for (key, value) in [
                ("margin", fencing.margin), ("renew_interval", fencing.renewInterval), ("request_timeout", fencing.requestTimeout),
                ("fence_timeout", fencing.fenceTimeout), ("hook_timeout", fencing.hookTimeout),
            ]
            where !value.isFinite || value <= 0 || value > longest {
                try fail("fencing.\(key) must be positive, at most \(Int(longest)) seconds (got \(value))")
            }
            if fencing.credentialsFile.isEmpty { try fail("fencing.credentials_file must not be empty") }
            if let hook = fencing.hook, !hook.hasPrefix("/") { try fail("fencing.hook must be an absolute path (got \(hook))") }
            if let failsafe = fencing.failsafe {
                for (key, value) in [("listen", failsafe.listen)]
                    + failsafe.controllers.enumerated().map({ ("controllers[\($0.offset)]", $0.element) })
                where FailsafeEndpoint(value) == nil {
                    try fail("fencing.failsafe.\(key) must be an IPv4 address and a port, such as 10.64.0.5:7481 (got \(value))")
                }
                if failsafe.controllers.isEmpty { try fail("fencing.failsafe.controllers must name at least one controller") }
            }
        }
        if instances.isEmpty { try fail("instances must list at least one instance") }
        if let variables {
            let file = variables.optionFile
            if !file.hasPrefix("/") {
                try fail("variables.option_file must be an absolute path (got \(file.isEmpty ? "an empty string" : file))")
            }
            if file.hasSuffix("/") { try fail("variables.option_file must name a file, not a directory (got \(file))") }
            if instances.count > 1 && !file.contains("{instance}") {
                try fail(
                    "variables.option_file must contain {instance} when the agent watches several instances, so that each has its own file (got \(file))"
                )
            }
            for (index, instance) in instances.enumerated() where file.contains("{instance}") && instance.name.contains("/") {
                try fail("instances[\(index)].name \(instance.name) cannot replace {instance} in variables.option_file: it contains a /")
            }
        }
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
            if let tls = instance.tls {
                if instance.socket != nil {
                    try fail("instances[\(index)].tls is for an instance reached over TCP; \(instance.name) is reached over its socket")
                }
                if let problem = tls.problem("instances[\(index)].tls") { try fail(problem) }
            }
        }
        if let problem = tls?.problem("tls") { try fail(problem) }
        try checkListeners(fail)
    }

    /// `health_listen` and `metrics_listen`: IPv4 `address:port`, each endpoint used once (the
    /// failsafe listener's included).
    private func checkListeners(_ fail: (String) throws -> Void) throws {
        var keys = instances.enumerated().compactMap { index, instance in
            instance.healthListen.map { ("instances[\(index)].health_listen", $0) }
        }
        if let metricsListen { keys.append(("metrics_listen", metricsListen)) }
        var used = [FailsafeEndpoint: String]()
        if let listen = fencing?.failsafe?.listen, let endpoint = FailsafeEndpoint(listen) { used[endpoint] = "fencing.failsafe.listen" }
        for (key, value) in keys {
            guard let endpoint = FailsafeEndpoint(value) else {
                try fail("\(key) must be an IPv4 address and a port, such as 127.0.0.1:9104 (got \(value.isEmpty ? "an empty string" : value))")
                continue
            }
            if let other = used[endpoint] { try fail("\(key) \(value) is also \(other): each listener needs its own address and port") }
            used[endpoint] = key
        }
    }

    /// The TLS settings of instance `index`: its own `tls`, else the agent-wide one, and none
    /// over a socket.
    public func tls(forInstance index: Int) -> TLS? {
        let instance = instances[index]
        guard instance.socket == nil else { return nil }
        return instance.tls ?? tls
    }

    /// What `credentials_file` must give, for the error when it is missing.
    static let credentialsFileHelp = """
        an option file whose [client] group has the user and password of the agent's account (sql/agent-grants.sql); \
        the agent never connects as root by default
        """
}

extension AgentConfiguration.Heartbeat {
    public init(from decoder: Decoder) throws {
        try decoder.refuseUnknownConfigurationKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        table = try c.decodeIfPresent(String.self, forKey: .table) ?? "heartbeat.heartbeat"
        datacenter = try c.decodeIfPresent(String.self, forKey: .datacenter)
        write = try c.decodeIfPresent(Bool.self, forKey: .write) ?? false
    }
}

extension AgentConfiguration.Fencing {
    public init(from decoder: Decoder) throws {
        try decoder.refuseUnknownConfigurationKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        leaseTTL = try c.decodeWholeIfPresent(forKey: .leaseTTL) ?? 10
        margin = try c.decodeIfPresent(Double.self, forKey: .margin) ?? 3
        renewInterval = try c.decodeIfPresent(Double.self, forKey: .renewInterval) ?? 1
        requestTimeout = try c.decodeIfPresent(Double.self, forKey: .requestTimeout) ?? 1
        fenceTimeout = try c.decodeIfPresent(Double.self, forKey: .fenceTimeout) ?? 2
        credentialsFile = try c.decode(String.self, forKey: .credentialsFile)
        hook = try c.decodeIfPresent(String.self, forKey: .hook)
        hookTimeout = try c.decodeIfPresent(Double.self, forKey: .hookTimeout) ?? 5
        failsafe = try c.decodeIfPresent(Failsafe.self, forKey: .failsafe)
    }
}

extension AgentConfiguration.Instance {
    public init(from decoder: Decoder) throws {
        try decoder.refuseUnknownConfigurationKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        socket = try c.decodeIfPresent(String.self, forKey: .socket)
        host = try c.decodeIfPresent(String.self, forKey: .host)
        port = try c.decodeWholeIfPresent(forKey: .port)
        credentialsFile = try c.decodeIfPresent(String.self, forKey: .credentialsFile)
        shard = try c.decodeIfPresent(String.self, forKey: .shard)
        healthListen = try c.decodeIfPresent(String.self, forKey: .healthListen)
        tls = try c.decodeIfPresent(AgentConfiguration.TLS.self, forKey: .tls)
    }
}

extension AgentConfiguration.Heartbeat {
    /// The table and datacenter a `Prober` measures lag from.
    public var source: HeartbeatTable { HeartbeatTable(table: table, datacenter: datacenter) }
}

extension AgentConfiguration.Instance {
    /// What a `Prober` reports about.
    public var target: ProbeTarget { ProbeTarget(name: name, shard: shard) }
}
