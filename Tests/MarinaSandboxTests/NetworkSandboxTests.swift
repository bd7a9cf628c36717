import EtcdClient
import Foundation
import MariaDBClient
import MarinaTestSupport
import Testing
import TopologyStore

@testable import MarinaSandbox

/// The address and name plan of `--hosts namespaces`: pure, no root needed.
@Suite("Sandbox network plan")
struct NetworkPlanTests {
    @Test("sandboxes whose port blocks do not overlap get distinct subnets; every name embeds the base port and fits Linux's 15 characters")
    func plan() throws {
        let members = try SandboxPlan(directory: "/sb", sections: 9, replicas: 9, basePort: 20_000).members.map { ($0.name, $0.serverID) }
        // Every base port, grouped by subnet: two bases sharing one are less than a window apart,
        // so their reserved blocks (a window each) overlap and `Ports` never gives both out.
        var bases = [String: (low: Int, high: Int)]()
        for base in 1024...(65535 - SandboxNetwork.portWindow + 1) {
            let subnet = try SandboxNetwork(basePort: base, serverIDs: []).subnet
            let seen = bases[subnet] ?? (base, base)
            bases[subnet] = (min(seen.low, base), max(seen.high, base))
        }
        #expect(bases.values.allSatisfy { $0.high - $0.low < SandboxNetwork.portWindow })
        #expect(SandboxPlan.reservedPortCount(sections: 1, replicas: 2, hosts: .namespaces) == SandboxNetwork.portWindow)
        #expect(SandboxPlan.reservedPortCount(sections: 1, replicas: 2, hosts: .loopback) == 10)

        var names = Set<String>()
        for base in [1024, 9999, 10_000, 10_001, 32_767, 65_535] {
            let network = try SandboxNetwork(basePort: base, serverIDs: base == 65_535 ? [] : members)
            #expect(network.subnet.hasPrefix("10.213.") && network.subnet.hasSuffix(".0/24"))
            #expect(network.bridgeAddress == String(network.subnet.dropLast(4)) + "1")
            for interface in network.rootInterfaces {
                #expect(interface.count <= SandboxNetwork.interfaceNameLimit, "\(interface)")
                #expect(interface.contains(String(base)), "\(interface)")
                #expect(names.insert(interface).inserted, "\(interface) appears twice")
            }
            for host in network.hosts {
                #expect(host.namespace.contains("-\(base)-"), "\(host.namespace)")
                #expect(names.insert(host.namespace).inserted, "\(host.namespace) appears twice")
            }
            let addresses = [network.bridgeAddress] + network.hosts.map(\.address)
            #expect(Set(addresses).count == addresses.count)
            #expect(addresses.allSatisfy { $0.hasPrefix(String(network.subnet.dropLast(4))) && !$0.hasSuffix(".0") && !$0.hasSuffix(".255") })
        }
        let network = try SandboxNetwork(basePort: 20_000, serverIDs: members)
        #expect(network.subnet == "10.213.78.0/24" && network.bridge == "mbr20000" && network.accountHostPattern == "10.213.78.%")
        #expect(
            network.host(named: "db1001") == .init(name: "db1001", namespace: "marina-20000-db1001", veth: "mv20000-1001", address: "10.213.78.10"))
        #expect(network.host(named: "db9010")?.address == "10.213.78.99")
        #expect(network.controller == .init(name: "controller", namespace: "marina-20000-controller", veth: "mv20000-ctl", address: "10.213.78.2"))
    }

    @Test("sql/agent-grants.sql creates the fence account with exactly the sandbox's grants")
    func fenceGrants() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("sql/agent-grants.sql"), encoding: .utf8)
        let grants = text.split(separator: "\n").filter { $0.hasPrefix("GRANT ") && $0.contains(Sandbox.fenceUser) }.map(String.init)
        #expect(grants == Sandbox.fenceGrants.map { $0.replacingOccurrences(of: "?", with: "'\(Sandbox.fenceUser)'") + ";" })
        #expect(text.contains("\nCREATE USER IF NOT EXISTS '\(Sandbox.fenceUser)'@'localhost'"))
    }

    @Test("namespaces mode names, in one error, every program it misses with its Debian package")
    func preflight() {
        let root = geteuid() == 0 ? "" : "to run as root (it creates network namespaces, veth pairs and nft rules), "
        #expect(
            throws: SandboxError.namespacesUnavailable(
                missing: (root.isEmpty ? [] : [String(root.dropLast(2))])
                    + ["ip (Debian package iproute2)", "nft (Debian package nftables)", "nsenter (Debian package util-linux)"],
                packages: ["iproute2", "nftables", "util-linux"])
        ) { try HostNetwork.preflight(searchPath: ["/nonexistent"]) }
        #expect(
            SandboxError.namespacesUnavailable(missing: ["nft (Debian package nftables)"], packages: ["nftables"]).description
                == "--hosts namespaces needs nft (Debian package nftables); install with `apt-get install nftables` (or `make deps`)")
    }

    @Test("each host's agent configuration names its instance only, reaches etcd at the bridge, and ends with the extra lines")
    func agentConfiguration() throws {
        let plan = try SandboxPlan(directory: "/sb", sections: 1, replicas: 1, basePort: 20_000, hosts: .namespaces)
        let network = try #require(plan.network)
        var state = SandboxState(
            directory: "/sb", datacenter: "dc1",
            etcd: .init(
                clientPort: 20_000, peerPort: 20_001, dataDirectory: "/sb/etcd", logFile: "/sb/etcd.log", pid: 0,
                bridgeAddress: network.bridgeAddress),
            instances: plan.members.map {
                .init(
                    name: $0.name, section: $0.section, role: $0.role, host: plan.address(of: $0), port: $0.port,
                    socket: $0.directory + "/mariadb.sock", serverID: $0.serverID, directory: $0.directory, pid: 0)
            }, heartbeats: [], credentialsFile: "/sb/credentials.cnf", certificates: nil, startedAt: Date(timeIntervalSince1970: 0))
        state.network = network
        state.agentLeaseTTL = 4
        let text = Sandbox.agentConfiguration(
            for: state, credentialsFile: "/sb/agent.cnf", instances: ["db1002"], extraLines: ["fencing:", "  lease_ttl: 4"])
        #expect(text.contains("\nlease_ttl: 4\n") && text.contains("http://10.213.78.1:20000"), "\(text)")
        #expect(text.contains("  - name: db1002\n") && !text.contains("db1001"), "\(text)")
        #expect(text.hasSuffix("    shard: s1\nfencing:\n  lease_ttl: 4\n"), "\(text)")
        #expect(state.etcdSection.endpoints == ["http://127.0.0.1:20000"], "the CLI's etcd.yaml stays on loopback")
        #expect(SandboxPlan.optionFile(for: plan.members[1], address: "10.213.78.11").contains("bind-address=10.213.78.11\n"))
    }

    @Test("--hosts and --from take only their values")
    func flags() {
        #expect(throws: SandboxError.invalidArgument("--hosts must be loopback or namespaces (got netns)")) { try SandboxHosts(flag: "netns") }
        #expect(throws: SandboxError.invalidArgument("--from must be everything or controller (got agent)")) { try SandboxPartition(flag: "agent") }
    }
}

