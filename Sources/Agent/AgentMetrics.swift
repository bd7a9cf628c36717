import CoreMetrics
import Observation
import Prometheus
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The agent's Prometheus metrics (`/metrics` on `metrics_listen` and on every health
/// listener; the names in `docs/agent.md`, "Metrics"). The per-instance gauges are set from
/// the agent's latest probes at each scrape, so that ages are as of the scrape; the counters
/// count as things happen. Metrics that other modules record through swift-metrics (the etcd
/// client's) land in the same registry once `bootstrapped()` made it the process's.
public final class AgentMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let probes = Mutex<[String: (total: Prometheus.Counter, failures: Prometheus.Counter)]>([:])

    /// A registry of this agent's own (tests, or several agents in one process).
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "marina", subsystem: "agent", metricName: "start_time", unitName: "seconds",
                helpText: "When the agent started, in seconds since the Unix epoch."),
            labels: []
        ).set(to: Date().timeIntervalSince1970)
    }

    /// A registry for the whole process, with `MetricsSystem` bootstrapped to it so that every
    /// swift-metrics metric of the process is served too. Call once per process, at start.
    public static func bootstrapped() -> AgentMetrics {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return AgentMetrics(registry: registry)
    }

    /// Counts one probe of `instance`, and a failure when it was unreachable.
    func countProbe(_ instance: String, reachable: Bool) {
        let counters = probes.withLock { counters in
            if let existing = counters[instance] { return existing }
            let made = (
                total: registry.makeCounter(descriptor: Self.probesTotal, labels: [("db_instance", instance)]),
                failures: registry.makeCounter(descriptor: Self.probeFailuresTotal, labels: [("db_instance", instance)])
            )
            counters[instance] = made
            return made
        }
        counters.total.increment()
        if !reachable { counters.failures.increment() }
    }

    /// Counts one answer of a health listener: `check` is `primary`, `replica`, `health`,
    /// `metrics` or `other`.
    func countRequest(instance: String?, check: String, status: Int) {
        var labels = [("check", check), ("code", String(status))]
        if let instance { labels.insert(("db_instance", instance), at: 0) }
        registry.makeCounter(descriptor: Self.requestsTotal, labels: labels).increment()
    }

    /// What one instance looks like at a scrape.
    struct InstanceReading: Sendable {
        var instance: String
        var section: String?
        var observation: Observation?
        var observationAge: Double?
        var committed: CommittedSections.Section?
        var lease: HealthCheck.Lease?
    }

    /// Sets every per-instance gauge, then renders the registry in the Prometheus text format.
    func render(_ readings: [InstanceReading], committedAge: Double?) -> [UInt8] {
        for reading in readings { set(reading) }
        gauge(Self.committedAge, []).set(to: committedAge ?? .nan)
        return registry.emitToBuffer()
    }

    private func set(_ reading: InstanceReading) {
        var labels = [("db_instance", reading.instance)]
        if let section = reading.section { labels.append(("section", section)) }
        let observation = reading.observation
        let reachable = observation?.reachable == true
        func flag(_ value: Bool?) -> Double { value.map { $0 ? 1 : 0 } ?? .nan }
        gauge(Self.up, labels).set(to: reachable ? 1 : 0)
        gauge(Self.readOnly, labels).set(to: reachable ? flag(observation?.readOnly) : .nan)
        gauge(Self.heartbeatLag, labels).set(to: reachable ? observation?.heartbeatLag ?? .nan : .nan)
        let channels = reachable ? observation?.replication ?? [] : []
        gauge(Self.ioRunning, labels).set(to: channels.isEmpty ? .nan : flag(channels.allSatisfy { $0.ioThread == "Yes" }))
        gauge(Self.sqlRunning, labels).set(to: channels.isEmpty ? .nan : flag(channels.allSatisfy { $0.sqlThread == "Yes" }))
        gauge(Self.secondsBehind, labels).set(to: channels.first?.secondsBehindMaster.map(Double.init) ?? .nan)
        gauge(Self.observationAge, labels).set(to: reading.observationAge ?? .nan)
        gauge(Self.probeDuration, labels).set(to: observation?.probeMilliseconds.map { Double($0) / 1000 } ?? .nan)
        gauge(Self.selfFenced, labels).set(to: observation.map { $0.selfFence == nil ? 0 : 1 } ?? .nan)
        if reading.section != nil {
            gauge(Self.committedPrimary, labels).set(to: reading.committed.map { $0.primary == reading.instance ? 1 : 0 } ?? .nan)
            gauge(Self.pooledWeight, labels).set(to: reading.committed.map { Double($0.replicas[reading.instance] ?? 0) } ?? .nan)
        }
        if let lease = reading.lease, let section = reading.section {
            let leaseLabels = [("section", section), ("db_instance", reading.instance)]
            gauge(Self.leaseHeld, leaseLabels).set(to: lease.held ? 1 : 0)
            gauge(Self.leaseLeft, leaseLabels).set(to: lease.secondsLeft ?? .nan)
        }
    }

    private func gauge(_ descriptor: MetricNameDescriptor, _ labels: [(String, String)]) -> Prometheus.Gauge {
        registry.makeGauge(descriptor: descriptor, labels: labels)
    }

    private static func name(_ subsystem: String, _ name: String, _ unit: String = "", _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "marina", subsystem: subsystem, metricName: name, unitName: unit, helpText: help)
    }

    static var up: MetricNameDescriptor { name("instance", "up", "", "1 when the agent's latest probe of the instance succeeded, else 0.") }
    static var readOnly: MetricNameDescriptor {
        name("instance", "read_only", "", "@@global.read_only at the latest probe (1 on, 0 off; NaN when unknown).")
    }
    static var heartbeatLag: MetricNameDescriptor {
        name(
            "instance", "heartbeat_lag", "seconds", "Seconds since the newest pt-heartbeat row the instance holds (NaN when unknown).")
    }
    static var ioRunning: MetricNameDescriptor {
        name(
            "instance", "replication_io_running", "", "1 when every replication connection's IO thread runs, else 0 (NaN: none).")
    }
    static var sqlRunning: MetricNameDescriptor {
        name(
            "instance", "replication_sql_running", "", "1 when every replication connection's SQL thread runs, else 0 (NaN: none).")
    }
    static var secondsBehind: MetricNameDescriptor {
        name(
            "instance", "seconds_behind_master", "seconds", "Seconds_Behind_Master of the first replication connection (NaN when NULL).")
    }
    static var observationAge: MetricNameDescriptor {
        name("instance", "observation_age", "seconds", "Seconds since the agent's latest probe of the instance began.")
    }
    static var probeDuration: MetricNameDescriptor {
        name("instance", "probe_duration", "seconds", "How long the agent's latest probe of the instance took.")
    }
    static var selfFenced: MetricNameDescriptor {
        name("instance", "self_fenced", "", "1 while the agent keeps the instance read-only for want of its primary lease.")
    }
    static var committedPrimary: MetricNameDescriptor {
        name(
            "instance", "committed_primary", "", "1 when the committed configuration names the instance its section's primary (NaN: not read).")
    }
    static var pooledWeight: MetricNameDescriptor {
        name(
            "instance", "pooled_weight", "", "The instance's effective weight as a pooled replica in the committed configuration (0: not pooled).")
    }
    static var leaseHeld: MetricNameDescriptor {
        name("agent", "primary_lease_held", "", "1 while this agent holds the section's primary lease in etcd.")
    }
    static var leaseLeft: MetricNameDescriptor {
        name(
            "agent", "primary_lease_remaining", "seconds", "Seconds before the agent fences the instance unless the lease is renewed (NaN: none).")
    }
    static var committedAge: MetricNameDescriptor {
        name(
            "agent", "committed_config_age", "seconds", "Seconds since the agent last read the committed configuration from etcd (NaN: never).")
    }
    static var probesTotal: MetricNameDescriptor { name("agent", "probes", "total", "Probes of the instance.") }
    static var probeFailuresTotal: MetricNameDescriptor {
        name("agent", "probe_failures", "total", "Probes of the instance that found it unreachable.")
    }
    static var requestsTotal: MetricNameDescriptor {
        name("agent", "health_requests", "total", "Requests answered by the health listeners, by check and status code.")
    }
}
