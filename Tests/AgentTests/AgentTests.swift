import Agent
import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Observation
import Testing
import TopologyStore

/// Polls the observations until `condition` holds for one instance, or fails after `seconds`.
func waitForObservation(
    _ sandbox: SandboxState, _ instance: String, seconds: Double = 20,
    _ condition: (Observation) -> Bool
) async throws -> Observation {
    let store = TopologyStore(etcd: sandbox.etcdClient)
    let deadline = Date().addingTimeInterval(seconds)
    var last: Observation?
    while Date() < deadline {
        last = try await store.observations().observations[instance]
        if let last, condition(last) { return last }
        try await Task.sleep(for: .milliseconds(100))
    }
    Issue.record("no observation of \(instance) met the condition within \(seconds) s; last: \(String(describing: last))")
    throw CancellationError()
}

@Suite("The agent against real servers")
struct AgentTests {
    @Test("observations appear within two probe intervals, one per instance, with everything probed")
    func observations() async throws {
        let sandbox = try await TestServers.privateSandbox("agent-basic", replicas: 1)
        defer { TestServers.stop(sandbox) }
        try await Sandbox.startAgent(directory: sandbox.directory, executable: marinaExecutable(), interval: 1, leaseTTL: 5)
        let observations = try await TopologyStore(etcd: sandbox.etcdClient).observations().observations
        let primary = try #require(observations["db1001"])
        let replica = try #require(observations["db1002"])
        // The first publication of each is the first probe: within two intervals of the agent's start.
        for first in [primary, replica] {
            #expect(first.observedAt.timeIntervalSince(first.agentStartedAt) <= 2)
            #expect(first.reachable && first.error == nil)
            #expect(first.gtidStrictMode == true && first.logBin == true && first.binlogFormat == "ROW")
            #expect(first.version?.contains("MariaDB") == true)
        }
        // Two instances on one host, reported separately.
        #expect(primary.serverID == 1001 && replica.serverID == 1002)
        #expect(primary.readOnly == false && primary.replication.isEmpty)
        #expect(primary.heartbeatSource == "shard=s1,datacenter=dc1")
        #expect(primary.heartbeatLag != nil)
        let channel = try #require(replica.replication.first)
        #expect(replica.readOnly == true)
        #expect(channel.sourcePort == sandbox.instance(named: "db1001")?.port && channel.sourceServerID == 1001)
        #expect(channel.isRunning && channel.usingGTID == "Slave_Pos")
        #expect(replica.heartbeatLag != nil && replica.heartbeatSource == "shard=s1,datacenter=dc1")
        #expect(replica.gtidSlavePos?[0]?.server == 1001)
    }

    @Test("STOP SLAVE shows up as stopped threads and a rising heartbeat lag; START SLAVE clears it")
    func stoppedReplication() async throws {
        let sandbox = try await TestServers.privateSandbox("agent-stop-slave", replicas: 1)
        defer { TestServers.stop(sandbox) }
        try await Sandbox.startAgent(directory: sandbox.directory, executable: marinaExecutable(), interval: 0.5, leaseTTL: 5)
        let replica = try await sandbox.root("db1002")
        try await replica.execute("STOP SLAVE")
        let stopped = try await waitForObservation(sandbox, "db1002") { $0.replication.first?.sqlThread == "No" }
        #expect(stopped.replication.first?.ioThread == "No")
        let lagging = try await waitForObservation(sandbox, "db1002") { ($0.heartbeatLag ?? 0) >= 2 }
        let rising = max(5, (lagging.heartbeatLag ?? 0) + 1)
        let later = try await waitForObservation(sandbox, "db1002") { ($0.heartbeatLag ?? 0) >= rising }
        #expect(later.heartbeatLag! > lagging.heartbeatLag!)
        try await replica.execute("START SLAVE")
        let recovered = try await waitForObservation(sandbox, "db1002") { $0.replication.first?.isRunning == true && ($0.heartbeatLag ?? 99) < 2 }
        #expect(recovered.reachable)
        await replica.close()
    }

    @Test("a SIGSTOPped server is reported unreachable within the timeout, and reachable after SIGCONT")
    func hungServer() async throws {
        let sandbox = try await TestServers.privateSandbox("agent-sigstop", replicas: 1)
        defer { TestServers.stop(sandbox) }
        try await Sandbox.startAgent(directory: sandbox.directory, executable: marinaExecutable(), interval: 0.5, leaseTTL: 5)
        let pid = try #require(sandbox.instance(named: "db1002")).pid
        kill(pid, SIGSTOP)
        let down = try await waitForObservation(sandbox, "db1002") { !$0.reachable }
        kill(pid, SIGCONT)
        #expect(down.error?.contains("no answer within the timeout") == true)
        #expect(down.lastGoodProbeAt != nil && down.lastGoodProbeAt! < down.observedAt)
        // The other instance kept being probed meanwhile.
        let primary = try await waitForObservation(sandbox, "db1001") { $0.reachable }
        #expect(primary.serverID == 1001)
        let back = try await waitForObservation(sandbox, "db1002") { $0.reachable }
        #expect(back.replication.first?.isRunning == true && back.error == nil)
    }

