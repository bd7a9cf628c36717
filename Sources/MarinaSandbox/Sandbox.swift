import BlockingIO
import ConfigurationFiles
import EtcdClient
import Foundation
import Logging
import MariaDBClient

/// A local topology on loopback: one real etcd and, per section, one primary `mariadbd` and
/// its replicas (GTID replication, strict mode, `log_slave_updates`, replicas `read_only`),
/// with Percona's `pt-heartbeat` writing on each primary. All state lives in one directory.
/// With `hosts: .namespaces`, each `mariadbd` (with its own agent) and the controller are
/// hosts of their own: network namespaces on a bridge, which `partition` can cut off.
///
/// The CLI (`marina sandbox`) and the integration tests both use this type.
public struct Sandbox: Sendable {
    public struct Options: Sendable {
        public var directory: String
        public var sections: Int
        public var replicas: Int
        /// `nil` picks a free block of ports.
        public var basePort: Int?
        public var datacenter: String
        /// Seconds between heartbeat writes.
        public var heartbeatInterval: Double
        /// The programs to run; `nil` finds them on `PATH` (tests substitute failing ones).
        public var toolchain: Toolchain?
        /// Make a private CA: mariadbd offers TLS, etcd serves only HTTPS with client certificates.
        public var tls: Bool
        /// The `marina` executable to run `marina agent` with; no agent when nil.
        public var agentExecutable: String?
        /// The `marina` executable to run `marina controller` with; no controller when nil.
        public var controllerExecutable: String?
        /// Who writes the heartbeat on each primary: the agent's built-in writer (which follows
        /// the primary through a switchover) when an agent runs, else Percona's pt-heartbeat.
        public var heartbeat: HeartbeatWriter?
        /// The directory holding `switchover.yaml`; nil finds the repository's `playbooks/`.
        public var playbooks: String?
        /// Whether the controller fails a dead primary over on its own; kept in the state for
        /// every controller started later.
        public var failover: SandboxFailoverMode
        /// Seconds between the agent's probes of each instance (above 0.01, at most 60); kept in
        /// the state for every agent started later.
        public var agentInterval: Double
        /// Loopback (everything on 127.0.0.1), or a network namespace per host (needs root,
        /// `ip` and `nft`).
        public var hosts: SandboxHosts
        /// Seconds the agents' etcd leases live (2 to 3600): an agent cut from etcd loses its
        /// observations this long after its last keep-alive. Kept in the state.
        public var agentLeaseTTL: Int
        /// Lines appended at the top level of every agent configuration the sandbox writes (kept
        /// in the state for agents started later); nil: `Sandbox.defaultAgentExtraLines`.
        public var agentExtraLines: [String]?
        /// The primary lease the agents hold (their `fencing:` block, unless `agentExtraLines`
        /// replaces it) and the controller waits for; kept in the state.
        public var fencing: SandboxFencing

        public init(
            directory: String, sections: Int = 1, replicas: Int = 2, basePort: Int? = nil,
            datacenter: String = "dc1", heartbeatInterval: Double = 0.5, toolchain: Toolchain? = nil, tls: Bool = false,
            agentExecutable: String? = nil, controllerExecutable: String? = nil, heartbeat: HeartbeatWriter? = nil,
            playbooks: String? = nil, failover: SandboxFailoverMode = .manual, agentInterval: Double = 1,
            hosts: SandboxHosts = .loopback, agentLeaseTTL: Int = 10, agentExtraLines: [String]? = nil,
            fencing: SandboxFencing = .standard
        ) {
            self.directory = directory
            self.sections = sections
            self.replicas = replicas
            self.basePort = basePort
            self.datacenter = datacenter
            self.heartbeatInterval = heartbeatInterval
            self.toolchain = toolchain
            self.tls = tls
            self.agentExecutable = agentExecutable
            self.controllerExecutable = controllerExecutable
            self.heartbeat = heartbeat
            self.playbooks = playbooks
            self.failover = failover
            self.agentInterval = agentInterval
            self.hosts = hosts
            self.agentLeaseTTL = agentLeaseTTL
            self.agentExtraLines = agentExtraLines
            self.fencing = fencing
        }

        var heartbeatWriter: HeartbeatWriter { heartbeat ?? (agentExecutable == nil ? .ptHeartbeat : .agent) }
    }

    public enum HeartbeatWriter: String, Sendable, Codable {
        case agent
        case ptHeartbeat = "pt-heartbeat"
    }

