import ConfigurationFiles
import EtcdClient
import FailsafeLink
import Logging
import MariaDBClient
import Observation
import Probing
import ServiceLifecycle
import StoredRecords

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `marina agent`: probes every configured instance each interval and publishes what it sees
/// to `/marina/v1/observed/<instance>`, bound to one lease.
///
/// Each instance has its own probe loop, so one hung server does not delay the others. A
/// probe's result goes to the `Board`, which applies the `PublishPolicy`; the publisher writes
/// every observation due in one transaction. While etcd is unreachable the probes go on and the
/// publisher retries with backoff (up to 30 s); when etcd answers again, a new lease is granted
/// if the old one expired and the latest observation of every instance is written.
public struct Agent: Service {
    let configuration: AgentConfiguration
    let etcd: EtcdClient
    let root: String
    let logger: Logger
    let hostName: String
    /// How to reach each instance, in the order of `configuration.instances`.
    let connections: [MariaDBConfiguration]
    /// What `/metrics` serves (`AgentMetrics.bootstrapped()` in the agent's processes).
    let metrics: AgentMetrics

    /// Throws a `ConfigurationError` when an instance names no account (the agent never
    /// connects as `root` by default) or its credentials file cannot be read.
    public init(configuration: AgentConfiguration, logger: Logger, metrics: AgentMetrics = AgentMetrics()) throws {
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        self.hostName = ProcessInfo.processInfo.hostName
        self.connections = try configuration.instances.indices.map { try Self.mariaDBConfiguration(configuration, instance: $0) }
        self.etcd = EtcdClient(try configuration.etcd.clientConfiguration())
        self.root = configuration.etcd.keyRoot
    }

