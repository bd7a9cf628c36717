import MariaDBClient
import Observation

/// One server of a `MemoryFleet`: what it shows, and the controls tests use to change it or
/// make it fail. A handle: its state lives in the fleet, behind the fleet's lock.
public final class MemoryMariaDB: Sendable {
    let fleet: MemoryFleet
    let index: Int

    init(fleet: MemoryFleet, index: Int) {
        self.fleet = fleet
        self.index = index
    }

    /// What a statement held by `hang` does when released.
    public enum ReleaseOutcome: Sendable, Equatable {
        /// It runs then, late ("applies late").
        case applies
        /// It fails with this error and does nothing.
        case fails(code: UInt32, message: String)
    }

    /// What a statement held by `hang` does when its session is killed (`KILL CONNECTION` or
    /// `KILL QUERY`). Its client sees 1927 (or 1317) either way.
    public enum KillOutcome: Sendable, Equatable {
        /// It never applies.
        case discarded
        /// It had applied already: only the answer is lost.
        case applies
    }

    /// A rule made by `hang`; `release()` lets its held statements go and ends it.
    public struct Hang: Sendable {
        let server: MemoryMariaDB
        let id: Int
        public func release() { server.release(id) }
    }

    /// A processlist row.
    public struct Process: Sendable, Equatable {
        public var id: UInt
        public var user: String
        public var command: String
        public var info: String?
        /// A statement of it is held by a `hang` rule.
        public var hung: Bool
    }

    private func read<T: Sendable>(_ body: (ServerState) -> T) -> T {
        fleet.state.withLock { body($0.servers[index]) }
    }

    private func change<T: Sendable>(_ body: (inout ServerState) throws -> T) rethrows -> T {
        try fleet.state.withLock { try body(&$0.servers[index]) }
    }

    // MARK: What it shows

    public var name: String { read(\.name) }
    public var host: String { read(\.host) }
    public var port: Int { read(\.port) }
    public var serverID: UInt32 { read(\.serverID) }
    public var endpoint: MariaDBConfiguration.Endpoint { read { .tcp(host: $0.host, port: $0.port) } }

    /// A configuration to connect to this server as `user`.
    public func configuration(user: String = "marina", connectTimeout: Int = 2, readTimeout: Int = 30) -> MariaDBConfiguration {
        MariaDBConfiguration(endpoint: endpoint, user: user, connectTimeout: connectTimeout, readTimeout: readTimeout)
    }

    /// A session on this server as `user`.
    public func connect(user: String = "marina", readTimeout: Int = 30) async throws -> any DatabaseSession {
        try await fleet.connect(configuration(user: user, readTimeout: readTimeout))
    }
    public var isUp: Bool { read(\.up) }
    public var isPaused: Bool { read(\.paused) }
    public var readOnly: Bool { read(\.readOnly) }
    public var binlogPosition: GTIDPosition { read(\.binlogPosition) }
    public var binlogState: GTIDState { read(\.binlogState) }
    public var slavePosition: GTIDPosition { read(\.slavePosition) }
    public var currentPosition: GTIDPosition { read(\.currentPosition) }
    /// `Gtid_IO_Pos`; nil without a replication channel.
    public var receivedPosition: GTIDPosition? { read { $0.channel?.receivedPosition } }
    /// The channel's `MASTER_HOST` and `MASTER_PORT`; nil without one.
    public var source: (host: String, port: Int)? { read { $0.channel.map { ($0.masterHost, $0.masterPort) } } }
    /// Both threads running, the IO thread connected.
    public var isReplicating: Bool { read { $0.channel.map { $0.ioRunning && $0.sqlRunning && $0.connectedTo != nil } ?? false } }
    public var lastIOError: String? { read { $0.channel.flatMap { $0.lastIOError.isEmpty ? nil : $0.lastIOError } } }
    public var lastSQLError: String? { read { $0.channel.flatMap { $0.lastSQLError.isEmpty ? nil : $0.lastSQLError } } }
    /// Transactions applied to its data (its own and replicated ones).
    public var transactions: Int { read(\.transactions) }
    public var heartbeatRows: [HeartbeatRow] { read { $0.heartbeat.values.sorted { $0.serverID < $1.serverID } } }
    public var processes: [Process] {
        read {
            $0.sessions.values.sorted { $0.id < $1.id }.map {
                Process(id: $0.id, user: $0.user, command: $0.command, info: $0.info, hung: $0.hungBy != nil)
            }
        }
    }

    // MARK: Configuration

    public func setReadOnly(_ on: Bool) { change { $0.readOnly = on } }
    public func setLogBin(_ on: Bool) { change { $0.logBin = on } }
    public func setLogSlaveUpdates(_ on: Bool) { change { $0.logSlaveUpdates = on } }
    public func setGTIDStrictMode(_ on: Bool) { change { $0.gtidStrictMode = on } }
    public func setBinlogFormat(_ format: String) { change { $0.binlogFormat = format } }

