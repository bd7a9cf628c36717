import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import Operations
import TopologyStore

//   marina-bench partition --marina PATH [--runs N]
//     N runs (10), each on a fresh sandbox with a network namespace per host (etcd, a primary and
//     two replicas, each host with its own agent holding the primary lease of the partition
//     tests: 5 s, fenced 2.5 s before it can end; a controller with automatic failover; all run
//     by PATH, the release `marina`). After 1.5 s, the primary's host is cut off from everything
//     (nftables drops in its namespace). Every instance's read_only is sampled over its unix
//     socket (both sides of the cut) every 5 ms. Figures, from the cut: the old primary refusing
//     writes (read_only ON), a replica accepting them (read_only OFF), and the gap between the
//     two, when nothing takes writes; and the samples with two writers, which must be 0.
func benchmarkPartition(marina: String, runs: Int) async throws {
    var refused = [Double]()
    var accepted = [Double]()
    var gaps = [Double]()
    var leaseWaits = [String]()
    var twoWriters = 0
    for run in 0..<runs {
        let directory = NSTemporaryDirectory() + "marina-bench-partition-\(getpid())-\(run)"
        let state = try await Sandbox.up(
            .init(
                directory: directory, sections: 1, replicas: 2, agentExecutable: marina, controllerExecutable: marina, failover: .automatic,
                agentInterval: 0.2, hosts: .namespaces, fencing: .fast)
        ).state
        defer { _ = try? Sandbox.down(directory: directory, purge: true) }
        let etcd = EtcdClient(EtcdConfiguration(endpoints: [state.etcd.url]))
        let leaseKey = StoreKeys().primaryLease("s1")
        let deadline = Date().addingTimeInterval(20)
        while try await etcd.value(leaseKey) == nil {
            guard Date() < deadline else { throw BenchmarkError("run \(run): db1001's agent took no lease within 20 s") }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(1500))  // the leader's watch sees the lease held

        var clients = [String: MariaDBClient]()
        for instance in state.instances(in: "s1") {
            clients[instance.name] = try await MariaDBClient.connect(MariaDBServer.rootConfiguration(socket: instance.socket, readTimeout: 2))
        }
        try await Sandbox.partition(directory: directory, name: "db1001", from: .everything)
        let cut = ContinuousClock.now
        var fencedAt: ContinuousClock.Instant?
        var promotedAt: ContinuousClock.Instant?
        while promotedAt == nil, ContinuousClock.now - cut < .seconds(40) {
            var writable = [String]()
            for (name, client) in clients where (try? await client.query("SELECT @@GLOBAL.read_only AS ro").first?["ro"]) == "0" {
                writable.append(name)
            }
            let now = ContinuousClock.now
            if fencedAt == nil, !writable.contains("db1001") { fencedAt = now }
            if writable.contains(where: { $0 != "db1001" }) { promotedAt = now }
            if writable.count > 1 { twoWriters += 1 }
            try await Task.sleep(for: .milliseconds(5))
        }
        for client in clients.values { await client.close() }
        guard let fenced = fencedAt, let promoted = promotedAt else {
            throw BenchmarkError("run \(run): \(fencedAt == nil ? "db1001 never turned read-only" : "no replica was promoted") within 40 s")
        }
        refused.append((fenced - cut).seconds)
        accepted.append((promoted - cut).seconds)
        gaps.append((promoted - fenced).seconds)
        if let record = try await etcd.get(StoreKeys().operations, prefix: true).kvs.compactMap({ try? OperationJSON.decode($0.value) }).first,
            let wait = record.failover?.leaseWait
        {
            leaseWaits.append(wait)
        }
        print(
            "run \(run): refused after \(String(format: "%.2f", (fenced - cut).seconds)) s, accepted after \(String(format: "%.2f", (promoted - cut).seconds)) s"
        )
    }
    print("primary's host cut off from everything, \(runs) runs, lease 5 s, margin 2.5 s, keep-alive every 0.5 s:")
    print("  the old primary refuses writes (read_only ON), from the cut: " + describe(refused))
    print("  a replica accepts writes (read_only OFF), from the cut: " + describe(accepted))
    print("  no writer at all (between the two): " + describe(gaps))
    print("  samples with two writers: \(twoWriters)")
    if let wait = leaseWaits.first { print("  the failover's lease wait, first run: \(wait)") }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