    /// Runs until cancelled. With `heartbeat.write`, first checks the account of every instance
    /// the writer may write to, and throws `HeartbeatWriterRefused` if one holds a privilege that
    /// writes through `read_only` (see `WriterPrivileges`).
    public func run() async throws {
        let startedAt = Date()
        let probers = zip(configuration.instances, connections).map { instance, connection in
            Prober(
                instance: instance.target, configuration: connection, heartbeat: configuration.heartbeat.source,
                agent: hostName, agentStartedAt: startedAt)
        }
        let writers = configuration.heartbeat.write ? try await checkWriters(probers) : [:]
        let publishing = Board(policy: PublishPolicy(lagBands: configuration.lagBands, refreshInterval: configuration.refresh))
        let (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let publisher = Publisher(etcd: etcd, root: root, ttl: Int64(configuration.leaseTTL), logger: logger)
        let primaries = PrimaryDirectory(etcd: etcd, root: root, maxAge: configuration.interval / 2)
        let variables = VariableDirectory(etcd: etcd, root: root, interval: configuration.interval, logger: logger)
        let failsafe = configuration.fencing?.failsafe
        let responder = failsafe.map { _ in FailsafeResponder(agent: hostName) }
        let keepers = try leaseKeepers(responder: responder)
        var listener: FailsafeListener?
        if let failsafe, let responder, let endpoint = FailsafeEndpoint(failsafe.listen) {
            listener = try FailsafeListener(endpoint) { responder.answer($0) }
            logger.notice("failsafe: answering other primaries' agents on \(endpoint)")
        }
        defer { listener?.stop() }
        let board = HealthBoard()
        let health = try HealthService(
            configuration: configuration, connections: connections, board: board, directory: primaries, keepers: keepers, metrics: metrics,
            logger: logger)
        logger.info("agent started", metadata: ["instances": "\(configuration.instances.map(\.name))", "etcd": "\(etcd.configuration)"])

        // A graceful shutdown (SIGTERM, SIGINT) cancels the loops; then the lease is revoked.
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for prober in probers {
                    group.addTask {
                        await probeLoop(
                            prober, writer: writers[prober.instance.name] ?? .unchecked, board: publishing, health: board, signal: signal,
                            primaries: primaries, keeper: keepers[prober.instance.name], responder: responder,
                            variables: variableKeeper(prober.instance, directory: variables))
                    }
                }
                for keeper in keepers.values { group.addTask { await keeper.run() } }
                if configuration.instances.contains(where: { $0.shard != nil }) { group.addTask { await variables.run() } }
                group.addTask { await publisher.run(board: publishing, signals: signals, keepAliveEvery: Double(configuration.leaseTTL) / 3) }
                if !health.isEmpty { group.addTask { await health.run() } }
            }
        }
        signal.finish()
        for prober in probers { await prober.disconnect() }
        await publisher.release()
        logger.info("agent stopped; its observations were withdrawn")
    }

    private func probeLoop(
        _ prober: Prober, writer initial: WriterState, board: Board, health: HealthBoard, signal: AsyncStream<Void>.Continuation,
        primaries: PrimaryDirectory, keeper: PrimaryLeaseKeeper?, responder: FailsafeResponder?, variables: VariableKeeper?
    ) async {
        let clock = ContinuousClock()
        var next = clock.now
        var writer = initial
        var variables = variables
        let interval = Duration.milliseconds(Int(configuration.interval * 1000))
        while !Task.isCancelled {
            let probedAt = clock.now
            var observation = await prober.probe(now: Date())
            if let keeper {
                await keeper.noteProbe(readOnly: observation.reachable ? observation.readOnly : nil)
                observation.selfFence = await keeper.selfFence
            }
            if let responder, let section = prober.instance.shard {
                observation.failsafeEndpoint = configuration.fencing?.failsafe?.listen
                responder.noted(observation, section: section)
            }
            await variables?.update(&observation, prober: prober)
            health.record(observation, probedAt: probedAt)
            metrics.countProbe(observation.instance, reachable: observation.reachable)
            if await board.record(observation, now: Date()) { signal.yield() }
            if configuration.heartbeat.write, observation.reachable, observation.readOnly == false {
                await beat(prober, writer: &writer, primaries: primaries)
            } else if observation.readOnly == true {
                await prober.forgetHeartbeatWritten()
            }
            next += interval
            if next < clock.now { next = clock.now }  // a slow probe skips ticks rather than bunching them
            try? await Task.sleep(until: next, clock: clock)
        }
    }

    /// The managed variables of an instance with a section (`shard`): observed, and kept in its
    /// option file when `variables.option_file` is set.
    private func variableKeeper(_ instance: ProbeTarget, directory: VariableDirectory) -> VariableKeeper? {
        guard let section = instance.shard else { return nil }
        return VariableKeeper(
            instance: instance.name, section: section, optionFile: configuration.variables?.optionFile(for: instance.name),
            directory: directory, logger: logger)
    }

    /// Writes the heartbeat when the instance is writable and the committed primary of its
    /// shard: it stops on an old primary with its writes and starts on the new one once the
    /// switch is committed, with no step of its own in a switchover. Never before the
    /// instance's privilege check passed (`checkWriter`).
    private func beat(_ prober: Prober, writer: inout WriterState, primaries: PrimaryDirectory) async {
        let instance = prober.instance
        guard writer != .refused, let shard = instance.shard, let datacenter = configuration.heartbeat.datacenter else { return }
        do {
            guard try await primaries.primary(of: shard) == instance.name else { return }
            if writer == .unchecked {
                writer = await checkWriter(instance.name, connection: prober.configuration)
                guard writer == .allowed else { return }
            }
            try await prober.writeHeartbeat(shard: shard, datacenter: datacenter)
        } catch {
            logger.warning("no heartbeat on \(instance.name): \(error)")
        }
    }

    /// Whether the heartbeat writer may write to an instance.
    enum WriterState: Sendable {
        /// Not checked yet (the instance was unreachable at start-up): checked before the first write.
        case unchecked
        /// The account holds no privilege that writes through `read_only`.
        case allowed
        /// The account holds one: no heartbeat is ever written there by this process.
        case refused
    }

    /// At start-up, before any probe: checks, in parallel, every instance the writer may write to
    /// (those with a `shard`). An instance that cannot be checked now stays `unchecked`; any
    /// account that writes through `read_only` stops the agent with one error naming them all.
    private func checkWriters(_ probers: [Prober]) async throws -> [String: WriterState] {
        let results = await withTaskGroup(of: (String, Result<WriterPrivileges.Report, any Error>).self) { group in
            for prober in probers where prober.instance.shard != nil {
                let (name, connection) = (prober.instance.name, prober.configuration)
                group.addTask {
                    do { return (name, .success(try await WriterPrivileges.check(connection))) } catch { return (name, .failure(error)) }
                }
            }
            var all = [(String, Result<WriterPrivileges.Report, any Error>)]()
            for await result in group { all.append(result) }
            return all.sorted { $0.0 < $1.0 }
        }
        var states = [String: WriterState]()
        var refusals = [HeartbeatWriterRefused.Refusal]()
        for (name, result) in results {
            switch result {
            case .success(let report) where !report.findings.isEmpty:
                refusals.append(.init(instance: name, account: report.account, findings: report.findings))
            case .success(let report):
                states[name] = .allowed
                logAllowed(name, report)
            case .failure(let error):
                logger.warning(
                    """
                    heartbeat writer on \(name): the account's privileges cannot be checked now (\(error)); \
                    they are checked again before the first heartbeat there, and nothing is written until the check passes
                    """)
            }
        }
        if !refusals.isEmpty { throw HeartbeatWriterRefused(refusals: refusals) }
        return states
    }

    /// The check of one instance after start-up, before its first heartbeat write: `unchecked`
    /// again when it cannot run now (retried at the next write), `refused` (logged as an error)
    /// when the account writes through `read_only`.
    private func checkWriter(_ name: String, connection: MariaDBConfiguration) async -> WriterState {
        do {
            let report = try await WriterPrivileges.check(connection)
            guard report.findings.isEmpty else {
                let refusal = HeartbeatWriterRefused.Refusal(instance: name, account: report.account, findings: report.findings)
                logger.error("heartbeat writer disabled on \(name) until the agent restarts: \(refusal): \(HeartbeatWriterRefused.remedy)")
                return .refused
            }
            logAllowed(name, report)
            return .allowed
        } catch {
            logger.warning("no heartbeat on \(name): the account's privileges cannot be checked yet: \(error)")
            return .unchecked
        }
    }

    private func logAllowed(_ name: String, _ report: WriterPrivileges.Report) {
        for (role, reason) in report.unreadableRoles.sorted(by: { $0.key < $1.key }) {
            logger.warning(
                "heartbeat writer on \(name): the grants of role `\(role)` (granted to \(report.account)) cannot be read, so they were not checked: \(reason)"
            )
        }
        logger.info("heartbeat writer enabled on \(name): \(report.account) holds no privilege that writes through read_only")
    }

    /// One primary-lease keeper per instance with a section (`shard`), when `fencing` is set:
    /// each with its own etcd client whose requests time out after `fencing.request_timeout`,
    /// and its own fence connection as the fence account.
    private func leaseKeepers(responder: FailsafeResponder?) throws -> [String: PrimaryLeaseKeeper] {
        guard let fencing = configuration.fencing else { return [:] }
        let credentials = try OptionFile.load(fencing.credentialsFile).account()
        guard let user = credentials.user, !user.isEmpty else {
            throw ConfigurationError(message: "fencing.credentials_file: \(fencing.credentialsFile) names no user in its [client] group")
        }
        var etcdConfiguration = try configuration.etcd.clientConfiguration()
        etcdConfiguration.requestTimeout = fencing.requestTimeout
        etcdConfiguration.connectTimeout = min(etcdConfiguration.connectTimeout, fencing.requestTimeout)
        var keepers = [String: PrimaryLeaseKeeper]()
        for (instance, connection) in zip(configuration.instances, connections) {
            guard let section = instance.shard else { continue }
            var fenceConnection = connection
            fenceConnection.user = user
            fenceConnection.password = credentials.password
            fenceConnection.connectTimeout = 1
            fenceConnection.readTimeout = max(2, Int(fencing.fenceTimeout.rounded(.up)))
            fenceConnection.writeTimeout = fenceConnection.readTimeout
            let fence = SQLFence(
                configuration: fenceConnection, hook: fencing.hook, hookTimeout: fencing.hookTimeout, ownUsers: [connection.user], logger: logger)
            keepers[instance.name] = PrimaryLeaseKeeper(
                instance: instance.name, section: section, settings: fencing, etcd: EtcdClient(etcdConfiguration), root: root,
                agentName: hostName, fence: fence, logger: logger, responder: responder)
        }
        return keepers
    }

    /// How to reach instance `index`: its socket or host and port, as the account of its
    /// `credentials_file`, over TLS when `tls` (its own, or the agent's for TCP) says so, its
    /// files checked readable. There is no default account: never `root`.
    static func mariaDBConfiguration(_ configuration: AgentConfiguration, instance index: Int) throws -> MariaDBConfiguration {
        let instance = configuration.instances[index]
        let key = "instances[\(index)].credentials_file"
        guard let file = instance.credentialsFile else {
            throw ConfigurationError(message: "\(key) is required (\(instance.name)): \(AgentConfiguration.credentialsFileHelp)")
        }
        let credentials = try OptionFile.load(file).account()
        guard let user = credentials.user, !user.isEmpty else {
            throw ConfigurationError(
                message: """
                    \(key) (\(instance.name)): \(file) names no user in its [client] group; add `user=` with the agent's account \
                    (the agent never connects as root by default)
                    """)
        }
        let endpoint: MariaDBConfiguration.Endpoint =
            instance.socket.map { .socket(path: $0) }
            ?? .tcp(host: instance.host ?? "127.0.0.1", port: instance.port ?? 3306)
        let tls = configuration.tls(forInstance: index)
        try tls?.checkFiles(instance.tls == nil ? "tls" : "instances[\(index)].tls")
        return MariaDBConfiguration(
            endpoint: endpoint, user: user, password: credentials.password, connectTimeout: configuration.connectTimeout,
            readTimeout: configuration.readTimeout, writeTimeout: configuration.readTimeout, tls: tls?.client)
    }
}

