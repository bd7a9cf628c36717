import BlockingIO
import Glibc
import Logging
import MariaDBClient
import Probing

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The agent's fence of one instance, over the fence account (`READ_ONLY ADMIN, CONNECTION
/// ADMIN, PROCESS`; never the heartbeat writer's account, which must stay stoppable by
/// `read_only`). Its connection is opened ahead of time and kept, so that a server at
/// `max_connections` can still be fenced.
///
/// The escalation: `SET GLOBAL read_only = ON`; if that does not return within the statement's
/// timeout (it waits for sessions holding table locks), every client session is killed and it is
/// tried once more. Then every client session but the agent's own and replication's is killed:
/// a session whose account writes through `read_only` (`SUPER`, `READ_ONLY ADMIN`, through a
/// role or `PUBLIC`) is among them, and the others could only read. Last, the site's hook runs.
actor SQLFence {
    let configuration: MariaDBConfiguration
    let hook: String?
    let hookTimeout: Double
    /// Accounts whose sessions are not killed: the agent's own probe account and the fence's.
    let ownUsers: Set<String>
    let logger: Logger
    private var client: MariaDBClient?

    enum Outcome: Error { case alreadyReadOnly }

    init(configuration: MariaDBConfiguration, hook: String?, hookTimeout: Double, ownUsers: Set<String>, logger: Logger) {
        self.configuration = configuration
        self.hook = hook
        self.hookTimeout = hookTimeout
        self.ownUsers = ownUsers.union([configuration.user])
        self.logger = logger
    }

    /// Makes the instance read-only and ends the sessions that could still write. Gives what was
    /// done, for the observation and the log; throws `Outcome.alreadyReadOnly` when the instance
    /// was read-only before (someone else fenced it or it is a replica). Any other failure
    /// drops the connection, so that the keeper's next try starts on a new one.
    func fence(reason: String, instance: String, section: String) async throws -> [String] {
        do {
            return try await fenceOnce(reason: reason, instance: instance, section: section)
        } catch Outcome.alreadyReadOnly {
            throw Outcome.alreadyReadOnly
        } catch {
            await drop()
            throw error
        }
    }

    private func fenceOnce(reason: String, instance: String, section: String) async throws -> [String] {
        let session = try await connection()
        if try await session.query("SELECT @@GLOBAL.read_only AS ro").first?["ro"] == "1" { throw Outcome.alreadyReadOnly }
        // `SET GLOBAL read_only = ON` waits for the sessions holding table locks or the commit
        // lock (a commit waiting for a semi-synchronous acknowledgement among them). If it has
        // not returned after 200 ms, a second connection ends every client session, again every
        // 200 ms, until it returns: a killed session's commit is never acknowledged to its client.
        let configuration = self.configuration
        let ownUsers = self.ownUsers
        let blockers = try await withThrowingTaskGroup(of: Int?.self) { group -> Int in
            group.addTask {
                _ = try await session.execute("SET GLOBAL read_only = ON")
                return nil
            }
            group.addTask {
                var killed = 0
                do {
                    try await Task.sleep(for: .milliseconds(200))
                    let killer = try await MariaDBClient.connect(configuration)
                    do {
                        while !Task.isCancelled {
                            killed += try await Self.killClientSessions(killer, sparing: ownUsers)
                            try await Task.sleep(for: .milliseconds(200))
                        }
                    } catch {}
                    await killer.close()
                } catch {}
                return killed
            }
            var killedWhileBlocked = 0
            for try await result in group {
                if let count = result {
                    killedWhileBlocked = count
                } else {
                    group.cancelAll()  // read_only is ON: the killer stops
                }
            }
            return killedWhileBlocked
        }
        var actions = [String]()
        if blockers > 0 { actions.append("killed \(blockers) sessions blocking read_only") }
        actions.append("read_only = ON")
        let killed = try await Self.killClientSessions(try await connection(), sparing: ownUsers)
        actions.append("killed \(killed) client sessions")
        if let hook {
            actions.append(await runHook(hook, instance: instance, section: section, reason: reason))
        }
        return actions
    }

    /// `SET GLOBAL read_only = OFF`: the keeper lifts its own fence.
    func lift() async throws {
        _ = try await connection().execute("SET GLOBAL read_only = OFF")
    }

    /// Opens the fence's connection ahead of time, if it is not open (the keeper calls it while
    /// its instance is the primary): a server at `max_connections` can still be fenced.
    func prepare() async {
        if client == nil { _ = try? await connection() }
    }

    func close() async {
        await client?.close()
        client = nil
    }

    /// The standing connection, opened again when it broke.
    private func connection() async throws -> MariaDBClient {
        if let client { return client }
        let opened = try await MariaDBClient.connect(configuration)
        if let client {
            // Opened meanwhile by another call (`prepare` during a fence): one connection is kept.
            await opened.close()
            return client
        }
        client = opened
        return opened
    }

    private func drop() async {
        let old = client
        client = nil
        await old?.close()
    }

    /// Kills every client session but this connection, the agent's own accounts', replication's
    /// and the server's own threads. Gives how many were killed.
    private static func killClientSessions(_ session: MariaDBClient, sparing ownUsers: Set<String>) async throws -> Int {
        let rows = try await session.query(ClientSessions.query)
        var killed = 0
        for row in rows.rows {
            guard let id = row["id"].flatMap({ UInt($0) }), let user = row["user"], !ownUsers.contains(user) else { continue }
            do {
                _ = try await session.execute("KILL CONNECTION \(id)")
                killed += 1
            } catch let error as MariaDBError where error.code == ClientSessions.alreadyGone {
                continue  // ER_NO_SUCH_THREAD: it ended on its own
            }
        }
        return killed
    }

    /// Runs the site's hook with the instance, section and reason in its environment; kills it
    /// after `hookTimeout`. Gives a line for the actions.
    private func runHook(_ path: String, instance: String, section: String, reason: String) async -> String {
        let timeout = hookTimeout
        let logger = logger
        do {
            let status = try await SQLFence.hookQueue.run { () -> Int32 in
                try HookProcess.run(
                    path, environment: ["MARINA_INSTANCE": instance, "MARINA_SECTION": section, "MARINA_REASON": reason], timeout: timeout)
            }
            if status == 0 { return "hook \(path) ran" }
            logger.error("self-fence hook \(path) \(status == -1 ? "ran past \(timeout) s and was stopped" : "exited with \(status)")")
            return status == -1 ? "hook \(path) timed out" : "hook \(path) exited with \(status)"
        } catch {
            logger.error("self-fence hook \(path) could not run: \(error)")
            return "hook \(path) could not run"
        }
    }

    private static let hookQueue = BlockingQueue(label: "fence hook", concurrent: true)
}

/// A hook run with `posix_spawn` (the agent uses no Foundation `Process`): the environment of the
/// agent plus `extra`, stdin/stdout/stderr inherited, killed after `timeout` seconds.
enum HookProcess {
    struct SpawnFailed: Error, CustomStringConvertible {
        var code: Int32
        var description: String { "posix_spawn failed: \(String(cString: strerror(code)))" }
    }

    /// Gives the exit status, -1 when it was killed at the timeout.
    static func run(_ path: String, environment extra: [String: String], timeout: Double) throws -> Int32 {
        var environment = [String]()
        var index = 0
        while let entry = environ[index] {
            let line = String(cString: entry)
            if !extra.keys.contains(where: { line.hasPrefix($0 + "=") }) { environment.append(line) }
            index += 1
        }
        environment += extra.map { "\($0.key)=\($0.value)" }
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, nil, nil, argv, envp)
        guard spawned == 0 else { throw SpawnFailed(code: spawned) }
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int(timeout * 1000))
        var status: Int32 = 0
        while true {
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
            if waited < 0 { return -1 }
            if clock.now >= deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return -1
            }
            usleep(20_000)
        }
    }
}
