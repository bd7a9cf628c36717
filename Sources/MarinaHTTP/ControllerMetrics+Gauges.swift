import Drift
import Foundation
import Observation
import Prometheus
import Topology

/// One gauge sample computed at scrape time.
struct GaugeSample: Equatable, Sendable {
    var name: String
    var labels: [String: String]
    var value: Double
}

extension ControllerMetrics {
    /// What each snapshot gauge means (its `# HELP` line).
    static let help: [String: String] = [
        "marina_controller_snapshot_success": "1 when this scrape read etcd, else 0 (the snapshot gauges are then missing)",
        "marina_controller_snapshot_duration_seconds": "Seconds this scrape took to read etcd and compute the snapshot gauges",
        "marina_controller_leader": "1 when this controller holds the leader lease (the leader key names it), else 0",
        "marina_controller_lease_remaining_seconds":
            "Seconds before etcd expires this controller's leader lease unless renewed (only while it leads)",
        "marina_instance_observed": "1 when an agent's observation of the member exists in etcd, 0 when none (agent gone, lease expired)",
        "marina_instance_reachable": "1 when the agent's last probe reached the instance, else 0",
        "marina_instance_observation_age_seconds": "Seconds since the agent's observation was taken",
        "marina_instance_read_only": "The instance's @@read_only as last observed (1 ON, 0 OFF)",
        "marina_instance_heartbeat_lag_seconds": "Replication lag from the pt-heartbeat table, as last observed",
        "marina_instance_replication_io_running": "1 when the replica's IO thread runs (Slave_IO_Running Yes), else 0; absent without a channel",
        "marina_instance_replication_sql_running": "1 when the replica's SQL thread runs (Slave_SQL_Running Yes), else 0; absent without a channel",
        "marina_instance_pooled": "1 when the member is pooled in the committed source of truth, else 0",
        "marina_instance_primary": "1 for the section's committed primary, else 0",
        "marina_section_pooled_replicas": "Replicas (the primary excepted) pooled in the committed source of truth",
        "marina_section_read_only": "1 when the section is read-only in the committed source of truth, else 0",
        "marina_section_operation_running": "1 while an operation holds the section's lock, else 0",
        "marina_section_drift_findings": "Current drift findings of the section by severity (0 included)",
        "marina_drift_findings": "Current drift findings by section, code and severity (only codes found; section empty for site-wide ones)",
    ]

    /// Whether this controller leads, and the seconds left on its lease (0 on a follower).
    static func leaderSamples(_ leader: (leads: Bool, leaseRemaining: Double?)) -> [GaugeSample] {
        [
            GaugeSample(name: "marina_controller_leader", labels: [:], value: leader.leads ? 1 : 0),
            GaugeSample(name: "marina_controller_lease_remaining_seconds", labels: [:], value: leader.leaseRemaining ?? 0),
        ]
    }

    /// The snapshot gauges, pure: the committed topology, the observations, the drift findings
    /// and the section locks, at `now`. Members of every committed section are listed (an
    /// instance in two sections under each); observations of instances the topology does not
    /// name are left to drift (`UNKNOWN_INSTANCE`). The MariaDB instance is the `db_instance`
    /// label: `instance` is the label Prometheus gives each scrape target.
    static func samples(
        topology: Topology, observations: [String: Observation], findings: [DriftFinding], locks: [String: String], now: Date
    ) -> [GaugeSample] {
        var samples = [GaugeSample]()
        func flag(_ value: Bool) -> Double { value ? 1 : 0 }
        for section in topology.sections.values.sorted(by: { $0.name < $1.name }) {
            let sectionLabel = ["section": section.name]
            var pooledReplicas = 0
            for (instance, membership) in topology.members(of: section.name) {
                let labels = ["section": section.name, "db_instance": instance.name]
                func add(_ name: String, _ value: Double) { samples.append(GaugeSample(name: name, labels: labels, value: value)) }
                let primary = section.primary == instance.name
                if membership.pooled && !primary { pooledReplicas += 1 }
                add("marina_instance_pooled", flag(membership.pooled))
                add("marina_instance_primary", flag(primary))
                guard let observation = observations[instance.name] else {
                    add("marina_instance_observed", 0)
                    continue
                }
                add("marina_instance_observed", 1)
                add("marina_instance_reachable", flag(observation.reachable))
                add("marina_instance_observation_age_seconds", max(0, now.timeIntervalSince(observation.observedAt)))
                if let readOnly = observation.readOnly { add("marina_instance_read_only", flag(readOnly)) }
                if let lag = observation.heartbeatLag, lag.isFinite { add("marina_instance_heartbeat_lag_seconds", lag) }
                if let channel = observation.replication.first {
                    add("marina_instance_replication_io_running", flag(channel.ioThread == "Yes"))
                    add("marina_instance_replication_sql_running", flag(channel.sqlThread == "Yes"))
                }
            }
            samples.append(GaugeSample(name: "marina_section_pooled_replicas", labels: sectionLabel, value: Double(pooledReplicas)))
            samples.append(GaugeSample(name: "marina_section_read_only", labels: sectionLabel, value: flag(section.readOnly)))
            samples.append(GaugeSample(name: "marina_section_operation_running", labels: sectionLabel, value: flag(locks[section.name] != nil)))
            for severity in Severity.allCases {
                let count = findings.filter { $0.section == section.name && $0.severity == severity }.count
                samples.append(
                    GaugeSample(
                        name: "marina_section_drift_findings", labels: ["section": section.name, "severity": severity.rawValue],
                        value: Double(count)))
            }
        }
        var byCode = [[String]: Int]()
        for finding in findings { byCode[[finding.section ?? "", finding.code.rawValue, finding.severity.rawValue], default: 0] += 1 }
        for (key, count) in byCode.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            samples.append(
                GaugeSample(
                    name: "marina_drift_findings", labels: ["section": key[0], "code": key[1], "severity": key[2]], value: Double(count)))
        }
        return samples
    }

    /// Registers the samples as gauges of a registry built for one scrape.
    static func register(_ samples: [GaugeSample], into scrape: PrometheusCollectorRegistry) {
        for sample in samples {
            let labels = sample.labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            let help = help[sample.name] ?? ""
            let gauge =
                labels.isEmpty ? scrape.makeGauge(name: sample.name, help: help) : scrape.makeGauge(name: sample.name, labels: labels, help: help)
            gauge.set(sample.value)
        }
    }
}
