import Foundation
import Observation
import Operations
import Testing
import Topology

private let seen = Date(timeIntervalSince1970: 1_800_000_000)
private let failoverMark = RejoinMark(operation: "op-7", newPrimary: "db1002", forkPoint: "0-1002-100", lastKnownPosition: "0-1001-100")

/// s1 after a failover: db1002 primary, db1001 (the old primary) marked and depooled, db1003
/// a replica; s2: db2001 alone.
private func afterFailover(mark: RejoinMark? = failoverMark) -> Topology {
    Topology(
        datacenters: ["dc1"],
        sections: [
            "s1": Section(name: "s1", primary: "db1002", datacenter: "dc1"),
            "s2": Section(name: "s2", primary: "db2001", datacenter: "dc1"),
        ],
        instances: [
            "db1001": Instance(
                name: "db1001", host: "10.0.0.1", datacenter: "dc1", candidatePrimary: true,
                sections: ["s1": Membership(pooled: false, weight: 100, needsRejoin: mark)]),
            "db1002": Instance(
                name: "db1002", host: "10.0.0.2", datacenter: "dc1", candidatePrimary: true, sections: ["s1": Membership(pooled: true, weight: 0)]),
            "db1003": Instance(
                name: "db1003", host: "10.0.0.3", port: 3307, datacenter: "dc1", sections: ["s1": Membership(pooled: true, weight: 100)]),
            "db1004": Instance(name: "db1004", host: "10.0.0.4", datacenter: "dc1", sections: ["s1": Membership(pooled: true, weight: 100)]),
            "db2001": Instance(name: "db2001", host: "10.0.1.1", datacenter: "dc1", sections: ["s2": Membership(pooled: true, weight: 0)]),
        ])
}

/// One instance as a direct probe reads it; `source` is the instance its channel reads from.
private func observed(
    _ name: String, serverID: Int, state: String = "0-1001-100", source: (host: String, port: Int, id: Int)? = nil, running: Bool = true,
    logSlaveUpdates: Bool = true, slavePosition: String = "0-1001-100"
) -> Observation {
    var observation = Observation(instance: name, agent: "marina-controller", agentStartedAt: seen, observedAt: seen, reachable: true)
    observation.serverID = serverID
    observation.readOnly = source != nil
    observation.logBin = true
    observation.logSlaveUpdates = logSlaveUpdates
    observation.gtidBinlogState = try? GTIDState(parsing: state)
    observation.gtidSlavePos = try? GTIDPosition(parsing: slavePosition)
    if let source {
        observation.replication = [
            ReplicationChannel(
                sourceHost: source.host, sourcePort: source.port, sourceServerID: source.id, ioThread: running ? "Yes" : "No",
                sqlThread: "Yes", usingGTID: "Slave_Pos")
        ]
    }
    return observation
}

private func unreachable(_ name: String) -> Observation {
    Observation(instance: name, agent: "marina-controller", agentStartedAt: seen, observedAt: seen, reachable: false, error: "connection refused")
}

private func gtids(_ text: String) -> GTIDPosition { try! GTIDPosition(parsing: text) }

private let primary1002 = (host: "10.0.0.2", port: 3306, id: 1002)
private let primary1001 = (host: "10.0.0.1", port: 3306, id: 1001)

/// The plans of `marina instance rejoin` and `marina instance move`, from what the servers
/// answered: preflight, steps, and what the journal keeps for the next leader. No server.
@Suite("rejoin and move plans")
struct RejoinPlanTests {
    // MARK: Rejoin

    private func rejoin(
        _ name: String = "db1001", section: String = "s1", topology: Topology = afterFailover(), old: Observation? = nil,
        primary: Observation? = nil, oldest: GTIDPosition? = GTIDPosition()
    ) -> (roles: RejoinPlan.RejoinRoles?, refusals: [String]) {
        let live = [
            "db1001": old ?? observed("db1001", serverID: 1001, state: "0-1001-100"),
            "db1002": primary ?? observed("db1002", serverID: 1002, state: "0-1001-100,0-1002-130"),
            "db1003": observed("db1003", serverID: 1003, source: primary1002),
        ]
        return RejoinPlan.rejoinPreflight(instance: name, section: section, topology: topology, live: live, primaryOldestBinlogGTIDs: oldest)
    }

