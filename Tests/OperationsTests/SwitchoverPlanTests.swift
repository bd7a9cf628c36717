import Foundation
import Observation
import Operations
import Testing
import Topology

let now = Date(timeIntervalSince1970: 1_800_000_000)

/// s1: db1001 primary; db1002 (candidate) and db1003 replicate from it.
func topology(candidate: Bool = true) -> Topology {
    Topology(
        datacenters: ["dc1"],
        sections: ["s1": Section(name: "s1", primary: "db1001", datacenter: "dc1", minReplicas: 1)],
        instances: [
            "db1001": Instance(
                name: "db1001", host: "10.0.0.1", datacenter: "dc1", candidatePrimary: true, sections: ["s1": Membership(pooled: true, weight: 0)]),
            "db1002": Instance(
                name: "db1002", host: "10.0.0.2", datacenter: "dc1", candidatePrimary: candidate,
                sections: ["s1": Membership(pooled: true, weight: 100)]),
            "db1003": Instance(
                name: "db1003", host: "10.0.0.3", port: 3307, datacenter: "dc1", sections: ["s1": Membership(pooled: true, weight: 100)]),
        ])
}

func live(_ name: String, serverID: Int, readOnly: Bool, replicates: Bool) -> Observation {
    var observation = Observation(instance: name, agent: "controller", agentStartedAt: now, observedAt: now, reachable: true)
    observation.serverID = serverID
    observation.readOnly = readOnly
    observation.logBin = true
    observation.binlogFormat = "ROW"
    observation.gtidBinlogPos = try? GTIDPosition(parsing: "0-1001-100")
    observation.gtidCurrentPos = try? GTIDPosition(parsing: "0-1001-100")
    observation.gtidSlavePos = replicates ? try? GTIDPosition(parsing: "0-1001-100") : GTIDPosition()
    observation.gtidBinlogState = try? GTIDState(parsing: "0-1001-100")
    observation.logSlaveUpdates = true
    observation.heartbeatLag = 0.2
    if replicates {
        observation.replication = [
            ReplicationChannel(
                sourceHost: "10.0.0.1", sourcePort: 3306, sourceServerID: 1001, ioThread: "Yes", sqlThread: "Yes",
                usingGTID: "Slave_Pos", secondsBehindMaster: 0)
        ]
    }
    return observation
}

func healthy() -> [String: Observation] {
    [
        "db1001": live("db1001", serverID: 1001, readOnly: false, replicates: false),
        "db1002": live("db1002", serverID: 1002, readOnly: true, replicates: true),
        "db1003": live("db1003", serverID: 1003, readOnly: true, replicates: true),
    ]
}

func request(to candidate: String = "db1002", skip: [String] = []) -> OperationRecord {
    OperationRecord(
        id: "op1", section: "s1", candidate: candidate, reason: "kernel upgrade", skipReplicas: skip, requestedBy: "dba", requestedAt: now)
}

let playbook = Playbook(operation: "switchover", options: .init(maxLag: 5, propagationWait: 0), steps: safeOrder.map { Playbook.Step(action: $0) })

