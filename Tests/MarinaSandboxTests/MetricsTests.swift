import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Operations
import Testing
import Topology
import TopologyStore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The controller's `/metrics` on real servers, read as Prometheus reads it: parsed by the
/// Python client's own parser (Debian's python3-prometheus-client), so that a format error fails.
@Suite("Metrics", .serialized)
struct MetricsTests {
    @Test("a switchover counts once on the leader: one write window of the journal's length, one done, leader 1; the instances' gauges follow")
    func switchoverIsCounted() async throws {
        let sandbox = try await TestServers.privateSandbox("metrics", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let before = try await scrapeWhenLeading(sandbox)
        let window = #"marina_write_window_seconds"#
        let done = ["kind": "switchover", "outcome": "done"]

        let result = try switchover(sandbox, ["s1", "--to", "db1002", "--reason", "metrics", "--yes"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let journals = try await sandbox.etcdClient.get(StoreKeys().operations, prefix: true).kvs.map { try OperationJSON.decode($0.value) }
        let record = try #require(journals.first { $0.kind == "switchover" && $0.state == .done })
        let milliseconds = try #require(record.windowMilliseconds)

        let after = try await scrape(sandbox)
        #expect(after.delta(from: before, window + "_count", ["kind": "switchover"]) == 1)
        let sum = after.delta(from: before, window + "_sum", ["kind": "switchover"])
        #expect(abs(sum - milliseconds / 1000) < 1e-6, "sum grew by \(sum) s, the journal says \(milliseconds) ms")
        #expect(after.delta(from: before, "marina_operations_total", done) == 1)
        for outcome in ["done-needs-attention", "rolled-back", "needs-human", "refused"] {
            #expect(after.delta(from: before, "marina_operations_total", ["kind": "switchover", "outcome": outcome]) == 0, "\(outcome)")
        }
        #expect(after.delta(from: before, "marina_operation_duration_seconds_count", ["kind": "switchover"]) == 1)
        #expect(after.value("marina_controller_leader", [:]) == 1)
        #expect((after.value("marina_controller_lease_remaining_seconds", [:]) ?? 0) > 0)
        #expect(after.value("marina_controller_snapshot_success", [:]) == 1)
        #expect((after.value("marina_etcd_request_duration_seconds_count", ["operation": "txn"]) ?? 0) > 0)

        // The snapshot gauges follow the servers within an observation or two: db1002 writable, db1001 replicating.
        var last = after
        let followed = try await eventually(20) {
            last = try await scrape(sandbox)
            return last.value("marina_instance_read_only", ["db_instance": "db1002"]) == 0
                && last.value("marina_instance_read_only", ["db_instance": "db1001"]) == 1
                && last.value("marina_instance_replication_sql_running", ["db_instance": "db1001"]) == 1
                && last.value("marina_instance_replication_io_running", ["db_instance": "db1001"]) == 1
                && last.value("marina_instance_replication_sql_running", ["db_instance": "db1002"]) == nil
                && last.value("marina_instance_primary", ["db_instance": "db1002"]) == 1
        }
        #expect(followed, "the instances' gauges did not follow the switchover: \(last.samples.filter { $0.key.hasPrefix("marina_instance") })")
        let topology = try #require(try await TopologyStore(etcd: sandbox.etcdClient).committedTopology())
        let section = try #require(topology.sections["s1"])
        let pooled = topology.members(of: "s1").filter { $0.membership.pooled && $0.instance.name != section.primary }.count
        #expect(last.value("marina_section_pooled_replicas", ["section": "s1"]) == Double(pooled))
        #expect(last.value("marina_section_read_only", ["section": "s1"]) == 0)
        for member in topology.members(of: "s1").map(\.instance.name) {
            #expect(last.value("marina_instance_observed", ["db_instance": member, "section": "s1"]) == 1, "\(member)")
            #expect(last.value("marina_instance_reachable", ["db_instance": member]) == 1, "\(member)")
            #expect((last.value("marina_instance_observation_age_seconds", ["db_instance": member]) ?? -1) >= 0, "\(member)")
        }
        #expect((last.value("marina_instance_heartbeat_lag_seconds", ["db_instance": "db1001"]) ?? -1) >= 0)
    }

    @Test("every marina_* metric the example alert rules name is in a scrape of a controller that has run nothing")
    func alertRulesNameExistingMetrics() async throws {
        let sandbox = try await TestServers.privateSandbox("metrics-rules", replicas: 1, controller: true)
        defer { TestServers.stop(sandbox) }
        let names = try alertRuleMetricNames()
        #expect(names.count >= 10, "the rules name only \(names)")
        // The instances' gauges come with the agent's first observations.
        var scraped = try await scrapeWhenLeading(sandbox)
        _ = try await eventually(30) {
            scraped = try await scrape(sandbox)
            return names.allSatisfy { scraped.samples[$0]?.isEmpty == false }
        }
        for name in names.sorted() {
            #expect(scraped.samples[name]?.isEmpty == false, "\(name), named in config/prometheus-alerts.example.yml, is not in the scrape")
        }
        // A controller that ran nothing exposes its operation counters at zero.
        #expect(scraped.value("marina_operations_total", ["kind": "failover", "outcome": "needs-human"]) == 0)
        #expect(scraped.value("marina_etcd_request_errors_total", ["operation": "txn"]) == 0)
        // The bucket the write-window rule reads (`le="1.0"`) is one the histogram has.
        #expect(scraped.value("marina_write_window_seconds_bucket", ["kind": "switchover", "le": "1.0"]) == 0)
    }
}

/// One scrape: sample name → samples, as the Python client parsed them.
private struct Scrape {
    struct Sample {
        var labels: [String: String]
        var value: Double
    }
    var samples: [String: [Sample]]

    /// The value of the one sample of `name` whose labels include `labels` (nil if none; a test
    /// failure if several).
    func value(_ name: String, _ labels: [String: String]) -> Double? {
        let matching = (samples[name] ?? []).filter { sample in labels.allSatisfy { sample.labels[$0.key] == $0.value } }
        #expect(matching.count <= 1, "\(name) \(labels) matches \(matching.count) samples")
        return matching.first?.value
    }

    /// How much `name` grew since `before` (a series absent before counts from 0).
    func delta(from before: Scrape, _ name: String, _ labels: [String: String]) -> Double {
        (value(name, labels) ?? 0) - (before.value(name, labels) ?? 0)
    }
}

/// `GET /metrics` on the sandbox's controller, parsed by `Scripts/parse_metrics.py`.
private func scrape(_ sandbox: SandboxState) async throws -> Scrape {
    let http = try #require(sandbox.http, "the sandbox serves no HTTP")
    let (data, response) = try await URLSession.shared.data(from: URL(string: http.controllerURL + "/metrics")!)
    let status = (response as? HTTPURLResponse)?.statusCode
    guard status == 200 else { throw SandboxError.invalidArgument("GET /metrics answered \(status.map(String.init) ?? "?")") }
    let object = try parseMetrics(data)
    return Scrape(
        samples: object.mapValues { samples in
            samples.map { sample in
                Scrape.Sample(labels: sample["labels"] as? [String: String] ?? [:], value: (sample["value"] as? NSNumber)?.doubleValue ?? .nan)
            }
        })
}

/// Scrapes until the controller answers and leads (it campaigns once started).
private func scrapeWhenLeading(_ sandbox: SandboxState, seconds: Double = 30) async throws -> Scrape {
    var last: Scrape?
    var problem = ""
    let leads = try await eventually(seconds) {
        do {
            last = try await scrape(sandbox)
            return last?.value("marina_controller_leader", [:]) == 1
        } catch {
            problem = "\(error)"
            return false
        }
    }
    guard leads, let last else { throw SandboxError.invalidArgument("the controller's /metrics never showed it leading: \(problem)") }
    return last
}

/// Every `marina_*` name in the expressions of config/prometheus-alerts.example.yml (read with python3-yaml).
private func alertRuleMetricNames() throws -> Set<String> {
    let rules = packageRoot + "/config/prometheus-alerts.example.yml"
    let program = """
        import json, re, sys, yaml
        document = yaml.safe_load(open(sys.argv[1]))
        names = set()
        for group in document["groups"]:
            for rule in group["rules"]:
                assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
                assert rule["labels"]["severity"] in ("critical", "warning"), rule
                assert rule["annotations"]["summary"], rule
                names.update(re.findall(r"\\bmarina_[a-z0-9_]+", rule["expr"]))
        json.dump(sorted(names), sys.stdout)
        """
    let run = try runPython(["-c", program, rules])
    guard run.status == 0 else { throw SandboxError.invalidArgument("python3 -c exited \(run.status): \(run.errors)") }
    let output = run.output
    return Set(try JSONSerialization.jsonObject(with: output) as? [String] ?? [])
}