    @Test("a clean old primary: it starts from its own last GTID, in three steps, the mark kept in the journal for the undo")
    func cleanRejoin() throws {
        let (roles, refusals) = rejoin()
        #expect(refusals == [])
        let found = try #require(roles)
        #expect(found.instance.name == "db1001" && found.primary.name == "db1002" && found.section == "s1")
        #expect(found.startFrom == gtids("0-1001-100"))
        #expect(found.mark == failoverMark)

        let steps = RejoinPlan.rejoinSteps(found, replicationUser: "repl", settings: ReplicationChannelSettings(heartbeatPeriod: 1))
        #expect(steps.map(\.name) == ["db1001 read-only", "db1001 replicates from db1002", "clear db1001's needs_rejoin mark"])
        #expect(steps.map(\.action) == [.oldPrimaryReadOnly, .oldPrimaryReplicates, .commitPrimary])
        #expect(steps.map(\.timeout) == [RejoinPlan.Timeouts.readOnly, RejoinPlan.Timeouts.replicate, RejoinPlan.Timeouts.commit])
        #expect(steps.allSatisfy { !$0.pointOfNoReturn })
        #expect(steps[0].statements == ["db1001: SET GLOBAL read_only = ON"])
        #expect(steps[0].undo.isEmpty)
        #expect(steps[1].hosts == ["db1001", "db1002"])
        #expect(steps[1].statements.contains("db1001: SET GLOBAL gtid_slave_pos = '0-1001-100'"))
        let changeMaster = try #require(steps[1].statements.first { $0.contains("CHANGE MASTER") })
        #expect(changeMaster.contains("MASTER_HOST = '10.0.0.2'") && changeMaster.contains("MASTER_USER = 'repl'"))
        #expect(changeMaster.contains("MASTER_PASSWORD = <from the credentials file>") && changeMaster.contains("MASTER_USE_GTID = slave_pos"))
        #expect(changeMaster.contains("MASTER_HEARTBEAT_PERIOD = 1.000"))
        #expect(steps[1].undo == ["db1001: STOP SLAVE", "db1001: RESET SLAVE ALL"])
        #expect(steps[2].hosts == ["etcd"])
        #expect(RejoinPlan.rejoinMark(in: steps[2]) == failoverMark)
        #expect(RejoinPlan.rejoinMark(in: steps[0]) == nil && RejoinPlan.rejoinMark(in: steps[1]) == nil)
        #expect(steps[2].undo == ["etcd: commit db1001 in s1 \(failoverMark)"])
    }

    @Test("a mark without a last known position survives the journal as it was")
    func markWithoutLastKnownPosition() throws {
        let mark = RejoinMark(operation: "op-9", newPrimary: "db1002", forkPoint: "0-1002-7")
        let roles = try #require(rejoin(topology: afterFailover(mark: mark)).roles)
        let steps = RejoinPlan.rejoinSteps(roles, replicationUser: "repl", settings: nil)
        #expect(RejoinPlan.rejoinMark(in: steps[2]) == mark)
        // Decoded from the journal's JSON, it is still there.
        let record = try OperationJSON.decode(
            try OperationJSON.encode(
                {
                    var record = OperationRecord(
                        id: "r", kind: "rejoin", section: "s1", candidate: "db1001", reason: "", requestedBy: "t", requestedAt: seen)
                    record.steps = steps
                    return record
                }()))
        #expect(RejoinPlan.rejoinMark(in: record.steps[2]) == mark)
    }

    @Test("an old primary behind the new one (it died after the replicas received more) starts from its own position")
    func behind() throws {
        let roles = try #require(rejoin(old: observed("db1001", serverID: 1001, state: "0-1001-90")).roles)
        #expect(roles.startFrom == gtids("0-1001-90"))
    }

