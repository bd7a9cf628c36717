import ConfigurationFiles
import EtcdClient
import FailsafeLink
import Foundation
import MarinaLogging
import Operations
import Policy
import Topology
import Yams

/// `marina controller --config FILE`. Unknown keys are refused with their path.
/// Sample: `config/controller.example.yaml`.
public struct ControllerConfiguration: Sendable, Equatable {
    /// This controller's name in the leader key and journals. Default: host name and pid.
    public var id: String?
    /// Seconds the leader lease lives without a keep-alive: how long a dead leader blocks a
    /// takeover. Default 5.
    public var leaseTTL: Int
    /// Seconds between two looks at the request queue. Default 0.02.
    public var pollInterval: Double
    /// Where the source of truth is: the same `etcd:` section as the agent's (`EtcdSection`).
    public var etcd: EtcdSection
    public var mariadb: MariaDB
    /// The directory holding `switchover.yaml`.
    public var playbooks: String
    /// Mirrors of this controller's own commits, besides the site mirror every commit writes
    /// (`marina config mirror`): a directory on this host, and a v2 prefix as a fallback for a
    /// site without that setting (the site's prefix is written once). Failures count as the
    /// site mirror's.
    public var mirror: Mirror?
    /// Test only, refused unless `testing.enable_hooks` is true: pause every operation before
    /// the first step with this action (or step name), recording `paused before …` in the
    /// journal, until `/marina/v1/testing/resume/<id>` exists. Lets tests kill the controller,
    /// or inject a fault, at a chosen step.
    public var pauseBefore: String?
    /// Test only, refused unless `testing.enable_hooks` is true: pause every operation after
    /// the first step with this action (or step name) has run and before the journal records
    /// it, as a controller killed in the middle of that step would leave things; signalled by
    /// `/marina/v1/testing/resume/<id>/paused`.
    public var pauseAfter: String?
    /// The automatic depool/repool of lagging replicas.
    public var depool: Depool
    /// `testing:`: whether the test-only hooks may be used.
    public var testing: Testing
    /// `failover:`: which sections fail over on their own, and how a dead primary is told.
    public var failover: Failover
    /// `grants:`: how often the leader reads the managed accounts of every instance (for
    /// drift), and whether a commit that changed them is synced on its own.
    public var grants: Grants
    /// The HTTP listener: API, `/metrics` and the web page (`docs/http-api.md`); nil: none.
    public var http: HTTP?
    /// `log_format`: `text` (the default) or `json`, one JSON object a line on standard error.
    public var logFormat: LogFormat = .text
    /// `journal:`: how many finished journals the leader keeps (`JournalRetention`).
    public var journal = Journal()

    /// `http:`: where the controller serves its API, metrics and web page. Every controller
    /// serves it, leader or not; writes go through etcd, so any of them takes a request.
    public struct HTTP: Sendable, Equatable, Decodable {
        /// `address:port` (IPv4) to listen on. Required.
        public var listen: String
        /// A file holding the access token write endpoints require (`Authorization: Bearer`),
        /// readable by its owner only; nil: the API is read-only (every write answers 403).
        public var tokenFile: String?
        /// PEM certificate chain and key for HTTPS; both or neither (nil: plain HTTP, for a
        /// listener on loopback or behind a TLS proxy).
        public var certificateFile: String?
        public var keyFile: String?

        public init(listen: String, tokenFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
            self.listen = listen
            self.tokenFile = tokenFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case listen
            case tokenFile = "token_file"
            case certificateFile = "certificate_file"
            case keyFile = "key_file"
        }

        public init(from decoder: Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            listen = try c.decode(String.self, forKey: .listen)
            tokenFile = try c.decodeIfPresent(String.self, forKey: .tokenFile)
            certificateFile = try c.decodeIfPresent(String.self, forKey: .certificateFile)
            keyFile = try c.decodeIfPresent(String.self, forKey: .keyFile)
        }

        /// `listen` as an address and a port (checked by `problems()`).
        public var endpoint: FailsafeEndpoint? { FailsafeEndpoint(listen) }

        func problems() -> [String] {
            var problems = [String]()
            if endpoint == nil { problems.append("http.listen must be an IPv4 address and a port, as 127.0.0.1:8470 (got \(listen))") }
            if (certificateFile == nil) != (keyFile == nil) {
                problems.append("http.certificate_file and http.key_file go together: give both for HTTPS, or neither")
            }
            for (key, value) in [("token_file", tokenFile), ("certificate_file", certificateFile), ("key_file", keyFile)] {
                if let value, value.isEmpty || !value.hasPrefix("/") { problems.append("http.\(key) must be an absolute path (got \(value))") }
            }
            return problems
        }
    }