@Suite("Switchover preflight and plan")
struct SwitchoverPlanTests {
    @Test("a healthy section is accepted: db1003 moves, the plan has the exact SQL and one point of no return")
    func healthyPlan() throws {
        let (roles, refusals) = Switchover.preflight(request(), playbook: playbook, topology: topology(), live: healthy())
        #expect(refusals == [])
        let accepted = try #require(roles)
        #expect(accepted.replicasToMove.map(\.name) == ["db1003"])
        let plan = Switchover.plan(playbook, roles: accepted, reason: "kernel upgrade", replicationUser: "repl")
        #expect(plan.filter(\.pointOfNoReturn).map(\.name) == ["db1002 writable"])
        #expect(
            plan.map(\.name) == [
                "move db1003 under db1002", "section s1 read-only", "wait for propagation", "db1001 read-only", "read db1001's final position",
                "db1002 catches up", "detach db1002", "commit db1002 as primary of s1", "db1002 writable", "db1001 replicates from db1002",
                "db1002 forgets its replication", "section s1 read-write",
            ])
        #expect(plan[3].statements == ["db1001: SET GLOBAL read_only = ON"])
        #expect(plan[3].undo == ["db1001: SET GLOBAL read_only = OFF"])
        let options = "MASTER_PORT = 3306, MASTER_USE_GTID = slave_pos, MASTER_HEARTBEAT_PERIOD = 1"
        #expect(plan[0].statements.contains("db1003: CHANGE MASTER TO MASTER_HOST = '10.0.0.2', \(options)"))
        #expect(plan[0].undo.contains("db1003: CHANGE MASTER TO MASTER_HOST = '10.0.0.1', \(options)"))
        let replicate = try #require(plan[9].statements.first { $0.contains("CHANGE MASTER") })
        #expect(replicate.contains("MASTER_USER = 'repl'") && replicate.contains("MASTER_PASSWORD = <from the credentials file>"))
        #expect(plan[1].statements == ["etcd: commit section s1 read-only \"Primary switchover by Marina: kernel upgrade\""])
    }

    @Test(
        "refusals name the instance and the problem",
        arguments: [
            ("non-candidate", "db1002 is not a configured candidate primary"),
            ("errant", "db1002 has errant transactions 0-1002-101"),
            ("stopped replica", "db1003 replication is stopped"),
            ("lagging", "db1002 lags 30 s behind its primary (limit 5 s)"),
            ("heartbeat lag", "db1002 heartbeat lag is 12.5 s"),
            ("wrong source", "db1002 replicates from 10.0.0.3:3307, not directly from the primary db1001"),
            ("binlog format", "db1002 binlog_format is STATEMENT, the primary's is ROW"),
            ("unreachable replica", "db1003 is unreachable"),
            ("writable candidate", "db1002 is writable already"),
            ("read-only primary", "the primary db1001 is read-only"),
        ])
    func refusals(case name: String, expected: String) {
        var states = healthy()
        var model = topology()
        switch name {
        case "non-candidate": model = topology(candidate: false)
        case "errant":
            states["db1002"]?.gtidBinlogPos = try? GTIDPosition(parsing: "0-1002-101")
            states["db1002"]?.gtidCurrentPos = try? GTIDPosition(parsing: "0-1002-101")
            states["db1002"]?.gtidBinlogState = try? GTIDState(parsing: "0-1001-100,0-1002-101")
        case "stopped replica": states["db1003"]?.replication[0].sqlThread = "No"
        case "lagging": states["db1002"]?.replication[0].secondsBehindMaster = 30
        case "heartbeat lag": states["db1002"]?.heartbeatLag = 12.5
        case "wrong source":
            states["db1002"]?.replication[0] = ReplicationChannel(
                sourceHost: "10.0.0.3", sourcePort: 3307, sourceServerID: 1003, ioThread: "Yes",
                sqlThread: "Yes", usingGTID: "Slave_Pos", secondsBehindMaster: 0)
        case "binlog format": states["db1002"]?.binlogFormat = "STATEMENT"
        case "unreachable replica":
            states["db1003"]?.reachable = false
            states["db1003"]?.error = "Can't connect"
        case "writable candidate": states["db1002"]?.readOnly = false
        case "read-only primary": states["db1001"]?.readOnly = true
        default: break
        }
        let (roles, refusals) = Switchover.preflight(request(), playbook: playbook, topology: model, live: states)
        #expect(roles == nil)
        #expect(refusals.contains { $0.hasPrefix(expected) }, "\(refusals)")
    }

    @Test("a skipped replica is neither moved nor required to be reachable")
    func skippedReplica() throws {
        var states = healthy()
        states["db1003"]?.reachable = false
        let (roles, refusals) = Switchover.preflight(request(skip: ["db1003"]), playbook: playbook, topology: topology(), live: states)
        #expect(refusals == [])
        #expect(roles?.replicasToMove == [])
        #expect(roles?.skipped.map(\.name) == ["db1003"])
        let (_, wrong) = Switchover.preflight(request(skip: ["db1001"]), playbook: playbook, topology: topology(), live: healthy())
        #expect(wrong == ["--skip-replica db1001: not a replica of s1 other than the candidate"])
    }

    @Test("the target must exist, be in the section and not already be the primary")
    func target() {
        #expect(
            Switchover.preflight(request(to: "db9999"), playbook: playbook, topology: topology(), live: healthy()).refusals == [
                "unknown instance db9999"
            ])
        #expect(
            Switchover.preflight(request(to: "db1001"), playbook: playbook, topology: topology(), live: healthy()).refusals
                == ["db1001 is already the primary of s1"])
    }

    /// The exit code `marina switchover` gives for every state of an operation, as the CLI documents it.
    static let exitCodeOfEveryState: [OperationRecord.State: Int32] = [
        .planned: 0, .done: 0, .refused: 2, .rolledBack: 4, .needsHuman: 5, .doneNeedsAttention: 6,
        // Not finished (the CLI lost etcd while following): the outcome is unknown, never success.
        .requested: 7, .running: 7, .rollingBack: 7,
    ]

    @Test(
        "exit codes: 0 done or planned, 2 refused, 4 rolled back, 5 needs a human, 6 done with attention, 7 not finished",
        arguments: exitCodeOfEveryState.keys.sorted { $0.rawValue < $1.rawValue })
    func exitCodes(state: OperationRecord.State) {
        // `marina switchover` exits with `state.exitCode`; the table must name every state (this switch stops compiling when one is added).
        switch state {
        case .requested, .planned, .refused, .running, .rollingBack, .done, .doneNeedsAttention, .rolledBack, .needsHuman: break
        }
        #expect(state.exitCode == Self.exitCodeOfEveryState[state], "\(state)")
        #expect((state.exitCode == 0) == (state == .done || state == .planned), "only a done switchover or a dry run succeeds")
    }

    @Test("an operation record survives its JSON form")
    func journalRoundTrip() throws {
        var record = request()
        record.state = .running
        record.steps = Switchover.plan(
            playbook,
            roles: try #require(
                Switchover.preflight(
                    request(), playbook: playbook, topology: topology(),
                    live: healthy()
                ).roles),
            reason: "", replicationUser: "repl")
        record.steps[0].state = .done
        record.steps[0].milliseconds = 12.5
        record.steps[0].startedAt = now
        #expect(try OperationJSON.decode(OperationJSON.encode(record)) == record)
    }
}