    @Test(
        "refused, with every reason",
        arguments: [
            ("unknown section", "db1001", "s9", nil, nil, ["unknown section s9"]),
            ("unknown instance", "db1009", "s1", nil, nil, ["unknown instance db1009"]),
            ("not a member", "db2001", "s1", nil, nil, ["db2001 is not a member of section s1"]),
            ("the primary", "db1002", "s1", nil, nil, ["db1002 is the primary of s1: there is nothing to rejoin"]),
            (
                "no mark", "db1003", "s1", nil, nil,
                ["db1003 has no needs_rejoin mark in s1: no failover left it behind (a replica changes source with `marina instance move`)"]
            ),
            (
                "it cannot be reached", "db1001", "s1", unreachable("db1001"), nil,
                ["db1001 cannot be reached (connection refused): start it, then rejoin it; it stays depooled and marked"]
            ),
            (
                "the primary cannot be reached", "db1001", "s1", nil, unreachable("db1002"),
                ["the primary db1002 cannot be reached (connection refused)"]
            ),
            (
                "neither can be reached", "db1001", "s1", unreachable("db1001"), unreachable("db1002"),
                [
                    "db1001 cannot be reached (connection refused): start it, then rejoin it; it stays depooled and marked",
                    "the primary db1002 cannot be reached (connection refused)",
                ]
            ),
            (
                "diverged: writes no replica received", "db1001", "s1", observed("db1001", serverID: 1001, state: "0-1001-105"), nil,
                [
                    "db1001 holds transactions the primary db1002 never received: 0-1001-101..0-1001-105. It must not replicate as it is: "
                        + "a human decides whether to rebuild it or to undo those transactions (flashback); it stays depooled and marked needs-rejoin"
                ]
            ),
            (
                "diverged in two origins", "db1001", "s1", observed("db1001", serverID: 1001, state: "0-1001-101,9-1001-3,0-1007-2"), nil,
                [
                    "db1001 holds transactions the primary db1002 never received: 0-1001-101, 9-1001-1..9-1001-3, 0-1007-1..0-1007-2. "
                        + "It must not replicate as it is: a human decides whether to rebuild it or to undo those transactions (flashback); "
                        + "it stays depooled and marked needs-rejoin"
                ]
            ),
        ] as [(String, String, String, Observation?, Observation?, [String])])
    func refusedRejoin(case name: String, instance: String, section: String, old: Observation?, primary: Observation?, expected: [String]) {
        let (roles, refusals) = rejoin(instance, section: section, old: old, primary: primary)
        #expect(roles == nil, "\(name)")
        #expect(refusals == expected, "\(name)")
    }