    /// An account that writes through `read_only` (`SUPER`, `READ ONLY ADMIN`) or, with false, one
    /// that does not (the default for any user name).
    public func setAccount(_ user: String, writesThroughReadOnly: Bool) {
        change { server in
            if writesThroughReadOnly { server.privilegedUsers.insert(user) } else { server.privilegedUsers.remove(user) }
        }
    }

    /// The heartbeat table (`database.table`, nil: none) and whether it has `shard` and `datacenter`.
    public func setHeartbeatTable(_ table: String?, shardColumns: Bool = true) {
        change { server in
            server.heartbeatTable = table
            server.heartbeatHasShardColumns = shardColumns
        }
    }

    /// Makes this server a replica of `source` as `CHANGE MASTER TO ... MASTER_USE_GTID =
    /// slave_pos` and `START SLAVE` would (without their refusals), from its `gtid_slave_pos`.
    public func replicate(from source: MemoryMariaDB, user: String = "repl", password: String = "", start: Bool = true) {
        let (host, port) = (source.host, source.port)
        change { server in
            var channel = server.channel ?? ChannelState()
            channel.masterHost = host
            channel.masterPort = port
            channel.masterUser = user
            channel.masterPassword = password
            channel.ioRunning = false
            channel.sqlRunning = false
            server.channel = channel
            if start { try? Replication.start(&server, io: true, sql: true, endpoint: "") }
        }
        if fleet.automaticReplication { fleet.replicate() }
    }

    /// The SQL thread runs but applies nothing while held: lag, and `MASTER_GTID_WAIT` waits.
    public func holdApplying(_ held: Bool) {
        change { $0.channel?.applyHeld = held }
        if fleet.automaticReplication { fleet.replicate() }
    }

    // MARK: Writes

    /// An application's transactions: `count` GTIDs in the server's domain with its server id.
    /// Refused with MariaDB's read-only error when `read_only` is ON, unless `user` is an
    /// account that writes through it. Gives the GTIDs written (none without `log_bin`).
    @discardableResult
    public func write(count: Int = 1, as user: String? = nil) throws -> [GTID] {
        let now = fleet.now
        let gtids = try change { server -> [GTID] in
            guard server.up else { throw MariaDBError(code: 2003, sqlState: "HY000", message: "the server is stopped", operation: .connect) }
            if server.readOnly && !(user.map(server.privilegedUsers.contains) ?? false) {
                throw TwinError.readOnly("\(server.host):\(server.port)")
            }
            return try Self.commit(&server, count: count, heartbeat: nil, now: now)
        }
        if fleet.automaticReplication { fleet.replicate() }
        return gtids
    }

    /// One heartbeat row written on this server (as the agent's writer would), as its own
    /// transaction: refused while `read_only` is ON (the writer's account has no privilege).
    public func writeHeartbeat(shard: String? = nil, datacenter: String? = nil) throws {
        let now = fleet.now
        try change { server in
            guard server.up, !server.readOnly else { throw TwinError.readOnly("\(server.host):\(server.port)") }
            _ = try Self.commit(
                &server, count: 1, heartbeat: HeartbeatRow(serverID: server.serverID, ts: now, shard: shard, datacenter: datacenter), now: now)
        }
        if fleet.automaticReplication { fleet.replicate() }
    }

    /// Binlogs (when `log_bin`) and applies `count` transactions written on `server`.
    @discardableResult
    static func commit(_ server: inout ServerState, count: Int, heartbeat: HeartbeatRow?, now: Duration) throws -> [GTID] {
        var gtids = [GTID]()
        for _ in 0..<count {
            let gtid = GTID(domain: server.gtidDomainID, server: server.serverID, sequence: server.highestSequence(in: server.gtidDomainID) + 1)
            let event = BinlogEvent(gtid: gtid, writtenAt: now, heartbeat: heartbeat)
            server.applyData(event)
            if server.logBin {
                server.binlog(event)
                gtids.append(gtid)
            }
        }
        return gtids
    }

    // MARK: Failures

    /// `kill -9`: connections are refused, every open session breaks (a running statement ends
    /// with 2013, an idle session's next statement too), held and waiting statements never
    /// apply, open transactions are lost. Its binary log and positions survive.
    public func stop() {
        let waiters = change { server -> [CheckedContinuation<Wake, Never>] in
            server.up = false
            server.paused = false
            let waiters = server.sessions.values.compactMap(\.waiter) + server.pauseWaiters
            server.sessions = [:]
            server.pauseWaiters = []
            server.channel?.connectedTo = nil
            return waiters
        }
        MemoryFleet.wake(waiters.map { ($0, .stopped) })
    }