/// `heartbeat.write` is on, and the agent's account on some instance holds a privilege that
/// writes through `read_only`: the heartbeat would not stop on an old primary set read-only
/// during a switchover. The agent refuses to start.
public struct HeartbeatWriterRefused: Error, CustomStringConvertible {
    public struct Refusal: Sendable, CustomStringConvertible {
        public var instance: String
        public var account: String
        public var findings: [WriterPrivileges.Finding]

        public var description: String {
            "on \(instance), the account \(account) holds \(findings.map(\.description).joined(separator: ", "))"
        }
    }

    public var refusals: [Refusal]

    static let remedy = """
        such a privilege writes through read_only, so the heartbeat would not stop on an old primary set read-only during a \
        switchover. Give the agent an account without ALL PRIVILEGES, SUPER or READ_ONLY ADMIN (sql/agent-grants.sql), \
        or set heartbeat.write: false
        """

    public var description: String {
        "heartbeat.write: \(refusals.map(\.description).joined(separator: "; ")): \(Self.remedy)"
    }
}

/// The committed primary of each section, read from the generated configurations in etcd and
/// kept for `maxAge` seconds; with the health checks, also every section's pooled replicas and
/// their weights (`CommittedSections`), refreshed by `refresh()`.
actor PrimaryDirectory {
    let etcd: EtcdClient
    let root: String
    let maxAge: Double
    private var sections = CommittedSections()
    private var readAt: ContinuousClock.Instant?
    private var lastError: String?

    init(etcd: EtcdClient, root: String, maxAge: Double) {
        self.etcd = etcd
        self.root = root
        self.maxAge = maxAge
    }

    func primary(of section: String) async throws -> String? {
        if readAt.map({ ContinuousClock.now - $0 > .milliseconds(Int(maxAge * 1000)) }) ?? true {
            try await refresh()
        }
        return sections.sections[section]?.primary
    }

    /// Reads the generated configurations again (when the last read is older than `maxAge`,
    /// unless `force`). A failure is kept for `snapshot()` and thrown.
    func refresh(force: Bool = true) async throws {
        if !force, let readAt, ContinuousClock.now - readAt <= .milliseconds(Int(maxAge * 1000)) { return }
        do {
            sections = try CommittedSections(try await etcd.get(root + "/generated/", prefix: true).kvs)
            readAt = ContinuousClock.now
            lastError = nil
        } catch {
            lastError = "\(error)"
            throw error
        }
    }

    /// What was last read, when, and why the latest read failed (if it did).
    func snapshot() -> (sections: CommittedSections, readAt: ContinuousClock.Instant?, error: String?) {
        (sections, readAt, lastError)
    }

    /// The primary of every section, from the generated configurations (`generated/<dc>`).
    static func primaries(_ generated: [KeyValue]) throws -> [String: String] {
        try members(generated).compactMapValues(\.primary)
    }

    /// The primary and the pooled replicas of every section, from the generated configurations.
    static func members(_ generated: [KeyValue]) throws -> [String: (primary: String?, replicas: Set<String>)] {
        var sections = [String: (primary: String?, replicas: Set<String>)]()
        for kv in generated {
            let stored = try StoredJSON.decode(StoredLoads.self, from: kv.value)
            for (name, loads) in stored.config.sectionLoads {
                // The generated configuration names section s3 `DEFAULT`, as MediaWiki does.
                let section = name == "DEFAULT" ? "s3" : name
                let primary = loads.first?.keys.first
                var entry = sections[section] ?? (primary: nil, replicas: [])
                if let primary { entry.primary = primary }
                for group in loads { entry.replicas.formUnion(group.keys) }
                if let primary = entry.primary { entry.replicas.remove(primary) }
                sections[section] = entry
            }
        }
        return sections
    }

    /// The part of a stored generated configuration the agent reads.
    struct StoredLoads: Decodable {
        struct Config: Decodable { var sectionLoads: [String: [[String: Int]]] }
        var config: Config
    }
}

