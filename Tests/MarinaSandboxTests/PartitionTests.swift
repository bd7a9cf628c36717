import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Observation
import Operations
import StoredRecords
import Testing
import TopologyStore

/// An application on the primary's own host: writes rows to `ledger.rows` over the instance's
/// unix socket (which no partition cuts) as an account without any privilege that writes
/// through `read_only`, and records each write the server acknowledged and when.
actor LocalApplication {
    let sandbox: SandboxState
    let instance: String
    private(set) var acknowledged = [(id: Int, at: ContinuousClock.Instant)]()
    private(set) var refusedAt: ContinuousClock.Instant?
    private var task: Task<Void, Never>?

    static let user = "ledger_app"
    static let password = "ledger-secret"

    init(_ sandbox: SandboxState, on instance: String) {
        self.sandbox = sandbox
        self.instance = instance
    }

    /// The account and the table, created on the primary (they replicate).
    static func prepare(_ sandbox: SandboxState, on primary: String) async throws {
        let root = try await sandbox.root(primary)
        for statement in [
            "CREATE DATABASE IF NOT EXISTS ledger", "CREATE TABLE IF NOT EXISTS ledger.rows (id INT PRIMARY KEY)",
            "CREATE USER IF NOT EXISTS '\(user)'@'localhost' IDENTIFIED BY '\(password)'",
            "GRANT SELECT, INSERT ON ledger.* TO '\(user)'@'localhost'",
        ] {
            _ = try await root.execute(statement)
        }
        await root.close()
    }

    func start() { task = Task { await loop() } }

    private func loop() async {
        guard let socket = sandbox.instance(named: instance)?.socket else { return }
        let configuration = MariaDBConfiguration(
            endpoint: .socket(path: socket), user: Self.user, password: Self.password, connectTimeout: 2, readTimeout: 30, writeTimeout: 30)
        var client: MariaDBClient?
        var next = 1
        while !Task.isCancelled {
            if client == nil { client = try? await MariaDBClient.connect(configuration) }
            if let connection = client {
                do {
                    _ = try await connection.execute("INSERT INTO ledger.rows VALUES (\(next))")
                    acknowledged.append((next, ContinuousClock.now))
                } catch {
                    if refusedAt == nil { refusedAt = ContinuousClock.now }
                    await connection.close()
                    client = nil
                }
                next += 1
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        await client?.close()
    }

    func stop() async {
        task?.cancel()
        await task?.value
    }

    /// The acknowledged ids missing on `instance`.
    func missing(on instance: String) async throws -> [Int] {
        let client = try await sandbox.root(instance)
        let present = Set(try await client.query("SELECT id FROM ledger.rows").rows.compactMap { $0["id"].flatMap { Int($0) } })
        await client.close()
        return acknowledged.map(\.id).filter { !present.contains($0) }
    }
}

/// Semi-synchronous replication from db1001, `AFTER_SYNC`, with a timeout far beyond the test:
/// a commit is acknowledged to the application only once a replica has it. A primary cut off
/// from its replicas then holds its commits instead of acknowledging them, so a write the
/// application saw acknowledged is never one that only the old primary has. (The replicas are
/// not semi-sync sources: with no replica of their own, their own commits would wait.)
func enableSemiSync(_ sandbox: SandboxState) async throws {
    for instance in sandbox.instances(in: "s1") {
        let root = try await sandbox.root(instance.name)
        let statements =
            instance.name == "db1001"
            ? [
                "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC", "SET GLOBAL rpl_semi_sync_master_timeout = 600000",
                "SET GLOBAL rpl_semi_sync_master_enabled = ON",
            ] : ["SET GLOBAL rpl_semi_sync_slave_enabled = ON"]
        for statement in statements { _ = try await root.execute(statement) }
        if try await root.query("SHOW SLAVE STATUS").first != nil {
            _ = try await root.execute("STOP SLAVE IO_THREAD")
            _ = try await root.execute("START SLAVE IO_THREAD")
        }
        await root.close()
    }
}

/// Real partitions on a sandbox with a network namespace per host (`--hosts namespaces`):
/// nftables drops the packets, as a switch that dies would. Needs root.
@Suite("partitions: a primary without its lease takes no writes (real servers)", .serialized, .enabled(if: geteuid() == 0, "namespaces need root"))
struct PartitionTests {
    @Test(
        """
        the primary's host cut off from etcd, the controller and its replicas while an application on it writes: \\
        it refuses writes before its lease can end, a replica is promoted only after the lease ended, never two writers, \\
        no acknowledged write lost
        """)
    func primaryCutOff() async throws {
        let sandbox = try await TestServers.privateSandbox(
            "partition-primary", replicas: 2, controller: true, failover: .automatic, agentInterval: 0.2, hosts: .namespaces,
            fencing: .fast)
        defer { TestServers.stop(sandbox) }
        try await LocalApplication.prepare(sandbox, on: "db1001")
        try await enableSemiSync(sandbox)
        #expect(try await eventually(20) { try await FastFencing.holder(sandbox)?.instance == "db1001" }, "db1001's agent never took the lease")
        try await Task.sleep(for: .seconds(1))  // the leader's watch sees the lease held

        let sampler = ReadOnlySampler(sandbox)  // every instance over its socket: both sides of the cut
        await sampler.start()
        let local = LocalApplication(sandbox, on: "db1001")
        await local.start()
        let remote = try LoadGenerator(state: sandbox, rate: 100)  // over TCP from the bridge: the other side
        await remote.start()
        #expect(try await eventually(10) { await local.acknowledged.count > 50 }, "the application on db1001 never wrote")

        try await Sandbox.partition(directory: sandbox.directory, name: "db1001", from: .everything)
        let cut = ContinuousClock.now
        var fencedAt: ContinuousClock.Instant?
        var promotedAt: ContinuousClock.Instant?
        var promoted: String?
        while ContinuousClock.now < cut + .seconds(40), promotedAt == nil {
            if fencedAt == nil, try await FencingTests.readOnly(sandbox, "db1001") == true { fencedAt = ContinuousClock.now }
            for replica in ["db1002", "db1003"] where try await FencingTests.readOnly(sandbox, replica) == false {
                promotedAt = ContinuousClock.now
                promoted = replica
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let agentLog = { (try? String(contentsOfFile: sandbox.directory + "/db1001/agent.log", encoding: .utf8))?.suffix(3000) ?? "" }
        let fenced = try #require(fencedAt, "db1001 never turned read-only; its agent: \(agentLog())")
        let newPrimary = try #require(promoted, "no replica was promoted within 40 s")
        let taken = try #require(promotedAt)
        // The last keep-alive went out at most renew_interval before the cut: the lease cannot end
        // before cut + ttl − renew_interval, and db1001 was read-only before that.
        #expect(
            fenced - cut < .milliseconds(Int((Double(FastFencing.ttl) - FastFencing.renewInterval) * 1000)), "fenced \(fenced - cut) after the cut")
        // The lease ended at the earliest ttl after the cut's last keep-alive, then the margin.
        #expect(taken - cut >= .milliseconds(Int((Double(FastFencing.ttl) - FastFencing.renewInterval + FastFencing.margin) * 1000)))
        #expect(fenced < taken)

        let record = try #require(try await lastOperation(sandbox, kind: "failover"))
        #expect(try await eventually(20) { try await lastOperation(sandbox, kind: "failover")?.state.isFinished == true })
        let finished = try #require(try await lastOperation(sandbox, kind: "failover"))
        #expect(finished.state == .done, "\(finished.state) \(finished.refusals) \(finished.failure.map { "\($0)" } ?? "")")
        #expect(record.candidate == newPrimary)
        #expect(finished.failover?.leaseWait?.contains("primary lease of s1 (db1001") == true, "\(finished.failover?.leaseWait ?? "-")")
        #expect(try await eventually(20) { try await newestLoadWrite(sandbox, on: newPrimary) > 0 }, "no write reached \(newPrimary)")

        await local.stop()
        let report = await remote.stop()
        let samples = await sampler.stop()
        #expect(samples.twoWriters == 0, "\(samples.twoWriters) samples saw two writers")
        #expect(report.twoWritersSamples == 0)
        // Every write acknowledged on db1001's side is on the new primary: before the cut it was
        // replicated (semi-sync), after it nothing was acknowledged, and the fence refused the rest.
        let lastLocal = await local.acknowledged.last?.at
        #expect(lastLocal.map { $0 < fenced } ?? true, "db1001 acknowledged a write after its fence")
        let missing = try await local.missing(on: newPrimary)
        #expect(missing.isEmpty, "acknowledged on db1001 and lost: \(missing)")
        let remoteMissing = try await LoadGenerator.missing(
            report.acknowledged, on: try #require(sandbox.instance(named: newPrimary)), state: sandbox)
        #expect(remoteMissing.isEmpty, "acknowledged over TCP and lost: \(remoteMissing.count)")

        // Healed, the old primary stays read-only: its lease is gone and another primary is committed.
        try await Sandbox.heal(directory: sandbox.directory, name: "db1001")
        try await Task.sleep(for: .seconds(3))
        #expect(try await FencingTests.readOnly(sandbox, "db1001") == true)
        let topology = try #require(try await TopologyStore(etcd: sandbox.etcdClient).committedTopology())
        #expect(topology.sections["s1"]?.primary == newPrimary)
        #expect(topology.instances["db1001"]?.sections["s1"]?.needsRejoin != nil)
    }

    @Test("only the controller cut off from a healthy primary: no fence, no failover, drift reports it")
    func controllerCutOff() async throws {
        let sandbox = try await TestServers.privateSandbox(
            "partition-controller", replicas: 2, controller: true, failover: .automatic, agentInterval: 0.2, hosts: .namespaces,
            fencing: .fast)
        defer { TestServers.stop(sandbox) }
        #expect(try await eventually(20) { try await FastFencing.holder(sandbox)?.instance == "db1001" })
        let load = try LoadGenerator(state: sandbox, rate: 100)
        await load.start()
        try await Sandbox.partition(directory: sandbox.directory, name: "db1001", from: .controller)
        let drift = try await driftOutput(sandbox) { $0.contains("PRIMARY_UNREACHABLE_FROM_CONTROLLER") }
        #expect(drift.contains("db1001    PRIMARY_UNREACHABLE_FROM_CONTROLLER"), "\(drift)")
        // Well past a lease's time and a failover's: nothing happened.
        try await Task.sleep(for: .seconds(Double(FastFencing.ttl) * 2 + 2))
        #expect(try await FencingTests.readOnly(sandbox, "db1001") == false)
        #expect(try await operations(sandbox).filter { $0.kind == "failover" }.isEmpty)
        #expect(try await FastFencing.holder(sandbox)?.instance == "db1001")
        #expect(!drift.contains("SELF_FENCED"))
        let report = await load.stop()
        #expect(report.twoWritersSamples == 0)
        #expect(report.outages.allSatisfy { $0 < 1000 }, "the application saw outages: \(report.outages)")
        try await Sandbox.heal(directory: sandbox.directory, name: "db1001")
        #expect(try await eventually(20) { try await sandbox.etcdClient.value(StoreKeys().unreachablePrimary("s1")) == nil })
    }
}
