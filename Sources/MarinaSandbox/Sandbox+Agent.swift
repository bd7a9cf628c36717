import EtcdClient
import Foundation

extension Sandbox {
    /// The agent configuration for a sandbox: every instance over its socket as the agent's
    /// user, shard = section, the sandbox's datacenter as the primary datacenter, probing every
    /// `interval` seconds (nil: the sandbox's `agentProbeInterval`, 1 s unless `up` said otherwise).
    public static func agentConfiguration(
        for state: SandboxState, credentialsFile: String, interval: Double? = nil, leaseTTL: Int = 10,
        writeHeartbeat: Bool = false
    ) -> String {
        var lines =
            [
                "# Written by marina sandbox: the agent watching every instance of this sandbox.",
                "interval: \(interval ?? state.agentProbeInterval)",
                "lease_ttl: \(leaseTTL)",
            ] + etcdSection(state)
        lines += ["heartbeat:", "  table: heartbeat.heartbeat", "  datacenter: \(state.datacenter)"]
        if writeHeartbeat { lines.append("  write: true") }
        lines.append("instances:")
        for instance in state.instances {
            lines += [
                "  - name: \(instance.name)", "    socket: \(instance.socket)", "    credentials_file: \(credentialsFile)",
                "    shard: \(instance.section)",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The `etcd:` section of the agent's and the controller's configurations (the same keys).
    static func etcdSection(_ state: SandboxState) -> [String] {
        state.etcdSection.yamlLines()
    }

    /// Starts `marina agent` for a running sandbox (recorded, so `down` stops it) and waits for
    /// its first observation of every instance. Gives the agent's pid. It connects as the
    /// agent's least-privilege account unless `credentialsFile` names another option file, and
    /// writes the heartbeat when no pt-heartbeat runs. It probes every `interval` seconds (nil:
    /// the interval the sandbox was started with, 1 s by default), which the state keeps.
    @discardableResult
    public static func startAgent(
        directory: String, executable: String, interval: Double? = nil, leaseTTL: Int = 10,
        credentialsFile: String? = nil
    ) async throws -> Int32 {
        var state = try state(directory: directory)
        let credentials = try Credentials.load(from: state.credentialsFile)
        try await startAgent(
            executable, state: &state, credentials: credentials, credentialsFile: credentialsFile, interval: interval,
            leaseTTL: leaseTTL, writeHeartbeat: state.heartbeats.isEmpty)
        return state.agent?.pid ?? 0
    }

    /// Starts `marina agent` for the sandbox and waits for its first observation of every instance.
    /// Records its probe interval in the state (nil: the state's).
    static func startAgent(
        _ executable: String, state: inout SandboxState, credentials: Credentials, credentialsFile: String? = nil,
        interval: Double? = nil, leaseTTL: Int = 10, writeHeartbeat: Bool
    ) async throws {
        let configFile = state.directory + "/agent.yaml"
        let logFile = state.directory + "/agent.log"
        state.agentInterval = interval ?? state.agentProbeInterval
        try agentConfiguration(
            for: state, credentialsFile: credentialsFile ?? credentials.agentFile, interval: interval, leaseTTL: leaseTTL,
            writeHeartbeat: writeHeartbeat
        )
        .write(toFile: configFile, atomically: true, encoding: .utf8)
        // `marina-agent --config F` (the lean agent binary) or `marina agent --config F`.
        let arguments =
            executable.hasSuffix("/marina-agent") || executable == "marina-agent"
            ? ["--config", configFile] : ["agent", "--config", configFile]
        let pid = try ChildProcess.spawn(executable, arguments, logFile: logFile)
        state.agent = .init(configFile: configFile, logFile: logFile, pid: pid)
        try state.save()
        let etcd = EtcdClient(EtcdConfiguration(endpoints: [state.etcd.url], tls: state.certificates?.etcdClientTLS))
        // A slow agent (`--agent-interval` up to 60 s) gets two of its intervals more.
        let deadline = Date().addingTimeInterval(20 + 2 * state.agentProbeInterval)
        while Date() < deadline {
            guard ChildProcess.isRunning(pid, marker: marker(state.directory)) else {
                throw SandboxError.notReady(
                    what: "marina agent", log: logFile, detail: "the process \(ChildProcess.ending(of: pid)): \(ChildProcess.logTail([logFile]))")
            }
            if try await etcd.get("/marina/v1/observed/", prefix: true, keysOnly: true).kvs.count >= state.instances.count { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw SandboxError.notReady(
            what: "marina agent", log: logFile, detail: "no observation of every instance within \(Int(20 + 2 * state.agentProbeInterval)) s")
    }

    /// This program's own executable, for running `marina agent` from `marina sandbox up`.
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
