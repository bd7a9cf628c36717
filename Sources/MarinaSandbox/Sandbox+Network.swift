import Foundation

extension Sandbox {
    /// `marina sandbox partition NAME [--from everything|controller]`, namespaces mode only.
    ///
    /// - `everything`: the host's own firewall (an nft table in its namespace) drops every
    ///   packet in and out except on `lo`: its agent cannot reach etcd (its lease then lapses),
    ///   the controller and the replicas cannot reach it; applications on its unix socket still
    ///   can. Dropped, not refused: connections hang as they do to a host that vanished.
    /// - `controller`: only the controller's namespace drops what goes to and comes from the
    ///   host's address; the replicas, the agent and applications are untouched.
    ///
    /// Doing it again is harmless. Refused, changing nothing, for a loopback sandbox or a name
    /// not in the sandbox. `heal` undoes it; `down` removes it with the rest.
    public static func partition(directory: String, name: String, from: SandboxPartition) async throws {
        var state = try state(directory: directory)
        let (network, host) = try networkHost(name, of: state, doing: "partition")
        let tools = try HostNetwork.preflight()
        let log = state.directory + "/network.log"
        try await blocking.run {
            switch from {
            case .everything: try HostNetwork.partitionEverything(host, tools: tools, log: log)
            case .controller: try HostNetwork.cutFromController(host, controller: network.controller, tools: tools, log: log)
            }
        }
        let partition = SandboxState.Partition(instance: name, from: from)
        if !(state.partitions ?? []).contains(partition) { state.partitions = (state.partitions ?? []) + [partition] }
        try state.save()
    }

    /// `marina sandbox heal NAME`: removes what `partition` added for the host, both kinds
    /// (nothing to remove is no error). Replicas reconnect by themselves (within
    /// `MASTER_CONNECT_RETRY`, 1 s); the agent publishes again once its etcd retry comes round.
    /// Refused, changing nothing, for a loopback sandbox or a name not in the sandbox.
    public static func heal(directory: String, name: String) async throws {
        var state = try state(directory: directory)
        let (network, host) = try networkHost(name, of: state, doing: "heal")
        let tools = try HostNetwork.preflight()
        let log = state.directory + "/network.log"
        try await blocking.run { try HostNetwork.heal(host, controller: network.controller, tools: tools, log: log) }
        state.partitions = (state.partitions ?? []).filter { $0.instance != name }
        if state.partitions?.isEmpty == true { state.partitions = nil }
        try state.save()
    }

    /// `marina sandbox agent NAME --signal KILL|STOP|CONT`: signals the agent of `name`'s host
    /// (in namespaces mode its own agent; on loopback the sandbox's one agent, which watches
    /// every instance). KILL is a crash (its lease is not revoked: its observations vanish one
    /// lease TTL later), STOP freezes it (keep-alives stop too), CONT thaws it; as
    /// `signalInstance`, with the same refusals.
    public static func signalAgent(directory: String, name: String, signal: SandboxSignal) async throws {
        let state = try state(directory: directory)
        let agent = try agent(of: name, in: state)
        try await deliver(
            signal, to: agent.pid, marker: marker(state.directory), what: "the agent of \(name)",
            signalCommand: "marina sandbox agent \(name)", restartCommand: "marina sandbox agent \(name) --restart")
    }

    /// `marina sandbox agent NAME --restart`: starts the agent of `name`'s host again with a
    /// configuration written afresh from the state (its probe interval, lease TTL and
    /// `agentExtraLines`), as the agent's account; one still running is stopped first (SIGTERM:
    /// it withdraws its observations). Waits for its first observation, except on a host
    /// partitioned from everything. Refuses a frozen agent (`--signal CONT` first). `executable`
    /// nil runs the program it ran before.
    public static func restartAgent(directory: String, name: String, executable: String? = nil) async throws {
        var state = try state(directory: directory)
        let agent = try agent(of: name, in: state)
        let marker = marker(state.directory)
        if ChildProcess.isRunning(agent.pid, marker: marker) {
            guard !ChildProcess.isStopped(agent.pid) else {
                throw SandboxError.invalidArgument(
                    "the agent of \(name) is frozen (pid \(agent.pid), SIGSTOP): `marina sandbox agent \(name) --signal CONT` thaws it first")
            }
            _ = try await blocking.run { ChildProcess.stop(agent.pid, marker: marker) }
        }
        let program = executable ?? agent.executable ?? currentExecutable
        let credentials = try Credentials.load(from: state.credentialsFile)
        if state.network != nil {
            try await startHostAgents(
                program, of: [name], state: &state, credentialsFile: credentials.agentFile, writeHeartbeat: state.heartbeats.isEmpty)
        } else {
            try await startAgent(program, state: &state, credentials: credentials, writeHeartbeat: state.heartbeats.isEmpty)
        }
    }

    /// Sets the lines appended to every agent configuration the sandbox writes from now on
    /// (`restartAgent`, `startAgent`); agents already running keep theirs until restarted.
    public static func setAgentExtraLines(directory: String, _ lines: [String]) throws {
        var state = try state(directory: directory)
        state.agentExtraLines = lines.isEmpty ? nil : lines
        try state.save()
    }

    /// The agent process of `name`'s host, or one error naming what is missing.
    private static func agent(of name: String, in state: SandboxState) throws -> SandboxState.AgentProcess {
        _ = try member(name, of: state)
        guard let agent = state.agentProcess(of: name) else {
            throw SandboxError.invalidArgument(
                "the sandbox in \(state.directory) runs no agent for \(name) (started with --no-agent?)")
        }
        return agent
    }

    /// The network and `name`'s host in it, or one error: a loopback sandbox has no hosts to
    /// cut, and `name` must be one of its instances.
    private static func networkHost(
        _ name: String, of state: SandboxState, doing action: String
    ) throws -> (SandboxNetwork, SandboxNetwork.Host) {
        guard let network = state.network else {
            throw SandboxError.invalidArgument(
                "cannot \(action) \(name): the sandbox in \(state.directory) runs on loopback, where every instance shares one network; "
                    + "partitions need `marina sandbox up --hosts namespaces`")
        }
        _ = try member(name, of: state)
        guard let host = network.host(named: name) else {
            throw SandboxError.invalidArgument("\(name) has no host in the sandbox's network")
        }
        return (network, host)
    }
}
