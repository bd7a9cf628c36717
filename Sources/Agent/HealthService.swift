import FailsafeLink
import Logging
import MariaDBClient
import Observation
import Synchronization

/// The latest probe of every instance, with when it began on the monotonic clock, for the
/// health checks and metrics (read without waiting for any probe).
final class HealthBoard: Sendable {
    struct Entry: Sendable {
        var observation: Observation
        var probedAt: ContinuousClock.Instant
    }

    private let entries = Mutex([String: Entry]())

    func record(_ observation: Observation, probedAt: ContinuousClock.Instant) {
        entries.withLock { $0[observation.instance] = Entry(observation: observation, probedAt: probedAt) }
    }

    func latest(_ instance: String) -> Entry? { entries.withLock { $0[instance] } }
}

/// The agent's HTTP side: each instance's health listener (`health_listen`: `/primary`,
/// `/replica`, `/health`, `/metrics`) and the agent's `metrics_listen` (`/metrics`). Gathers
/// the facts of a check (the latest probe, the committed configuration, the primary lease, and
/// for `/primary` the live `read_only`), lets `HealthCheck` decide, and answers.
struct HealthService: Sendable {
    struct Listener: Sendable {
        /// The instance it checks (nil: the metrics listener).
        var instance: AgentConfiguration.Instance?
        var listener: HealthListener
        var reader: ReadOnlyReader?
    }

    let listeners: [Listener]
    let board: HealthBoard
    let directory: PrimaryDirectory
    let keepers: [String: PrimaryLeaseKeeper]
    let metrics: AgentMetrics
    let configuration: AgentConfiguration
    let logger: Logger

    /// Binds every listener the configuration names; throws naming the key of one that
    /// cannot be bound.
    init(
        configuration: AgentConfiguration, connections: [MariaDBConfiguration], board: HealthBoard, directory: PrimaryDirectory,
        keepers: [String: PrimaryLeaseKeeper], metrics: AgentMetrics, logger: Logger
    ) throws {
        var listeners = [Listener]()
        let timeout = Double(configuration.readTimeout)
        for (index, (instance, connection)) in zip(configuration.instances, connections).enumerated() {
            guard let text = instance.healthListen, let endpoint = FailsafeEndpoint(text) else { continue }
            do {
                listeners.append(
                    Listener(
                        instance: instance, listener: try HealthListener(endpoint, readTimeout: timeout),
                        reader: ReadOnlyReader(configuration: connection, deadline: timeout)))
            } catch {
                throw HealthListenerError(description: "instances[\(index)].health_listen (\(instance.name)): \(error)")
            }
        }
        if let text = configuration.metricsListen, let endpoint = FailsafeEndpoint(text) {
            do {
                listeners.append(Listener(instance: nil, listener: try HealthListener(endpoint, readTimeout: timeout), reader: nil))
            } catch {
                throw HealthListenerError(description: "metrics_listen: \(error)")
            }
        }
        self.listeners = listeners
        self.board = board
        self.directory = directory
        self.keepers = keepers
        self.metrics = metrics
        self.configuration = configuration
        self.logger = logger
    }

    var isEmpty: Bool { listeners.isEmpty }

    /// Serves every listener and keeps the committed configuration fresh, until cancelled.
    func run() async {
        for listener in listeners {
            logger.notice(
                "\(listener.instance.map { "health checks of \($0.name)" } ?? "metrics") served on http://\(listener.listener.endpoint)")
        }
        await withDiscardingTaskGroup { group in
            group.addTask { await refreshLoop() }
            for listener in listeners {
                group.addTask {
                    await listener.listener.serve { head, exchange in await answer(head, exchange, on: listener) }
                }
            }
        }
        for listener in listeners { await listener.reader?.close() }
    }

