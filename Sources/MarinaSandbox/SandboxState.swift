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
        public var url: String { "\(tls ? "https" : "http")://127.0.0.1:\(clientPort)" }
    }

    public struct Instance: Codable, Sendable, Equatable {
        /// MediaWiki-compatible name such as `db1001`.
        public var name: String
        public var section: String
        /// The role the sandbox gave it at `up`; `status` reports what the servers say now.
        public var role: Role
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
    public var etcdSection: EtcdSection {
        EtcdSection(
            endpoints: [etcd.url], caFile: certificates?.caFile, certFile: certificates?.clientCertificate,
            keyFile: certificates?.clientKey)
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