    /// Starts a stopped server. Replication threads start again as they were, unless
    /// `replicationStarts` is false (`skip_slave_start`); relay logs not applied are discarded.
    public func start(replicationStarts: Bool = true) {
        change { server in
            guard !server.up else { return }
            server.up = true
            server.incarnation += 1
            if var channel = server.channel {
                channel.relay = []
                channel.receivedPosition = server.slavePosition
                channel.connectedTo = nil
                if !replicationStarts {
                    channel.ioRunning = false
                    channel.sqlRunning = false
                }
                server.channel = channel
            }
        }
        if fleet.automaticReplication { fleet.replicate() }
    }

    /// SIGSTOP: new connects and every statement wait (the client's timeouts still run) until
    /// `resume()`; its replication threads stop moving, and it sends nothing to its replicas.
    public func pause() { change { $0.paused = true } }

    /// SIGCONT: what waited runs now, in order per session.
    public func resume() {
        let waiters = change { server -> [CheckedContinuation<Wake, Never>] in
            server.paused = false
            defer { server.pauseWaiters = [] }
            return server.pauseWaiters
        }
        MemoryFleet.wake(waiters.map { ($0, .resumed) })
        if fleet.automaticReplication { fleet.replicate() }
    }

    /// New connections (clients' and replicas' IO threads) are refused with 2003; established
    /// ones go on working.
    public func setUnreachable(_ unreachable: Bool) { change { $0.unreachable = unreachable } }

    /// Statements containing `substring` (case-insensitive) hang: the next `times` of them, or
    /// every one until released. A held statement waits (as a session in `Query`) until the
    /// rule is released or its session is killed; `onRelease` and `onKill` say whether it
    /// applies then. A server stop ends it with 2013, never applied.
    @discardableResult
    public func hang(
        matching substring: String, times: Int? = nil, onRelease: ReleaseOutcome = .applies,
        onKill: KillOutcome = .discarded
    ) -> Hang {
        let id = change { server -> Int in
            let id = server.nextRuleID
            server.nextRuleID += 1
            server.hangs.append(HangRule(id: id, substring: substring, remaining: times, onRelease: onRelease, onKill: onKill))
            return id
        }
        return Hang(server: self, id: id)
    }

    func release(_ rule: Int) {
        let waiters = change { server -> [CheckedContinuation<Wake, Never>] in
            server.hangs.removeAll { $0.id == rule }
            var waiters = [CheckedContinuation<Wake, Never>]()
            for (id, entry) in server.sessions where entry.hungBy == rule {
                if let waiter = entry.waiter { waiters.append(waiter) }
                server.sessions[id]?.waiter = nil
                server.sessions[id]?.hungBy = nil
            }
            return waiters
        }
        MemoryFleet.wake(waiters.map { ($0, .released) })
    }

    /// Releases every hang rule of this server and every statement they hold.
    public func releaseAll() {
        for id in read({ server in Set(server.hangs.map(\.id) + server.sessions.values.compactMap(\.hungBy)) }) { release(id) }
    }

    /// The thread ids whose statement is held by a hang rule now.
    public var hungThreads: [UInt] { read { $0.sessions.values.filter { $0.hungBy != nil && $0.waiter != nil }.map(\.id).sorted() } }

    /// Waits (real time, polling) until at least `count` statements are held; false at the timeout.
    public func waitUntilHung(count: Int = 1, timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while hungThreads.count < count {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return true
    }

    /// The next statement containing `substring` fails once with `code` (a server error, or a
    /// lost connection such as 2013, which also breaks the session). With `applies`, it ran
    /// before failing (an answer lost after the commit).
    public func failNext(matching substring: String, code: UInt32, message: String = "injected failure", applies: Bool = false) {
        change { $0.failures.append(FailRule(substring: substring, error: code, message: message, applies: applies)) }
    }

    /// A processlist row with no `DatabaseSession` behind it: another application's session,
    /// in `command` for `runningFor` seconds, with a transaction open for `transactionFor`
    /// seconds if given. Killable like any session. Gives its thread id.
    @discardableResult
    public func addClient(
        user: String, host: String = "10.0.0.1:50000", command: String = "Sleep", info: String? = nil,
        runningFor: Double = 0, transactionFor: Double? = nil
    ) -> UInt {
        let now = fleet.now
        return change { server in
            let id = server.nextThreadID
            server.nextThreadID += 1
            server.sessions[id] = SessionEntry(
                id: id, user: user, host: host, command: command, since: now - .milliseconds(Int64(runningFor * 1000)),
                info: info, transactionSince: transactionFor.map { now - .milliseconds(Int64($0 * 1000)) }, simulated: true)
            return id
        }
    }
}
