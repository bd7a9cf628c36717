import MariaDBClient
import Synchronization

/// One client session on a twin server, honouring `DatabaseSession`'s contract.
///
/// As with a real connection there are two sides: the client (this object: one statement at a
/// time, a read timeout, broken for good after a lost connection) and the server's thread for
/// the session (a task owned by this object, ended by `close()` or `deinit`), which runs the
/// statements in order. A statement the client gave up on (read timeout) goes on running on the
/// server side until it ends or is killed, as on a real server.
final class MemorySession: DatabaseSession {
    let threadID: UInt
    private let fleet: MemoryFleet
    private let server: Int
    private let incarnation: Int
    private let endpoint: String
    private let readTimeout: Int
    private let lane = SerialLane()
    /// The client knows the connection is gone: every statement fails with 2006, unsent.
    private let broken = Mutex(false)
    private let jobs: AsyncStream<Job>.Continuation
    private let worker: Task<Void, Never>

    struct Job: Sendable {
        var sql: String
        var reply: Reply
    }

    init(fleet: MemoryFleet, server: Int, incarnation: Int, threadID: UInt, endpoint: String, readTimeout: Int) {
        self.fleet = fleet
        self.server = server
        self.incarnation = incarnation
        self.threadID = threadID
        self.endpoint = endpoint
        self.readTimeout = readTimeout
        let (stream, jobs) = AsyncStream<Job>.makeStream()
        self.jobs = jobs
        worker = Task { [fleet] in
            for await job in stream {
                let outcome = await fleet.run(job.sql, server: server, incarnation: incarnation, thread: threadID, endpoint: endpoint)
                job.reply.resolve(.answered(outcome))
            }
        }
    }

    deinit {
        jobs.finish()
        fleet.clientGone(server: server, incarnation: incarnation, thread: threadID)
    }

    func query(_ sql: String) async throws -> QueryResult {
        try await query(sql, checkedBy: {})
    }

    func query(_ sql: String, checkedBy check: @escaping @Sendable () throws -> Void) async throws -> QueryResult {
        await lane.enter()
        defer { lane.leave() }
        try check()
        if broken.withLock({ $0 }) { throw TwinError.gone(endpoint) }
        let reply = Reply()
        jobs.yield(Job(sql: sql, reply: reply))
        switch await reply.wait(seconds: readTimeout) {
        case .answered(.success(let result)):
            return result
        case .answered(.failure(let error)):
            if error.isConnectionLost { breakClientSide() }
            throw error
        case .timedOut:
            breakClientSide()
            var error = TwinError.lost(endpoint)
            error.timedOut = true
            throw error
        }
    }

    func close() async {
        breakClientSide()
    }

    private func breakClientSide() {
        broken.withLock { $0 = true }
        jobs.finish()
        fleet.clientGone(server: server, incarnation: incarnation, thread: threadID)
    }
}

/// The answer to one statement, given once: by the server side, or by the client's read timeout.
final class Reply: Sendable {
    enum Outcome: Sendable {
        case answered(Result<QueryResult, MariaDBError>)
        case timedOut
    }

    private let state = Mutex<(outcome: Outcome?, waiter: CheckedContinuation<Outcome, Never>?)>((nil, nil))

    func resolve(_ outcome: Outcome) {
        let waiter = state.withLock { state -> CheckedContinuation<Outcome, Never>? in
            guard state.outcome == nil else { return nil }
            state.outcome = outcome
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: outcome)
    }

    /// The outcome, or `.timedOut` after `seconds` (real time) without one.
    func wait(seconds: Int) async -> Outcome {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await Task.sleep(for: .seconds(max(seconds, 1)))
                    self.resolve(.timedOut)
                } catch {
                    // Cancelled: the answer came (or the caller was cancelled, which a blocking
                    // client call ignores too).
                }
            }
            let outcome = await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Outcome? in
                    if let outcome = state.outcome { return outcome }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
            group.cancelAll()
            return outcome
        }
    }
}

/// A first-come, first-served async lock: one statement at a time per session.
final class SerialLane: Sendable {
    private let state = Mutex<(busy: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    func enter() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                guard state.busy else {
                    state.busy = true
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func leave() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.busy = false
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
