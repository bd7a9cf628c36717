import Foundation

extension Sandbox {
    /// Stops one `mariadbd` of the sandbox (SIGTERM, a clean shutdown; or SIGKILL with `kill`),
    /// keeping its data: a restart or crash for tests. The state keeps the old pid until `startInstance`.
    public static func stopInstance(directory: String, name: String, kill: Bool = false) async throws {
        let state = try state(directory: directory)
        let instance = try member(name, of: state)
        _ = try await blocking.run { ChildProcess.stop(instance.pid, marker: marker(state.directory), grace: kill ? 0 : 30) }
    }

    /// Starts a stopped `mariadbd` of the sandbox again on its data (in its namespace in
    /// namespaces mode, where its partition, if any, still holds), and waits until it answers.
    /// A replica resumes replication by itself (no `skip-slave-start`).
    public static func startInstance(directory: String, name: String) async throws {
        var state = try state(directory: directory)
        let instance = try member(name, of: state)
        guard let index = state.instances.firstIndex(of: instance) else { return }
        guard !ChildProcess.isRunning(instance.pid, marker: marker(state.directory)) else { return }
        let pid = try MariaDBServer.start(try Toolchain.locate(), directory: instance.directory, namespace: state.namespace(of: name))
        state.instances[index].pid = pid
        try state.save()
        let client = try await MariaDBServer.waitReady(
            name: name, socket: instance.socket, pid: pid, marker: marker(state.directory),
            errorLog: instance.errorLog)
        await client.close()
    }

    /// `marina sandbox restart NAME`: starts a stopped or killed `mariadbd` of the sandbox again
    /// on its data directory and waits until it answers; a replica resumes replicating from
    /// its source by itself. Refuses a name not in the sandbox, and an instance that runs (or
    /// is frozen by `signalInstance(... .stop)`), each with one message naming it.
    public static func restartInstance(directory: String, name: String) async throws {
        let state = try state(directory: directory)
        let instance = try member(name, of: state)
        if ChildProcess.isRunning(instance.pid, marker: marker(state.directory)) {
            if ChildProcess.isStopped(instance.pid) {
                throw SandboxError.invalidArgument(
                    "\(name) is frozen (pid \(instance.pid), SIGSTOP), not stopped: `marina sandbox kill \(name) --signal CONT` thaws it")
            }
            throw SandboxError.invalidArgument(
                "\(name) is already running (pid \(instance.pid)): nothing to restart (`marina sandbox kill \(name)` crashes it first)")
        }
        try await startInstance(directory: directory, name: name)
    }

    /// `marina sandbox kill NAME --signal KILL|STOP|CONT`: a crash (SIGKILL; returns once the
    /// process is gone, its data and the state kept for `restartInstance`), a silent host death
    /// (SIGSTOP: the server holds its connections open and answers nothing; returns once every
    /// thread is stopped), or the thaw of one (SIGCONT; returns once it runs). Refuses a name
    /// not in the sandbox, an instance that is not running, STOP on a frozen one and CONT on one
    /// that is not frozen.
    public static func signalInstance(directory: String, name: String, signal: SandboxSignal) async throws {
        let state = try state(directory: directory)
        let instance = try member(name, of: state)
        try await deliver(
            signal, to: instance.pid, marker: marker(state.directory), what: name, signalCommand: "marina sandbox kill \(name)",
            restartCommand: "marina sandbox restart \(name)")
    }

    /// Sends `signal` to a process of the sandbox: SIGKILL returns once it is gone, SIGSTOP once
    /// every thread is stopped, SIGCONT once it runs. Refuses a process that is not running, STOP
    /// on a frozen one and CONT on one that is not frozen, naming `what` and the commands that help.
    static func deliver(
        _ signal: SandboxSignal, to pid: Int32, marker: String, what: String, signalCommand: String, restartCommand: String
    ) async throws {
        guard ChildProcess.isRunning(pid, marker: marker) else {
            throw SandboxError.invalidArgument(
                "\(what) is not running (pid \(pid) has ended): nothing to signal; `\(restartCommand)` starts it")
        }
        let frozen = ChildProcess.isStopped(pid)
        switch signal {
        case .kill:
            _ = try await blocking.run { ChildProcess.stop(pid, marker: marker, grace: 0) }
            return
        case .stop:
            guard !frozen else {
                throw SandboxError.invalidArgument("\(what) is already frozen (pid \(pid)): `\(signalCommand) --signal CONT` thaws it")
            }
        case .cont:
            guard frozen else { throw SandboxError.invalidArgument("\(what) is not frozen (pid \(pid)): nothing to thaw") }
        }
        guard try await blocking.run({ ChildProcess.signal(pid, marker: marker, signal.number) }) else {
            throw SandboxError.invalidArgument("\(what) is not running (pid \(pid) has ended): nothing to signal")
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while signal == .stop ? !ChildProcess.isStopped(pid, allThreads: true) : ChildProcess.isStopped(pid) {
            guard ContinuousClock.now < deadline else {
                throw SandboxError.setupFailed(
                    what: "SIG\(signal.rawValue) to \(what)", detail: "process \(pid) is still \(signal == .stop ? "running" : "stopped") after 5 s")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The instance called `name`, or one error naming it and the sandbox's instances.
    static func member(_ name: String, of state: SandboxState) throws -> SandboxState.Instance {
        guard let instance = state.instance(named: name) else {
            throw SandboxError.invalidArgument(
                "no instance \(name) in the sandbox (its instances: \(state.instances.map(\.name).joined(separator: ", ")))")
        }
        return instance
    }
}

extension Sandbox {
    /// Stops the heartbeat writer of a section (its rows then age on every instance).
    public static func stopHeartbeat(directory: String, section: String) async throws {
        let state = try state(directory: directory)
        guard let heartbeat = state.heartbeats.first(where: { $0.section == section }) else {
            throw SandboxError.invalidArgument("no heartbeat writer for section \(section)")
        }
        _ = try await blocking.run { ChildProcess.stop(heartbeat.pid, marker: marker(state.directory)) }
    }

    /// Starts the heartbeat writer of a section again on its primary.
    public static func startHeartbeat(directory: String, section: String, interval: Double = 0.5) async throws {
        var state = try state(directory: directory)
        guard let index = state.heartbeats.firstIndex(where: { $0.section == section }),
            let primary = state.instance(named: state.heartbeats[index].instance)
        else {
            throw SandboxError.invalidArgument("no heartbeat writer for section \(section)")
        }
        guard !ChildProcess.isRunning(state.heartbeats[index].pid, marker: marker(state.directory)) else { return }
        state.heartbeats[index].pid = try spawnHeartbeat(try Toolchain.locate(), on: primary, interval: interval)
        try state.save()
    }
}