    /// `grants:`.
    public struct Grants: Sendable, Equatable, Decodable {
        /// Seconds between two readings of every instance's managed accounts. Default 60.
        public var checkInterval: Double
        /// Run `grant sync` (and `variable sync`) on its own when a commit changed a section's
        /// managed accounts (or variables) and an instance differs. Default false.
        public var autoSync: Bool

        public init(checkInterval: Double = 60, autoSync: Bool = false) {
            self.checkInterval = checkInterval
            self.autoSync = autoSync
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case checkInterval = "check_interval"
            case autoSync = "auto_sync"
        }

        public init(from decoder: Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(
                checkInterval: try c.decodeIfPresent(Double.self, forKey: .checkInterval) ?? 60,
                autoSync: try c.decodeIfPresent(Bool.self, forKey: .autoSync) ?? false)
            guard checkInterval.isFinite, checkInterval >= 1, checkInterval <= 86_400 else {
                throw SchemaError(
                    path: (decoder.codingPath.map(\.stringValue) + ["check_interval"]).joined(separator: "."),
                    problem: "must be a number of seconds from 1 to 86400 (got \(checkInterval))")
            }
        }
    }

    /// `failover:`. Automatic failover is off unless a section is named in `automatic`; a
    /// DBA's `marina failover` works on every section.
    public struct Failover: Sendable, Equatable, Decodable {
        /// Sections the controller fails over on its own when their primary dies (`"*"`: all).
        public var automatic: [String]
        /// Seconds a replica may have received nothing (no event, no heartbeat) from its primary
        /// before it counts as a witness that the primary is dead. Above the replicas'
        /// `MASTER_HEARTBEAT_PERIOD`, or an idle primary looks dead. Default 3.
        public var masterFailureTimeout: Double
        /// Seconds after an automatic failover during which no other automatic failover of the
        /// section runs until a DBA runs `marina failover ack SECTION`. Default 3600.
        public var blockSeconds: Double
        /// Seconds the controller's own SQL connection to a suspect primary may take to answer
        /// before it counts as not reaching it. Default 1.
        public var probeTimeout: Double
        /// Agents' observations older than this many seconds are no witness. Default 5.
        public var maxObservationAge: Double
        /// The longest primary lease any agent holds (`fencing.lease_ttl` of the agents), whole
        /// seconds: when a dead primary has no lease key left, a failover waits this long plus
        /// `primary_lease_margin` before it makes anyone writable. Default 10.
        public var primaryLeaseTTL: Int
        /// Seconds a failover waits after the old primary's lease vanished, at least the
        /// agents' `fencing.margin` (the larger of the two is waited). Default 3.
        public var primaryLeaseMargin: Double
        /// `address:port` where the leader answers the failsafe requests of primaries whose
        /// agents cannot reach etcd (`docs/operations/fencing.md`); nil: no failsafe mode, a
        /// primary cut off from etcd is always fenced.
        public var failsafeListen: String?

        public init(
            automatic: [String] = [], masterFailureTimeout: Double = 3, blockSeconds: Double = 3600, probeTimeout: Double = 1,
            maxObservationAge: Double = 5, primaryLeaseTTL: Int = 10, primaryLeaseMargin: Double = 3
        ) {
            self.automatic = automatic
            self.masterFailureTimeout = masterFailureTimeout
            self.blockSeconds = blockSeconds
            self.probeTimeout = probeTimeout
            self.maxObservationAge = maxObservationAge
            self.primaryLeaseTTL = primaryLeaseTTL
            self.primaryLeaseMargin = primaryLeaseMargin
        }

        /// `failsafe_listen` as an endpoint (checked by `problems()`).
        public var failsafeEndpoint: FailsafeEndpoint? { failsafeListen.flatMap(FailsafeEndpoint.init) }

        /// Whether the controller fails `section` over on its own.
        public func isAutomatic(_ section: String) -> Bool { automatic.contains("*") || automatic.contains(section) }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case automatic
            case masterFailureTimeout = "master_failure_timeout"
            case blockSeconds = "block_seconds"
            case probeTimeout = "probe_timeout"
            case maxObservationAge = "max_observation_age"
            case primaryLeaseTTL = "primary_lease_ttl"
            case primaryLeaseMargin = "primary_lease_margin"
            case failsafeListen = "failsafe_listen"
        }