    /// Reads the committed configuration every half probe interval (shared with the heartbeat
    /// writer's reads), so that a check never waits for etcd.
    private func refreshLoop() async {
        let period = Duration.milliseconds(max(50, Int(configuration.interval * 500)))
        var failing = false
        while !Task.isCancelled {
            do {
                try await directory.refresh(force: false)
                if failing { logger.notice("health checks: the committed configuration is read from etcd again") }
                failing = false
            } catch {
                if !failing { logger.warning("health checks: the committed configuration cannot be read from etcd: \(error)") }
                failing = true
            }
            try? await Task.sleep(for: period)
        }
    }

    private func answer(_ head: HTTPRequestHead, _ exchange: HTTPExchange, on listener: Listener) async {
        let instance = listener.instance
        switch HealthCheck.route(head, metricsOnly: instance == nil) {
        case .failure(let refusal):
            metrics.countRequest(instance: instance?.name, check: "other", status: refusal.status.code)
            await exchange.send(refusal.response)
        case .success(.metrics):
            let body = await renderMetrics()
            metrics.countRequest(instance: instance?.name, check: "metrics", status: 200)
            await exchange.send(HTTPResponse(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: body))
        case .success(let route):
            guard let instance else { return }
            let facts = await facts(of: instance)
            let check: String
            let answer: HealthCheck.Answer
            switch route {
            case .primary:
                check = "primary"
                if HealthCheck.primaryNeedsLiveRead(facts), let reader = listener.reader {
                    await reader.read { reading in
                        var live = facts
                        live.liveReadOnly = reading
                        // The lease as it stands after the read, not before it.
                        if let keeper = keepers[instance.name] { live.lease = await keeper.reading(at: .now) }
                        let answer = HealthCheck.primary(live)
                        metrics.countRequest(instance: instance.name, check: check, status: answer.status.code)
                        await exchange.send(answer.response)
                    }
                    return
                }
                answer = HealthCheck.primary(facts)
            case .replica(let maxLag):
                check = "replica"
                answer = HealthCheck.replica(facts, maxLag: maxLag)
            case .health, .metrics:
                check = "health"
                answer = HealthCheck.health(facts)
            }
            metrics.countRequest(instance: instance.name, check: check, status: answer.status.code)
            await exchange.send(answer.response)
        }
    }

    /// The facts of one instance now (without the live `read_only`).
    private func facts(of instance: AgentConfiguration.Instance) async -> HealthCheck.Facts {
        let now = ContinuousClock.now
        let latest = board.latest(instance.name)
        let snapshot = await directory.snapshot()
        var committed: HealthCheck.Committed?
        if let section = instance.shard, let readAt = snapshot.readAt {
            let entry = snapshot.sections.sections[section]
            committed = HealthCheck.Committed(age: Self.seconds(now - readAt), primary: entry?.primary, replicas: entry?.replicas ?? [:])
        }
        return HealthCheck.Facts(
            instance: instance.name, section: instance.shard, observation: latest?.observation,
            observationAge: latest.map { Self.seconds(now - $0.probedAt) },
            observationLimit: HealthCheck.maxObservationAge(interval: configuration.interval), committed: committed,
            committedError: snapshot.error ?? (snapshot.readAt == nil ? "not read from etcd yet" : nil),
            committedLimit: Double(configuration.leaseTTL), lease: await keepers[instance.name]?.reading(at: now),
            fencingConfigured: configuration.fencing != nil)
    }

    private func renderMetrics() async -> [UInt8] {
        let now = ContinuousClock.now
        let snapshot = await directory.snapshot()
        var readings = [AgentMetrics.InstanceReading]()
        for instance in configuration.instances {
            let latest = board.latest(instance.name)
            readings.append(
                AgentMetrics.InstanceReading(
                    instance: instance.name, section: instance.shard, observation: latest?.observation,
                    observationAge: latest.map { Self.seconds(now - $0.probedAt) },
                    committed: snapshot.readAt == nil
                        ? nil : instance.shard.map { snapshot.sections.sections[$0] ?? .init(primary: nil, replicas: [:]) },
                    lease: await keepers[instance.name]?.reading(at: now)))
        }
        return metrics.render(readings, committedAge: snapshot.readAt.map { Self.seconds(now - $0) })
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
