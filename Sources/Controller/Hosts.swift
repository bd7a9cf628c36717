import Foundation
import MariaDBClient
import Operations
import Synchronization
import Topology

/// The controller's connections to the instances it acts on: one per instance, opened on
/// first use over TCP with the controller's account.
///
/// Three promises hold for every statement sent through here:
/// - it leaves only while the leader's fence is open, checked on the connection's own thread
///   right before the send; one still running when the fence closes is killed then;
/// - one that does not answer within its timeout is killed (`KILL CONNECTION` from a fresh
///   connection) and awaited, so it cannot apply later, behind the operation's back;
/// - if it could be neither killed nor awaited, the host is *unsettled*: every later statement
///   to it waits for the abandoned one to end first, or fails, so statements on one host never
///   run out of order.
public actor Hosts {
    public struct Account: Sendable, CustomStringConvertible {
        public var user: String
        public var password: String?
        public var connectTimeout: Int
        public var tls: MariaDBConfiguration.TLS?

        public init(user: String, password: String?, connectTimeout: Int = 2, tls: MariaDBConfiguration.TLS? = nil) {
            self.user = user
            self.password = password
            self.connectTimeout = connectTimeout
            self.tls = tls
        }

        /// Never the password: an account printed by mistake shows only whether it has one.
        public var description: String { "\(user) (password \(password == nil ? "none" : "<secret>"))" }
    }

    let account: Account
    let fence: LeaseFence
    /// How long to wait for a killed statement to return before calling its host unsettled.
    let killWait: Double
    /// Opens sessions: `MariaDBConnector` for real servers, a twin in decision tests.
    let connector: any DatabaseConnector
    private var clients = [String: any DatabaseSession]()
    /// Statements abandoned at their deadline that have not returned yet, by host. A host with
    /// one is unsettled: nothing more is sent to it until they all returned.
    private var abandoned = [String: [Task<QueryResult, Error>]]()

    public init(account: Account, fence: LeaseFence, killWait: Double = 5, connector: any DatabaseConnector = MariaDBConnector()) {
        self.account = account
        self.connector = connector
        self.fence = fence
        self.killWait = killWait
    }

    public func configuration(for instance: Instance, readTimeout: Int = 30) -> MariaDBConfiguration {
        MariaDBConfiguration(
            endpoint: .tcp(host: instance.host, port: instance.port), user: account.user, password: account.password,
            connectTimeout: account.connectTimeout, readTimeout: readTimeout, writeTimeout: readTimeout, tls: account.tls)
    }

    /// Runs `sql` on `instance` within `timeout` seconds.
    @discardableResult
    public func query(_ instance: Instance, _ sql: String, timeout: Double) async throws -> QueryResult {
        try await query(instance, SQLStatement(sql), timeout: timeout)
    }

    /// Runs a statement on `instance` within `timeout` seconds. Every error built here names the
    /// statement by what it may show (`shown`): a secret in it never reaches a message.
    @discardableResult
    public func query(_ instance: Instance, _ sql: SQLStatement, timeout: Double) async throws -> QueryResult {
        let statement = sql.shown
        try await settle(instance, timeout: timeout)
        var retried = false
        while true {
            let client = try await client(for: instance, timeout: timeout)
            let fence = self.fence
            let text = sql.text
            let call = Task { try await client.query(text, checkedBy: { try fence.check() }) }
            let outcome: Result<QueryResult, Error>
            switch await Self.outcome(of: call, within: timeout, unlessClosed: fence) {
            case .finished(let result):
                outcome = result
            case .fenceClosed:
                // The lease lapsed while the statement ran: it is killed now, so that it cannot
                // apply after another controller may lead. Whatever it did, this run stops.
                _ = try? await abandon(call, client: client, on: instance, statement: statement, timeout: timeout)
                throw ControllerError.notLeader
            case .timedOut:
                outcome = try await abandon(call, client: client, on: instance, statement: statement, timeout: timeout)
            }
            switch outcome {
            case .success(let result):
                return result
            case .failure(ControllerError.notLeader):
                throw ControllerError.notLeader
            case .failure(let error as MariaDBError):
                forget(instance.name, client)
                // Not sent (the connection was already gone): it cannot have run, so once on a new connection.
                if error.statementNotSent && !retried {
                    retried = true
                    continue
                }
                guard error.isConnectionLost else {
                    throw HostError(host: instance.name, statement: statement, failure: .refused(error), carriesSecret: sql.carriesSecret)
                }
                // Lost while the server had it (or libmariadb's own read timeout): the server's
                // thread may still be running it, so it is killed before anything else is sent.
                guard await kill(client.threadID, on: instance) else {
                    throw HostError(host: instance.name, statement: statement, failure: .unsettled)
                }
                throw HostError(host: instance.name, statement: statement, failure: .lostDuring(error), carriesSecret: sql.carriesSecret)
            case .failure(let error):
                forget(instance.name, client)
                throw HostError(host: instance.name, statement: statement, failure: .other("\(error)"))
            }
        }
    }

    /// One value of the first row.
    public func value(_ instance: Instance, _ sql: String, column: String, timeout: Double) async throws -> String? {
        try await query(instance, sql, timeout: timeout).first?[column]
    }

    /// Before an operation's first statement: each connection kept since an earlier operation is
    /// checked with a statement that changes nothing, and reopened if the server closed it
    /// meanwhile (its `wait_timeout`, a restart, a `KILL`); missing ones are opened.
    public func verify(_ instances: [Instance], timeout: Double) async throws {
        for instance in instances {
            try await settle(instance, timeout: timeout)
            if let client = clients[instance.name] {
                let call = Task { try await client.query("SELECT 1") }
                if case .success = await Self.outcome(of: call, within: timeout) { continue }
                forget(instance.name, client)
                if await Self.outcome(of: call, within: killWait) == nil {
                    abandoned[instance.name, default: []].append(call)
                    throw HostError(host: instance.name, statement: "SELECT 1", failure: .unsettled)
                }
            }
            _ = try await self.client(for: instance, timeout: timeout)
        }
    }

    /// Kills every session of the controller's own account on `instance` but this connection:
    /// what a previous leader left there, so that nothing it sent before its fence closed can
    /// still apply. Gives the thread ids killed.
    @discardableResult
    public func killOtherControllerSessions(on instance: Instance, timeout: Double) async throws -> [String] {
        let sessions = try await query(
            instance,
            """
            SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = \(SQL.quote(account.user)) AND ID <> CONNECTION_ID()
            """, timeout: timeout)
        var killed = [String]()
        for row in sessions.rows {
            guard let id = row["id"], UInt(id) != nil else { continue }
            do {
                try await query(instance, "KILL CONNECTION \(id)", timeout: timeout)
                killed.append(id)
            } catch let error as HostError where error.isUnknownThread {
                continue  // it ended meanwhile
            }
        }
        // KILL does not wait for the thread to end: confirm none is left.
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while !killed.isEmpty {
            let left = try await query(
                instance,
                """
                SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID IN (\(killed.joined(separator: ", ")))
                """, timeout: timeout
            ).first?["n"]
            if left == "0" { break }
            guard ContinuousClock.now < deadline else {
                throw HostError(host: instance.name, statement: nil, failure: .other("a previous controller's sessions did not end after KILL"))
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return killed
    }

    private func client(for instance: Instance, timeout: Double) async throws -> any DatabaseSession {
        if let client = clients[instance.name] { return client }
        try fence.check()
        let configuration = configuration(for: instance)
        let connector = self.connector
        let connect = Task { try await connector.connect(configuration) }
        switch await Self.outcome(of: connect, within: timeout) {
        case .success(let client):
            clients[instance.name] = client
            return client
        case .failure(let error as MariaDBError):
            throw HostError(host: instance.name, statement: nil, failure: .unreachable(error))
        case .failure(let error):
            throw HostError(host: instance.name, statement: nil, failure: .other("\(error)"))
        case nil:
            // The connect call gives up on its own at the connect timeout; nothing was sent.
            throw HostError(host: instance.name, statement: nil, failure: .noAnswer(seconds: timeout, killed: true))
        }
    }

    /// The statement did not answer in time: the host is unsettled at once (the actor may run
    /// another call meanwhile), the statement is killed from a fresh connection, then awaited.
    /// Gives its outcome if it returned (it may have succeeded just late: then that is the
    /// result), or throws.
    private func abandon(
        _ call: Task<QueryResult, Error>, client: any DatabaseSession, on instance: Instance, statement: String,
        timeout: Double
    ) async throws -> Result<QueryResult, Error> {
        if clients[instance.name] === client { clients[instance.name] = nil }
        abandoned[instance.name, default: []].append(call)
        let killed = await kill(client.threadID, on: instance)
        guard let outcome = await Self.outcome(of: call, within: killWait) else {
            let reason: HostError.Failure = killed ? .noAnswer(seconds: timeout, killed: false) : .unsettled
            throw HostError(host: instance.name, statement: statement, failure: reason)
        }
        abandoned[instance.name]?.removeAll { $0 == call }
        Task { await client.close() }
        if case .success = outcome { return outcome }
        throw HostError(host: instance.name, statement: statement, failure: .noAnswer(seconds: timeout, killed: true))
    }

    /// `KILL CONNECTION` of one thread, from a connection of its own, and its end confirmed in
    /// the processlist (`KILL` only marks a thread; what its statement does is settled once it
    /// has gone). Not fenced: it only stops things. Tried up to three times, each on a new
    /// connection after a short pause: a kill that fails once (a refused connection, a lost
    /// answer) must not leave a statement free to apply later.
    private func kill(_ thread: UInt, on instance: Instance) async -> Bool {
        let configuration = configuration(for: instance, readTimeout: max(account.connectTimeout, 2))
        let connector = self.connector
        let confirmWithin = Duration.seconds(max(account.connectTimeout, 2))
        for attempt in 1...3 {
            let task = Task { () throws -> Void in
                let killer = try await connector.connect(configuration)
                defer { Task { await killer.close() } }
                do {
                    try await killer.execute("KILL CONNECTION \(thread)")
                } catch let error as MariaDBError where error.code == 1094 /* ER_NO_SUCH_THREAD: it ended already */ {
                }
                let deadline = ContinuousClock.now + confirmWithin
                while try await killer.query("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID IN (\(thread))").first?["n"] != "0" {
                    guard ContinuousClock.now < deadline else { throw CancellationError() }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            if case .success = await Self.outcome(of: task, within: Double(account.connectTimeout) * 2 + 2) { return true }
            try? await Task.sleep(for: .milliseconds(100 * attempt))
        }
        return false
    }

    /// Waits for the statements abandoned earlier on this host; fails if one is still running.
    private func settle(_ instance: Instance, timeout: Double) async throws {
        while let call = abandoned[instance.name]?.first {
            guard await Self.outcome(of: call, within: timeout) != nil else {
                throw HostError(host: instance.name, statement: nil, failure: .unsettled)
            }
            abandoned[instance.name]?.removeAll { $0 == call }
        }
    }

    private func forget(_ name: String, _ client: any DatabaseSession) {
        if clients[name] === client { clients[name] = nil }
        Task { await client.close() }
    }

    public func closeAll() async {
        for client in clients.values { await client.close() }
        clients.removeAll()
    }

    /// How often a statement that runs long checks the fence.
    static let fenceCheckEvery = 0.05

    /// How a wait for a statement ended.
    enum Wait<T: Sendable>: Sendable {
        case finished(Result<T, Error>)
        case timedOut
        case fenceClosed
    }

    /// Waits for the task for `seconds`, or until `fence` closes, whichever comes first. One
    /// waiter per call keeps the result and wakes the wait at once; the fence is looked at
    /// every `fenceCheckEvery` seconds meanwhile.
    static func outcome<T: Sendable>(of task: Task<T, Error>, within seconds: Double, unlessClosed fence: LeaseFence) async -> Wait<T> {
        let waiting = Waiting<Result<T, Error>>()
        Task { waiting.finish(await task.result) }
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while true {
            // The result first: a statement refused by the fence check itself, or one that just
            // ended, is reported as it ended, with no kill for a statement that is not running.
            if let done = waiting.result { return .finished(done) }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return .timedOut }
            await waiting.wake(after: min(left, .milliseconds(Int(fenceCheckEvery * 1000))))
            if let done = waiting.result { return .finished(done) }
            guard fence.isOpen else { return .fenceClosed }
        }
    }

    /// The task's result if it ends within `seconds`, or nil. The task itself goes on: its
    /// owner keeps the handle and decides what to do with it.
    static func outcome<T: Sendable>(of task: Task<T, Error>, within seconds: Double) async -> Result<T, Error>? {
        let first = FirstOf<Result<T, Error>?>()
        return await withCheckedContinuation { continuation in
            first.set(continuation)
            let timer = Task {
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                first.resume(nil)
            }
            Task {
                first.resume(await task.result)
                timer.cancel()
            }
        }
    }
}

/// Why a statement on a host failed, with the server's or the client's error kept.
public struct HostError: Error, CustomStringConvertible, Sendable {
    public enum Failure: Sendable {
        /// No connection could be opened.
        case unreachable(MariaDBError)
        /// The server answered with an error: the statement did not apply.
        case refused(MariaDBError)
        /// The connection broke while the statement ran: it may or may not have applied.
        case lostDuring(MariaDBError)
        /// No answer in time. `killed`: the statement was killed and has returned, so it did not
        /// apply later; otherwise it was killed but has not returned yet.
        case noAnswer(seconds: Double, killed: Bool)
        /// An earlier statement on this host neither returned nor could be killed: nothing more is sent.
        case unsettled
        case other(String)
    }

    public var host: String
    /// What may be shown of the statement; never a secret.
    public var statement: String?
    public var failure: Failure
    /// The statement carried a secret: the server's own message is withheld, since it may quote
    /// the statement (a value too long, a syntax error near it).
    public var carriesSecret: Bool

    public init(host: String, statement: String?, failure: Failure, carriesSecret: Bool = false) {
        self.host = host
        self.statement = statement
        self.failure = failure
        self.carriesSecret = carriesSecret
    }

    /// The host could not be reached at all (as opposed to refusing or failing a statement).
    public var isUnreachable: Bool {
        switch failure {
        case .unreachable, .lostDuring, .noAnswer, .unsettled: true
        case .refused, .other: false
        }
    }

    var isUnknownThread: Bool {
        if case .refused(let error) = failure { return error.code == 1094 }
        return false
    }

    /// The message without the host's name.
    public var message: String {
        let what = statement.map { "\($0): " } ?? ""
        switch failure {
        case .unreachable(let error): return "cannot connect: \(error)"
        case .refused(let error): return what + server(error)
        case .lostDuring(let error): return what + server(error) + " (the connection broke during it; its thread was killed)"
        case .noAnswer(let seconds, let killed):
            return what + "no answer within \(Seconds.format(seconds)) s; "
                + (killed ? "the statement was killed before it completed" : "it was killed but has not returned yet")
        case .unsettled: return what + "an earlier statement on this host has not returned and could not be killed; nothing more is sent to it"
        case .other(let message): return what + message
        }
    }

    public var description: String { "\(host): \(message)" }

    private func server(_ error: MariaDBError) -> String {
        guard carriesSecret else { return "\(error)" }
        return
            "MariaDB \(error.operation.rawValue) failed: [\(error.code)/\(error.sqlState)] (the server's message is withheld: the statement carries a secret)"
    }
}

/// A result to come, and a wait that ends when it comes or after a while, whichever is first.
final class Waiting<T: Sendable>: Sendable {
    private let state = Mutex<(result: T?, waiter: CheckedContinuation<Void, Never>?)>((nil, nil))

    var result: T? { state.withLock { $0.result } }

    func finish(_ value: T) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.result = value
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Returns once the result is in, or after `duration`.
    func wake(after duration: Duration) async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.result != nil { return true }
                state.waiter = continuation
                return false
            }
            if now {
                continuation.resume()
                return
            }
            Task {
                try? await Task.sleep(for: duration)
                let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume()
            }
        }
    }
}

/// A continuation resumed once, by whichever of two tasks comes first.
final class FirstOf<T: Sendable>: Sendable {
    private let state = Mutex<CheckedContinuation<T, Never>?>(nil)
    func set(_ continuation: CheckedContinuation<T, Never>) { state.withLock { $0 = continuation } }
    func resume(_ value: T) {
        let continuation = state.withLock { current -> CheckedContinuation<T, Never>? in
            defer { current = nil }
            return current
        }
        continuation?.resume(returning: value)
    }
}

extension Seconds {
    /// Milliseconds since `start`.
    static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }
}