        public init(from decoder: Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Failover()
            self.init(
                automatic: try c.decodeIfPresent([String].self, forKey: .automatic) ?? [],
                masterFailureTimeout: try c.decodeIfPresent(Double.self, forKey: .masterFailureTimeout) ?? defaults.masterFailureTimeout,
                blockSeconds: try c.decodeIfPresent(Double.self, forKey: .blockSeconds) ?? defaults.blockSeconds,
                probeTimeout: try c.decodeIfPresent(Double.self, forKey: .probeTimeout) ?? defaults.probeTimeout,
                maxObservationAge: try c.decodeIfPresent(Double.self, forKey: .maxObservationAge) ?? defaults.maxObservationAge,
                primaryLeaseTTL: try c.decodeIfPresent(Int.self, forKey: .primaryLeaseTTL) ?? defaults.primaryLeaseTTL,
                primaryLeaseMargin: try c.decodeIfPresent(Double.self, forKey: .primaryLeaseMargin) ?? defaults.primaryLeaseMargin)
            failsafeListen = try c.decodeIfPresent(String.self, forKey: .failsafeListen)
        }

        /// Every value out of its range, each naming its key.
        func problems() -> [String] {
            var problems = [String]()
            let longest = ControllerConfiguration.longestSeconds
            for (key, value, low) in [
                ("master_failure_timeout", masterFailureTimeout, 0.1), ("block_seconds", blockSeconds, 0), ("probe_timeout", probeTimeout, 0.05),
                ("max_observation_age", maxObservationAge, 0.1), ("primary_lease_margin", primaryLeaseMargin, 0.1),
            ] where !value.isFinite || value < low || value > (key == "block_seconds" ? 7 * 24 * longest : longest) {
                problems.append(
                    "failover.\(key) must be from \(Seconds.format(low)) to \(Seconds.format(key == "block_seconds" ? 7 * 24 * longest : longest)) seconds (got \(value))"
                )
            }
            if !(2...Int(longest)).contains(primaryLeaseTTL) {
                problems.append("failover.primary_lease_ttl must be from 2 to \(Int(longest)) seconds (got \(primaryLeaseTTL))")
            }
            if let listen = failsafeListen, FailsafeEndpoint(listen) == nil {
                problems.append("failover.failsafe_listen must be an IPv4 address and a port, such as 10.64.0.5:7480 (got \(listen))")
            }
            for name in automatic where name.isEmpty {
                problems.append("failover.automatic: a section name is empty (use \"*\" for every section)")
            }
            return problems
        }
    }

    /// `testing: {enable_hooks: true}`: the only way `pause_before` and `pause_after` (and with
    /// them the `testing/resume/` keys) are accepted; the controller then logs a critical
    /// warning when it starts. Never in production.
    public struct Testing: Sendable, Equatable, Decodable {
        public var enableHooks: Bool

        public init(enableHooks: Bool = false) {
            self.enableHooks = enableHooks
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case enableHooks = "enable_hooks" }

        public init(from decoder: Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            enableHooks = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(Bool.self, forKey: .enableHooks) ?? false
        }
    }

    /// `depool:`: the policy's keys as defaults, `sections:` with per-section overrides, and
    /// `interval`, the seconds between two evaluations.
    public struct Depool: Sendable, Equatable, Decodable {
        public var interval: Double
        public var defaults: DepoolPolicy
        public var sections: [String: DepoolPolicy]

        public init(interval: Double = 0.25, defaults: DepoolPolicy = DepoolPolicy(), sections: [String: DepoolPolicy] = [:]) {
            self.interval = interval
            self.defaults = defaults
            self.sections = sections
        }

        enum CodingKeys: String, CodingKey { case interval, sections }

        public init(from decoder: Decoder) throws {
            let defaults = DepoolPolicy().overridden(by: try DepoolPolicy.Overrides(from: decoder, extra: ["interval", "sections"]))
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let overrides = try c.decodeIfPresent([String: DepoolPolicy.Overrides].self, forKey: .sections) ?? [:]
            self.init(
                interval: try c.decodeIfPresent(Double.self, forKey: .interval) ?? 0.25, defaults: defaults,
                sections: overrides.mapValues { defaults.overridden(by: $0) })
        }

        /// Every problem, each naming the section it is in.
        func problems() -> [String] {
            var problems = defaults.problems().map { "depool: \($0)" }
            for (name, policy) in sections.sorted(by: { $0.key < $1.key }) {
                problems += policy.problems().map { "depool.sections.\(name): \($0)" }
            }
            if !interval.isFinite || interval < 0.01 || interval > ControllerConfiguration.longestSeconds {
                problems.append(
                    "depool.interval must be positive, from 0.01 to \(Int(ControllerConfiguration.longestSeconds)) seconds (got \(interval))")
            }
            return problems
        }
    }

    /// How the controller reaches the instances to run steps.
    public struct MariaDB: Sendable, Equatable, Decodable {
        /// An option file; `user` and `password` of `credentials_group` are the controller's
        /// account (grants in `sql/controller-grants.sql`).
        public var credentialsFile: String
        public var credentialsGroup: String
        /// The account replicas use (`CHANGE MASTER ... MASTER_USER`): group `replication_group`
        /// of the same file.
        public var replicationGroup: String
        /// The settings account (group `settings_group` of the same file, grants in
        /// `sql/settings-grants.sql`): the only one that reads and changes accounts and sets
        /// global variables, for grant sync, variable sync and the grant watch. Without it,
        /// those are refused and the controller's own account keeps no power over accounts.
        public var settingsGroup: String?
        public var connectTimeout: Int
        public var caFile: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case credentialsFile = "credentials_file"
            case credentialsGroup = "credentials_group"
            case replicationGroup = "replication_group"
            case settingsGroup = "settings_group"
            case connectTimeout = "connect_timeout"
            case caFile = "ca_file"
        }

        public init(from decoder: Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            credentialsFile = try c.decode(String.self, forKey: .credentialsFile)
            credentialsGroup = try c.decodeIfPresent(String.self, forKey: .credentialsGroup) ?? "client"
            replicationGroup = try c.decodeIfPresent(String.self, forKey: .replicationGroup) ?? "marina-replication"
            settingsGroup = try c.decodeIfPresent(String.self, forKey: .settingsGroup)
            connectTimeout = try c.decodeIfPresent(Int.self, forKey: .connectTimeout) ?? 2
            caFile = try c.decodeIfPresent(String.self, forKey: .caFile)
        }
    }

    public struct Mirror: Sendable, Equatable, Decodable {
        public var v2Prefix: String?
        public var directory: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case v2Prefix = "v2_prefix"
            case directory
        }

        public init(from decoder: Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            v2Prefix = try c.decodeIfPresent(String.self, forKey: .v2Prefix)
            directory = try c.decodeIfPresent(String.self, forKey: .directory)
        }
    }
}

