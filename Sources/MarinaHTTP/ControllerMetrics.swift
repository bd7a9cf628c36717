import Controller
import Drift
import EtcdClient
import Foundation
import MarinaViews
import Prometheus
import Topology
import TopologyStore

/// The controller's `/metrics` (see docs/metrics.md): first what the long-lived registry holds
/// (the counters and histograms the controller and its etcd client update as they act), then
/// gauges computed from one etcd snapshot at each scrape, in a registry built for that scrape
/// alone, so that an instance or a finding that disappeared disappears from the next scrape.
///
/// A scrape whose etcd read fails still answers: the long-lived metrics, and
/// `marina_controller_snapshot_success 0` instead of the snapshot's gauges.
public struct ControllerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let store: TopologyStore
    let controllerID: String
    /// Drift's thresholds: `marina drift`'s defaults.
    var thresholds = DriftView.Thresholds()

    /// `registry` is the one the process bootstrapped swift-metrics with (`metricsFactory`);
    /// `controllerID` the name the controller leads under (`Controller.id`).
    public init(registry: PrometheusCollectorRegistry, store: TopologyStore, controllerID: String) {
        self.registry = registry
        self.store = store
        self.controllerID = controllerID
    }

    /// The factory to bootstrap swift-metrics with, once per process: every histogram Marina
    /// records gets buckets that fit it (the write window in milliseconds, etcd requests in
    /// milliseconds, operations in seconds).
    public static func metricsFactory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            ControllerInstruments.operationDuration: ControllerInstruments.operationDurationBuckets,
            ControllerInstruments.writeWindow: ControllerInstruments.writeWindowBuckets,
            EtcdMetrics.requestDuration: EtcdMetrics.durationBuckets,
        ]
        return factory
    }

    /// The text exposition format (version 0.0.4).
    public func render() async throws -> String {
        var buffer = [UInt8]()
        registry.emit(into: &buffer)
        let scrape = PrometheusCollectorRegistry()
        let started = ContinuousClock.now
        var success = 1.0
        // Leadership apart from the rest: a snapshot that cannot be judged (an unreadable record)
        // does not hide which controller leads.
        do {
            Self.register(Self.leaderSamples(try await leadership()), into: scrape)
        } catch {
            success = 0
        }
        do {
            try await snapshotGauges(into: scrape, now: Date())
        } catch {
            success = 0
        }
        let elapsed = ContinuousClock.now - started
        Self.register(
            [
                GaugeSample(name: "marina_controller_snapshot_success", labels: [:], value: success),
                GaugeSample(
                    name: "marina_controller_snapshot_duration_seconds", labels: [:],
                    value: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18),
            ], into: scrape)
        scrape.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// The gauges of one etcd snapshot: instances, sections and drift.
    func snapshotGauges(into scrape: PrometheusCollectorRegistry, now: Date) async throws {
        let site = try await store.snapshot()
        let topology = site.committedTopology ?? Topology()
        let findings = try await DriftView.findings(site, store: store, section: nil, thresholds: thresholds, now: now)
        let samples = Self.samples(
            topology: topology, observations: site.observations, findings: findings, locks: site.locks, now: now)
        Self.register(samples, into: scrape)
    }

    /// Whether this controller leads (the leader key names it) and, if so, the seconds etcd
    /// gives its lease before it expires unrenewed.
    func leadership() async throws -> (leads: Bool, leaseRemaining: Double?) {
        guard let kv = try await store.etcd.value(store.keys.leader),
            let object = try? JSONSerialization.jsonObject(with: Data(kv.value)) as? [String: Any],
            object["id"] as? String == controllerID
        else { return (false, nil) }
        guard let lease = (object["lease"] as? NSNumber)?.int64Value, let client = store.etcd as? EtcdClient else { return (true, nil) }
        return (true, try await client.leaseStatus(lease).remaining.map(Double.init) ?? 0)
    }
}
