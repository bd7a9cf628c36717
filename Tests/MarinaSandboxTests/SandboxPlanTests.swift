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
        let grants = text.split(separator: "\n").filter { $0.hasPrefix("GRANT ") }.map(String.init)
        // The sandbox's agent runs with exactly these, which the agent tests prove sufficient.
        #expect(grants == Sandbox.agentGrants.map { $0.replacingOccurrences(of: "?", with: "'\(Sandbox.agentUser)'") + ";" })
        #expect(grants.count == 3)
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