/// The latest observation of every instance, what was last published, and what is due.
actor Board {
    let policy: PublishPolicy
    private var latest = [String: Observation]()
    private var published = [String: (observation: Observation, at: Date)]()
    private var due = Set<String>()

    init(policy: PublishPolicy) { self.policy = policy }

    /// Records a probe; true when it must be published now.
    func record(_ observation: Observation, now: Date) -> Bool {
        latest[observation.instance] = observation
        let last = published[observation.instance]
        guard policy.reason(toPublish: observation, after: last?.observation, publishedAt: last?.at, now: now) != nil else { return false }
        due.insert(observation.instance)
        return true
    }

    /// The observations due, taken out of the due set.
    func takeDue() -> [Observation] {
        defer { due.removeAll() }
        return due.sorted().compactMap { latest[$0] }
    }

    func markPublished(_ observations: [Observation], at: Date) {
        for observation in observations { published[observation.instance] = (observation, at) }
    }

    /// After a failed write or a lost lease: everything is due again.
    func markAllDue() {
        due.formUnion(latest.keys)
    }
}

/// Writes observations under the agent's lease and keeps the lease alive.
actor Publisher {
    let etcd: EtcdClient
    let root: String
    let ttl: Int64
    let logger: Logger
    private var lease: Int64 = 0
    private var failures = 0

    init(etcd: EtcdClient, root: String, ttl: Int64, logger: Logger) {
        self.etcd = etcd
        self.root = root
        self.ttl = ttl
        self.logger = logger
    }

    func run(board: Board, signals: AsyncStream<Void>, keepAliveEvery: Double) async {
        let clock = ContinuousClock()
        var nextKeepAlive = clock.now
        await withTaskGroup(of: Void.self) { group in
            // A tick so that keep-alives and retries happen even when no probe signals.
            let (ticks, tick) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            group.addTask {
                for await _ in signals { tick.yield() }
                tick.finish()
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(250))
                    tick.yield()
                }
            }
            for await _ in ticks {
                if Task.isCancelled { break }
                if failures > 0 && clock.now < nextRetry { continue }
                do {
                    if clock.now >= nextKeepAlive {
                        try await keepAlive(board: board)
                        nextKeepAlive = clock.now + .milliseconds(Int(keepAliveEvery * 1000))
                    }
                    try await flush(board: board)
                    if failures > 0 { logger.notice("etcd answers again; observations republished") }
                    failures = 0
                } catch {
                    failures += 1
                    await board.markAllDue()
                    let backoff = min(30.0, 0.5 * Double(1 << (min(failures, 10) - 1)))
                    nextRetry = clock.now + .milliseconds(Int(backoff * 1000))
                    logger.warning("cannot publish to etcd, retrying in \(backoff) s: \(error)")
                }
            }
            group.cancelAll()
        }
    }

    private var nextRetry = ContinuousClock.now

    private func keepAlive(board: Board) async throws {
        if lease != 0, try await etcd.keepAlive(lease) != nil { return }
        if lease != 0 { logger.warning("lease \(lease) expired; granting a new one and republishing") }
        lease = try await etcd.grantLease(ttl: ttl).id
        await board.markAllDue()
    }

    private func flush(board: Board) async throws {
        if lease == 0 { try await keepAlive(board: board) }
        let due = await board.takeDue()
        guard !due.isEmpty else { return }
        let operations = try due.map { observation in
            KVOperation.put("\(root)/observed/\(observation.instance)", try ObservationJSON.encode(observation), lease: lease)
        }
        do {
            _ = try await etcd.transaction(Transaction(compares: [], success: operations))
        } catch let error as EtcdError where error.grpcCode == GRPCCode.notFound {
            // The lease is gone (etcd restarted from a snapshot, or it expired): start over.
            lease = 0
            throw error
        }
        await board.markPublished(due, at: Date())
    }

    /// On a graceful stop: revoke the lease, so the observations vanish at once.
    func release() async {
        guard lease != 0 else { return }
        _ = try? await etcd.revokeLease(lease)
        lease = 0
    }
}
