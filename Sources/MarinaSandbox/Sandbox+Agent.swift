import EtcdClient
import Foundation

extension Sandbox {
    /// The agent configuration for a sandbox: every instance (or those named in `instances`)
    /// over its socket as the agent's user, shard = section, the sandbox's datacenter as the
    /// primary datacenter, probing every `interval` seconds (nil: the sandbox's
    /// `agentProbeInterval`, 1 s unless `up` said otherwise), with a lease of `leaseTTL` seconds
    /// (nil: the sandbox's `agentLease`, 10 s unless `up` said otherwise). It reaches etcd as
    /// the sandbox's hosts do (`hostsEtcdSection`: the bridge's address in namespaces mode).
    /// Each instance's managed variables go to `conf.d/99-marina.cnf` in its directory
    /// (`variables.option_file`, with `{instance}` when it watches several).
    /// With `listeners` (the sandbox's own agents), each instance's `health_listen` on its plan
    /// port at its address, and `metrics_listen` on the agent's metrics port (on loopback, or
    /// in namespaces mode on the address of the one instance the host's agent watches).
    /// `extraLines` are appended at the top level, as they are.
    public static func agentConfiguration(
        for state: SandboxState, credentialsFile: String, interval: Double? = nil, leaseTTL: Int? = nil,
        writeHeartbeat: Bool = false, instances: [String]? = nil, listeners: Bool = false, extraLines: [String] = []
    ) -> String {
        var lines =
            [
                "# Written by marina sandbox: the agent watching \(instances.map { $0.joined(separator: ", ") } ?? "every instance of this sandbox").",
                "interval: \(interval ?? state.agentProbeInterval)",
                "lease_ttl: \(leaseTTL ?? state.agentLease)",
                // The sandbox runs as whoever starts it, root in CI: a deployed agent refuses root.
                "allow_root: true",
            ] + etcdSection(state)
        lines += ["heartbeat:", "  table: heartbeat.heartbeat", "  datacenter: \(state.datacenter)"]
        if writeHeartbeat { lines.append("  write: true") }
        let watched = state.instances.filter { instances?.contains($0.name) ?? true }
        // Each instance's managed variables in its conf.d, which its my.cnf includes.
        if watched.count == 1 {
            lines += ["variables:", "  option_file: \(MariaDBServer.managedOptionFile(watched[0].directory))"]
        } else if let first = watched.first, first.directory.hasSuffix("/" + first.name) {
            let parent = String(first.directory.dropLast(first.name.count + 1))
            if watched.allSatisfy({ $0.directory == parent + "/" + $0.name }) {
                lines += ["variables:", "  option_file: \"\(MariaDBServer.managedOptionFile(parent + "/{instance}"))\""]
            }
        }
        let http = listeners ? state.http : nil
        if let http {
            let address = state.network != nil && watched.count == 1 ? watched[0].host : "127.0.0.1"
            lines.append("metrics_listen: \(address):\(http.agentMetricsPort)")
        }
        lines.append("instances:")
        for instance in watched {
            lines += [
                "  - name: \(instance.name)", "    socket: \(instance.socket)", "    credentials_file: \(credentialsFile)",
                "    shard: \(instance.section)",
            ]
            if let port = http?.healthPorts[instance.name] { lines.append("    health_listen: \(instance.host):\(port)") }
        }
        lines += extraLines
        return lines.joined(separator: "\n") + "\n"
    }

    /// The `etcd:` section of the agent's and the controller's configurations (the same keys),
    /// reaching etcd from their hosts.
    static func etcdSection(_ state: SandboxState) -> [String] {
        state.hostsEtcdSection.yamlLines()
    }

    /// Starts `marina agent` for a running sandbox (recorded, so `down` stops it) and waits for
    /// its first observation of every instance. Gives the agent's pid. It connects as the
    /// agent's least-privilege account unless `credentialsFile` names another option file, and
    /// writes the heartbeat when no pt-heartbeat runs. It probes every `interval` seconds (nil:
    /// the interval the sandbox was started with, 1 s by default), with a lease of `leaseTTL`
    /// seconds (nil: the sandbox's, 10 s by default), which the state keeps.
    /// In namespaces mode, starts one agent per host instead, each in its instance's namespace
    /// watching only its instance, and gives the first one's pid (see `SandboxState.hostAgents`).
    @discardableResult
    public static func startAgent(
        directory: String, executable: String, interval: Double? = nil, leaseTTL: Int? = nil,
        credentialsFile: String? = nil
    ) async throws -> Int32 {
        var state = try state(directory: directory)
        let credentials = try Credentials.load(from: state.credentialsFile)
        try await startAgent(
            executable, state: &state, credentials: credentials, credentialsFile: credentialsFile, interval: interval,
            leaseTTL: leaseTTL, writeHeartbeat: state.heartbeats.isEmpty)
        return state.agent?.pid ?? state.hostAgents?.first?.pid ?? 0
    }