extension ControllerConfiguration: Decodable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case id
        case leaseTTL = "lease_ttl"
        case pollInterval = "poll_interval"
        case etcd, mariadb, playbooks, mirror
        case pauseBefore = "pause_before"
        case pauseAfter = "pause_after"
        case depool, testing, failover, grants, http, journal
        case logFormat = "log_format"
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: .id)
        leaseTTL = try c.decodeIfPresent(Int.self, forKey: .leaseTTL) ?? 5
        pollInterval = try c.decodeIfPresent(Double.self, forKey: .pollInterval) ?? 0.02
        etcd = try c.decode(EtcdSection.self, forKey: .etcd)
        mariadb = try c.decode(MariaDB.self, forKey: .mariadb)
        playbooks = try c.decode(String.self, forKey: .playbooks)
        mirror = try c.decodeIfPresent(Mirror.self, forKey: .mirror)
        pauseBefore = try c.decodeIfPresent(String.self, forKey: .pauseBefore)
        pauseAfter = try c.decodeIfPresent(String.self, forKey: .pauseAfter)
        depool = try c.decodeIfPresent(Depool.self, forKey: .depool) ?? Depool()
        testing = try c.decodeIfPresent(Testing.self, forKey: .testing) ?? Testing()
        failover = try c.decodeIfPresent(Failover.self, forKey: .failover) ?? Failover()
        grants = try c.decodeIfPresent(Grants.self, forKey: .grants) ?? Grants()
        http = try c.decodeIfPresent(HTTP.self, forKey: .http)
        logFormat = try c.decodeIfPresent(LogFormat.self, forKey: .logFormat) ?? .text
        journal = try c.decodeIfPresent(Journal.self, forKey: .journal) ?? Journal()
    }

    /// Reads and checks a configuration file, and the playbooks in the directory it names
    /// (`switchover.yaml` and `failover.yaml`, each checked against the safety rules).
    public static func load(_ path: String) throws -> (ControllerConfiguration, Playbooks) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ControllerError.configuration("cannot read \(path)")
        }
        let configuration = try parse(text, file: path)
        let playbooks = Playbooks(
            switchover: try Playbook.load(configuration.playbooks + "/switchover.yaml", operation: "switchover"),
            failover: try Playbook.load(configuration.playbooks + "/failover.yaml", operation: "failover"),
            grantSync: try optionalPlaybook(configuration.playbooks + "/grant-sync.yaml", operation: "grant-sync") ?? .standardGrantSync,
            variableSync: try optionalPlaybook(configuration.playbooks + "/variable-sync.yaml", operation: "variable-sync")
                ?? .standardVariableSync)
        return (configuration, playbooks)
    }

    /// Decodes and checks a configuration; every problem names the file and the key.
    public static func parse(_ text: String, file: String) throws -> ControllerConfiguration {
        let configuration: ControllerConfiguration
        do {
            configuration = try YAMLDecoder().decode(ControllerConfiguration.self, from: text)
        } catch let DecodingError.dataCorrupted(context) where context.underlyingError is ConfigurationError {
            // The `etcd:` section (`EtcdSection`, shared with the agent) names its own keys.
            throw ControllerError.configuration("\(file): controller: \(context.underlyingError!)")
        } catch let error as ConfigurationError {
            throw ControllerError.configuration("\(file): controller: \(error)")
        } catch {
            throw ControllerError.configuration("\(file): \(SchemaError.from(error, root: "controller"))")
        }
        if let problem = configuration.problems().first { throw ControllerError.configuration("\(file): \(problem)") }
        return configuration
    }

    /// The longest duration, in seconds, a key of the file may give (lease TTL and timeouts included).
    public static let longestSeconds: Double = 3600

    /// Every value out of its range, each naming its key. A number that is not finite (`.nan`,
    /// `.inf`) is refused wherever one is read: compared with `<` or `>`, a NaN passes every
    /// check, and it traps when turned into milliseconds.
    func problems() -> [String] {
        var problems = [String]()
        let longest = Int(Self.longestSeconds)
        if !(2...longest).contains(leaseTTL) { problems.append("lease_ttl must be at least 2 seconds and at most \(longest) (got \(leaseTTL))") }
        if !pollInterval.isFinite || pollInterval < 0.001 || pollInterval > Self.longestSeconds {
            problems.append("poll_interval must be positive, from 0.001 to \(longest) seconds (got \(pollInterval))")
        }
        problems += etcd.problems()
        if !(1...longest).contains(mariadb.connectTimeout) {
            problems.append("mariadb.connect_timeout must be from 1 to \(longest) seconds (got \(mariadb.connectTimeout))")
        }
        if playbooks.isEmpty { problems.append("playbooks must name the directory holding switchover.yaml") }
        return testHookProblems() + problems + depool.problems() + failover.problems() + (http?.problems() ?? []) + journal.problems()
    }

    /// A test-only hook set without `testing.enable_hooks: true`, named.
    public func testHookProblems() -> [String] {
        guard !testing.enableHooks else { return [] }
        return [("pause_before", pauseBefore), ("pause_after", pauseAfter)].compactMap { key, value in
            value == nil
                ? nil
                : "\(key) is a test-only hook: it is refused unless the configuration also sets testing: {enable_hooks: true} (never in production)"
        }
    }
}