/// A namespaces sandbox, partitioned for real: one sandbox (section s1, db1001 primary, db1002
/// and db1003 replicas, an agent per host, a controller) for the whole story, which a DBA would
/// check the way it is checked here. Needs root.
@Suite("A sandbox with a network namespace per host", .enabled(if: geteuid() == 0, "network namespaces need root"))
struct NetworkSandboxTests {
    @Test("each host at its own address; a partition from everything or from the controller drops its packets; heal and down undo it all")
    func partitions() async throws {
        let sandbox = try await TestServers.privateSandbox(
            "netns", replicas: 2, agent: true, controller: true, hosts: .namespaces, agentLeaseTTL: 4)
        defer { TestServers.stop(sandbox) }
        let network = try #require(sandbox.network)
        try await everyHostAtItsAddress(sandbox, network)
        try await replicasFollowThePrimarysAddress(sandbox)
        try await everyAgentPublishes(sandbox, network)
        try await fenceAccount(sandbox)
        try await partitionFromEverything(sandbox)
        try await partitionFromController(sandbox, network)
        try await agentAndInstanceRestartInTheirNamespace(sandbox)
        try await etcdRestartsOnTheBridge(sandbox, network)
        try await refusals(sandbox)

        let stopped = try Sandbox.down(directory: sandbox.directory)
        #expect(stopped.count == 8, "\(stopped)")
        let namespaces = try ip(["netns", "list"])
        #expect(network.hosts.allSatisfy { !namespaces.contains($0.namespace) }, "\(namespaces)")
        let links = try ip(["-o", "link", "show"])
        #expect(network.rootInterfaces.allSatisfy { !links.contains($0 + ":") && !links.contains($0 + "@") }, "\(links)")
        #expect(!(try run("/usr/sbin/nft", ["list", "tables"]).output.contains("marina")))
        #expect(processes(containing: sandbox.directory + "/").isEmpty)
    }