    /// The outcome of `up`: the sandbox, and whether it was already running.
    public struct Started: Sendable {
        public var state: SandboxState
        public var alreadyRunning: Bool
    }

    /// The MariaDB user every sandbox instance has for tools and tests (password in the
    /// credentials file), and the replication user.
    public static let adminUser = "marina"
    public static let replicationUser = "repl"
    /// The agent's user, with exactly the grants of `sql/agent-grants.sql`.
    public static let agentUser = "marina_agent"
    public static let agentGrants = [
        "GRANT SLAVE MONITOR ON *.* TO ?@'localhost'", "GRANT SELECT ON heartbeat.* TO ?@'localhost'",
        "GRANT INSERT, UPDATE ON heartbeat.heartbeat TO ?@'localhost'",
    ]
    /// The controller's user, with exactly the grants of `sql/controller-grants.sql`.
    public static let controllerUser = "marina_controller"
    public static let controllerGrants = [
        "GRANT READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, SLAVE MONITOR, BINLOG MONITOR, RELOAD, PROCESS, CONNECTION ADMIN ON *.* TO ?@'127.0.0.1'",
        "GRANT SELECT ON heartbeat.* TO ?@'127.0.0.1'",
        "GRANT SELECT ON mysql.global_priv TO ?@'127.0.0.1'",
        "GRANT SELECT ON mysql.roles_mapping TO ?@'127.0.0.1'",
    ]
    /// An application's user for `marina sandbox load`: no SUPER, no READ ONLY ADMIN, so `read_only` stops it.
    public static let applicationUser = "marina_app"
    public static let loadDatabase = "marina_load"
    /// The agent's fence account (both modes; `credentials.cnf` group `[marina-fence]`, option
    /// file `fence.cnf`), with the grants of the second account of `sql/agent-grants.sql`: it
    /// makes its primary read-only and kills sessions when the agent loses its lease; never used
    /// by the heartbeat writer.
    public static let fenceUser = "marina_fence"
    public static let fenceGrants = ["GRANT READ_ONLY ADMIN, CONNECTION ADMIN, PROCESS ON *.* TO ?@'localhost'"]
    /// The lines a sandbox appends to its agents' configurations when its options give none:
    /// the one place to give every sandbox agent a new top-level block. The `fencing:` block,
    /// fencing as the sandbox's fence account (`credentials.fenceFile`).
    public static func defaultAgentExtraLines(credentials: Credentials, fencing: SandboxFencing = .standard) -> [String] {
        fencing.agentLines(credentialsFile: credentials.fenceFile)
    }

    /// Where the sandbox's blocking work runs (copying data directories, `mariadb-install-db`,
    /// `openssl`, waiting for processes to exit): never Swift's cooperative pool.
    static let blocking = BlockingQueue(label: "marina sandbox", concurrent: true)