/// A sync playbook: the file when it exists (checked like every playbook), else nil, so that a
/// playbook directory from before syncs existed keeps working with the standard steps.
private func optionalPlaybook(_ path: String, operation: String) throws -> Playbook? {
    FileManager.default.fileExists(atPath: path) ? try Playbook.load(path, operation: operation) : nil
}

/// The playbooks a controller runs its operations from.
public struct Playbooks: Sendable, Equatable {
    public var switchover: Playbook
    public var failover: Playbook
    public var grantSync: Playbook
    public var variableSync: Playbook

    public init(
        switchover: Playbook, failover: Playbook = .standardFailover, grantSync: Playbook = .standardGrantSync,
        variableSync: Playbook = .standardVariableSync
    ) {
        self.switchover = switchover
        self.failover = failover
        self.grantSync = grantSync
        self.variableSync = variableSync
    }
}

public enum ControllerError: Error, CustomStringConvertible, Equatable {
    case configuration(String)
    /// The leader key no longer names this controller: it must stop acting at once.
    case notLeader
    /// A step failed: on which host, and why.
    case stepFailed(host: String, message: String)

    public var description: String {
        switch self {
        case .configuration(let message): message
        case .notLeader: "this controller is no longer the leader"
        case .stepFailed(let host, let message): "\(host): \(message)"
        }
    }
}