    /// Every mariadbd listens on its own address only, in its own namespace, and reports it.
    private func everyHostAtItsAddress(_ sandbox: SandboxState, _ network: SandboxNetwork) async throws {
        for instance in sandbox.instances {
            let host = try #require(network.host(named: instance.name))
            #expect(instance.host == host.address && instance.host != "127.0.0.1")
            #expect(try netNamespace(of: instance.pid) == inode("/run/netns/\(host.namespace)"), "\(instance.name) runs in \(host.namespace)")
            let client = try await MariaDBClient.connect(try sandbox.adminConfiguration(instance.name))
            let row = try #require(
                try await client.query(
                    "SELECT @@bind_address AS bind, @@report_host AS report, host FROM information_schema.processlist WHERE id = CONNECTION_ID()"
                ).first)
            #expect(row["bind"] == host.address && row["report"] == host.address)
            #expect(row["host"]?.hasPrefix(network.bridgeAddress + ":") == true, "the root namespace reaches it from the bridge: \(row)")
            await client.close()
            // Nothing of it listens on the root namespace's loopback.
            var loopback = try sandbox.adminConfiguration(instance.name)
            loopback.endpoint = .tcp(host: "127.0.0.1", port: instance.port)
            await #expect(throws: MariaDBError.self) { try await MariaDBClient.connect(loopback) }
        }
        let controller = try #require(sandbox.controller)
        #expect(try netNamespace(of: controller.pid) == inode("/run/netns/\(network.controller.namespace)"))
        let committed = try #require(try await TopologyStore(etcd: sandbox.etcdClient).committedTopology())
        #expect(sandbox.instances.allSatisfy { committed.instances[$0.name]?.host == $0.host && committed.instances[$0.name]?.port == $0.port })
    }

    /// The replicas replicate from the primary's address, and the primary sees them at theirs.
    private func replicasFollowThePrimarysAddress(_ sandbox: SandboxState) async throws {
        let primary = try #require(sandbox.primary(of: "s1"))
        for name in ["db1002", "db1003"] {
            let status = try #require(try await slaveStatus(sandbox, name))
            #expect(status["Master_Host"] == primary.host && status.int("Master_Port") == primary.port)
            #expect(status["Slave_IO_Running"] == "Yes" && status["Slave_SQL_Running"] == "Yes")
        }
        let client = try await sandbox.root("db1001")
        let replicas = try await client.query("SHOW SLAVE HOSTS").rows.map { $0["Host"] ?? "" }
        await client.close()
        #expect(Set(replicas) == Set(["db1002", "db1003"].compactMap { sandbox.instance(named: $0)?.host }))
    }

    /// One agent per host, in its namespace, each with a lease of its own.
    private func everyAgentPublishes(_ sandbox: SandboxState, _ network: SandboxNetwork) async throws {
        let agents = try #require(sandbox.hostAgents)
        #expect(agents.map(\.instance) == sandbox.instances.map(\.name) && sandbox.agent == nil)
        for agent in agents {
            let namespace = try #require(network.host(named: agent.instance)?.namespace)
            #expect(try netNamespace(of: agent.pid) == inode("/run/netns/\(namespace)"))
            #expect(try String(contentsOfFile: agent.configFile, encoding: .utf8).contains("  - name: \(agent.instance)\n"))
        }
        let observed = try await sandbox.etcdClient.get("/marina/v1/observed/", prefix: true).kvs
        #expect(observed.map { String($0.key.split(separator: "/").last ?? "") }.sorted() == sandbox.instances.map(\.name))
        #expect(Set(observed.map(\.lease)).count == sandbox.instances.count, "one lease per agent")
        #expect(observed.allSatisfy { $0.stringValue.contains("\"reachable\":true") })
    }

    /// The agents' fence account: READ_ONLY ADMIN, CONNECTION ADMIN and PROCESS, over the socket.
    private func fenceAccount(_ sandbox: SandboxState) async throws {
        let credentials = try Credentials.load(from: sandbox.credentialsFile)
        let attributes = try FileManager.default.attributesOfItem(atPath: credentials.fenceFile)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(
            try String(contentsOfFile: credentials.fenceFile, encoding: .utf8)
                == "[client]\nuser=marina_fence\npassword=\(credentials.fencePassword)\n")
        let replica = try #require(sandbox.instance(named: "db1003"))
        let fence = try await MariaDBClient.connect(
            MariaDBConfiguration(endpoint: .socket(path: replica.socket), user: Sandbox.fenceUser, password: credentials.fencePassword))
        let grants = try await fence.query("SHOW GRANTS").rows.compactMap { $0[0] }
        #expect(
            grants.contains { $0.hasPrefix("GRANT PROCESS, CONNECTION ADMIN, READ_ONLY ADMIN ON *.* TO `marina_fence`@`localhost`") }, "\(grants)")
        let application = try await sandbox.root("db1003")
        let victim = application.threadID
        try await fence.execute("SET GLOBAL read_only = ON")
        try await fence.execute("KILL CONNECTION \(victim)")
        await #expect(throws: MariaDBError.self) { try await application.query("SELECT 1") }
        await application.close()
        await fence.close()
    }

    /// `marina sandbox partition db1001`: TCP to it hangs, its socket still takes writes, the
    /// replicas lose it after slave_net_timeout, its agent's lease lapses; heal brings replication back.
    private func partitionFromEverything(_ sandbox: SandboxState) async throws {
        let primary = try #require(sandbox.instance(named: "db1001"))
        let result = try runMarina(["sandbox", "partition", "db1001", "--dir", sandbox.directory])
        #expect(result.status == 0, "\(result.stderr)")
        let cut = ContinuousClock.now
        #expect(try Sandbox.state(directory: sandbox.directory).partitions == [.init(instance: "db1001", from: .everything)])

        // Dropped, not refused: the connection attempt waits out its whole timeout.
        var tcp = try sandbox.adminConfiguration("db1001")
        tcp.connectTimeout = 2
        let attempt = ContinuousClock.now
        await #expect(throws: MariaDBError.self) { try await MariaDBClient.connect(tcp) }
        #expect(ContinuousClock.now - attempt >= .milliseconds(1900), "a refusal would be immediate")

        let local = try await MariaDBClient.connect(
            MariaDBConfiguration(
                endpoint: .socket(path: primary.socket), user: Sandbox.adminUser,
                password: try Credentials.load(from: sandbox.credentialsFile).adminPassword, database: Sandbox.loadDatabase))
        try await local.execute("INSERT INTO writes (id, written_at) VALUES (?, NOW(6))", .integer(Int64(UInt32.random(in: 1...UInt32.max))))
        await local.close()

        // Both measured from the cut: the replicas give up after slave_net_timeout (4 s) without
        // a byte; the agent's last keep-alive went out at most a third of its TTL before the cut.
        var ioStopped: Duration?
        var observationGone: Duration?
        let deadline = cut + .seconds(max(4 + 6, sandbox.agentLease + 3))
        while (ioStopped == nil || observationGone == nil) && ContinuousClock.now < deadline {
            if ioStopped == nil, try await slaveStatus(sandbox, "db1002")?["Slave_IO_Running"] != "Yes",
                try await slaveStatus(sandbox, "db1003")?["Slave_IO_Running"] != "Yes"
            {
                ioStopped = ContinuousClock.now - cut
            }
            if observationGone == nil, try await sandbox.etcdClient.value("/marina/v1/observed/db1001") == nil {
                observationGone = ContinuousClock.now - cut
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let io = try #require(ioStopped, "the replicas' IO threads still run 10 s after the cut (slave_net_timeout is 4 s)")
        #expect(io >= .seconds(3), "the replicas noticed before slave_net_timeout: \(io)")
        let gone = try #require(observationGone, "db1001's observation outlived its agent's \(sandbox.agentLease) s lease")
        #expect(gone >= .seconds(1) && gone <= .seconds(sandbox.agentLease + 2), "the lease lapsed (not revoked) within its TTL: \(gone)")
        #expect(try await sandbox.etcdClient.value("/marina/v1/observed/db1002") != nil)
        #expect(ChildProcess.isRunning(try #require(sandbox.hostAgents?.first).pid, marker: sandbox.directory + "/"), "cut off, not dead")

        let healed = try runMarina(["sandbox", "heal", "db1001", "--dir", sandbox.directory])
        #expect(healed.status == 0, "\(healed.stderr)")
        #expect(try Sandbox.state(directory: sandbox.directory).partitions == nil)
        let resumed = try await within(10) {
            for name in ["db1002", "db1003"] where try await slaveStatus(sandbox, name)?["Slave_IO_Running"] != "Yes" { return false }
            return true
        }
        #expect(resumed != nil, "replication did not resume within 10 s of heal")
        try await expectReplicated(sandbox)
    }

    /// `partition db1001 --from controller`: the controller's namespace cannot reach db1001,
    /// the replicas (and everyone else) still can.
    private func partitionFromController(_ sandbox: SandboxState, _ network: SandboxNetwork) async throws {
        try await Sandbox.partition(directory: sandbox.directory, name: "db1001", from: .controller)
        let fromController = try connect(sandbox, from: "controller", to: "db1001")
        #expect(fromController.status != 0 && fromController.output.contains("(110)"), "timed out, not refused: \(fromController.output)")
        let other = try connect(sandbox, from: "controller", to: "db1002")
        #expect(other.status == 0, "\(other.output)")
        let replica = try connect(sandbox, from: "db1002", to: "db1001")
        #expect(replica.status == 0, "\(replica.output)")
        try await expectReplicated(sandbox)
        for name in ["db1002", "db1003"] { #expect(try await slaveStatus(sandbox, name)?["Slave_IO_Running"] == "Yes") }

        try await Sandbox.heal(directory: sandbox.directory, name: "db1001")
        let back = try connect(sandbox, from: "controller", to: "db1001")
        #expect(back.status == 0, "\(back.output)")
    }

    /// A host's agent killed and restarted, and a replica crashed and restarted: each comes back
    /// in its own namespace.
    private func agentAndInstanceRestartInTheirNamespace(_ sandbox: SandboxState) async throws {
        let marker = sandbox.directory + "/"
        let namespace = try inode("/run/netns/\(try #require(sandbox.namespace(of: "db1003")))")
        let before = try #require(try Sandbox.state(directory: sandbox.directory).agentProcess(of: "db1003"))
        try await Sandbox.signalAgent(directory: sandbox.directory, name: "db1003", signal: .kill)
        #expect(!ChildProcess.isRunning(before.pid, marker: marker))
        try await Sandbox.restartAgent(directory: sandbox.directory, name: "db1003")
        let after = try #require(try Sandbox.state(directory: sandbox.directory).agentProcess(of: "db1003"))
        #expect(after.pid != before.pid && ChildProcess.isRunning(after.pid, marker: marker))
        #expect(try netNamespace(of: after.pid) == namespace)

        try await Sandbox.signalInstance(directory: sandbox.directory, name: "db1003", signal: .kill)
        try await Sandbox.restartInstance(directory: sandbox.directory, name: "db1003")
        let restarted = try #require(try Sandbox.state(directory: sandbox.directory).instance(named: "db1003"))
        #expect(try netNamespace(of: restarted.pid) == namespace)
        let replicating = try await within(10) { try await slaveStatus(sandbox, "db1003")?["Slave_IO_Running"] == "Yes" }
        #expect(replicating != nil)
    }

    /// etcd stopped for everyone and started again on its data answers the hosts at the bridge.
    private func etcdRestartsOnTheBridge(_ sandbox: SandboxState, _ network: SandboxNetwork) async throws {
        let health = ["-s", "--max-time", "2", sandbox.etcd.hostsURL + "/health"]
        try await Sandbox.stopEtcd(directory: sandbox.directory)
        #expect(try sandbox.run(inNamespaceOf: "controller", "/usr/bin/curl", health).status != 0)
        try await Sandbox.startEtcd(directory: sandbox.directory)
        let answer = try sandbox.run(inNamespaceOf: "controller", "/usr/bin/curl", health)
        #expect(answer.status == 0 && answer.output.contains("\"health\":\"true\""), "\(answer.output)")
        #expect(try await TopologyStore(etcd: sandbox.etcdClient).committedTopology()?.instances.count == 3, "same data, on loopback too")
    }

    /// Unknown names and loopback sandboxes are refused with one message, changing nothing.
    private func refusals(_ sandbox: SandboxState) async throws {
        let stateFile = sandbox.directory + "/" + SandboxState.fileName
        let before = try Data(contentsOf: URL(fileURLWithPath: stateFile))
        let unknown = try runMarina(["sandbox", "partition", "db9999", "--dir", sandbox.directory])
        #expect(unknown.status == 1 && unknown.stderr == "marina: no instance db9999 in the sandbox (its instances: db1001, db1002, db1003)\n")
        let heal = try runMarina(["sandbox", "heal", "db9999", "--dir", sandbox.directory])
        #expect(heal.status == 1 && heal.stderr.contains("no instance db9999"))
        let agent = try runMarina(["sandbox", "agent", "db9999", "--signal", "STOP", "--dir", sandbox.directory])
        #expect(agent.status == 1 && agent.stderr.contains("no instance db9999"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: stateFile)) == before)

        let loopback = try await TestServers.privateSandbox("netns-loopback", sections: 0)
        defer { TestServers.stop(loopback) }
        let refused = try runMarina(["sandbox", "partition", "db1001", "--from", "controller", "--dir", loopback.directory])
        #expect(refused.status == 1)
        #expect(
            refused.stderr
                == "marina: cannot partition db1001: the sandbox in \(loopback.directory) runs on loopback, where every instance shares one network; partitions need `marina sandbox up --hosts namespaces`\n"
        )
    }

    // MARK: Helpers

    /// `mariadb` run inside `host`'s namespace, connecting to `target` by address with a 2 s timeout.
    private func connect(_ sandbox: SandboxState, from host: String, to target: String) throws -> (status: Int32, output: String) {
        let instance = try #require(sandbox.instance(named: target))
        return try sandbox.run(
            inNamespaceOf: host, "/usr/bin/mariadb",
            [
                "--defaults-extra-file=\(sandbox.credentialsFile)", "-h", instance.host, "-P", String(instance.port), "--connect-timeout=2",
                "-N", "-e", "SELECT @@server_id",
            ])
    }

    /// A row written on the primary reaches both replicas.
    private func expectReplicated(_ sandbox: SandboxState) async throws {
        let primary = try await sandbox.root("db1001")
        try await primary.execute("INSERT INTO \(Sandbox.loadDatabase).writes VALUES (?, NOW(6))", .integer(Int64(UInt32.random(in: 1...UInt32.max))))
        let position = try #require(try await primary.query("SELECT @@gtid_binlog_pos AS p").first?["p"])
        await primary.close()
        for name in ["db1002", "db1003"] {
            let replica = try await sandbox.root(name)
            #expect(try await replica.query("SELECT MASTER_GTID_WAIT(?, 10) AS w", .string(position)).first?.int("w") == 0, "\(name)")
            await replica.close()
        }
    }

    private func slaveStatus(_ sandbox: SandboxState, _ name: String) async throws -> Row? {
        let client = try await sandbox.root(name)
        defer { Task { await client.close() } }
        return try await client.query("SHOW SLAVE STATUS").first
    }

    /// Polls `condition` every 100 ms for up to `seconds`; gives how long it took, or nil.
    private func within(_ seconds: Double, _ condition: () async throws -> Bool) async throws -> Duration? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .milliseconds(Int(seconds * 1000)) {
            if try await condition() { return ContinuousClock.now - start }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    private func netNamespace(of pid: Int32) throws -> String {
        try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")
    }

    /// `net:[INODE]` of a namespace file, as `/proc/PID/ns/net` reads.
    private func inode(_ path: String) throws -> String {
        "net:[\((try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0)]"
    }

    private func ip(_ arguments: [String]) throws -> String { try run("/usr/sbin/ip", arguments).output }

    private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
