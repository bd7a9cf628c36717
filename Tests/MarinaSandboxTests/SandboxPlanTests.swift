import Foundation
import Testing

@testable import MarinaSandbox

@Suite("Sandbox layout (pure)")
struct SandboxPlanTests {
    @Test("names, server ids and ports follow the documented layout")
    func layout() throws {
        let plan = try SandboxPlan(directory: "/sb", sections: 2, replicas: 2, basePort: 30000)
        #expect(plan.etcdClientPort == 30000 && plan.etcdPeerPort == 30001)
        #expect(plan.members.map(\.name) == ["db1001", "db1002", "db1003", "db2001", "db2002", "db2003"])
        #expect(plan.members.map(\.section) == ["s1", "s1", "s1", "s2", "s2", "s2"])
        #expect(plan.members.map(\.role) == [.primary, .replica, .replica, .primary, .replica, .replica])
        #expect(plan.members.map(\.port) == Array(30002...30007))
        #expect(plan.members.map(\.serverID) == [1001, 1002, 1003, 2001, 2002, 2003])
        #expect(Set(plan.ports.map(\.port)).count == plan.ports.count)
        #expect(SandboxPlan.portCount(sections: 2, replicas: 2) == plan.ports.count)
    }

    @Test("option files: replicas read-only, GTID strict mode, binlog and log_slave_updates everywhere")
    func optionFiles() throws {
        let plan = try SandboxPlan(directory: "/sb", sections: 1, replicas: 1, basePort: 30000)
        let primary = SandboxPlan.optionFile(for: plan.members[0])
        let replica = SandboxPlan.optionFile(for: plan.members[1])
        #expect(primary.contains("read_only=OFF") && replica.contains("read_only=ON"))
        for file in [primary, replica] {
            for line in ["gtid_strict_mode=ON", "log_slave_updates=ON", "binlog_format=ROW", "bind-address=127.0.0.1"] {
                #expect(file.contains(line))
            }
        }
        #expect(replica.contains("server_id=1002") && replica.contains("port=30003") && replica.contains("socket=/sb/db1002/mariadb.sock"))
        // A replica hearing nothing for 4 s (the sandbox asks for a heartbeat every second) reconnects.
        #expect(primary.contains("\nslave_net_timeout=4\n") && replica.contains("\nslave_net_timeout=4\n"))
    }

    @Test(
        "--agent-interval is refused unless above 0.01 s and at most 60 s",
        arguments: [0, 0.01, -1, Double.nan, Double.infinity, -Double.infinity, 60.001, 1e300])
    func agentIntervalRefused(seconds: Double) {
        #expect {
            try SandboxPlan(directory: "/sb", sections: 1, replicas: 1, basePort: 30000, agentInterval: seconds)
        } throws: { error in
            (error as? SandboxError)?.description
                == "--agent-interval must be a number of seconds above 0.01 and at most 60 (got \(seconds))"
        }
    }

    @Test("the plan keeps the agent interval and the failover mode; 1 s and manual by default")
    func planKeepsSettings() throws {
        let defaults = try SandboxPlan(directory: "/sb", sections: 1, replicas: 1, basePort: 30000)
        #expect(defaults.agentInterval == 1 && defaults.failover == .manual)
        for seconds in [0.011, 0.2, 60] {
            let plan = try SandboxPlan(directory: "/sb", sections: 1, replicas: 1, basePort: 30000, agentInterval: seconds, failover: .automatic)
            #expect(plan.agentInterval == seconds && plan.failover == .automatic)
        }
    }

    @Test("--failover takes manual or automatic; anything else is one error naming the flag and both values")
    func failoverFlag() throws {
        #expect(try SandboxFailoverMode(flag: "manual") == .manual)
        #expect(try SandboxFailoverMode(flag: "automatic") == .automatic)
        for value in ["", "auto", "Automatic", "on", "manual "] {
            #expect(throws: SandboxError.invalidArgument("--failover must be manual or automatic (got \(value))")) {
                try SandboxFailoverMode(flag: value)
            }
        }
    }

    @Test("--signal takes KILL, STOP or CONT (any case, SIG prefix allowed)")
    func signalFlag() throws {
        #expect(try ["KILL", "kill", "SIGKILL"].map(SandboxSignal.init(flag:)) == [.kill, .kill, .kill])
        #expect(try ["STOP", "sigstop"].map(SandboxSignal.init(flag:)) == [.stop, .stop])
        #expect(try SandboxSignal(flag: "Cont") == .cont)
        for value in ["", "TERM", "HUP", "9", "SIG"] {
            #expect(throws: SandboxError.invalidArgument("--signal must be KILL, STOP or CONT (got \(value))")) {
                try SandboxSignal(flag: value)
            }
        }
    }

    @Test(
        "controller.yaml: the failover block waits for the agents' primary lease; automatic failover adds its keys, manual none; the sandbox's mode by default"
    )
    func controllerFailoverBlock() {
        let lease = "\nfailover:\n  primary_lease_ttl: 6\n  primary_lease_margin: 2.0\n"
        let block = "\nfailover:\n  primary_lease_ttl: 6\n  primary_lease_margin: 2.0\n  automatic: [\"*\"]\n  master_failure_timeout: 2\n"
        var state = Self.state()
        let manual = Sandbox.controllerConfiguration(for: state, playbooks: "/p")
        #expect(manual.hasSuffix(lease) && !manual.contains("automatic"))
        #expect(Sandbox.controllerConfiguration(for: state, playbooks: "/p", failover: .automatic).hasSuffix(block))
        state.failover = .automatic
        #expect(state.failoverMode == .automatic)
        let automatic = Sandbox.controllerConfiguration(for: state, playbooks: "/p", depool: "depool:\n  enabled: true\n")
        #expect(automatic.hasSuffix("\ndepool:\n  enabled: true" + block), "\(automatic)")
        #expect(!Sandbox.controllerConfiguration(for: state, playbooks: "/p", failover: .manual).contains("automatic"))
        state.fencing = .fast
        #expect(Sandbox.controllerConfiguration(for: state, playbooks: "/p").contains("\n  primary_lease_ttl: 5\n  primary_lease_margin: 2.5\n"))
    }

    @Test("agent.yaml probes at the sandbox's interval unless told another; a state from before the flag means 1 s")
    func agentInterval() {
        var state = Self.state()
        #expect(state.agentProbeInterval == 1 && state.failoverMode == .manual)
        #expect(Sandbox.agentConfiguration(for: state, credentialsFile: "/c").contains("\ninterval: 1.0\n"))
        state.agentInterval = 0.2
        #expect(Sandbox.agentConfiguration(for: state, credentialsFile: "/c").contains("\ninterval: 0.2\n"))
        #expect(Sandbox.agentConfiguration(for: state, credentialsFile: "/c", interval: 0.5).contains("\ninterval: 0.5\n"))
    }

    @Test("a state file written before --failover and --agent-interval reads as manual and 1 s; a newer one keeps both")
    func stateFile() throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        var object = try #require(try JSONSerialization.jsonObject(with: encoder.encode(Self.state())) as? [String: Any])
        #expect(object["failover"] == nil && object["agentInterval"] == nil)
        let directory = NSTemporaryDirectory() + "marina-state-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = URL(fileURLWithPath: directory + "/" + SandboxState.fileName)
        try JSONSerialization.data(withJSONObject: object).write(to: file)
        let old = try #require(try SandboxState.load(from: directory))
        #expect(old.failoverMode == .manual && old.agentProbeInterval == 1)
        object["failover"] = "automatic"
        object["agentInterval"] = 0.2
        try JSONSerialization.data(withJSONObject: object).write(to: file)
        let new = try #require(try SandboxState.load(from: directory))
        #expect(new.failoverMode == .automatic && new.agentProbeInterval == 0.2)
    }

    /// A sandbox state with no instance, as one written before the failover mode and agent interval were kept.
    static func state() -> SandboxState {
        SandboxState(
            directory: "/sb", datacenter: "dc1",
            etcd: .init(clientPort: 30000, peerPort: 30001, dataDirectory: "/sb/etcd", logFile: "/sb/etcd.log", pid: 0),
            instances: [], heartbeats: [], credentialsFile: "/sb/credentials.cnf", certificates: nil,
            startedAt: Date(timeIntervalSince1970: 0))
    }

    @Test(
        "out-of-range arguments are refused with the flag's name",
        arguments: [
            (10, 2, 30000, "--sections"), (1, 10, 30000, "--replicas"), (1, 2, 80, "--base-port"), (1, 2, 65533, "--base-port"),
        ])
    func invalidArguments(sections: Int, replicas: Int, basePort: Int, flag: String) {
        #expect {
            try SandboxPlan(directory: "/sb", sections: sections, replicas: replicas, basePort: basePort)
        } throws: { error in
            (error as? SandboxError)?.description.hasPrefix(flag) == true
        }
    }
}

