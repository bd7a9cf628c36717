import Foundation

extension Sandbox {
    /// Stops one `mariadbd` of the sandbox (SIGTERM, a clean shutdown; or SIGKILL with `kill`),
    /// keeping its data: a restart or crash for tests. The state keeps the old pid until `startInstance`.
    public static func stopInstance(directory: String, name: String, kill: Bool = false) async throws {
        let state = try state(directory: directory)
        guard let instance = state.instance(named: name) else { throw SandboxError.invalidArgument("no instance \(name) in the sandbox") }
        _ = try await blocking.run { ChildProcess.stop(instance.pid, marker: marker(state.directory), grace: kill ? 0 : 30) }
    }

    /// Starts a stopped `mariadbd` of the sandbox again on its data, and waits until it answers.
    /// A replica resumes replication by itself (no `skip-slave-start`).
    public static func startInstance(directory: String, name: String) async throws {
        var state = try state(directory: directory)
        guard let index = state.instances.firstIndex(where: { $0.name == name }) else {
            throw SandboxError.invalidArgument("no instance \(name) in the sandbox")
        }
        let instance = state.instances[index]
        guard !ChildProcess.isRunning(instance.pid, marker: marker(state.directory)) else { return }
        let pid = try MariaDBServer.start(try Toolchain.locate(), directory: instance.directory)
        state.instances[index].pid = pid
        try state.save()
        let client = try await MariaDBServer.waitReady(
            name: name, socket: instance.socket, pid: pid, marker: marker(state.directory),
            errorLog: instance.errorLog)
        await client.close()
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
