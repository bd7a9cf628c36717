import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Operations
import Policy
import Testing
import TopologyStore

/// A fast policy for tests: lag over 2 s depools after 1 s; under 1.5 s for 1 s repools, 50% then 100%, 1 s apart.
let fastPolicy = """
    depool:
      interval: 0.1
      depool_lag: 2
      depool_after: 1
      repool_lag: 1.5
      repool_after: 1
      ladder: [50, 100]
      step_pause: 1
      min_interval: 0.5
    """

/// The replicas pooled in the committed configuration, with their effective weights.
func pooledReplicas(_ sandbox: SandboxState, section: String = "s1") async throws -> [String: Int] {
    let config = try await TopologyStore(etcd: sandbox.etcdClient).read().committed.configs[sandbox.datacenter]
    return config?.sectionLoads[section]?.last ?? [:]
}

func policyState(_ sandbox: SandboxState) async throws -> PolicyState {
    try await sandbox.etcdClient.value(StoreKeys().policyState).map { try PolicyJSON.decode($0.value) } ?? PolicyState()
}

/// Waits up to `seconds` for `condition`, giving whether it came.
func eventually(_ seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// The lag of `instance` as its own heartbeat table shows it (the age of the newest row the primary wrote), read on the
/// server: what the agent would observe, without etcd.
func heartbeatLagOnServer(_ sandbox: SandboxState, _ instance: String, section: String = "s1") async throws -> Double {
    let client = try await sandbox.root(instance)
    let micro = try await client.query(
        """
        SELECT TIMESTAMPDIFF(MICROSECOND, MAX(ts), UTC_TIMESTAMP(6)) AS lag FROM heartbeat.heartbeat WHERE shard = ?
        """, .string(section)
    ).first?["lag"]
    await client.close()
    return (micro.flatMap { Double($0) } ?? 0) / 1_000_000
}

/// Makes a replica lag for real: a global read lock holds its SQL thread while the primary's heartbeat goes on.
func holdReplication(_ sandbox: SandboxState, _ instance: String) async throws -> MariaDBClient {
    let client = try await sandbox.root(instance, readTimeout: 60)
    try await client.execute("FLUSH TABLES WITH READ LOCK")
    return client
}

@Suite("Automatic depool and repool", .serialized)
struct DepoolTests {
    @Test("a lagging replica is depooled, a second one at the section's minimum is not (and that is reported), then it is repooled step by step")
    func depoolAndRepool() async throws {
        let sandbox = try await TestServers.privateSandbox("depool", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await Sandbox.stopController(directory: sandbox.directory)
        try await Sandbox.startController(directory: sandbox.directory, executable: marinaExecutable(), depool: fastPolicy)
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory]
        #expect(try await pooledReplicas(sandbox) == ["db1002": 100, "db1003": 100])

        // db1002 lags: depooled, by a normal commit with an author and a reason.
        let first = try await holdReplication(sandbox, "db1002")
        #expect(try await eventually(10) { try await pooledReplicas(sandbox)["db1002"] == nil })
        let history = try await TopologyStore(etcd: sandbox.etcdClient).history(limit: 1)
        #expect(history.first?.author == "marina-controller")
        #expect(history.first?.kind == .automatic)
        #expect(history.first?.message.hasPrefix("automatic depool of db1002 in s1: lag ") == true, "\(history.first?.message ?? "")")
        let list = try runMarina(["instance", "list"], environment: environment).stdout
        #expect(list.contains("depooled by policy (lag "), "\(list)")

        // db1003 lags too: s1 is at its minimum of 1 pooled replica, so it stays pooled, and the refusal is reported.
        let second = try await holdReplication(sandbox, "db1003")
        #expect(try await eventually(10) { try await policyState(sandbox).refusals["db1003"] != nil })
        #expect(try await pooledReplicas(sandbox)["db1003"] == 100)
        #expect(
            try await policyState(sandbox).refusals["db1003"]?.reason == "depooling db1003 would leave s1 0 pooled replicas, below its minimum of 1")
        let drift = try runMarina(["drift"], environment: environment).stdout
        #expect(drift.contains("AUTOMATIC_ACTION_REFUSED") && drift.contains("below its minimum of 1"), "\(drift)")
        try await second.execute("UNLOCK TABLES")
        await second.close()

        // db1002 recovers: back at 50%, then 100%, and Marina forgets it.
        try await first.execute("UNLOCK TABLES")
        await first.close()
        var weights = [Int]()
        #expect(
            try await eventually(15) {
                if let weight = try await pooledReplicas(sandbox)["db1002"], weights.last != weight { weights.append(weight) }
                return weights.last == 100
            })
        #expect(weights == [50, 100])
        #expect(
            try await eventually(5) {
                let state = try await policyState(sandbox)
                return state.managed.isEmpty && state.refusals.isEmpty
            })
        let story = try await TopologyStore(etcd: sandbox.etcdClient).history(limit: 3).map(\.message)
        #expect(story[0].hasPrefix("automatic repool of db1002 in s1 at 100%"), "\(story)")
        #expect(story[1].hasPrefix("automatic repool of db1002 in s1 at 50%"), "\(story)")
        #expect(story[2].hasPrefix("automatic depool of db1002"), "\(story)")

        // `config restore` works on automatic commits: back to the revision of the depool.
        let depoolRevision = try await TopologyStore(etcd: sandbox.etcdClient).history(limit: 3)[2].revision ?? 0
        let restore = try runMarina(["config", "restore", String(depoolRevision), "-m", "test"], environment: environment)
        #expect(restore.status == 0, "\(restore.stdout)\(restore.stderr)")
        #expect(try await pooledReplicas(sandbox)["db1002"] == nil)
    }

    @Test("a replica a human depooled stays depooled, however it lags and recovers")
    func humanDepool() async throws {
        let sandbox = try await TestServers.privateSandbox("depool-human", replicas: 3, controller: true)
        defer { TestServers.stop(sandbox) }
        try await Sandbox.stopController(directory: sandbox.directory)
        try await Sandbox.startController(directory: sandbox.directory, executable: marinaExecutable(), depool: fastPolicy)
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "a DBA"]
        #expect(try runMarina(["instance", "depool", "db1003", "--section", "s1"], environment: environment).status == 0)
        #expect(try runMarina(["config", "commit", "--yes", "-m", "maintenance"], environment: environment).status == 0)
        let humanCommit = try await commitCount(sandbox)
        let store = TopologyStore(etcd: sandbox.etcdClient)

        // db1003 lags, long enough for the policy to act on it (over depool_lag for more than depool_after).
        let held = try await holdReplication(sandbox, "db1003")
        #expect(try await eventually(15) { (try await store.observations().observations["db1003"]?.heartbeatLag ?? 0) > 2 })
        #expect(try await eventually(15) { try await heartbeatLagOnServer(sandbox, "db1003") > 3.5 })
        // The witness that the controller evaluated meanwhile: db1002 lags too, and the controller depools it,
        // which takes a full depool_after of ticks that saw db1003 lagging since before.
        let witness = try await holdReplication(sandbox, "db1002")
        #expect(
            try await eventually(20) { try await pooledReplicas(sandbox)["db1002"] == nil }, "the controller never acted: the test proves nothing")
        #expect(try await pooledReplicas(sandbox)["db1003"] == nil)
        var state = try await policyState(sandbox)
        #expect(state.managed["db1003"] == nil && state.refusals["db1003"] == nil, "\(state)")

        // db1003 recovers first; then db1002, whose repool (good for repool_after, then step_pause) takes ticks that saw db1003 good.
        try await held.execute("UNLOCK TABLES")
        await held.close()
        #expect(try await eventually(15) { (try await store.observations().observations["db1003"]?.heartbeatLag ?? 99) < 1.5 })
        try await witness.execute("UNLOCK TABLES")
        await witness.close()
        #expect(
            try await eventually(20) {
                let weight = try await pooledReplicas(sandbox)["db1002"]
                let managed = try await policyState(sandbox).managed
                return weight == 100 && managed.isEmpty
            }, "the controller never repooled the witness: the test proves nothing")
        #expect(try await pooledReplicas(sandbox)["db1003"] == nil)
        state = try await policyState(sandbox)
        #expect(state.managed["db1003"] == nil && state.refusals["db1003"] == nil, "\(state)")
        // Every commit since the human's is the witness's: depool, 50%, 100%.
        let since = try await store.history(limit: 10).filter { $0.sequence > humanCommit }
        #expect(since.map(\.author) == Array(repeating: "marina-controller", count: 3), "\(since.map(\.message))")
        #expect(since.allSatisfy { $0.message.contains(" db1002 ") && !$0.message.contains("db1003") }, "\(since.map(\.message))")
    }

    @Test(
        "a lock is busy for its own section only: a lagging replica of s2 is depooled while a paused switchover holds s1's lock, which then finishes")
    func lockedSectionOnly() async throws {
        let sandbox = try await TestServers.privateSandbox("depool-locks", sections: 2, replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await Sandbox.stopController(directory: sandbox.directory)
        try await Sandbox.startController(
            directory: sandbox.directory, executable: marinaExecutable(), pauseBefore: "move-replicas",
            depool: fastPolicy)
        #expect(try await pooledReplicas(sandbox, section: "s2") == ["db2002": 100, "db2003": 100])
        let id = try await requestSwitchover(sandbox, to: "db1002", section: "s1")
        try await waitForOperation(sandbox, id) { $0.pausedBefore != nil }
        #expect(try await sandbox.etcdClient.value(StoreKeys().lock("s1"))?.stringValue == id)

        let held = try await holdReplication(sandbox, "db2002")
        #expect(try await eventually(10) { try await pooledReplicas(sandbox, section: "s2")["db2002"] == nil })
        #expect(try await sandbox.etcdClient.value(StoreKeys().lock("s1"))?.stringValue == id, "the switchover still holds s1")
        let depool = try await TopologyStore(etcd: sandbox.etcdClient).history(limit: 1).first
        #expect(depool?.message.hasPrefix("automatic depool of db2002 in s2: lag ") == true, "\(depool?.message ?? "")")

        // The switchover prepares its commit after the depool's: it completes.
        try await resume(sandbox, id)
        let finished = try await waitForOperation(sandbox, id, seconds: 60) { $0.state.isFinished }
        #expect(finished.state == .done, "\(finished.failure.map { "\($0.step): \($0.error)" } ?? "")")
        try await expectPrimary("db1002", sandbox)
        try await held.execute("UNLOCK TABLES")
        await held.close()
    }

    @Test("with etcd stopped nothing is done, and nothing is lost: the lagging replica is depooled once etcd returns")
    func etcdStopped() async throws {
        let sandbox = try await TestServers.privateSandbox("depool-etcd", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await Sandbox.stopController(directory: sandbox.directory)
        try await Sandbox.startController(directory: sandbox.directory, executable: marinaExecutable(), depool: fastPolicy)
        let commits = try await commitCount(sandbox)
        try await Sandbox.stopEtcd(directory: sandbox.directory)
        let held = try await holdReplication(sandbox, "db1002")
        // Away until db1002 has lagged past depool_lag (2 s) for longer than depool_after (1 s), with a margin:
        // the controller would have depooled it by now, had it acted without etcd.
        #expect(try await eventually(15) { try await heartbeatLagOnServer(sandbox, "db1002") > 4 })
        let restartedAt = Date()
        try await Sandbox.startEtcd(directory: sandbox.directory)
        #expect(try await eventually(20) { try await pooledReplicas(sandbox)["db1002"] == nil })
        #expect(try await commitCount(sandbox) == commits + 1)
        let depool = try await TopologyStore(etcd: sandbox.etcdClient).history(limit: 1).first
        #expect(depool?.message.hasPrefix("automatic depool of db1002") == true)
        #expect((depool?.at ?? .distantPast) >= restartedAt.addingTimeInterval(-0.001), "acted while etcd was away?")
        try await held.execute("UNLOCK TABLES")
        await held.close()
    }
}