@Suite("Port blocks")
struct PortBlockTests {
    @Test("free blocks lie below the ephemeral range and never overlap within a process")
    func blocks() throws {
        let ephemeral = Ports.ephemeralRange()
        var taken = Set<Int>()
        for _ in 0..<20 {
            let base = try Ports.findFreeBlock(count: 5)
            let block = Set(base..<(base + 5))
            #expect(base >= 10_000 && base + 5 <= ephemeral.lowerBound)
            #expect(taken.isDisjoint(with: block))
            taken.formUnion(block)
        }
    }
}

@Suite("sql/agent-grants.sql")
struct AgentGrantsFileTests {
    @Test("grants exactly what the sandbox gives its agent, and no SUPER")
    func grants() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("sql/agent-grants.sql"), encoding: .utf8)
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("GRANT ") }.map(String.init)
        let grants = lines.filter { $0.contains("'\(Sandbox.agentUser)'") }
        // The sandbox's agent runs with exactly these, which the agent tests prove sufficient.
        #expect(grants == Sandbox.agentGrants.map { $0.replacingOccurrences(of: "?", with: "'\(Sandbox.agentUser)'") + ";" })
        #expect(grants.count == 3)
        // Its fence account, with exactly the sandbox's fence grants; nothing else.
        let fence = lines.filter { $0.contains("'\(Sandbox.fenceUser)'") }
        #expect(fence == Sandbox.fenceGrants.map { $0.replacingOccurrences(of: "?", with: "'\(Sandbox.fenceUser)'") + ";" })
        #expect(lines.count == grants.count + fence.count)
        #expect(!text.uppercased().contains("GRANT SUPER") && !text.uppercased().contains("ALL PRIVILEGES"))
    }

    @Test("sql/controller-grants.sql grants exactly what the sandbox gives its controller, and no SUPER")
    func controllerGrants() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("sql/controller-grants.sql"), encoding: .utf8)
        let grants = text.split(separator: "\n").filter { $0.hasPrefix("GRANT ") }.map(String.init)
        // The switchover tests run the controller with exactly these.
        #expect(grants == Sandbox.controllerGrants.map { $0.replacingOccurrences(of: "?", with: "'\(Sandbox.controllerUser)'") + ";" })
        #expect(!text.uppercased().contains("SUPER,") && !text.uppercased().contains("ALL PRIVILEGES"))
    }
}
