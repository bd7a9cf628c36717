import EtcdClient
import Foundation
import Logging
import MariaDBClient
import Observation
import Operations
import StoredRecords
import Topology
import TopologyStore

/// The leader's watch for dead primaries, in the sections the configuration fails over
/// automatically. It reacts to the agents' observations as etcd delivers them (a watch, not a
/// poll), and looks again every second for what time alone changes.
///
/// A sign of trouble (the primary's own agent cannot reach it, its observation is gone, a
/// replica's IO thread is not connected or has heard nothing for `master_failure_timeout`) makes
/// the controller try the primary over SQL itself, with a fresh connection. Only when that
/// fails too, and `FailureDetection` finds a second witness, is a failover started; a section
/// with an operation running, or blocked since its last automatic failover, is left alone.
actor FailoverWatch {
    let context: OperationContext
    let settings: ControllerConfiguration.Failover
    /// Runs an operation (the controller claims it, so that it is not started twice).
    let launch: @Sendable (OperationRecord) async -> Void
    /// What was last logged about each section, so that a state is logged once, not every second.
    private var logged = [String: String]()
    /// The failover this watch started in each section, until its journal says it finished: a
    /// second look before it took the section's lock must not start another.
    private var started = [String: String]()
    private var startedAt = [String: Date]()
    /// The primary this watch recorded as unreachable, by section.
    private var unreachable = [String: String]()
    /// When the controller last looked at a quiet section's primary itself.
    private var lastLook = [String: ContinuousClock.Instant]()
    private let clock = ContinuousClock()
    private let startedClock = ContinuousClock.now - .seconds(3600)
    /// Seconds between two looks at a primary nothing points at.
    static let quietLookEvery = Duration.seconds(3)
    /// Seconds before a section whose automatic failover was refused is looked at again.
    static let retryAfterRefusal: Double = 10

    init(context: OperationContext, settings: ControllerConfiguration.Failover, launch: @escaping @Sendable (OperationRecord) async -> Void) {
        self.context = context
        self.settings = settings
        self.launch = launch
    }

    /// Runs while `leading()` says so; returns when cancelled.
    func run(leading: @escaping @Sendable () async -> Bool) async {
        guard !settings.automatic.isEmpty else { return }
        let changes = Changes()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.watch(changes, leading: leading) }
            group.addTask {
                while !Task.isCancelled {
                    // A new lead writes its judgements again (the last lease's keys went with it).
                    if await !leading() { await self.forgetJudgements() }
                    if await leading() {
                        do {
                            try await self.evaluate()
                        } catch {
                            await self.logOnce("*", "automatic failover: the observations could not be read: \(error)", level: .warning)
                        }
                    }
                    await changes.next(within: .seconds(1))
                }
            }
        }
    }

    /// Signals `changes` at each change under `observed/`; restarts the watch when it ends.
    private func watch(_ changes: Changes, leading: @Sendable () async -> Bool) async {
        while !Task.isCancelled {
            guard await leading() else {
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            do {
                for try await _ in context.etcd.watchChanges(context.store.keys.observed, prefix: true, startRevision: nil) {
                    await changes.signal()
                    if Task.isCancelled { return }
                }
            } catch {
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// One look at every automatic section.
    func evaluate() async throws {
        let observations = try await context.store.observations().observations
        guard let topology = try await context.store.committedTopology() else { return }
        for section in topology.sections.values.sorted(by: { $0.name < $1.name })
        where section.isInitialized && settings.isAutomatic(section.name) {
            try await evaluate(section, topology: topology, observations: observations)
        }
    }

    private func evaluate(_ section: Section, topology: Topology, observations: [String: Observation]) async throws {
        guard let primary = topology.instances[section.primary] else { return }
        let primaryObservation = observations[primary.name]
        let replicas = topology.members(of: section.name).map(\.instance.name).filter { $0 != primary.name }.compactMap { observations[$0] }
            .filter { replica in
                guard let channel = replica.replication.first else { return false }
                if let id = primaryObservation?.serverID, let source = channel.sourceServerID, source != 0 { return source == id }
                return channel.sourceHost == primary.host && channel.sourcePort == primary.port
            }
        // The primary lease: once seen held by this primary, its disappearance while the
        // primary's agent is silent means nothing fences the primary but the controller.
        let leaseKey = try await context.etcd.value(context.keys.primaryLease(section.name))
        if let leaseKey, let lease = try? StoredJSON.decode(PrimaryLease.self, from: leaseKey.value), lease.instance == primary.name {
            await context.leaseSightings.held(lease)
        } else if leaseKey == nil {
            await context.leaseSightings.absent(section.name)
        }
        let agentSilent = primaryObservation.map { Date().timeIntervalSince($0.observedAt) > settings.maxObservationAge } ?? true
        let leaseLost = await context.leaseSightings.holder(of: section.name) == primary.name && leaseKey == nil && agentSilent
        let suspicious =
            primaryObservation == nil || primaryObservation?.reachable == false || leaseLost
            || replicas.contains { replica in
                replica.replication.first?.ioThread != "Yes" || (replica.heartbeatLag ?? 0) > settings.masterFailureTimeout
            }
        // With no sign of trouble the controller still looks at the primary itself every few
        // seconds: a partition between it and a healthy primary (which the replicas and the agent
        // cannot see) is reported as drift, and changes nothing else.
        var reachedNow: Bool?
        if !suspicious {
            guard clock.now - (lastLook[section.name] ?? startedClock) >= Self.quietLookEvery else { return }
            lastLook[section.name] = clock.now
            let reaches = await reachesOverSQL(primary, context: context, timeout: settings.probeTimeout)
            guard !reaches else {
                logged[section.name] = nil
                try await clearUnreachable(section.name)
                return
            }
            reachedNow = false
        }
        if let id = started[section.name] {
            let journal = try await context.etcd.value(context.keys.operation(id))
            if let journal, let record = try? OperationJSON.decode(journal.value), record.state.isFinished {
                // A refusal may not last (a replica still connecting): looked at again after a pause, not at every change.
                if record.state == .refused, Date().timeIntervalSince(record.finishedAt ?? .distantPast) < Self.retryAfterRefusal { return }
                started[section.name] = nil
            } else if journal != nil || Date().timeIntervalSince(startedAt[section.name] ?? .distantPast) < 30 {
                return
            }
        }
        if try await context.etcd.value(context.keys.lock(section.name)) != nil { return }
        if let stored = try await context.etcd.value(context.keys.failoverBlock(section.name)) {
            // A block that does not decode still blocks: a garbled key must not let failovers loop.
            let block = try? StoredJSON.decode(FailoverBlock.self, from: stored.value)
            if block?.isActive(at: Date()) ?? true {
                logOnce(
                    section.name,
                    block.map {
                        "automatic failover of \(section.name) is blocked since operation \($0.operation) until \($0.until) "
                            + "or `marina failover ack \(section.name)`: a human decides"
                    }
                        ?? "automatic failover of \(section.name) is blocked: \(context.keys.failoverBlock(section.name)) is not a block "
                        + "this controller can read; `marina failover ack \(section.name)` removes it", level: .error)
                return
            }
        }
        let reaches: Bool
        if let reachedNow { reaches = reachedNow } else { reaches = await reachesOverSQL(primary, context: context, timeout: settings.probeTimeout) }
        let health = FailureDetection.assess(
            primaryName: primary.name, controllerReaches: reaches, primary: primaryObservation, replicas: replicas, now: Date(),
            masterFailureTimeout: settings.masterFailureTimeout, maxObservationAge: settings.maxObservationAge)
        switch health {
        case .alive where leaseLost:
            try await clearUnreachable(section.name)
            let witness = "the primary lease of \(section.name) expired and \(primary.name)'s agent is silent, while \(primary.name) still answers"
            context.logger.critical("\(witness): fencing it over SQL and failing over")
            await startFailover(section.name, reason: "automatic: \(primary.name) lost its primary lease", witnesses: [witness], fenceOverSQL: true)
        case .alive:
            logged[section.name] = nil
            try await clearUnreachable(section.name)
        case .unreachable(let because):
            logOnce(section.name, "the primary \(primary.name) of \(section.name) is unreachable, not dead: \(because); no failover", level: .warning)
            try await recordUnreachable(section.name, primary: primary.name, because: because)
        case .dead(let witnesses):
            try await clearUnreachable(section.name)
            context.logger.critical("the primary \(primary.name) of \(section.name) is dead: \(witnesses.joined(separator: "; ")); failing over")
            await startFailover(section.name, reason: "automatic: the primary \(primary.name) is dead", witnesses: witnesses, fenceOverSQL: false)
        }
    }

    private func startFailover(_ section: String, reason: String, witnesses: [String], fenceOverSQL: Bool) async {
        let now = Date()
        var record = OperationRecord(
            id: "failover-\(section)-\(Int(now.timeIntervalSince1970 * 1000))", kind: "failover", section: section, candidate: "",
            reason: reason, requestedBy: "marina-controller (automatic)", requestedAt: now)
        record.failover = FailoverDetails(automatic: true, witnesses: witnesses)
        if fenceOverSQL { record.failover?.fenceOverSQL = true }
        logged[section] = nil
        started[section] = record.id
        startedAt[section] = now
        await launch(record)
    }

    /// Keeps the judgement "unreachable, not dead" in etcd under the leader's lease, for drift:
    /// written once per primary, deleted when it no longer holds.
    private func recordUnreachable(_ section: String, primary: String, because: String) async throws {
        guard unreachable[section] != primary else { return }
        let lease = await context.leadership.leaseID
        guard lease != 0 else { return }
        let view = PrimaryUnreachable(section: section, primary: primary, reason: because, since: Date(), controller: context.leadership.id)
        _ = try await context.etcd.put(context.keys.unreachablePrimary(section), try StoredJSON.encode(view), lease: lease)
        unreachable[section] = primary
    }

    private func forgetJudgements() { unreachable = [:] }

    private func clearUnreachable(_ section: String) async throws {
        guard unreachable[section] != nil else { return }
        _ = try await context.etcd.delete(context.keys.unreachablePrimary(section))
        unreachable[section] = nil
    }

    private func logOnce(_ key: String, _ message: String, level: Logger.Level) {
        guard logged[key] != message else { return }
        logged[key] = message
        context.logger.log(level: level, "\(message)")
    }
}

/// A signal between the watch and the evaluating loop: `next(within:)` returns at the next
/// signal, or after the duration.
actor Changes {
    private var pending = false
    private var waiter: CheckedContinuation<Void, Never>?

    func signal() {
        if let waiter {
            self.waiter = nil
            waiter.resume()
        } else {
            pending = true
        }
    }

    func next(within duration: Duration) async {
        if pending {
            pending = false
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask {
                // Signalled even when cancelled: the waiting child must end for the group to.
                try? await Task.sleep(for: duration)
                await self.signal()
            }
            await group.next()
            group.cancelAll()
        }
        pending = false
    }

    private func wait() async {
        await withCheckedContinuation { continuation in
            if pending {
                pending = false
                continuation.resume()
            } else {
                waiter = continuation
            }
        }
    }
}

/// Whether the controller reaches `instance` over SQL on a fresh connection within `timeout`
/// seconds. A server that answers with an error (too many connections, access denied, a host
/// blocked) is reached: only a connection refused, cut or unanswered counts as not reaching it.
func reachesOverSQL(_ instance: Instance, context: OperationContext, timeout: Double) async -> Bool {
    let seconds = max(1, Int(timeout.rounded(.up)))
    var configuration = await context.hosts.configuration(for: instance, readTimeout: seconds)
    configuration.connectTimeout = seconds
    do {
        let session = try await context.hosts.connector.connect(configuration)
        let answered: Bool
        do {
            _ = try await session.query("SELECT 1 AS one")
            answered = true
        } catch let error as MariaDBError {
            answered = MariaDBErrorKind.isServerReply(error)
        } catch {
            answered = false
        }
        await session.close()
        return answered
    } catch let error as MariaDBError {
        return MariaDBErrorKind.isServerReply(error)
    } catch {
        return false
    }
}

/// Which MariaDB errors are the server's own answer.
enum MariaDBErrorKind {
    /// Client errors are 2000-2999 (refused, lost, timed out); anything else came from the server.
    static func isServerReply(_ error: MariaDBError) -> Bool { !(2000..<3000).contains(error.code) && !error.timedOut }
}
