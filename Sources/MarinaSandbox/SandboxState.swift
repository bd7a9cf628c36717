import ConfigurationFiles
import Foundation

/// Everything a running sandbox consists of, saved as `sandbox.json` in its directory: every
/// process it started (by pid), every port and socket. `down` ends exactly these pids.
public struct SandboxState: Codable, Sendable, Equatable {
    public static let fileName = "sandbox.json"

    public enum Role: String, Codable, Sendable { case primary, replica }

    public struct EtcdNode: Codable, Sendable, Equatable {
        public var clientPort: Int
        public var peerPort: Int
        public var dataDirectory: String
        public var logFile: String
        public var pid: Int32
        /// Serves HTTPS and requires a client certificate signed by the sandbox's CA.
        public var tls: Bool = false
        /// The bridge's address, where etcd also listens in namespaces mode (nil on loopback).
        public var bridgeAddress: String? = nil
        /// The URL from the root namespace (the CLI, the tests, `etcd.yaml`).
        public var url: String { url(on: "127.0.0.1") }
        /// The URL the sandbox's agents and controller use: from their own hosts in namespaces
        /// mode (the bridge's address), else `url`.
        public var hostsURL: String { url(on: bridgeAddress ?? "127.0.0.1") }

        func url(on address: String) -> String { "\(tls ? "https" : "http")://\(address):\(clientPort)" }
    }

    public struct Instance: Codable, Sendable, Equatable {
        /// MediaWiki-compatible name such as `db1001`.
        public var name: String
        public var section: String
        /// The role the sandbox gave it at `up`; `status` reports what the servers say now.
        public var role: Role
        /// Its address: `127.0.0.1`, or its own in namespaces mode (what the topology names).
        public var host: String
        public var port: Int
        public var socket: String
        public var serverID: Int
        public var directory: String
        public var pid: Int32
        public var errorLog: String { directory + "/err.log" }
        public var optionFile: String { directory + "/my.cnf" }
    }

    public struct Heartbeat: Codable, Sendable, Equatable {
        public var section: String
        public var instance: String
        public var logFile: String
        public var pid: Int32
    }

    /// The `marina agent` watching every instance, when the sandbox runs one.
    public struct AgentProcess: Codable, Sendable, Equatable {
        public var configFile: String
        public var logFile: String
        public var pid: Int32
        /// The program it runs (`marina` or `marina-agent`), for a restart; nil in a state
        /// written before it was kept.
        public var executable: String? = nil
    }

    /// In namespaces mode, the `marina agent` of one host, watching its instance only.
    public struct HostAgent: Codable, Sendable, Equatable {
        /// The instance it watches (and whose namespace it runs in).
        public var instance: String
        public var configFile: String
        public var logFile: String
        public var pid: Int32
        /// The program it runs (`marina` or `marina-agent`), for a restart.
        public var executable: String
    }

    /// A partition `Sandbox.partition` made, until `heal` (or `down`).
    public struct Partition: Codable, Sendable, Equatable {
        public var instance: String
        public var from: SandboxPartition

        public init(instance: String, from: SandboxPartition) {
            self.instance = instance
            self.from = from
        }
    }

    /// Where the sandbox serves HTTP: the controller's API, metrics and web page, and the
    /// agents' health checks and metrics. Ports come from the plan's block.
    public struct HTTP: Codable, Sendable, Equatable {
        /// The controller's listener (`http://127.0.0.1:<port>`).
        public var controllerPort: Int
        /// The API's access token, in a file only its owner reads (required by write endpoints).
        public var tokenFile: String
        /// The agent's `/metrics`.
        public var agentMetricsPort: Int
        /// Each instance's health listener (`/primary`, `/replica?lag=N`, `/health`), by instance.
        public var healthPorts: [String: Int]

        public init(controllerPort: Int, tokenFile: String, agentMetricsPort: Int, healthPorts: [String: Int]) {
            self.controllerPort = controllerPort
            self.tokenFile = tokenFile
            self.agentMetricsPort = agentMetricsPort
            self.healthPorts = healthPorts
        }

        /// The controller's plain-HTTP base URL on loopback (`SandboxState.controllerURL` gives
        /// the one to use in every mode: HTTPS with TLS, the controller's address in namespaces mode).
        public var controllerURL: String { "http://127.0.0.1:\(controllerPort)" }

    }

