import EtcdClient
import Foundation
import MarinaSandbox
import Operations
import TopologyStore

//   marina-bench failover --marina PATH [--runs N] [--silent N] [--agent-interval S]
//     N runs (20), each on a fresh sandbox (etcd, a primary and two replicas, agents probing
//     every S seconds (0.2), a controller with automatic failover; all run by PATH, the release
//     `marina`) with the load generator writing 200 rows/s as an application user. After 1 s
//     of load the primary is killed with SIGKILL. Figures: the outage the application saw
//     (its first refused write to its first write acknowledged by the new primary), split
//     into detection (the kill to the failover's request, by the controller's clock) and the
//     operation (its start to the candidate's read_only=OFF, from the journal), each step's
//     share, lost writes a replica had received and two-writer samples. Then `--silent` runs
//     (5) where the primary is frozen with SIGSTOP instead: connections hang rather than
//     close, and detection waits for the replicas' heartbeats to stop (slave_net_timeout).

func benchmarkFailover(marina: String, runs: Int, silent: Int, agentInterval: Double) async throws {
    var outages = [Double]()
    var detections = [Double]()
    var operations = [Double]()
    var steps = [String: [Double]]()
    var tail = 0
    var holes = 0
    var twoWriters = 0
    var silentOutages = [Double]()
    for run in 0..<(runs + silent) {
        let frozen = run >= runs
        let directory = NSTemporaryDirectory() + "marina-bench-failover-\(getpid())-\(run)"
        let state = try await Sandbox.up(
            .init(
                directory: directory, sections: 1, replicas: 2, agentExecutable: marina, controllerExecutable: marina, failover: .automatic,
                agentInterval: agentInterval)
        ).state
        defer { _ = try? Sandbox.down(directory: directory, purge: true) }
        let load = try LoadGenerator(state: state, rate: 200)
        await load.start()
        try await Task.sleep(for: .seconds(1))
        let killedAt = Date()
        try await Sandbox.signalInstance(directory: directory, name: "db1001", signal: frozen ? .stop : .kill)
        let record = try await finishedFailover(state, within: 30)
        guard record.state == .done else {
            throw BenchmarkError("failover \(run) ended \(record.state): \(record.refusals) \(record.failure?.error ?? "") \(record.attention)")
        }
        try await Task.sleep(for: .milliseconds(500))
        let report = await load.stop()
        if frozen {
            // Thawed it would take writes again (no self-fencing yet): killed instead.
            try await Sandbox.signalInstance(directory: directory, name: "db1001", signal: .kill)
        }
        guard let outage = report.outages.max() else { throw BenchmarkError("failover \(run): the load saw no outage") }
        twoWriters += report.twoWritersSamples
        if let promoted = state.instance(named: record.candidate) {
            let missing = try await LoadGenerator.missing(report.acknowledged, on: promoted, state: state)
            tail += missing.count
            holes += LoadGenerator.holes(acknowledged: report.acknowledged, missing: missing).count
        }
        if frozen {
            silentOutages.append(outage / 1000)
            continue
        }
        outages.append(outage / 1000)
        detections.append(record.requestedAt.timeIntervalSince(killedAt))
        if let started = record.startedAt, let writable = record.steps.first(where: \.pointOfNoReturn), let at = writable.startedAt {
            operations.append(at.timeIntervalSince(started) + (writable.milliseconds ?? 0) / 1000)
        }
        for step in record.steps where step.action != .repointReplicas {
            steps[step.action.rawValue, default: []].append((step.milliseconds ?? 0) / 1000)
        }
    }
    print("failover after kill -9 under 200 writes/s, \(runs) runs, agents probing every \(agentInterval) s:")
    print("  application outage (first refused write to first write on the new primary): " + describe(outages))
    print("  detection (kill to the controller's failover request): " + describe(detections))
    print("  operation (its start to the candidate's read_only=OFF answered): " + describe(operations))
    for action in ["apply-received", "detach-candidate", "commit-primary", "candidate-writable"] {
        if let samples = steps[action] { print("    \(action): " + describe(samples)) }
    }
    print(
        "  acknowledged writes missing on the new primary: \(tail) in all (the dead primary's last, never received), "
            + "\(holes) not in one final block (a write a replica had received); samples with two writers: \(twoWriters)")
    if silent > 0 {
        print("silent death (SIGSTOP) under load, \(silent) runs: application outage " + describe(silentOutages))
    }
}

/// The first automatic failover of the sandbox, once finished.
private func finishedFailover(_ state: SandboxState, within seconds: Double) async throws -> OperationRecord {
    let deadline = Date().addingTimeInterval(seconds)
    let keys = StoreKeys()
    while Date() < deadline {
        for kv in try await EtcdClient(endpoints: [state.etcd.url]).get(keys.operations, prefix: true).kvs {
            let record = try OperationJSON.decode(kv.value)
            if record.kind == "failover", record.state.isFinished { return record }
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw BenchmarkError("no failover finished within \(Int(seconds)) s")
}
