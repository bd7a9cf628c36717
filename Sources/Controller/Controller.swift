import ConfigurationFiles
import EtcdClient
import FailsafeLink
import Foundation
import Logging
import MariaDBClient
import Operations
import ServiceLifecycle
import Topology
import TopologyStore

/// `marina controller`: campaigns for the leader lease; while it leads, it finishes what a
/// previous leader left (every section lock names an unfinished operation), then takes
/// requests from `/marina/v1/requests/` and runs each operation in its own task, so that a
/// request for a busy section is refused at once rather than queued.
public struct Controller: Service {
    let configuration: ControllerConfiguration
    var context: OperationContext
    let logger: Logger
    /// Marina's version, in this controller's registration (`controllers/<id>`).
    let version: String
    let startedAt = Date()

    public init(configuration: ControllerConfiguration, playbooks: Playbooks, logger: Logger, version: String = "unknown") throws {
        if let problem = configuration.testHookProblems().first { throw ControllerError.configuration(problem) }
        self.configuration = configuration
        self.logger = logger
        self.version = version
        let etcd: any CoordinationStore = EtcdClient(try configuration.etcd.clientConfiguration())
        let keys = StoreKeys(root: configuration.etcd.keyRoot)
        let credentials = try OptionFile.load(configuration.mariadb.credentialsFile)
        let account = credentials.account(in: configuration.mariadb.credentialsGroup)
        guard let user = account.user else {
            throw ControllerError.configuration("\(configuration.mariadb.credentialsFile): no user in [\(configuration.mariadb.credentialsGroup)]")
        }
        let replication = credentials.account(in: configuration.mariadb.replicationGroup)
        guard let replicationUser = replication.user else {
            throw ControllerError.configuration("\(configuration.mariadb.credentialsFile): no user in [\(configuration.mariadb.replicationGroup)]")
        }
        guard let replicationPassword = replication.password.map(Secret.init) else {
            throw ControllerError.configuration(
                "\(configuration.mariadb.credentialsFile): no password in [\(configuration.mariadb.replicationGroup)]: "
                    + "the replication account's password is given to every replica a switchover configures")
        }
        if let problem = replicationPassword.problemAsTextLiteral {
            throw ControllerError.configuration(
                "\(configuration.mariadb.credentialsFile): the password in [\(configuration.mariadb.replicationGroup)] "
                    + "cannot be given to CHANGE MASTER: \(problem); choose another")
        }
        var settingsAccount: Hosts.Account?
        if let group = configuration.mariadb.settingsGroup {
            let settings = credentials.account(in: group)
            guard let settingsUser = settings.user else {
                throw ControllerError.configuration("\(configuration.mariadb.credentialsFile): no user in [\(group)] (mariadb.settings_group)")
            }
            settingsAccount = Hosts.Account(
                user: settingsUser, password: settings.password, connectTimeout: configuration.mariadb.connectTimeout,
                tls: configuration.mariadb.caFile.map { MariaDBConfiguration.TLS(caFile: $0) })
        }
        let id = configuration.id ?? "\(ProcessInfo.processInfo.hostName):\(getpid())"
        let mirror = configuration.mirror.map { ConfigMirror(v2Prefix: $0.v2Prefix, directory: $0.directory) }
        let leadership = Leadership(etcd: etcd, keys: keys, id: id, ttl: configuration.leaseTTL)
        context = OperationContext(
            etcd: etcd, store: TopologyStore(etcd: etcd, keys: keys), leadership: leadership,
            hosts: Hosts(
                account: Hosts.Account(
                    user: user, password: account.password, connectTimeout: configuration.mariadb.connectTimeout,
                    tls: configuration.mariadb.caFile.map { MariaDBConfiguration.TLS(caFile: $0) }),
                fence: leadership.fence),
            playbook: playbooks.switchover, controllerUser: user, replicationUser: replicationUser, replicationPassword: replicationPassword,
            mirror: mirror,
            pauseBefore: configuration.pauseBefore, pauseAfter: configuration.pauseAfter, logger: logger,
            failoverPlaybook: playbooks.failover, failover: configuration.failover)
        context.settingsHosts = settingsAccount.map { Hosts(account: $0, fence: leadership.fence) }
        context.grantSyncPlaybook = playbooks.grantSync
        context.variableSyncPlaybook = playbooks.variableSync
        if configuration.failover.failsafeEndpoint != nil {
            // It grants while its own keep-alives fail, and promises no failover for as long as a
            // primary lease and its margin last.
            context.failsafe = FailsafeDesk(
                controller: id, hold: Double(configuration.failover.primaryLeaseTTL) + configuration.failover.primaryLeaseMargin)
        }
    }