    public var directory: String
    public var datacenter: String
    public var etcd: EtcdNode
    public var instances: [Instance]
    public var heartbeats: [Heartbeat]
    /// An option file (`[client]` user and password) readable by its owner only.
    public var credentialsFile: String
    /// The sandbox's CA and certificates, when it was started with TLS.
    public var certificates: Certificates?
    public var agent: AgentProcess?
    /// The `marina controller`, when the sandbox runs one (same shape as the agent's record).
    public var controller: AgentProcess?
    public var startedAt: Date
    /// How the controller fails over (`up --failover`), kept for every controller started later;
    /// nil in a state written before the flag existed: manual (see `failoverMode`).
    public var failover: SandboxFailoverMode?
    /// Seconds between the agent's probes (`up --agent-interval`), kept for every agent started
    /// later; nil in a state written before the flag existed: 1 (see `agentProbeInterval`).
    public var agentInterval: Double?
    /// Where the hosts live (`up --hosts`); nil in a state written before the flag existed: loopback.
    public var hosts: SandboxHosts? = nil
    /// The bridge, namespaces and addresses in namespaces mode; nil on loopback. Recorded
    /// before any of it is created, so `down` deletes all of it even after a failed `up`.
    public var network: SandboxNetwork? = nil
    /// In namespaces mode, the agent of each host (`agent` stays nil).
    public var hostAgents: [HostAgent]? = nil
    /// The partitions in force (namespaces mode).
    public var partitions: [Partition]? = nil
    /// Seconds the agents' etcd leases live (`Sandbox.Options.agentLeaseTTL`); nil: 10.
    public var agentLeaseTTL: Int? = nil
    /// Lines every agent configuration the sandbox writes gets at its top level
    /// (`Sandbox.Options.agentExtraLines`, else `Sandbox.defaultAgentExtraLines`), for agents
    /// started later too; nil: none. `Sandbox.setAgentExtraLines` changes them.
    public var agentExtraLines: [String]? = nil
    /// The primary lease's timing (`Sandbox.Options.fencing`); nil: `SandboxFencing.standard`.
    public var fencing: SandboxFencing? = nil
    /// The HTTP listeners; nil in a state written before the sandbox served HTTP.
    public var http: HTTP? = nil
    /// The controller's API, metrics and page: on loopback, or at the controller's host
    /// address in namespaces mode; HTTPS in a sandbox with TLS (its CA signs the certificate);
    /// nil without HTTP.
    public var controllerURL: String? {
        http.map { "\(certificates == nil ? "http" : "https")://\(network?.controller.address ?? "127.0.0.1"):\($0.controllerPort)" }
    }

    /// The primary lease's timing the agents and the controller use.
    public var fencingTiming: SandboxFencing { fencing ?? .standard }
    /// Where the sandbox's hosts live.
    public var hostsMode: SandboxHosts { hosts ?? .loopback }
    /// Seconds the sandbox's agents' leases live.
    public var agentLease: Int { agentLeaseTTL ?? 10 }
    /// The agent of `instance`'s host: its own in namespaces mode, else the sandbox's one agent.
    public func agentProcess(of instance: String) -> AgentProcess? {
        if let agent = hostAgents?.first(where: { $0.instance == instance }) {
            return AgentProcess(configFile: agent.configFile, logFile: agent.logFile, pid: agent.pid, executable: agent.executable)
        }
        return network == nil ? agent : nil
    }
    /// The namespace `instance` runs in (nil on loopback).
    public func namespace(of instance: String) -> String? { network?.host(named: instance)?.namespace }

    /// How the sandbox's controllers fail over.
    public var failoverMode: SandboxFailoverMode { failover ?? .manual }
    /// Seconds between the sandbox's agent's probes.
    public var agentProbeInterval: Double { agentInterval ?? 1 }

    public var sections: [String] {
        var seen = [String]()
        for instance in instances where !seen.contains(instance.section) { seen.append(instance.section) }
        return seen
    }

    public func instances(in section: String) -> [Instance] { instances.filter { $0.section == section } }

    public func primary(of section: String) -> Instance? {
        instances.first { $0.section == section && $0.role == .primary }
    }

    public func instance(named name: String) -> Instance? { instances.first { $0.name == name } }

    /// Every process of the sandbox, the agent and heartbeat writers first and etcd last: the
    /// order `down` stops them (the agent withdraws its observations while etcd still runs).
    var processes: [(name: String, pid: Int32)] {
        var processes = [(name: String, pid: Int32)]()
        if let controller { processes.append(("marina controller", controller.pid)) }
        if let agent { processes.append(("marina agent", agent.pid)) }
        processes += (hostAgents ?? []).map { ("marina agent on \($0.instance)", $0.pid) }
        processes += heartbeats.map { ("pt-heartbeat on \($0.instance)", $0.pid) }
        processes += instances.reversed().map { ("mariadbd \($0.name)", $0.pid) }
        processes.append(("etcd", etcd.pid))
        return processes
    }

    static func path(in directory: String) -> String { directory + "/" + fileName }

    /// Reads the state of the sandbox in `directory`, or nil when none was started there.
    public static func load(from directory: String) throws -> SandboxState? {
        let path = path(in: directory)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(SandboxState.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw SandboxError.corruptState(path: path, detail: "\(error)")
        }
    }

    /// The `etcd:` section that reaches this sandbox's etcd (its client certificate with TLS).
    public var etcdSection: EtcdSection { etcdSection(url: etcd.url) }

    /// The `etcd:` section of the sandbox's agents and controller: `etcdSection`, at the
    /// bridge's address in namespaces mode.
    public var hostsEtcdSection: EtcdSection { etcdSection(url: etcd.hostsURL) }

    private func etcdSection(url: String) -> EtcdSection {
        EtcdSection(
            endpoints: [url], caFile: certificates?.caFile, certFile: certificates?.clientCertificate, keyFile: certificates?.clientKey)
    }

    /// Saves the state, and beside it `etcd.yaml` (`SandboxEtcd`): what `marina --sandbox DIR`
    /// or `MARINA_SANDBOX_DIR` reads, without this module.
    func save() throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: Self.path(in: directory)), options: .atomic)
        let etcdFile =
            ["# Written by marina sandbox: how to reach this sandbox's etcd (marina --sandbox DIR, MARINA_SANDBOX_DIR)."]
            + etcdSection.yamlLines()
        try (etcdFile.joined(separator: "\n") + "\n").write(toFile: SandboxEtcd.path(in: directory), atomically: true, encoding: .utf8)
    }
}
