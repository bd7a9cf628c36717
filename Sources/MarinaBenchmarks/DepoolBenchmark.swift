import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import TopologyStore

//   marina-bench depool --marina PATH [--runs N]
//     A sandbox (a primary and two replicas, the agent probing every second and writing the
//     heartbeat every second, a controller: all run by PATH) whose controller has depool_lag
//     2 s, depool_after 0, a 0.25 s evaluation interval, and a quick repool (so that trials
//     follow each other). Each trial takes a global read lock on db1002, so that its SQL
//     thread stops applying while its threads still run, then reads the newest heartbeat it
//     applied: its lag crosses 2 s at that row's `ts` + 2 s (the primary's UTC clock, this
//     machine's). The committed generated configuration is then read every 10 ms until
//     db1002 is gone from s1's replicas. Figure: that moment minus the crossing.

func benchmarkDepool(marina: String, runs: Int) async throws {
    let directory = NSTemporaryDirectory() + "marina-bench-depool-\(getpid())"
    let up = try await Sandbox.up(.init(directory: directory, sections: 1, replicas: 2, agentExecutable: marina))
    defer { _ = try? Sandbox.down(directory: directory, purge: true) }
    try await Sandbox.startController(
        directory: directory, executable: marina,
        depool: """
            depool:
              interval: 0.25
              depool_lag: 2
              depool_after: 0
              repool_lag: 1.5
              repool_after: 0.5
              ladder: [100]
              step_pause: 0
              min_interval: 0.5
            """)
    let state = up.state
    let store = TopologyStore(etcd: EtcdClient(EtcdConfiguration(endpoints: [state.etcd.url])))
    func pooled() async throws -> Bool {
        try await store.read().committed.configs[state.datacenter]?.sectionLoads["s1"]?.last?["db1002"] != nil
    }
    let replica = try await MariaDBClient.connect(
        MariaDBConfiguration(
            endpoint: .socket(path: state.instance(named: "db1002")!.socket),
            user: "root", readTimeout: 60))
    let parse = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    var delays = [Double]()
    for run in 0..<runs {
        try await replica.execute("FLUSH TABLES WITH READ LOCK")
        guard let ts = try await replica.query("SELECT ts FROM heartbeat.heartbeat WHERE shard = 's1' ORDER BY ts DESC LIMIT 1").first?["ts"],
            let applied = try? parse.parse(ts + "Z")
        else {
            throw BenchmarkError("no heartbeat row on db1002")
        }
        let crossing = applied.addingTimeInterval(2)
        let deadline = Date().addingTimeInterval(15)
        while try await pooled() {
            guard Date() < deadline else { throw BenchmarkError("trial \(run): db1002 not depooled within 15 s") }
            try await Task.sleep(for: .milliseconds(10))
        }
        delays.append(Date().timeIntervalSince(crossing))
        try await replica.execute("UNLOCK TABLES")
        let back = Date().addingTimeInterval(20)
        while try await !pooled() {
            guard Date() < back else { throw BenchmarkError("trial \(run): db1002 not repooled within 20 s") }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .seconds(1))
    }
    await replica.close()
    print("automatic depool, lag crossing depool_lag to the generated configuration without the replica (1 s probes): " + describe(delays))
}
