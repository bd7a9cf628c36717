import MariaDBClient
import Observation
import Synchronization

/// An in-memory fleet of MariaDB servers as Marina's controller and prober see them: a
/// `DatabaseConnector` whose sessions speak the SQL Marina sends, with replication simulated
/// between the fleet's servers and controls for the failures tests need.
///
/// Replication propagates **lazily**: before the twin answers any statement on any server,
/// and before `MASTER_GTID_WAIT` checks again, every running replication thread of the fleet
/// catches up with what it can reach (`automaticReplication`, the default). With it off,
/// nothing moves until a test calls `replicate()`, which is always available.
///
/// Time (processlist `TIME`, transaction ages, heartbeat rows, `Seconds_Behind_Master`) is the
/// fleet's: a `ManualClock` when given, else real time since the fleet was made.
/// `MASTER_GTID_WAIT` timeouts and the client's connect and read timeouts are real time.
public final class MemoryFleet: DatabaseConnector, Sendable {
    let state = Mutex(FleetState())
    let clock: ManualClock?
    let origin = ContinuousClock.now
    public let automaticReplication: Bool

    public init(clock: ManualClock? = nil, automaticReplication: Bool = true) {
        self.clock = clock
        self.automaticReplication = automaticReplication
    }

    /// The fleet's time.
    public var now: Duration { clock?.now ?? (ContinuousClock.now - origin) }

    /// Adds a running server with an empty binary log (or `binlogState`, as if written before
    /// the twin's history began), no replication and no sessions.
    @discardableResult
    public func addServer(
        name: String, host: String = "127.0.0.1", port: Int, serverID: UInt32, version: String = "10.11.6-MariaDB-log",
        readOnly: Bool = false, logBin: Bool = true, logSlaveUpdates: Bool = true, binlogFormat: String = "ROW",
        gtidStrictMode: Bool = true, gtidDomainID: UInt32 = 0, binlogState: GTIDState = GTIDState(),
        slavePosition: GTIDPosition = GTIDPosition()
    ) -> MemoryMariaDB {
        let position = GTIDPosition(binlogState.gtids)
        let index = state.withLock { fleet in
            precondition(fleet.index(named: name) == nil && fleet.index(host: host, port: port) == nil, "server \(name) or \(host):\(port) exists")
            fleet.servers.append(
                ServerState(
                    name: name, host: host, port: port, serverID: serverID, version: version, readOnly: readOnly,
                    logBin: logBin, logSlaveUpdates: logSlaveUpdates, binlogFormat: binlogFormat,
                    gtidStrictMode: gtidStrictMode, gtidDomainID: gtidDomainID, binlogBase: binlogState,
                    binlogState: binlogState, binlogPosition: position, slavePosition: slavePosition))
            return fleet.servers.count - 1
        }
        return MemoryMariaDB(fleet: self, index: index)
    }

    public func server(named name: String) -> MemoryMariaDB? {
        state.withLock { $0.index(named: name) }.map { MemoryMariaDB(fleet: self, index: $0) }
    }

    public func server(host: String, port: Int) -> MemoryMariaDB? {
        state.withLock { $0.index(host: host, port: port) }.map { MemoryMariaDB(fleet: self, index: $0) }
    }

    public var servers: [MemoryMariaDB] {
        state.withLock { $0.servers.indices }.map { MemoryMariaDB(fleet: self, index: $0) }
    }

    /// Moves replication as far as it can go now (see the type's comment).
    public func replicate() {
        let now = self.now
        state.withLock { Replication.run(&$0, now: now) }
    }

    /// Opens a session: refused (2003) when no server listens at the endpoint, it is stopped or
    /// unreachable; while it is paused, waits for it to resume up to the connect timeout
    /// (then 2013 during the handshake, `timedOut`).
    public func connect(_ configuration: MariaDBConfiguration) async throws -> any DatabaseSession {
        let endpoint = configuration.endpoint.description
        guard case .tcp(let host, let port) = configuration.endpoint else {
            throw MariaDBError(
                code: 2002, sqlState: "HY000", message: "Can't connect to local server through socket '\(endpoint)' (2)",
                operation: .connect, endpoint: endpoint)
        }
        let refused = MariaDBError(
            code: 2003, sqlState: "HY000", message: "Can't connect to server on '\(host)' (111)", operation: .connect,
            endpoint: endpoint)
        let deadline = ContinuousClock.now + .seconds(max(configuration.connectTimeout, 1))
        while true {
            let opened: (index: Int, thread: UInt, incarnation: Int)?? = state.withLock { fleet in
                guard let index = fleet.index(host: host, port: port), fleet.servers[index].up, !fleet.servers[index].unreachable else {
                    return .some(nil)
                }
                if fleet.servers[index].paused { return nil }
                let id = fleet.servers[index].nextThreadID
                fleet.servers[index].nextThreadID += 1
                fleet.servers[index].sessions[id] = SessionEntry(
                    id: id, user: configuration.user, host: "127.0.0.1:\(40000 + Int(id % 20000))", since: now)
                return (index, id, fleet.servers[index].incarnation)
            }
            switch opened {
            case .some(.some(let session)):
                return MemorySession(
                    fleet: self, server: session.index, incarnation: session.incarnation, threadID: session.thread,
                    endpoint: endpoint, readTimeout: configuration.readTimeout)
            case .some(nil):
                throw refused
            case nil:
                // Paused: the kernel accepts, the server never answers the handshake.
                guard ContinuousClock.now < deadline else {
                    var error = MariaDBError(
                        code: 2013, sqlState: "HY000",
                        message: "Lost connection to server at 'handshake: reading initial communication packet', system error: 110",
                        operation: .connect, endpoint: endpoint)
                    error.timedOut = true
                    throw error
                }
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
    }

    // MARK: Suspension

    /// Suspends the statement of session `thread` until something wakes it (`wake(_:)`). If the
    /// session was killed or its server stopped before it could wait, returns at once.
    func suspend(server: Int, thread: UInt, hungBy rule: Int?, whilePaused: Bool) async -> Wake {
        await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
            let immediate: Wake? = state.withLock { fleet in
                guard fleet.servers[server].up, let entry = fleet.servers[server].sessions[thread] else { return .stopped }
                if entry.killed { return .killed }
                if entry.queryKilled { return .queryKilled }
                if whilePaused {
                    guard fleet.servers[server].paused else { return .resumed }
                    fleet.servers[server].pauseWaiters.append(continuation)
                } else {
                    fleet.servers[server].sessions[thread]?.waiter = continuation
                    fleet.servers[server].sessions[thread]?.hungBy = rule
                }
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// Resumes continuations collected under the lock, outside it.
    static func wake(_ waiters: [(CheckedContinuation<Wake, Never>, Wake)]) {
        for (continuation, wake) in waiters { continuation.resume(returning: wake) }
    }
}
