import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Observation
import StoredRecords
import Testing

/// The fast timing the fencing tests run with (`SandboxFencing.fast`): a lease of 5 s, fenced
/// 2.5 s before it can end.
enum FastFencing {
    static let timing = SandboxFencing.fast
    static let ttl = timing.leaseTTL
    static let margin = timing.margin
    static let renewInterval = timing.renewInterval

    /// The agent's `fencing:` block, with the fence account's option file.
    static func lines(credentialsFile: String) -> [String] { timing.agentLines(credentialsFile: credentialsFile) }

    /// Creates the fence account on the primary (it replicates) and its option file; gives the file.
    static func account(_ sandbox: SandboxState) async throws -> String {
        let root = try await sandbox.root("db1001")
        _ = try await root.execute("CREATE USER IF NOT EXISTS 'fence_test'@'localhost' IDENTIFIED BY 'fence-secret'")
        _ = try await root.execute("GRANT READ_ONLY ADMIN, CONNECTION ADMIN, PROCESS ON *.* TO 'fence_test'@'localhost'")
        await root.close()
        let file = sandbox.directory + "/fence-test.cnf"
        try "[client]\nuser=fence_test\npassword=fence-secret\n".write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Starts `marina agent` for every instance of the sandbox with the fencing block (and the
    /// failsafe mode, with `failsafe`: where the agent and the controller listen); gives its pid.
    static func startAgent(_ sandbox: SandboxState, fenceFile: String, failsafe: (agent: Int, controller: Int)? = nil) throws -> pid_t {
        let agentFile = (sandbox.credentialsFile as NSString).deletingLastPathComponent + "/agent.cnf"
        var fencing = lines(credentialsFile: fenceFile)
        if let failsafe {
            fencing += ["  failsafe:", "    listen: 127.0.0.1:\(failsafe.agent)", "    controllers: [127.0.0.1:\(failsafe.controller)]"]
        }
        let text =
            Sandbox.agentConfiguration(for: sandbox, credentialsFile: agentFile, interval: 0.2, leaseTTL: 5)
            + fencing.joined(separator: "\n") + "\n"
        let config = sandbox.directory + "/agent-fencing.yaml"
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        return try ChildProcess.spawn(marinaExecutable(), ["agent", "--config", config], logFile: sandbox.directory + "/agent-fencing.log")
    }

    /// Starts `marina controller` with the fast primary lease, answering failsafe requests on
    /// `failsafePort` if given, failing over on its own if `automatic`; gives its pid once it leads.
    static func startController(_ sandbox: SandboxState, failsafePort: Int? = nil, automatic: Bool = false) async throws -> pid_t {
        let playbooks = try Sandbox.locatePlaybooks(from: marinaExecutable())
        var failover = [String]()
        if let failsafePort { failover.append("  failsafe_listen: 127.0.0.1:\(failsafePort)") }
        let text = Sandbox.controllerConfiguration(
            for: sandbox, playbooks: playbooks, id: "failsafe-controller", leaseTTL: 3, failover: automatic ? .automatic : .manual,
            failoverLines: failover)
        let config = sandbox.directory + "/controller-failsafe.yaml"
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let pid = try ChildProcess.spawn(
            marinaExecutable(), ["controller", "--config", config], logFile: sandbox.directory + "/controller-failsafe.log")
        guard try await eventually(20, { try await leaderName(sandbox) == "failsafe-controller" }) else {
            kill(pid, SIGKILL)
            throw SandboxError.notReady(what: "marina controller", log: sandbox.directory + "/controller-failsafe.log", detail: "never led")
        }
        return pid
    }

    /// The holder of the primary lease of `section`, from etcd.
    static func holder(_ sandbox: SandboxState, section: String = "s1") async throws -> PrimaryLease? {
        let etcd = EtcdClient(EtcdConfiguration(endpoints: [sandbox.etcd.url]))
        guard let kv = try await etcd.value("/marina/v1/fencing/lease/\(section)") else { return nil }
        return try StoredJSON.decode(PrimaryLease.self, from: kv.value)
    }
}

@Suite("self-fencing of a primary without its lease (real servers)", .serialized)
struct FencingTests {
    @Test("etcd down for everyone: the primary turns read-only before its lease can end, and writable again once etcd is back")
    func etcdOutage() async throws {
        let sandbox = try await TestServers.privateSandbox("fence-etcd-down", replicas: 1, fencing: .fast)
        defer { TestServers.stop(sandbox) }
        let fenceFile = try await FastFencing.account(sandbox)
        let agent = try FastFencing.startAgent(sandbox, fenceFile: fenceFile)
        defer { kill(agent, SIGKILL) }
        #expect(try await eventually(20) { try await FastFencing.holder(sandbox)?.instance == "db1001" }, "the agent never took the lease")

        let sampler = ReadOnlySampler(sandbox)
        await sampler.start()
        try await PrivilegedWriter.createTable(sandbox, on: "db1001")
        let privileged = PrivilegedWriter(sandbox, on: "db1001", reconnect: false)
        await privileged.start()
        try await Sandbox.stopEtcd(directory: sandbox.directory, kill: true)
        let cut = ContinuousClock.now
        // The last keep-alive went out at most renew_interval before the cut: the lease cannot
        // end before cut + ttl − renew_interval. The primary must be read-only by then.
        let leaseCannotEndBefore = cut + .milliseconds(Int((Double(FastFencing.ttl) - FastFencing.renewInterval) * 1000))
        var fencedAt: ContinuousClock.Instant?
        while ContinuousClock.now < cut + .seconds(15) {
            if try await FencingTests.readOnly(sandbox, "db1001") == true {
                fencedAt = ContinuousClock.now
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let fenced = try #require(fencedAt, "db1001 stayed writable with etcd down for 15 s")
        #expect(fenced < leaseCannotEndBefore, "read-only \(fenced - cut) after the cut; the lease could end \(leaseCannotEndBefore - cut) after it")
        // The fence waited for the lease's end minus the margin, not less: one missed keep-alive fences nothing.
        #expect(fenced - cut > .milliseconds(Int((Double(FastFencing.ttl) - FastFencing.margin - FastFencing.renewInterval) * 1000) - 100))
        // The session of an account that writes through read_only (root) was killed.
        #expect(try await eventually(5) { await privileged.errors > 0 }, "root's writing session was not killed")

        try await Task.sleep(for: .seconds(5))  // etcd stays down a while: the fence holds, no flapping
        #expect(try await FencingTests.readOnly(sandbox, "db1001") == true)
        try await Sandbox.startEtcd(directory: sandbox.directory)
        #expect(
            try await eventually(20) { try await FencingTests.readOnly(sandbox, "db1001") == false },
            "db1001 stayed read-only after etcd returned")
        #expect(try await FastFencing.holder(sandbox)?.instance == "db1001")
        let log = try String(contentsOfFile: sandbox.directory + "/agent-fencing.log", encoding: .utf8)
        #expect(log.contains("self-fence of db1001 done"), "\(log.suffix(2000))")
        #expect(log.contains("self-fence of db1001 lifted"))
        _ = await privileged.stop()
        let samples = await sampler.stop()
        #expect(samples.twoWriters == 0)
    }

    @Test("etcd down for everyone with the failsafe mode on: the primary stays writable 30 s, nothing is promoted, nothing is lost")
    func failsafeKeepsWrites() async throws {
        let sandbox = try await TestServers.privateSandbox("fence-failsafe", replicas: 2, fencing: .fast)
        defer { TestServers.stop(sandbox) }
        let fenceFile = try await FastFencing.account(sandbox)
        let ports = try Ports.findFreeBlock(count: 2)
        let controller = try await FastFencing.startController(sandbox, failsafePort: ports)
        defer { kill(controller, SIGKILL) }
        let agent = try FastFencing.startAgent(sandbox, fenceFile: fenceFile, failsafe: (agent: ports + 1, controller: ports))
        defer { kill(agent, SIGKILL) }
        #expect(try await eventually(20) { try await FastFencing.holder(sandbox)?.instance == "db1001" }, "the agent never took the lease")
        // The agent reads where the replica agents answer from their observations, while etcd answers.
        try await Task.sleep(for: .seconds(6))

        let sampler = ReadOnlySampler(sandbox)
        await sampler.start()
        let load = try LoadGenerator(state: sandbox, rate: 100)
        await load.start()
        try await Sandbox.stopEtcd(directory: sandbox.directory, kill: true)
        let cut = ContinuousClock.now
        var readOnlySeen = false
        while ContinuousClock.now < cut + .seconds(30) {
            if try await FencingTests.readOnly(sandbox, "db1001") == true { readOnlySeen = true }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(!readOnlySeen, "db1001 was made read-only during the etcd outage despite the failsafe mode")
        try await Sandbox.startEtcd(directory: sandbox.directory)
        #expect(try await eventually(20) { try await FastFencing.holder(sandbox)?.instance == "db1001" })
        try await Task.sleep(for: .seconds(3))
        let report = await load.stop()
        let samples = await sampler.stop()
        #expect(try await FencingTests.readOnly(sandbox, "db1001") == false)
        #expect(samples.twoWriters == 0)
        #expect(report.twoWritersSamples == 0)
        #expect(report.acknowledged.count > 1000, "the primary took \(report.acknowledged.count) writes in 33 s")
        let missing = try await LoadGenerator.missing(report.acknowledged, on: try #require(sandbox.instance(named: "db1001")), state: sandbox)
        #expect(missing.isEmpty, "\(missing.count) acknowledged writes missing on db1001")
        let etcd = sandbox.etcdClient
        #expect(try await etcd.get("/marina/v1/operations/", prefix: true, keysOnly: true).kvs.isEmpty, "an operation was started")
        let log = try String(contentsOfFile: sandbox.directory + "/agent-fencing.log", encoding: .utf8)
        #expect(log.contains("failsafe of db1001: etcd does not answer"), "\(log.suffix(3000))")
        #expect(!log.contains("self-fence of db1001 done"))
    }

    @Test(
        """
        the primary's agent frozen (SIGSTOP): its lease expires, the controller fences the primary over SQL and only then \
        promotes a replica, losing no write; thawed, the agent finds its lease gone and leaves its instance read-only
        """)
    func frozenAgent() async throws {
        // No pt-heartbeat: it writes as root, through read_only, and reconnects after the fence
        // kills it (docs/operations/fencing.md); the heartbeat is the agent's here, frozen with it.
        let sandbox = try await TestServers.privateSandbox("fence-frozen-agent", replicas: 2, heartbeat: .agent, fencing: .fast)
        defer { TestServers.stop(sandbox) }
        let fenceFile = try await FastFencing.account(sandbox)
        let controller = try await FastFencing.startController(sandbox, automatic: true)
        defer { kill(controller, SIGKILL) }
        let agent = try FastFencing.startAgent(sandbox, fenceFile: fenceFile)
        defer { kill(agent, SIGKILL) }
        #expect(try await eventually(20) { try await FastFencing.holder(sandbox)?.instance == "db1001" }, "the agent never took the lease")
        try await Task.sleep(for: .seconds(2))  // the leader's watch sees the lease held at least once

        let sampler = ReadOnlySampler(sandbox)
        await sampler.start()
        let load = try LoadGenerator(state: sandbox, rate: 200)
        await load.start()
        #expect(try await eventually(20) { try await newestLoadWrite(sandbox, on: "db1001") > 0 }, "the load never wrote")
        kill(agent, SIGSTOP)  // here, the one agent watches every instance: all go silent

        let failover = try await waitForFailovers(sandbox, count: 1, seconds: 60)[0]
        #expect(failover.state == .done, "\(failover.state): \(failover.refusals) \(failover.failure.map { "\($0)" } ?? "")")
        #expect(failover.failover?.fencedPosition != nil, "the old primary was not fenced over SQL")
        #expect(failover.failover?.witnesses.contains { $0.contains("fenced it over SQL") } == true, "\(failover.failover?.witnesses ?? [])")
        let promoted = failover.candidate
        #expect(try await eventually(20) { try await newestLoadWrite(sandbox, on: promoted) > 0 }, "no write reached \(promoted)")
        #expect(try await FencingTests.readOnly(sandbox, "db1001") == true)

        kill(agent, SIGCONT)
        // Thawed: the lease is gone and another primary is committed, so db1001 stays read-only;
        // the new primary's lease is taken by the agent once it runs again.
        #expect(try await eventually(20) { try await FastFencing.holder(sandbox)?.instance == promoted }, "\(promoted) never got its lease")
        try await Task.sleep(for: .seconds(3))
        #expect(try await FencingTests.readOnly(sandbox, "db1001") == true, "db1001 was made writable again after its agent thawed")
        let report = await load.stop()
        let samples = await sampler.stop()
        #expect(samples.twoWriters == 0)
        #expect(report.twoWritersSamples == 0)
        // The old primary was alive and fenced at a final position every replica applied: nothing is lost.
        let missing = try await LoadGenerator.missing(report.acknowledged, on: try #require(sandbox.instance(named: promoted)), state: sandbox)
        #expect(missing.isEmpty, "\(missing.count) acknowledged writes missing on \(promoted)")
        let log = try String(contentsOfFile: sandbox.directory + "/agent-fencing.log", encoding: .utf8)
        #expect(!log.contains("self-fence of db1001 lifted"))
    }

    /// `@@read_only` of an instance, on a fresh connection (the fence kills the others); nil
    /// when it does not answer.
    static func readOnly(_ sandbox: SandboxState, _ name: String) async throws -> Bool? {
        guard let client = try? await sandbox.root(name, readTimeout: 2) else { return nil }
        defer { Task { await client.close() } }
        guard let value = try? await client.query("SELECT @@GLOBAL.read_only AS ro").first?["ro"] else { return nil }
        return value == "1"
    }
}
