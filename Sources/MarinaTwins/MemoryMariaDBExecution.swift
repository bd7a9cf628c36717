import MariaDBClient
import Observation

/// The server side of a statement: the session's state, pause, injected failures and hangs,
/// then the statement itself (`Statements`).
extension MemoryFleet {
    func run(_ sql: String, server: Int, incarnation: Int, thread: UInt, endpoint: String) async -> Result<QueryResult, MariaDBError> {
        let now = self.now
        // A session its server no longer has (killed while idle, server restarted) finds out
        // now: the statement is written, the answer never comes.
        let alive = state.withLock { fleet -> Bool in
            guard fleet.servers[server].up, fleet.servers[server].incarnation == incarnation,
                fleet.servers[server].sessions[thread] != nil
            else { return false }
            fleet.servers[server].sessions[thread]?.running = true
            fleet.servers[server].sessions[thread]?.command = "Query"
            fleet.servers[server].sessions[thread]?.info = sql
            fleet.servers[server].sessions[thread]?.since = now
            return true
        }
        guard alive else { return .failure(TwinError.lost(endpoint)) }
        let outcome = await execute(sql, server: server, thread: thread, endpoint: endpoint)
        let end = self.now
        state.withLock { fleet in
            guard fleet.servers[server].incarnation == incarnation, let entry = fleet.servers[server].sessions[thread] else { return }
            if entry.killed || entry.clientGone || outcome.failureIsLost {
                fleet.servers[server].sessions[thread] = nil
            } else {
                fleet.servers[server].sessions[thread]?.running = false
                fleet.servers[server].sessions[thread]?.command = "Sleep"
                fleet.servers[server].sessions[thread]?.info = nil
                fleet.servers[server].sessions[thread]?.since = end
                fleet.servers[server].sessions[thread]?.queryKilled = false
            }
        }
        return outcome
    }

    /// The client closed the session (or gave up on it): an idle one goes now, a running one
    /// when its statement ends.
    func clientGone(server: Int, incarnation: Int, thread: UInt) {
        state.withLock { fleet in
            guard server < fleet.servers.count, fleet.servers[server].incarnation == incarnation,
                let entry = fleet.servers[server].sessions[thread]
            else { return }
            if entry.running {
                fleet.servers[server].sessions[thread]?.clientGone = true
            } else {
                fleet.servers[server].sessions[thread] = nil
            }
        }
    }

    private func execute(_ sql: String, server: Int, thread: UInt, endpoint: String) async -> Result<QueryResult, MariaDBError> {
        // SIGSTOP: nothing is read until the server resumes.
        switch await suspend(server: server, thread: thread, hungBy: nil, whilePaused: true) {
        case .resumed: break
        case .killed: return .failure(TwinError.killed(endpoint))
        case .queryKilled: return .failure(TwinError.interrupted(endpoint))
        case .stopped, .released: return .failure(TwinError.lost(endpoint))
        }

        enum Rule {
            case fail(FailRule)
            case hang(HangRule)
            case none
        }
        let lowered = sql.lowercased()
        let rule: Rule = state.withLock { fleet in
            if let index = fleet.servers[server].failures.firstIndex(where: { lowered.contains($0.substring.lowercased()) }) {
                return .fail(fleet.servers[server].failures.remove(at: index))
            }
            if let index = fleet.servers[server].hangs.firstIndex(where: { lowered.contains($0.substring.lowercased()) }) {
                let hang = fleet.servers[server].hangs[index]
                if let remaining = hang.remaining {
                    if remaining <= 1 {
                        fleet.servers[server].hangs.remove(at: index)
                    } else {
                        fleet.servers[server].hangs[index].remaining = remaining - 1
                    }
                }
                return .hang(hang)
            }
            return .none
        }

        switch rule {
        case .none:
            return await statement(sql, server: server, thread: thread, endpoint: endpoint)
        case .fail(let failure):
            if failure.applies { _ = await statement(sql, server: server, thread: thread, endpoint: endpoint) }
            let error = MariaDBError(code: failure.error, sqlState: "HY000", message: failure.message, operation: .query, endpoint: endpoint)
            if error.isConnectionLost { state.withLock { $0.servers[server].sessions[thread]?.killed = true } }
            return .failure(error)
        case .hang(let hang):
            let wake = await suspend(server: server, thread: thread, hungBy: hang.id, whilePaused: false)
            switch wake {
            case .released, .resumed:
                switch hang.onRelease {
                case .applies: return await statement(sql, server: server, thread: thread, endpoint: endpoint)
                case .fails(let code, let message):
                    return .failure(MariaDBError(code: code, sqlState: "HY000", message: message, operation: .query, endpoint: endpoint))
                }
            case .killed, .queryKilled:
                if hang.onKill == .applies {
                    state.withLock { fleet in
                        fleet.servers[server].sessions[thread]?.killed = false
                        fleet.servers[server].sessions[thread]?.queryKilled = false
                    }
                    _ = await statement(sql, server: server, thread: thread, endpoint: endpoint)
                    if wake == .killed { state.withLock { $0.servers[server].sessions[thread]?.killed = true } }
                }
                return .failure(wake == .killed ? TwinError.killed(endpoint) : TwinError.interrupted(endpoint))
            case .stopped:
                return .failure(TwinError.lost(endpoint))
            }
        }
    }

