/// What `up` will build, decided before anything starts: names, ports, server ids, paths.
/// Pure, so the layout is tested without servers.
public struct SandboxPlan: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public var name: String
        public var section: String
        public var role: SandboxState.Role
        public var port: Int
        public var serverID: Int
        public var directory: String
        /// The agent's health listener for this instance (`/primary`, `/replica`, `/health`).
        public var healthPort: Int = 0
    }

    public var directory: String
    public var etcdClientPort: Int
    public var etcdPeerPort: Int
    public var members: [Member]
    /// The controller's HTTP listener: API, `/metrics` and the web page.
    public var controllerHTTPPort: Int
    /// The agent's own `/metrics` (one agent on loopback; in namespaces mode each host's agent
    /// listens on its own address, on this same port).
    public var agentMetricsPort: Int
    /// Seconds between the agent's probes of each instance (`--agent-interval`).
    public var agentInterval: Double
    /// Whether the controller fails a dead primary over on its own (`--failover`).
    public var failover: SandboxFailoverMode
    /// Where the hosts live (`--hosts`).
    public var hosts: SandboxHosts
    /// The bridge, namespaces and addresses in namespaces mode (nil on loopback).
    public var network: SandboxNetwork?

    /// Ports a plan with `sections` × (1 + `replicas`) instances needs from its base port.
    /// Two for etcd, one per instance, the controller's HTTP port, the agent's metrics port,
    /// and one health port per instance.
    public static func portCount(sections: Int, replicas: Int) -> Int { 4 + 2 * sections * (1 + replicas) }

    /// Ports a sandbox reserves from its base port: those it uses, or in namespaces mode a
    /// whole `SandboxNetwork.portWindow`, which makes its subnet its own (see `SandboxNetwork`).
    public static func reservedPortCount(sections: Int, replicas: Int, hosts: SandboxHosts) -> Int {
        let used = portCount(sections: sections, replicas: replicas)
        return hosts == .namespaces ? max(used, SandboxNetwork.portWindow) : used
    }

    /// Section `k` (from 1) is `sk`; its instances are `db<k>001`, `db<k>002`, ... with the
    /// first as primary; server ids are the numeric part of the name. Ports: etcd client at
    /// `basePort`, etcd peer at `basePort + 1`, instances from `basePort + 2` on, then the
    /// controller's HTTP port, the agent's metrics port, and each instance's health port.
    /// `agentInterval` must be above 0.01 s and at most 60 s.
    /// With `hosts` namespaces, each instance gets the address and namespace `SandboxNetwork` gives it.
    public init(
        directory: String, sections: Int, replicas: Int, basePort: Int, agentInterval: Double = 1,
        failover: SandboxFailoverMode = .manual, hosts: SandboxHosts = .loopback
    ) throws {
        // Zero sections is an etcd-only sandbox, which tests use; the CLI asks for at least one.
        guard (0...9).contains(sections) else {
            throw SandboxError.invalidArgument("--sections must be between 1 and 9 (got \(sections))")
        }
        guard (0...9).contains(replicas) else {
            throw SandboxError.invalidArgument("--replicas must be between 0 and 9 (got \(replicas))")
        }
        let last = basePort + Self.portCount(sections: sections, replicas: replicas) - 1
        guard basePort >= 1024, last <= 65535 else {
            throw SandboxError.invalidArgument(
                "--base-port must leave room for \(Self.portCount(sections: sections, replicas: replicas)) ports between 1024 and 65535 (got \(basePort))"
            )
        }
        try Self.checkAgentInterval(agentInterval)
        self.directory = directory
        self.agentInterval = agentInterval
        self.failover = failover
        self.etcdClientPort = basePort
        self.etcdPeerPort = basePort + 1
        var members = [Member]()
        var port = basePort + 2
        for section in stride(from: 1, through: sections, by: 1) {
            for index in 0...replicas {
                let serverID = section * 1000 + index + 1
                let name = "db\(serverID)"
                members.append(
                    Member(
                        name: name, section: "s\(section)", role: index == 0 ? .primary : .replica, port: port,
                        serverID: serverID, directory: directory + "/" + name))
                port += 1
            }
        }
        self.controllerHTTPPort = port
        self.agentMetricsPort = port + 1
        port += 2
        for index in members.indices {
            members[index].healthPort = port
            port += 1
        }
        self.members = members
        self.hosts = hosts
        self.network = hosts == .namespaces ? try SandboxNetwork(basePort: basePort, serverIDs: members.map { ($0.name, $0.serverID) }) : nil
    }

    /// The address `member` listens on and reports: its own in namespaces mode, else `127.0.0.1`.
    public func address(of member: Member) -> String {
        network?.host(named: member.name)?.address ?? "127.0.0.1"
    }

    /// The agent's probe interval must be a number of seconds above 0.01 and at most 60: a
    /// failover test probes every 0.2 s, a quiet sandbox every second.
    public static func checkAgentInterval(_ seconds: Double) throws {
        guard seconds.isFinite, seconds > 0.01, seconds <= 60 else {
            throw SandboxError.invalidArgument("--agent-interval must be a number of seconds above 0.01 and at most 60 (got \(seconds))")
        }
    }

    /// Every port with what it is for, to check before starting anything.
    public var ports: [(port: Int, purpose: String)] {
        [(etcdClientPort, "etcd clients"), (etcdPeerPort, "etcd peers")] + members.map { ($0.port, "mariadbd \($0.name)") }
            + [(controllerHTTPPort, "the controller's HTTP"), (agentMetricsPort, "the agent's metrics")]
            + members.map { ($0.healthPort, "the health checks of \($0.name)") }
    }

    /// The option file of one instance. Replicas start `read_only`; all use GTID in strict
    /// mode with `log_slave_updates`, as the switchover needs. With `tls`, the server offers
    /// TLS with the sandbox's certificates (clients choose; users may `REQUIRE` it). Durability is relaxed
    /// (`sync_binlog=0`, `innodb_flush_log_at_trx_commit=2`): a sandbox favours speed.
    /// `slave_net_timeout=4`: a replica that has received nothing (no event, nor the heartbeat it
    /// asks for every second) for 4 s reconnects, so it notices a dead primary in seconds.
    /// `address` is what it binds to and reports to its primary (`report_host`): `127.0.0.1`,
    /// or its own in namespaces mode.
    public static func optionFile(for member: Member, tls: Certificates? = nil, address: String = "127.0.0.1") -> String {
        let dir = member.directory
        let tlsLines = tls.map { "ssl_ca=\($0.caFile)\nssl_cert=\($0.serverCertificate)\nssl_key=\($0.serverKey)\n" } ?? ""
        return """
            # Written by marina sandbox; one instance of section \(member.section).
            [mariadbd]
            user=root
            datadir=\(dir)/data
            socket=\(dir)/mariadb.sock
            tmpdir=\(dir)/tmp
            port=\(member.port)
            bind-address=\(address)
            pid-file=\(dir)/mariadb.pid
            log-error=\(dir)/err.log
            server_id=\(member.serverID)
            log_bin=\(dir)/data/\(member.name)-bin
            relay_log=\(dir)/data/\(member.name)-relay
            log_slave_updates=ON
            gtid_strict_mode=ON
            binlog_format=ROW
            read_only=\(member.role == .primary ? "OFF" : "ON")
            report_host=\(address)
            report_port=\(member.port)
            slave_net_timeout=4
            skip-name-resolve
            performance_schema=OFF
            innodb_buffer_pool_size=64M
            innodb_log_file_size=32M
            innodb_flush_log_at_trx_commit=2
            sync_binlog=0
            max_connections=200

            """ + tlsLines
    }
}