    /// Starts a sandbox, or reports the one already running in `options.directory`.
    /// On any failure, every process it started is stopped again before the error is thrown.
    public static func up(_ options: Options, logger: Logger = Logger(label: "marina.sandbox")) async throws -> Started {
        // Before anything is created.
        try SandboxPlan.checkAgentInterval(options.agentInterval)
        try checkAgentLeaseTTL(options.agentLeaseTTL)
        let tools = options.hosts == .namespaces ? try HostNetwork.preflight() : nil
        let directory = try await blocking.run { try prepareDirectory(options.directory) }
        if let existing = try SandboxState.load(from: directory) {
            let dead = existing.processes.filter { !ChildProcess.isRunning($0.pid, marker: marker(directory)) }.map(\.name)
            if dead.isEmpty { return Started(state: existing, alreadyRunning: true) }
            guard dead.count == existing.processes.count else {
                throw SandboxError.partlyRunning(directory: directory, dead: dead)
            }
            // Every process of an earlier sandbox is gone (a reboot, a killed session): start afresh.
            if let network = existing.network {
                _ = try? await blocking.run { HostNetwork.remove(network, log: directory + "/network.log") }
            }
            try? FileManager.default.removeItem(atPath: SandboxState.path(in: directory))
        }

        let toolchain = try options.toolchain ?? Toolchain.locate()
        let plan = try choosePlan(options, directory: directory)
        let addresses = plan.network.map { [$0.bridgeAddress] + $0.hosts.map(\.address) } ?? []
        let (template, credentials, certificates) = try await blocking.run {
            (
                try DatadirTemplate.ensure(toolchain, fallbackDirectory: directory),
                try Credentials.create(in: directory),
                options.tls ? try Certificates.create(in: directory + "/tls", addresses: addresses) : nil
            )
        }
        var state = SandboxState(
            directory: directory, datacenter: options.datacenter,
            etcd: .init(
                clientPort: plan.etcdClientPort, peerPort: plan.etcdPeerPort, dataDirectory: directory + "/etcd",
                logFile: directory + "/etcd.log", pid: 0, tls: certificates != nil, bridgeAddress: plan.network?.bridgeAddress),
            instances: [], heartbeats: [], credentialsFile: credentials.path, certificates: certificates,
            startedAt: Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)),  // whole seconds, as saved
            failover: plan.failover, agentInterval: plan.agentInterval)
        state.hosts = plan.network == nil ? nil : plan.hosts
        state.network = plan.network
        state.agentLeaseTTL = options.agentLeaseTTL == 10 ? nil : options.agentLeaseTTL
        let extraLines = options.agentExtraLines ?? defaultAgentExtraLines(credentials: credentials, fencing: options.fencing)
        state.fencing = options.fencing == .standard ? nil : options.fencing
        state.agentExtraLines = extraLines.isEmpty ? nil : extraLines
        state.http = SandboxState.HTTP(
            controllerPort: plan.controllerHTTPPort, tokenFile: try Credentials.createToken(in: directory),
            agentMetricsPort: plan.agentMetricsPort, healthPorts: Dictionary(uniqueKeysWithValues: plan.members.map { ($0.name, $0.healthPort) }))

        do {
            if let network = plan.network, let tools {
                try state.save()  // the network is recorded before any of it exists
                try await blocking.run { try createNetwork(network, tools: tools, log: directory + "/network.log") }
            }
            try await start(
                plan, toolchain: toolchain, template: template, credentials: credentials, options: options,
                state: &state, logger: logger)
            try await register(state)
            if let executable = options.agentExecutable {
                try await startAgent(
                    executable, state: &state, credentials: credentials, interval: plan.agentInterval,
                    writeHeartbeat: options.heartbeatWriter == .agent)
                if options.heartbeatWriter == .agent { try await waitForHeartbeats(state, credentials: credentials) }
            }
            if let executable = options.controllerExecutable {
                try await startController(
                    executable, state: &state, credentials: credentials,
                    playbooks: try options.playbooks ?? locatePlaybooks(from: executable))
            }
            return Started(state: state, alreadyRunning: false)
        } catch {
            logger.info("sandbox start failed, stopping what was started: \(error)")
            let started = state
            _ = try? await blocking.run {
                _ = stopProcesses(of: started)
                if let network = started.network { HostNetwork.remove(network, log: directory + "/network.log") }
                try? FileManager.default.removeItem(atPath: SandboxState.path(in: directory))
            }
            throw error
        }
    }

    /// Stops every process recorded for the sandbox in `directory` and forgets it. Gives the
    /// names of the processes it stopped (none when no sandbox was running). Waits off the
    /// cooperative pool.
    public static func stop(directory: String, purge: Bool = false) async throws -> [String] {
        try await blocking.run { try down(directory: directory, purge: purge) }
    }

    /// `stop`, blocking the calling thread while the servers shut down (up to 15 s each): for
    /// synchronous contexts such as an exit handler. In namespaces mode, then deletes every
    /// veth, namespace (with its nft tables) and the bridge; if one cannot be deleted, the state
    /// is kept (a second `down` tries again) and the error names what is left.
    public static func down(directory: String, purge: Bool = false) throws -> [String] {
        let directory = absolute(directory)
        guard let state = try SandboxState.load(from: directory) else {
            if purge { try? FileManager.default.removeItem(atPath: directory) }
            return []
        }
        let stopped = stopProcesses(of: state)
        if let network = state.network {
            let left = HostNetwork.remove(network, log: directory + "/network.log")
            guard left.isEmpty else {
                throw SandboxError.setupFailed(
                    what: "removing the sandbox's network",
                    detail:
                        "\(left.joined(separator: ", ")) could not be deleted (see \(directory)/network.log; docs/sandbox.md, \"Cleaning up by hand\")"
                )
            }
        }
        try? FileManager.default.removeItem(atPath: SandboxState.path(in: directory))
        try? FileManager.default.removeItem(atPath: SandboxEtcd.path(in: directory))
        if purge { try? FileManager.default.removeItem(atPath: directory) }
        return stopped
    }

    /// The recorded state of a running sandbox, or `notRunning`.
    public static func state(directory: String) throws -> SandboxState {
        let directory = absolute(directory)
        guard let state = try SandboxState.load(from: directory) else { throw SandboxError.notRunning(directory: directory) }
        return state
    }

    /// The plan for `options`: on the requested base port (refused if any port is taken, or in
    /// namespaces mode if its subnet is), or on a free block (another block if one turns out
    /// taken in the meantime). A namespaces sandbox reserves `SandboxNetwork.portWindow` ports.
    static func choosePlan(_ options: Options, directory: String) throws -> SandboxPlan {
        let count = SandboxPlan.reservedPortCount(sections: options.sections, replicas: options.replicas, hosts: options.hosts)
        func plan(on basePort: Int) throws -> SandboxPlan {
            try SandboxPlan(
                directory: directory, sections: options.sections, replicas: options.replicas, basePort: basePort,
                agentInterval: options.agentInterval, failover: options.failover, hosts: options.hosts)
        }
        func requireFree(_ plan: SandboxPlan) throws {
            try Ports.requireFree(plan.ports)
            if let network = plan.network, let user = HostNetwork.subnetUser(network) { throw SandboxError.subnetInUse(network.subnet, by: user) }
        }
        if let requested = options.basePort {
            let plan = try plan(on: requested)
            try requireFree(plan)
            return plan
        }
        for _ in 0..<5 {
            let plan = try plan(on: try Ports.findFreeBlock(count: count))
            if (try? requireFree(plan)) != nil { return plan }
        }
        throw SandboxError.noFreePorts(count: count)
    }

    /// The agents' lease TTL must be a whole number of seconds from 2 to 3600, as the agent requires.
    static func checkAgentLeaseTTL(_ seconds: Int) throws {
        guard (2...3600).contains(seconds) else {
            throw SandboxError.invalidArgument("the agents' lease TTL must be from 2 to 3600 seconds (got \(seconds))")
        }
    }

    /// Creates the bridge (checking the subnet is free) and every host of `network`.
    static func createNetwork(_ network: SandboxNetwork, tools: HostNetwork.Tools, log: String) throws {
        try HostNetwork.createBridge(network, tools: tools, log: log)
        for host in network.hosts { try HostNetwork.createHost(host, on: network, tools: tools, log: log) }
    }

    /// The string every command line of this sandbox's processes contains.
    static func marker(_ directory: String) -> String { directory + "/" }

    // MARK: Steps

    private static func start(
        _ plan: SandboxPlan, toolchain: Toolchain, template: String, credentials: Credentials,
        options: Options, state: inout SandboxState, logger: Logger
    ) async throws {
        let directory = plan.directory
        let marker = marker(directory)
        try? FileManager.default.removeItem(atPath: state.etcd.dataDirectory)
        state.etcd.pid = try EtcdServer.start(
            toolchain, dataDirectory: state.etcd.dataDirectory, clientPort: plan.etcdClientPort,
            peerPort: plan.etcdPeerPort, logFile: state.etcd.logFile, tls: state.certificates,
            bridgeAddress: plan.network?.bridgeAddress)
        try state.save()
        let certificates = state.certificates
        try await blocking.run {
            for member in plan.members {
                try MariaDBServer.prepare(member, template: template, tls: certificates, address: plan.address(of: member))
            }
        }
        for member in plan.members {
            let pid = try MariaDBServer.start(
                toolchain, directory: member.directory, namespace: plan.network?.host(named: member.name)?.namespace)
            state.instances.append(
                .init(
                    name: member.name, section: member.section, role: member.role, host: plan.address(of: member),
                    port: member.port, socket: member.directory + "/mariadb.sock", serverID: member.serverID,
                    directory: member.directory, pid: pid))
            try state.save()
        }
        logger.debug("started etcd and \(plan.members.count) mariadbd; waiting for them")

        let instances = state.instances
        let etcd = state.etcd
        let clients = try await withThrowingTaskGroup(of: (String, MariaDBClient)?.self) { group in
            group.addTask {
                try await EtcdServer.waitReady(url: etcd.url, pid: etcd.pid, marker: marker, logFile: etcd.logFile, tls: certificates)
                return nil
            }
            for instance in instances {
                group.addTask {
                    let client = try await MariaDBServer.waitReady(
                        name: instance.name, socket: instance.socket, pid: instance.pid,
                        marker: marker, errorLog: instance.errorLog)
                    return (instance.name, client)
                }
            }
            var clients = [String: MariaDBClient]()
            for try await result in group {
                if let (name, client) = result { clients[name] = client }
            }
            return clients
        }
        do {
            try await configureReplication(state: &state, clients: clients, toolchain: toolchain, credentials: credentials, options: options)
        } catch {
            for client in clients.values { await client.close() }
            throw error
        }
        for client in clients.values { await client.close() }
    }

    private static func configureReplication(
        state: inout SandboxState, clients: [String: MariaDBClient], toolchain: Toolchain,
        credentials: Credentials, options: Options
    ) async throws {
        let marker = marker(state.directory)
        for section in state.sections {
            guard let primary = state.primary(of: section), let primaryClient = clients[primary.name] else { continue }
            try await configurePrimary(
                primaryClient, section: section, datacenter: options.datacenter, credentials: credentials,
                subnet: state.network?.accountHostPattern)
            let position = try await primaryClient.query("SELECT @@gtid_binlog_pos AS pos").first?["pos"] ?? ""
            for replica in state.instances(in: section) where replica.role == .replica {
                guard let client = clients[replica.name] else { continue }
                try await configureReplica(client, name: replica.name, primary: primary, credentials: credentials)
                try await waitForReplication(client, name: replica.name, position: position)
            }
            guard options.heartbeatWriter == .ptHeartbeat else { continue }
            let logFile = primary.directory + "/pt-heartbeat.log"
            let pid = try spawnHeartbeat(toolchain, on: primary, interval: options.heartbeatInterval)
            state.heartbeats.append(.init(section: section, instance: primary.name, logFile: logFile, pid: pid))
            try state.save()
            try await waitForHeartbeat(primaryClient, serverID: primary.serverID, pid: pid, marker: marker, logFile: logFile)
        }
        try state.save()
    }

    /// The accounts, the heartbeat table and the load table, created on a section's primary
    /// (its replicas copy them). The accounts that connect over TCP (admin, replication,
    /// controller, application) exist at `127.0.0.1`, and in namespaces mode at the subnet's
    /// pattern `subnet` too, so that the other hosts reach them.
    private static func configurePrimary(
        _ client: MariaDBClient, section: String, datacenter: String, credentials: Credentials, subnet: String?
    ) async throws {
        let tcpHosts = ["127.0.0.1"] + (subnet.map { [$0] } ?? [])
        do {
            // mariadb-install-db leaves password-less root accounts for TCP; only the socket keeps one.
            for account in try await client.query("SELECT host FROM mysql.user WHERE user = 'root' AND host <> 'localhost'").rows {
                try await client.execute("DROP USER 'root'@?", .string(account["host"] ?? ""))
            }
            for host in tcpHosts + ["localhost"] {
                try await client.execute("CREATE USER ?@? IDENTIFIED BY ?", .string(adminUser), .string(host), .string(credentials.adminPassword))
                try await client.execute("GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION", .string(adminUser), .string(host))
            }
            for host in tcpHosts {
                try await client.execute(
                    "CREATE USER ?@? IDENTIFIED BY ?", .string(replicationUser), .string(host), .string(credentials.replicationPassword))
                try await client.execute("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ?@?", .string(replicationUser), .string(host))
            }
            try await client.execute("CREATE USER ?@'localhost' IDENTIFIED BY ?", .string(agentUser), .string(credentials.agentPassword))
            try await client.execute("CREATE DATABASE heartbeat")
            try await client.execute(HeartbeatTable.createStatement(shard: section, datacenter: datacenter))
            for grant in agentGrants { try await client.execute(grant, .string(agentUser)) }
            try await client.execute("CREATE USER ?@'localhost' IDENTIFIED BY ?", .string(fenceUser), .string(credentials.fencePassword))
            for grant in fenceGrants { try await client.execute(grant, .string(fenceUser)) }
            for host in tcpHosts {
                try await client.execute(
                    "CREATE USER ?@? IDENTIFIED BY ?", .string(controllerUser), .string(host), .string(credentials.controllerPassword))
                for grant in controllerGrants { try await client.execute(at(host, grant), .string(controllerUser)) }
            }
            try await client.execute("CREATE DATABASE \(loadDatabase)")
            try await client.execute("CREATE TABLE \(loadDatabase).writes (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, written_at DATETIME(6) NOT NULL)")
            for host in tcpHosts {
                try await client.execute(
                    "CREATE USER ?@? IDENTIFIED BY ?", .string(applicationUser), .string(host), .string(credentials.applicationPassword))
                try await client.execute("GRANT SELECT, INSERT ON \(loadDatabase).* TO ?@?", .string(applicationUser), .string(host))
            }
        } catch {
            throw SandboxError.setupFailed(what: "the primary of \(section)", detail: "\(error)")
        }
    }

    /// A grant of `controllerGrants` (written for `'127.0.0.1'`) for the account at `host`.
    private static func at(_ host: String, _ grant: String) -> String {
        grant.replacingOccurrences(of: "@'127.0.0.1'", with: "@" + SQL.quote(host))
    }

    /// Points a replica at its primary's address: GTID, a reconnect every second, and a
    /// heartbeat from the primary every second when it has nothing to send, so that with
    /// `slave_net_timeout=4` the replica notices within seconds that it hears nothing.
    private static func configureReplica(
        _ client: MariaDBClient, name: String, primary: SandboxState.Instance, credentials: Credentials
    ) async throws {
        do {
            try await client.execute(
                """
                CHANGE MASTER TO MASTER_HOST=?, MASTER_PORT=?, MASTER_USER=?, MASTER_PASSWORD=?,
                MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1
                """, .string(primary.host), .integer(Int64(primary.port)), .string(replicationUser),
                .string(credentials.replicationPassword))
            try await client.execute("START SLAVE")
        } catch {
            throw SandboxError.setupFailed(what: "replication on \(name)", detail: "\(error)")
        }
    }

    private static func waitForReplication(_ client: MariaDBClient, name: String, position: String) async throws {
        let result = try await client.query("SELECT MASTER_GTID_WAIT(?, 20) AS waited", .string(position))
        guard result.first?.int("waited") == 0 else {
            let status = try? await client.query("SHOW SLAVE STATUS").first
            throw SandboxError.setupFailed(
                what: "replication on \(name)",
                detail:
                    "did not reach \(position) in 20 s (IO: \(status?["Slave_IO_Running"] ?? "?"), SQL: \(status?["Slave_SQL_Running"] ?? "?"), error: \(status?["Last_IO_Error"] ?? "")\(status?["Last_SQL_Error"] ?? ""))"
            )
        }
    }

    private static func waitForHeartbeat(_ client: MariaDBClient, serverID: Int, pid: Int32, marker: String, logFile: String) async throws {
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            guard ChildProcess.isRunning(pid, marker: marker) else {
                throw SandboxError.notReady(
                    what: "pt-heartbeat", log: logFile, detail: "the process \(ChildProcess.ending(of: pid)): \(ChildProcess.logTail([logFile]))")
            }
            let rows = try await client.query("SELECT ts FROM heartbeat.heartbeat WHERE server_id = ?", .integer(Int64(serverID)))
            if !rows.rows.isEmpty { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw SandboxError.notReady(what: "pt-heartbeat", log: logFile, detail: "wrote no heartbeat row within 15 s")
    }

    /// Starts pt-heartbeat writing on `primary` (root over its socket: no password anywhere).
    static func spawnHeartbeat(_ toolchain: Toolchain, on primary: SandboxState.Instance, interval: Double) throws -> Int32 {
        try ChildProcess.spawn(
            toolchain.ptHeartbeat,
            [
                "--socket", primary.socket, "--user", "root", "--database", "heartbeat", "--table", "heartbeat",
                "--update", "--replace", "--utc", "--interval", String(interval),
            ], logFile: primary.directory + "/pt-heartbeat.log")
    }

    /// Stops every recorded process, heartbeat writers first and etcd last.
    static func stopProcesses(of state: SandboxState) -> [String] {
        let marker = marker(state.directory)
        return state.processes.compactMap { process in
            ChildProcess.stop(process.pid, marker: marker) ? process.name : nil
        }
    }

    /// Creates the directory if needed and proves it writable.
    static func prepareDirectory(_ path: String) throws -> String {
        let directory = absolute(path)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let probe = directory + "/.write-test"
            try Data().write(to: URL(fileURLWithPath: probe))
            try FileManager.default.removeItem(atPath: probe)
        } catch {
            throw SandboxError.directoryNotWritable(directory, reason: (error as NSError).localizedDescription)
        }
        return directory
    }

    public static func absolute(_ path: String) -> String {
        let url =
            path.hasPrefix("/")
            ? URL(fileURLWithPath: path) : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(path)
        var result = url.standardizedFileURL.path
        while result.count > 1 && result.hasSuffix("/") { result.removeLast() }
        return result
    }
}
