import EtcdClient
import Foundation
import Logging
import MarinaHTTP
import MarinaSandbox
import Observation
import Prometheus
import ServiceLifecycle
import Topology
import TopologyStore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

//   marina-bench api [--runs N]
//     The controller's HTTP API on a site of 500 instances (20 sections of 25, as
//     config-commit), in a real etcd (an etcd-only sandbox) holding the committed topology and
//     one observation per instance (replicas replicating, lag under a second). The API is
//     served in this process by the same code `marina controller` runs (ControllerHTTP on
//     loopback). Each run times one `GET /api/v1/status` from the request to the last byte
//     of the body (one etcd snapshot, the status of every section, JSON); also `GET
//     /api/v1/drift` and `GET /metrics`, N times each (200) after 10 warm-up requests.

func benchmarkAPI(runs: Int) async throws {
    let root = NSTemporaryDirectory() + "marina-bench-api-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: root) }
    let sandbox = try await Sandbox.up(.init(directory: root, sections: 0)).state
    defer { _ = try? Sandbox.down(directory: root, purge: true) }
    let etcd = EtcdClient(endpoints: [sandbox.etcd.url])
    let store = TopologyStore(etcd: etcd)
    let actor = ChangeAuthor(author: "bench", now: Date())
    let topology = largeTopology()
    guard case .applied = try await store.replaceStaged(with: topology, by: actor, change: "bench") else {
        fatalError("the benchmark topology was refused")
    }
    _ = try await store.commit(message: "initial", by: actor)
    let now = Date()
    for instance in topology.instances.values {
        let section = instance.sections.keys.first!
        let primary = topology.sections[section]!.primary
        var observation = Observation(
            instance: instance.name, agent: "bench", agentStartedAt: now, observedAt: now, reachable: true, lastGoodProbeAt: now,
            replication: instance.name == primary
                ? []
                : [
                    ReplicationChannel(
                        sourceHost: topology.instances[primary]!.host, sourcePort: 3306, ioThread: "Yes", sqlThread: "Yes", usingGTID: "Slave_Pos")
                ])
        observation.readOnly = instance.name != primary
        observation.heartbeatLag = instance.name == primary ? 0.1 : 0.4
        _ = try await etcd.put(store.keys.observed + instance.name, try ObservationJSON.encode(observation))
    }

    let port = try Ports.findFreeBlock(count: 1)
    let registry = PrometheusCollectorRegistry()
    let context = ControllerHTTP.Context(
        store: store, etcd: etcd, controllerID: "bench", token: nil,
        metrics: ControllerMetrics(registry: registry, store: store, controllerID: "bench"))
    var logger = Logger(label: "marina.bench.http")
    logger.logLevel = .warning
    let application = try ControllerHTTP.application(.init(listen: "127.0.0.1:\(port)"), context: context, logger: logger)
    let group = ServiceGroup(services: [application], gracefulShutdownSignals: [], logger: logger)
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let base = "http://127.0.0.1:\(port)"
        let session = URLSession(configuration: .ephemeral)
        func fetch(_ path: String) async throws -> Int {
            let (data, response) = try await session.data(from: URL(string: base + path)!)
            guard (response as? HTTPURLResponse)?.statusCode == 200 else {
                fatalError("\(path): \(String(decoding: data, as: UTF8.self))")
            }
            return data.count
        }
        // The listener is up once it answers.
        for attempt in 0... {
            if (try? await fetch("/api/v1/controller")) != nil { break }
            if attempt > 200 { fatalError("the API did not start") }
            try await Task.sleep(for: .milliseconds(50))
        }
        for path in ["/api/v1/status", "/api/v1/drift", "/metrics"] {
            var size = 0
            for _ in 0..<10 { size = try await fetch(path) }
            var samples = [Double]()
            let clock = ContinuousClock()
            for _ in 0..<runs {
                let start = clock.now
                _ = try await fetch(path)
                samples.append(seconds(clock.now - start))
            }
            let sorted = samples.sorted()
            print(
                "GET \(path), \(topology.instances.count) instances, \(size) bytes: " + describe(samples)
                    + String(format: "  p99 %.1f ms", percentile(sorted, 0.99) * 1000))
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
}
