import MariaDBClient

/// Reads `@@global.read_only` of one instance at request time, for `/primary`: the probe's
/// last reading can be one interval old, and a load balancer polling every few milliseconds
/// must never see two writable primaries during a switchover.
///
/// Each read runs on a session of its own (the agent's account, its `connect_timeout` and
/// `read_timeout`), taken from a few kept open; a read that does not answer within `deadline`
/// seconds is answered `timedOut` at once while its session waits for libmariadb's read timeout
/// and is then closed. At most `maxInFlight` reads run at once: past that (a server that hangs)
/// the answer is `busy` without asking the server.
actor ReadOnlyReader {
    let configuration: MariaDBConfiguration
    let connector: any DatabaseConnector
    let deadline: Double
    let maxInFlight: Int
    let maxIdle: Int
    private var idle = [any DatabaseSession]()
    private var inFlight = 0

    init(
        configuration: MariaDBConfiguration, connector: any DatabaseConnector = MariaDBConnector(), deadline: Double, maxInFlight: Int = 8,
        maxIdle: Int = 2
    ) {
        self.configuration = configuration
        self.connector = connector
        self.deadline = deadline
        self.maxInFlight = maxInFlight
        self.maxIdle = maxIdle
    }

    /// Reads `read_only` and calls `answer` with the reading, or with `timedOut` at the
    /// deadline, whichever comes first; returns once the read itself has ended.
    nonisolated func read(_ answer: @escaping @Sendable (HealthCheck.LiveReadOnly) async -> Void) async {
        let deadline = self.deadline
        await withTaskGroup(of: HealthCheck.LiveReadOnly?.self) { group in
            group.addTask { await self.readNow() }
            group.addTask {
                do {
                    try await Task.sleep(for: .milliseconds(Int(deadline * 1000)))
                    return .timedOut(deadline)
                } catch {
                    return nil  // the read answered first
                }
            }
            if let first = await group.next(), let reading = first {
                await answer(reading)
            }
            group.cancelAll()
        }
    }

    /// One read on a pooled session, retried once on a fresh session when a kept one turns
    /// out to be closed (the server's `wait_timeout`, a restart).
    private func readNow() async -> HealthCheck.LiveReadOnly {
        guard inFlight < maxInFlight else { return .busy(inFlight) }
        inFlight += 1
        defer { inFlight -= 1 }
        var reused = !idle.isEmpty
        while true {
            let session: any DatabaseSession
            if let kept = idle.popLast() {
                session = kept
            } else {
                do {
                    session = try await connector.connect(configuration)
                } catch {
                    return .failed("cannot connect: \(error)")
                }
            }
            do {
                let value = try await session.query("SELECT @@global.read_only AS ro").first?["ro"]
                await keep(session)
                guard let value else { return .failed("read_only is NULL") }
                // Anything but OFF counts as read-only (a value this agent does not know is not a yes).
                return .value(!(value == "0" || value.uppercased() == "OFF"))
            } catch let error as MariaDBError where error.isConnectionLost && reused {
                await session.close()
                reused = false
                continue
            } catch {
                await session.close()
                return .failed("\(error)")
            }
        }
    }

    private func keep(_ session: any DatabaseSession) async {
        if idle.count < maxIdle {
            idle.append(session)
        } else {
            await session.close()
        }
    }

    /// Closes the kept sessions.
    func close() async {
        for session in idle { await session.close() }
        idle.removeAll()
    }
}