    /// Parses and runs one statement (after replication caught up, when automatic).
    private func statement(_ sql: String, server: Int, thread: UInt, endpoint: String) async -> Result<QueryResult, MariaDBError> {
        let parsed: Statement
        do {
            parsed = try Statement.parse(sql)
        } catch let error as SQLSyntaxError {
            return .failure(TwinError.notUnderstood(sql, error.detail, endpoint: endpoint))
        } catch {
            return .failure(TwinError.notUnderstood(sql, "\(error)", endpoint: endpoint))
        }
        if case .waitForPosition(let position, let timeout, let alias) = parsed {
            return await waitForPosition(position, timeout: timeout, alias: alias, server: server, thread: thread, endpoint: endpoint)
        }
        let now = self.now
        let automatic = automaticReplication
        let (result, wakes) = state.withLock { fleet -> (Result<QueryResult, MariaDBError>, [(CheckedContinuation<Wake, Never>, Wake)]) in
            if automatic { Replication.run(&fleet, now: now) }
            var context = StatementContext(fleet: fleet, server: server, thread: thread, endpoint: endpoint, now: now, sql: sql)
            let result = Result { try context.run(parsed) }.mapError {
                $0 as? MariaDBError ?? TwinError.notUnderstood(sql, "\($0)", endpoint: endpoint)
            }
            fleet = context.fleet
            if automatic { Replication.run(&fleet, now: now) }
            return (result, context.wakes)
        }
        Self.wake(wakes)
        return result
    }

    /// `MASTER_GTID_WAIT`: 0 once `gtid_slave_pos` contains the position, -1 at the timeout
    /// (real time; none or negative: no limit); a kill ends it.
    private func waitForPosition(_ text: String, timeout: Double?, alias: String, server: Int, thread: UInt, endpoint: String) async
        -> Result<QueryResult, MariaDBError>
    {
        guard let position = try? GTIDPosition(parsing: text) else {
            return .failure(TwinError.server(1941, "Could not parse GTID list", endpoint: endpoint))
        }
        let deadline = timeout.flatMap { $0 >= 0 ? ContinuousClock.now + .milliseconds(Int64($0 * 1000)) : nil }
        let reply = { (value: String) in StatementContext.table([alias], [[value]]) }
        while true {
            if automaticReplication { replicate() }
            let status: Wake? = state.withLock { fleet in
                guard fleet.servers[server].up, let entry = fleet.servers[server].sessions[thread] else { return .stopped }
                if entry.killed { return .killed }
                if entry.queryKilled { return .queryKilled }
                return fleet.servers[server].slavePosition.contains(position) ? .released : nil
            }
            switch status {
            case .released: return .success(reply("0"))
            case .killed: return .failure(TwinError.killed(endpoint))
            case .queryKilled: return .failure(TwinError.interrupted(endpoint))
            case .stopped, .resumed: return .failure(TwinError.lost(endpoint))
            case nil: break
            }
            if let deadline, ContinuousClock.now >= deadline { return .success(reply("-1")) }
            try? await Task.sleep(for: .milliseconds(1))
        }
    }
}

extension Result where Failure == MariaDBError {
    var failureIsLost: Bool {
        if case .failure(let error) = self { return error.isConnectionLost }
        return false
    }
}