    @Test("refused when the primary no longer has the binary logs it needs, or that cannot be told")
    func purgedOrUnknownBinaryLogs() {
        #expect(
            rejoin(oldest: gtids("0-1002-120")).refusals == [
                "db1002 no longer has the binary logs db1001 needs in domain 0: its oldest binary log starts after 0-1002-120, db1001 is at 0-1001-100"
            ])
        #expect(
            rejoin(oldest: nil).refusals == [
                "cannot tell whether db1002 still has the binary logs db1001 needs (the GTID list at the start of its oldest binary log is unknown)"
            ])
        #expect(rejoin(oldest: gtids("0-1001-100")).refusals == [])
    }

    // MARK: Move

    /// s1 with db1001 the primary and db1002, db1003, db1004 replicating from it, unless `live` says otherwise.
    private func move(
        _ mover: String, under newSource: String, live overrides: [String: Observation] = [:], oldest: GTIDPosition? = GTIDPosition()
    ) -> (roles: RejoinPlan.MoveRoles?, refusals: [String]) {
        var topology = afterFailover(mark: nil)
        topology.sections["s1"]?.primary = "db1001"
        var live = [
            "db1001": observed("db1001", serverID: 1001),
            "db1002": observed("db1002", serverID: 1002, source: primary1001),
            "db1003": observed("db1003", serverID: 1003, source: primary1001),
            "db1004": observed("db1004", serverID: 1004, source: primary1001),
            "db2001": observed("db2001", serverID: 2001),
        ]
        live.merge(overrides) { $1 }
        return RejoinPlan.movePreflight(
            mover: mover, newSource: newSource, section: "s1", topology: topology, live: live, newSourceOldestBinlogGTIDs: oldest)
    }

    @Test("a replica, or a new source, with transactions the primary never had is not moved: each is named with its GTIDs")
    func errantRefused() {
        let errantMover = observed("db1003", serverID: 1003, state: "0-1001-100,0-1003-4", source: primary1001)
        #expect(
            move("db1003", under: "db1002", live: ["db1003": errantMover]).refusals == [
                "db1003 holds transactions the primary db1001 never had: 0-1003-4"
            ])
        let errantSource = observed("db1002", serverID: 1002, state: "0-1001-100,9-1002-1", source: primary1001)
        #expect(
            move("db1003", under: "db1002", live: ["db1002": errantSource]).refusals == [
                "db1002 holds transactions the primary db1001 never had: 9-1002-1"
            ])
    }

    @Test("under a sibling: it waits for the sibling to apply its position, and goes back under the primary on failure")
    func underSibling() throws {
        let (roles, refusals) = move("db1003", under: "db1002")
        #expect(refusals == [])
        let found = try #require(roles)
        #expect(found.mover.name == "db1003" && found.newSource.name == "db1002" && found.originalSource.name == "db1001")
        #expect(!found.newSourceIsPrimary)
        let steps = RejoinPlan.moveSteps(found)
        #expect(steps.count == 1)
        #expect(steps[0].name == "move db1003 under db1002" && steps[0].action == .moveReplicas && steps[0].subject == "db1003")
        #expect(steps[0].timeout == RejoinPlan.Timeouts.move && !steps[0].pointOfNoReturn)
        #expect(
            steps[0].statements == [
                "db1003: STOP SLAVE", "db1003: SELECT @@GLOBAL.gtid_slave_pos AS pos",
                "db1002: SELECT MASTER_GTID_WAIT('<gtid_slave_pos of db1003>', 30.0) AS waited",
                "db1003: CHANGE MASTER TO MASTER_HOST = '10.0.0.2', MASTER_PORT = 3306, MASTER_USE_GTID = slave_pos, MASTER_HEARTBEAT_PERIOD = 1",
                "db1003: START SLAVE",
            ])
        #expect(
            steps[0].undo == [
                "db1003: STOP SLAVE",
                "db1003: CHANGE MASTER TO MASTER_HOST = '10.0.0.1', MASTER_PORT = 3306, MASTER_USE_GTID = slave_pos, MASTER_HEARTBEAT_PERIOD = 1",
                "db1003: START SLAVE",
            ])
        let names = try #require(RejoinPlan.moveRoles(in: steps[0]))
        #expect(names.mover == "db1003" && names.newSource == "db1002" && names.originalSource == "db1001")
    }

    @Test("back under the primary: no wait (the primary has everything), and the original source is found by server_id")
    func underPrimary() throws {
        // db1003 replicates from db1002, named by another address than the topology's.
        let (roles, refusals) = move(
            "db1003", under: "db1001", live: ["db1003": observed("db1003", serverID: 1003, source: ("db1002.eqiad", 3306, 1002))])
        #expect(refusals == [])
        let found = try #require(roles)
        #expect(found.newSourceIsPrimary && found.originalSource.name == "db1002")
        #expect(!RejoinPlan.moveSteps(found)[0].statements.contains { $0.contains("MASTER_GTID_WAIT") })
    }

    @Test(
        "refused, naming the instances and the problem",
        arguments: [
            ("itself", "db1003", "db1003", [String: Observation](), ["db1003 cannot replicate from itself"]),
            (
                "the primary", "db1001", "db1002", [:],
                ["db1001 is the primary of s1: it replicates from nobody (`marina switchover` moves the primary)"]
            ),
            ("unknown", "db1003", "db1009", [:], ["unknown instance db1009"]),
            ("already there", "db1003", "db1001", [:], ["db1003 already replicates from db1001: nothing to move"]),
            ("another section", "db1003", "db2001", [:], ["db1003 is in section s1 and db2001 in s2: a replica moves only within its section"]),
            (
                "log_slave_updates OFF", "db1003", "db1002",
                ["db1002": observed("db1002", serverID: 1002, source: primary1001, logSlaveUpdates: false)],
                [
                    "db1002 is not the primary and has log_slave_updates OFF: it does not binlog what it replicates, "
                        + "so db1003 would receive none of the primary's transactions"
                ]
            ),
            (
                "a cycle", "db1002", "db1003", ["db1003": observed("db1003", serverID: 1003, source: ("10.0.0.2", 3306, 1002))],
                ["db1003 replicates from db1002: moving db1002 under it would make a replication cycle"]
            ),
            (
                "a cycle two levels down", "db1002", "db1004",
                [
                    "db1003": observed("db1003", serverID: 1003, source: ("10.0.0.2", 3306, 1002)),
                    "db1004": observed("db1004", serverID: 1004, source: ("10.0.0.3", 3307, 1003)),
                ],
                ["db1004 replicates from db1002: moving db1002 under it would make a replication cycle"]
            ),
            (
                "a new source that does not replicate", "db1003", "db1002",
                ["db1002": observed("db1002", serverID: 1002, source: primary1001, running: false)],
                ["db1002 does not replicate (IO No, SQL Yes): db1003 would receive nothing more from it"]
            ),
            (
                "a mover that cannot be reached", "db1003", "db1002", ["db1003": unreachable("db1003")],
                ["db1003 cannot be reached (connection refused)"]
            ),
            (
                "a mover with no channel", "db1003", "db1002", ["db1003": observed("db1003", serverID: 1003)],
                ["db1003 has no replication channel: it is not a replica to move"]
            ),
            (
                "a source outside the section", "db1003", "db1002", ["db1003": observed("db1003", serverID: 1003, source: ("10.9.9.9", 3306, 9))],
                ["db1003 replicates from 10.9.9.9:3306, which is not a member of s1: it could not be pointed back there if the move failed"]
            ),
        ] as [(String, String, String, [String: Observation], [String])])
    func refusedMove(case name: String, mover: String, newSource: String, live: [String: Observation], expected: [String]) {
        let (roles, refusals) = move(mover, under: newSource, live: live)
        #expect(roles == nil, "\(name)")
        #expect(refusals == expected, "\(name)")
    }

    @Test("a new source that needs a rejoin is refused: it may hold writes nobody else has")
    func newSourceNeedsRejoin() {
        var topology = afterFailover()
        topology.sections["s1"]?.primary = "db1002"
        let live = [
            "db1001": observed("db1001", serverID: 1001, source: primary1002),
            "db1002": observed("db1002", serverID: 1002),
            "db1003": observed("db1003", serverID: 1003, source: primary1002),
        ]
        let (roles, refusals) = RejoinPlan.movePreflight(
            mover: "db1003", newSource: "db1001", section: "s1", topology: topology, live: live, newSourceOldestBinlogGTIDs: GTIDPosition())
        #expect(roles == nil)
        #expect(refusals == ["db1001 \(failoverMark) in s1: nothing may replicate from it until it has rejoined"])
    }

    @Test("purged binary logs on the new source are refused")
    func purged() {
        #expect(
            move("db1003", under: "db1002", oldest: gtids("0-1001-120")).refusals == [
                "db1002 no longer has the binary logs db1003 needs in domain 0: its oldest binary log starts after 0-1001-120, db1003 is at 0-1001-100"
            ])
    }

    @Test("a move's record names its new source in a field of its own, which survives the journal's JSON")
    func newSourceField() throws {
        var record = OperationRecord(id: "m1", kind: "move", section: "s1", candidate: "db1003", reason: "", requestedBy: "t", requestedAt: Date())
        record.newSource = "db1101:3317"
        #expect(try OperationJSON.decode(try OperationJSON.encode(record)).newSource == "db1101:3317")
        #expect(RejoinPlan.moveReason(mover: "db1003", newSource: "db1101:3317") == "move db1003 under db1101:3317")
    }

    @Test("the chain of sources stops at the primary, at a source outside the section, and at a loop")
    func chain() {
        var topology = afterFailover(mark: nil)
        topology.sections["s1"]?.primary = "db1001"
        let live = [
            "db1001": observed("db1001", serverID: 1001),
            "db1002": observed("db1002", serverID: 1002, source: primary1001),
            "db1003": observed("db1003", serverID: 1003, source: ("10.0.0.2", 3306, 1002)),
            "db1004": observed("db1004", serverID: 1004, source: ("10.0.0.3", 3307, 0)),
        ]
        #expect(RejoinPlan.chain(from: "db1004", topology: topology, section: "s1", live: live) == ["db1003", "db1002", "db1001"])
        #expect(RejoinPlan.chain(from: "db1001", topology: topology, section: "s1", live: live) == [])
        let looping = live.merging(["db1002": observed("db1002", serverID: 1002, source: ("10.0.0.3", 3307, 1003))]) { $1 }
        #expect(RejoinPlan.chain(from: "db1004", topology: topology, section: "s1", live: looping) == ["db1003", "db1002"])
        let outside = live.merging(["db1002": observed("db1002", serverID: 1002, source: ("10.9.9.9", 3306, 9))]) { $1 }
        #expect(RejoinPlan.chain(from: "db1003", topology: topology, section: "s1", live: outside) == ["db1002"])
    }

    // MARK: Binary logs

    @Test(
        "the GTID list of a binary log's first events",
        arguments: [
            ("one GTID", "[0-1001-5]", "0-1001-5" as String?),
            ("empty: nothing before this file", "[]", ""),
            ("a binlog state: the highest sequence of each domain", "[0-1001-5,0-1002-9,1-3-4]", "0-1002-9,1-3-4"),
            ("malformed", "[0-1001]", nil),
            ("not a list", "0-1001-5", nil),
        ])
    func gtidList(case name: String, info: String, expected: String?) {
        let rows = [
            ["Log_name": "db1001-bin.000001", "Pos": "4", "Event_type": "Format_desc", "Info": "Server ver: 11.4, Binlog ver: 4"],
            ["Log_name": "db1001-bin.000001", "Pos": "256", "Event_type": "Gtid_list", "Info": info],
        ]
        #expect(RejoinPlan.gtidList(fromEvents: rows) == expected.map(gtids), "\(name)")
    }

    @Test("no Gtid_list event: unknown")
    func noGtidList() {
        #expect(RejoinPlan.gtidList(fromEvents: [["Event_type": "Format_desc", "Info": "x"]]) == nil)
        #expect(RejoinPlan.gtidList(fromEvents: []) == nil)
        #expect(RejoinPlan.firstEventsSQL(of: "db1001-bin.000001") == "SHOW BINLOG EVENTS IN 'db1001-bin.000001' LIMIT 2")
    }
}