    /// Starts `marina agent` for the sandbox (one per host in namespaces mode) and waits for its
    /// first observation of every instance. Records its probe interval and lease TTL in the
    /// state (nil: the state's).
    static func startAgent(
        _ executable: String, state: inout SandboxState, credentials: Credentials, credentialsFile: String? = nil,
        interval: Double? = nil, leaseTTL: Int? = nil, writeHeartbeat: Bool
    ) async throws {
        state.agentInterval = interval ?? state.agentProbeInterval
        if let leaseTTL {
            try checkAgentLeaseTTL(leaseTTL)
            state.agentLeaseTTL = leaseTTL
        }
        if state.network != nil {
            try await startHostAgents(
                executable, of: state.instances.map(\.name), state: &state, credentialsFile: credentialsFile ?? credentials.agentFile,
                writeHeartbeat: writeHeartbeat)
            return
        }
        let configFile = state.directory + "/agent.yaml"
        let logFile = state.directory + "/agent.log"
        try agentConfiguration(
            for: state, credentialsFile: credentialsFile ?? credentials.agentFile, writeHeartbeat: writeHeartbeat, listeners: true,
            extraLines: state.agentExtraLines ?? []
        )
        .write(toFile: configFile, atomically: true, encoding: .utf8)
        let pid = try ChildProcess.spawn(executable, agentArguments(executable, configFile: configFile), logFile: logFile)
        state.agent = .init(configFile: configFile, logFile: logFile, pid: pid, executable: executable)
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

    /// `marina-agent --config F` (the lean agent binary) or `marina agent --config F`.
    static func agentArguments(_ executable: String, configFile: String) -> [String] {
        executable.hasSuffix("/marina-agent") || executable == "marina-agent" ? ["--config", configFile] : ["agent", "--config", configFile]
    }

    /// In namespaces mode, starts the agent of each host in `names` (stopping one still running
    /// first): in the instance's namespace, configuration `D/NAME/agent.yaml`, log
    /// `D/NAME/agent.log`, watching its instance over the socket and reaching etcd at the bridge. Waits until each has
    /// published (an observation written after it started), except on a host partitioned from
    /// everything, which cannot reach etcd.
    static func startHostAgents(
        _ executable: String, of names: [String], state: inout SandboxState, credentialsFile: String, writeHeartbeat: Bool
    ) async throws {
        let tools = try HostNetwork.preflight()
        let etcd = EtcdClient(EtcdConfiguration(endpoints: [state.etcd.url], tls: state.certificates?.etcdClientTLS))
        let since = try await etcd.status().revision
        var started = [SandboxState.HostAgent]()
        let marker = marker(state.directory)
        for name in names {
            let instance = try member(name, of: state)
            if let running = state.hostAgents?.first(where: { $0.instance == name }), ChildProcess.isRunning(running.pid, marker: marker) {
                // Never two agents for one host, nor one that `down` would not know of.
                _ = try await blocking.run { ChildProcess.stop(running.pid, marker: marker) }
            }
            let configFile = instance.directory + "/agent.yaml"
            let logFile = instance.directory + "/agent.log"
            try agentConfiguration(
                for: state, credentialsFile: credentialsFile, writeHeartbeat: writeHeartbeat, instances: [name], listeners: true,
                extraLines: state.agentExtraLines ?? []
            )
            .write(toFile: configFile, atomically: true, encoding: .utf8)
            let (program, arguments) = HostNetwork.command(
                executable, agentArguments(executable, configFile: configFile), in: state.namespace(of: name), tools: tools)
            let agent = SandboxState.HostAgent(
                instance: name, configFile: configFile, logFile: logFile, pid: try ChildProcess.spawn(program, arguments, logFile: logFile),
                executable: executable)
            let others = state.hostAgents ?? []
            state.hostAgents = state.instances.compactMap { instance in
                instance.name == name ? agent : others.first { $0.instance == instance.name }
            }
            try state.save()
            started.append(agent)
        }
        let cut = Set((state.partitions ?? []).filter { $0.from == .everything }.map(\.instance))
        try await waitForPublication(of: started.filter { !cut.contains($0.instance) }, since: since, state: state, etcd: etcd)
    }

    /// Waits until each agent has written its instance's observation after revision `since`.
    private static func waitForPublication(
        of agents: [SandboxState.HostAgent], since: Int64, state: SandboxState, etcd: EtcdClient
    ) async throws {
        let seconds = 20 + 2 * state.agentProbeInterval
        let deadline = Date().addingTimeInterval(seconds)
        var waiting = agents
        while !waiting.isEmpty {
            for agent in waiting where !ChildProcess.isRunning(agent.pid, marker: marker(state.directory)) {
                throw SandboxError.notReady(
                    what: "marina agent on \(agent.instance)", log: agent.logFile,
                    detail: "the process \(ChildProcess.ending(of: agent.pid)): \(ChildProcess.logTail([agent.logFile]))")
            }
            let observed = try await etcd.get("/marina/v1/observed/", prefix: true, keysOnly: true).kvs
            let fresh = Set(observed.filter { $0.modRevision > since }.map { String($0.key.dropFirst("/marina/v1/observed/".count)) })
            waiting.removeAll { fresh.contains($0.instance) }
            guard !waiting.isEmpty else { return }
            guard Date() < deadline else {
                throw SandboxError.notReady(
                    what: "marina agent on \(waiting[0].instance)", log: waiting[0].logFile,
                    detail: "no observation of \(waiting.map(\.instance).joined(separator: ", ")) within \(Int(seconds)) s")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// This program's own executable, for running `marina agent` from `marina sandbox up`.
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
