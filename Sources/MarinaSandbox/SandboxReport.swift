import EtcdClient
import Foundation
import MariaDBClient

/// A sandbox as its servers describe themselves right now: what `marina sandbox status`
/// prints. Every field is read from the running processes, not from the state file, except
/// the names, ports and sockets that identify them.
public struct SandboxReport: Codable, Sendable {
    public struct Instance: Codable, Sendable {
        public var name: String
        public var section: String
        /// The role given at `up`.
        public var role: SandboxState.Role
        /// Its address (`127.0.0.1`, or its own in namespaces mode).
        public var host: String
        public var port: Int
        public var socket: String
        public var serverID: Int
        public var pid: Int32
        public var running: Bool
        /// Stopped by SIGSTOP (`marina sandbox kill NAME --signal STOP`): not asked anything.
        public var frozen: Bool = false
        /// `nil` when the server did not answer (see `error`).
        public var readOnly: Bool?
        public var gtidBinlogPos: String?
        public var gtidCurrentPos: String?
        /// The instance it replicates from (name, or `host:port` if not in the sandbox).
        public var replicatesFrom: String?
        public var ioThread: String?
        public var sqlThread: String?
        public var secondsBehindMaster: Int?
        public var replicationError: String?
        /// Seconds since the newest heartbeat row of the section's primary, as MediaWiki computes it.
        public var heartbeatLag: Double?
        public var error: String?
        /// Its network namespace, in namespaces mode.
        public var namespace: String?
        /// What it is cut from (`Sandbox.partition`), if anything.
        public var partitions: [SandboxPartition]?
    }

    public struct Etcd: Codable, Sendable {
        public var url: String
        public var pid: Int32
        public var running: Bool
        public var version: String?
        public var error: String?
    }

    public struct Heartbeat: Codable, Sendable {
        public var section: String
        public var instance: String
        public var pid: Int32
        public var running: Bool
    }

    public var directory: String
    public var datacenter: String
    public var credentialsFile: String
    /// The sandbox's CA and client certificate, when started with `--tls`.
    public var certificates: Certificates?
    public var etcd: Etcd
    public var instances: [Instance]
    public var heartbeats: [Heartbeat]
    /// The marina agent and controller, when the sandbox runs them: pid and whether it runs.
    public var agent: Service?
    public var controller: Service?
    /// How the sandbox's controller fails over (`up --failover`).
    public var failover: SandboxFailoverMode
    /// Seconds between the agent's probes, when the sandbox runs an agent.
    public var agentInterval: Double?
    /// Where the hosts live (`up --hosts`).
    public var hosts: SandboxHosts
    /// The bridge and subnet in namespaces mode.
    public var network: Network?
    /// In namespaces mode, the agent of each host, by instance.
    public var hostAgents: [HostAgent]?
    /// The agents' HTTP endpoints (`/metrics`, each instance's health checks), when agents run.
    public var agentURLs: [String]? = nil
    /// The controller's web page, API and metrics, and the file holding the API's access token, when a controller runs.
    public var controllerHTTP: ControllerHTTP? = nil

    public struct ControllerHTTP: Codable, Sendable, Equatable {
        /// The topology page (`/`); the API is under `/api/v1`, metrics at `/metrics`.
        public var url: String
        public var tokenFile: String
    }

    public struct Network: Codable, Sendable, Equatable {
        public var subnet: String
        public var bridge: String
        public var bridgeAddress: String
        public var controllerNamespace: String
        public var controllerAddress: String
    }

    public struct HostAgent: Codable, Sendable, Equatable {
        public var instance: String
        public var pid: Int32
        public var running: Bool
        public var logFile: String
    }

    public struct Service: Codable, Sendable, Equatable {
        public var pid: Int32
        public var running: Bool
        public var logFile: String
    }