    @Test("a killed agent's observations vanish when its lease expires")
    func agentDeath() async throws {
        let sandbox = try await TestServers.privateSandbox("agent-death", replicas: 1)
        defer { TestServers.stop(sandbox) }
        let pid = try await Sandbox.startAgent(directory: sandbox.directory, executable: marinaExecutable(), interval: 0.5, leaseTTL: 3)
        let store = TopologyStore(etcd: sandbox.etcdClient)
        #expect(try await store.observations().observations.count == 2)
        kill(pid, SIGKILL)
        var remaining = 2
        for _ in 0..<150 where remaining > 0 {
            try await Task.sleep(for: .milliseconds(100))
            remaining = try await store.observations().observations.count
        }
        #expect(remaining == 0)
    }

    @Test("an etcd outage loses no final state: what changed meanwhile is published when etcd returns")
    func etcdOutage() async throws {
        let sandbox = try await TestServers.privateSandbox("agent-etcd-down", replicas: 1)
        defer { TestServers.stop(sandbox) }
        try await Sandbox.startAgent(directory: sandbox.directory, executable: marinaExecutable(), interval: 0.5, leaseTTL: 10)
        try await Sandbox.stopEtcd(directory: sandbox.directory, kill: true)
        let log = { (try? String(contentsOfFile: sandbox.directory + "/agent.log", encoding: .utf8)) ?? "" }
        let failures = { log().components(separatedBy: "cannot publish to etcd").count - 1 }
        let failedBefore = failures()
        let replica = try await sandbox.root("db1002")
        try await replica.execute("STOP SLAVE")
        // The agent probes the change and fails to publish it meanwhile.
        let deadline = Date().addingTimeInterval(20)
        while failures() == failedBefore && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(failures() > failedBefore, "the agent did not try to publish while etcd was away")
        try await Sandbox.startEtcd(directory: sandbox.directory)
        let final = try await waitForObservation(sandbox, "db1002", seconds: 40) { $0.replication.first?.sqlThread == "No" }
        #expect(final.reachable)
        try await replica.execute("START SLAVE")
        await replica.close()
        let state = try Sandbox.state(directory: sandbox.directory)
        #expect(ChildProcess.isRunning(try #require(state.agent).pid, marker: sandbox.directory + "/"))
    }

    @Test("a configuration with a typo is refused naming the key, and nothing is published")
    func badConfiguration() async throws {
        let sandbox = try await TestServers.privateSandbox("agent-config", sections: 0)
        defer { TestServers.stop(sandbox) }
        let file = sandbox.directory + "/bad.yaml"
        try "interval: 1\netcd:\n  endpoints: [\"\(sandbox.etcd.url)\"]\ninstances:\n  - name: db1001\n    sockett: /nowhere\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let result = try runMarina(["agent", "--config", file])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("marina: \(file): instances[0].sockett: unknown key"), "\(result.stderr)")
        try "interval: 0\netcd:\n  endpoints: [\"\(sandbox.etcd.url)\"]\ninstances:\n  - {name: db1001, socket: /nowhere}\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try runMarina(["agent", "--config", file]).stderr.contains("interval must be positive"))
        #expect(try await sandbox.etcdClient.get("/marina/v1/observed/", prefix: true).kvs.isEmpty)
    }
}

@Suite("Agent configuration")
struct AgentConfigurationTests {
    @Test("config/agent.example.yaml loads with every key understood")
    func example() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config/agent.example.yaml").path
        let configuration = try AgentConfiguration.load(path)
        #expect(configuration.instances.map(\.name) == ["db1085", "db1101:3317", "db1101:3318"])
        #expect(configuration.instances[2].port == 3318 && configuration.instances[2].socket == nil)
        #expect(configuration.heartbeat.datacenter == "eqiad" && configuration.leaseTTL == 10 && configuration.interval == 1)
        #expect(configuration.etcd.endpoints.count == 2 && configuration.etcd.certFile == "/etc/marina/agent.pem")
        let fencing = try #require(configuration.fencing)
        #expect(fencing.timing.problems() == [] && fencing.leaseTTL == 10 && fencing.credentialsFile == "/etc/marina/fence.cnf")
        #expect(configuration.variables?.optionFile(for: "db1101:3317") == "/etc/mysql/marina/db1101:3317/99-marina.cnf")
        // The commented-out settings keep their defaults.
        #expect(configuration.logFormat == .text && !configuration.allowRoot && configuration.tls == nil)
    }
}

@Suite("The agent when a server restarts")
struct AgentRestartTests {
    @Test("a restarted server is reported unreachable, then reached again by a new connection on the next probe")
    func restartedServer() async throws {
        let sandbox = try await TestServers.privateSandbox("agent-restart", replicas: 1)
        defer { TestServers.stop(sandbox) }
        try await Sandbox.startAgent(directory: sandbox.directory, executable: marinaExecutable(), interval: 0.5, leaseTTL: 5)
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1002")
        let down = try await waitForObservation(sandbox, "db1002") { !$0.reachable }
        #expect(
            down.error?.contains("2002") == true || down.error?.contains("2013") == true || down.error?.contains("2006") == true,
            "\(down.error ?? "")")
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1002")
        let back = try await waitForObservation(sandbox, "db1002") { $0.reachable && $0.replication.first?.isRunning == true }
        #expect(back.serverID == 1002 && back.error == nil)
        #expect(back.lastGoodProbeAt == back.observedAt)
    }
}