    /// The name this controller leads under (the leader key's `id`): `id:` in its configuration,
    /// else `host:pid`.
    public var id: String { context.leadership.id }

    public func run() async throws {
        let running = Running()
        ControllerInstruments.registerCounters()
        logger.info("controller \(context.leadership.id) started", metadata: ["etcd": "\(configuration.etcd.endpoints.joined(separator: ","))"])
        if configuration.testing.enableHooks {
            logger.critical(
                """
                TEST HOOKS ENABLED (testing.enable_hooks: true): pause_before \(configuration.pauseBefore ?? "-"), \
                pause_after \(configuration.pauseAfter ?? "-"); operations wait for \(context.keys.resume)<id>. \
                This controller must not run in production.
                """)
        }
        let depool = DepoolLoop(context: context, depool: configuration.depool)
        let failover = FailoverWatch(context: context, settings: configuration.failover) { record in
            await launch(record, running)
        }
        let grants = context.settingsHosts.map { _ in
            GrantWatch(
                context: context, hosts: Hosts(account: context.settingsHosts!.account, fence: context.leadership.fence),
                settings: configuration.grants)
        }
        let leadership = context.leadership
        let pruner = JournalPruner(context: context, settings: configuration.journal)
        let registry = ControllerRegistry(
            etcd: context.etcd, keys: context.keys,
            registration: ControllerRegistration(
                id: leadership.id, host: ProcessInfo.processInfo.hostName, pid: getpid(), version: version, startedAt: startedAt,
                lastSeen: Date(), http: configuration.http?.listen, leading: false, leaseTTL: configuration.leaseTTL),
            logger: logger)
        var listener: FailsafeListener?
        if let endpoint = configuration.failover.failsafeEndpoint, let desk = context.failsafe {
            listener = try FailsafeListener(endpoint) { desk.answer($0) }
            logger.notice("failsafe: answering primaries cut off from etcd on \(endpoint)")
        }
        defer { listener?.stop() }
        await withTaskGroup(of: Void.self) { lease in
            // Keep-alives run on their own, scheduled from when each was sent, so that nothing
            // else the leader waits for (a slow etcd read) lets its fence close.
            lease.addTask { await keepAlive() }
            lease.addTask { await registry.run { await leadership.isLeader } }
            await cancelWhenGracefulShutdown {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await lead(running) }
                    group.addTask { await depool.run { await leadership.isLeader } }
                    group.addTask { await failover.run { await leadership.isLeader } }
                    group.addTask { await pruner.run { await leadership.isLeader } }
                    if let grants { group.addTask { await grants.run { await leadership.isLeader } } }
                }
            }
            // A graceful shutdown takes no new request, but the keep-alives go on until every
            // operation it runs has finished: a lease left to expire would hand a half-done
            // operation to another controller while this one still acts on it.
            await running.waitForAll()
            lease.cancelAll()
        }
        await registry.deregister()
        await context.leadership.resign()
        await context.hosts.closeAll()
        await context.settingsHosts?.closeAll()
        logger.info("controller \(context.leadership.id) stopped")
    }

    /// Renews the lease every third of its TTL while this controller holds one.
    private func keepAlive() async {
        let clock = ContinuousClock()
        let every = Duration.milliseconds(configuration.leaseTTL * 1000 / 3)
        while !Task.isCancelled {
            let sent = clock.now
            if await context.leadership.holdsLease {
                do {
                    let kept = try await context.leadership.keepAlive()
                    context.failsafe?.etcdAnswered(leading: kept)
                    if !kept {
                        logger.warning("controller \(context.leadership.id) lost the leader lease")
                    }
                } catch {
                    context.failsafe?.etcdFailed()
                    logger.warning("controller \(context.leadership.id): keep-alive: \(error)")
                }
            }
            try? await Task.sleep(until: sent + every, clock: clock)
        }
    }

    private func lead(_ running: Running) async {
        let leadership = context.leadership
        let clock = ContinuousClock()
        let recoverEvery = Duration.milliseconds(configuration.leaseTTL * 1000 / 3)
        var nextRecovery = clock.now
        while !Task.isCancelled {
            do {
                if await !leadership.isLeader {
                    // The operations of an earlier lease stop at their next statement (their fence
                    // is closed); none may still be running when this controller leads again.
                    guard await running.isEmpty else {
                        try? await Task.sleep(for: .milliseconds(50))
                        continue
                    }
                    // A lease still held (its fence closed) is not campaigned for: etcd is not asked.
                    let asks = await !leadership.holdsLease
                    let won = try await leadership.campaign()
                    if asks { context.failsafe?.etcdAnswered(leading: won) }
                    guard won else {
                        try? await Task.sleep(for: .milliseconds(configuration.leaseTTL * 1000 / 4))
                        continue
                    }
                    logger.notice("controller \(leadership.id) leads")
                    nextRecovery = clock.now + recoverEvery
                    try await recoverUnfinished(running)
                }
                if clock.now >= nextRecovery {
                    nextRecovery = clock.now + recoverEvery
                    // An operation whose task ended without finishing (etcd stopped answering in the
                    // middle, or the fence closed) still holds its lock: resume it.
                    try await recoverUnfinished(running)
                }
                let requests = try await context.etcd.get(context.keys.requests, prefix: true, keysOnly: true).kvs
                for kv in requests {
                    let id = String(kv.key.dropFirst(context.keys.requests.count))
                    guard await running.claim(id) else { continue }
                    await running.add(
                        id,
                        Task { [self] in
                            await handle(id)
                            await running.release(id)
                        })
                }
            } catch {
                if error is EtcdError { context.failsafe?.etcdFailed() }
                logger.warning("controller \(leadership.id): \(error)")
                try? await Task.sleep(for: .milliseconds(500))
            }
            try? await Task.sleep(for: .milliseconds(Int(configuration.pollInterval * 1000)))
        }
    }

    /// A new leader first finishes or rolls back what the previous one left, and the leader
    /// keeps doing so at every keep-alive: each section lock that no task of this controller
    /// is running names an operation that has not finished.
    private func recoverUnfinished(_ running: Running) async throws {
        try await takeResumeRequests(running)
        for kv in try await context.etcd.get(context.keys.locks, prefix: true).kvs {
            let id = String(decoding: kv.value, as: UTF8.self)
            guard await running.claim(id) else { continue }
            await running.add(
                id,
                Task { [self] in
                    do {
                        guard let stored = try await context.etcd.value(context.keys.operation(id)) else {
                            let section = kv.key.dropFirst(context.keys.locks.count)
                            logger.error(
                                """
                                lock \(kv.key) names operation \(id), which has no journal: check the section, then release the lock \
                                with `marina lock release \(section) --reason WHY`
                                """)
                            await running.release(id)
                            return
                        }
                        let record = try OperationJSON.decode(stored.value)
                        let topology = try await context.store.committedTopology() ?? Topology()
                        try await OperationRun(record: record, context: context, topology: topology).recover()
                    } catch {
                        logger.error("recovering operation \(id): \(error)")
                    }
                    await running.release(id)
                })
        }
    }

    /// Starts an operation this controller decided on its own (an automatic failover), in its
    /// own task like a request's.
    private func launch(_ record: OperationRecord, _ running: Running) async {
        guard await running.claim(record.id) else { return }
        await running.add(
            record.id,
            Task { [self] in
                do {
                    let topology = try await context.store.committedTopology() ?? Topology()
                    try await OperationRun(record: record, context: context, topology: topology).start()
                } catch ControllerError.notLeader {
                    logger.warning("operation \(record.id): this controller lost the lead; the next leader finishes it")
                } catch {
                    logger.error("operation \(record.id): \(error)")
                }
                await running.release(record.id)
            })
    }

    private func handle(_ id: String) async {
        do {
            guard let stored = try await context.etcd.value(context.keys.operation(id)) else {
                _ = try await context.etcd.delete(context.keys.request(id))
                return
            }
            let record = try OperationJSON.decode(stored.value)
            guard record.state == .requested else {
                _ = try await context.etcd.delete(context.keys.request(id))
                return
            }
            let topology = try await context.store.committedTopology() ?? Topology()
            try await OperationRun(record: record, context: context, topology: topology, requestRevision: stored.modRevision).start()
        } catch ControllerError.notLeader {
            logger.warning("operation \(id): this controller lost the lead; the next leader finishes or rolls it back")
        } catch {
            logger.error("operation \(id): \(error)")
        }
    }
}

/// The operations this controller is running, by id.
actor Running {
    private var claimed = Set<String>()
    private var tasks = [String: Task<Void, Never>]()

    func claim(_ id: String) -> Bool { claimed.insert(id).inserted }
    var isEmpty: Bool { claimed.isEmpty }
    func add(_ id: String, _ task: Task<Void, Never>) { if claimed.contains(id) { tasks[id] = task } }
    func release(_ id: String) {
        claimed.remove(id)
        tasks[id] = nil
    }

    func waitForAll() async {
        while let (_, task) = tasks.first {
            await task.value
        }
    }
}