    /// Reads every server of the sandbox at once (each with a short timeout).
    public static func inspect(_ state: SandboxState) async -> SandboxReport {
        let marker = Sandbox.marker(state.directory)
        let etcdRunning = ChildProcess.isRunning(state.etcd.pid, marker: marker)
        var etcd = Etcd(url: state.etcd.url, pid: state.etcd.pid, running: etcdRunning)
        do {
            let client = EtcdClient(
                EtcdConfiguration(
                    endpoints: [state.etcd.url], tls: state.certificates?.etcdClientTLS,
                    connectTimeout: 1, requestTimeout: 2))
            etcd.version = try await client.status().version
        } catch {
            etcd.error = "\(error)"
        }
        let instances = await withTaskGroup(of: Instance.self) { group in
            for instance in state.instances {
                group.addTask { await inspect(instance, in: state, marker: marker) }
            }
            var byName = [String: Instance]()
            for await result in group { byName[result.name] = result }
            return state.instances.compactMap { byName[$0.name] }
        }
        let heartbeats = state.heartbeats.map {
            Heartbeat(section: $0.section, instance: $0.instance, pid: $0.pid, running: ChildProcess.isRunning($0.pid, marker: marker))
        }
        func service(_ process: SandboxState.AgentProcess?) -> Service? {
            process.map { Service(pid: $0.pid, running: ChildProcess.isRunning($0.pid, marker: marker), logFile: $0.logFile) }
        }
        let hostAgents = state.hostAgents?.map {
            HostAgent(instance: $0.instance, pid: $0.pid, running: ChildProcess.isRunning($0.pid, marker: marker), logFile: $0.logFile)
        }
        let network = state.network.map {
            Network(
                subnet: $0.subnet, bridge: $0.bridge, bridgeAddress: $0.bridgeAddress, controllerNamespace: $0.controller.namespace,
                controllerAddress: $0.controller.address)
        }
        var report = SandboxReport(
            directory: state.directory, datacenter: state.datacenter, credentialsFile: state.credentialsFile,
            certificates: state.certificates, etcd: etcd, instances: instances, heartbeats: heartbeats,
            agent: service(state.agent), controller: service(state.controller), failover: state.failoverMode,
            agentInterval: state.agent == nil && state.hostAgents == nil ? nil : state.agentProbeInterval, hosts: state.hostsMode,
            network: network, hostAgents: hostAgents)
        if let http = state.http, state.agent != nil || state.hostAgents != nil {
            let hosts = state.network == nil ? ["127.0.0.1"] : state.instances.map(\.host)
            report.agentURLs =
                hosts.map { "http://\($0):\(http.agentMetricsPort)/metrics" }
                + state.instances.compactMap { instance in
                    http.healthPorts[instance.name].map { "http://\(instance.host):\($0)/primary  /replica?lag=5  /health  (\(instance.name))" }
                }
        }
        if let url = state.controllerURL, let http = state.http, state.controller != nil {
            report.controllerHTTP = ControllerHTTP(url: url, tokenFile: http.tokenFile)
        }
        return report
    }

    private static func inspect(_ instance: SandboxState.Instance, in state: SandboxState, marker: String) async -> Instance {
        var report = Instance(
            name: instance.name, section: instance.section, role: instance.role, host: instance.host, port: instance.port,
            socket: instance.socket, serverID: instance.serverID, pid: instance.pid,
            running: ChildProcess.isRunning(instance.pid, marker: marker))
        report.namespace = state.namespace(of: instance.name)
        let partitions = (state.partitions ?? []).filter { $0.instance == instance.name }.map(\.from)
        report.partitions = partitions.isEmpty ? nil : partitions
        guard report.running else {
            report.error = "process \(instance.pid) is not running"
            return report
        }
        guard !ChildProcess.isStopped(instance.pid) else {
            report.frozen = true
            report.error = "process \(instance.pid) is frozen (SIGSTOP)"
            return report
        }
        let client: MariaDBClient
        do {
            client = try await MariaDBClient.connect(MariaDBServer.rootConfiguration(socket: instance.socket, readTimeout: 3))
        } catch {
            report.error = "\(error)"
            return report
        }
        do {
            try await read(into: &report, from: client, state: state)
        } catch {
            report.error = "\(error)"
        }
        await client.close()
        return report
    }

    private static func read(into report: inout Instance, from client: MariaDBClient, state: SandboxState) async throws {
        let variables = try await client.query("SELECT @@read_only AS ro, @@gtid_binlog_pos AS binlog, @@gtid_current_pos AS current").first
        report.readOnly = variables?["ro"] == "1"
        report.gtidBinlogPos = variables?["binlog"]
        report.gtidCurrentPos = variables?["current"]
        if let replication = try await client.query("SHOW SLAVE STATUS").first {
            let port = replication.int("Master_Port") ?? 0
            let host = replication["Master_Host"] ?? ""
            report.replicatesFrom = state.instances.first { $0.port == port && $0.host == host }?.name ?? "\(host):\(port)"
            report.ioThread = replication["Slave_IO_Running"]
            report.sqlThread = replication["Slave_SQL_Running"]
            report.secondsBehindMaster = replication.int("Seconds_Behind_Master")
            let errors = [replication["Last_IO_Error"], replication["Last_SQL_Error"]].compactMap { $0 }.filter { !$0.isEmpty }
            report.replicationError = errors.isEmpty ? nil : errors.joined(separator: "; ")
        }
        if let primary = state.primary(of: report.section) {
            let lag = try await client.query(
                "SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) AS us_ago FROM heartbeat.heartbeat WHERE server_id = ? ORDER BY ts DESC LIMIT 1",
                .integer(Int64(primary.serverID))
            ).first
            report.heartbeatLag = lag?.double("us_ago").map { max($0 / 1e6, 0) }
        }
    }
}
