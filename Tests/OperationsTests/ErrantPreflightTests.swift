import Foundation
import Observation
import Operations
import Testing
import Topology

/// Live states built from `healthy()`, with binlog states given as the server prints them.
private func states(_ changes: [String: String?] = [:]) -> [String: Observation] {
    var states = healthy()
    for (name, state) in changes { states[name]?.gtidBinlogState = state.flatMap { try? GTIDState(parsing: $0) } }
    return states
}

@Suite("Switchover preflight: errant transactions and binary logs")
struct ErrantPreflightTests {
    @Test(
        "refused, naming the instance and what is wrong",
        arguments: [
            // db1002 wrote 0-1002-101, then applied the primary's 0-1001-101: gtid_binlog_pos shows only the latter.
            (
                "errant candidate hidden from gtid_binlog_pos", ["db1001": "0-1001-101", "db1002": "0-1001-101,0-1002-101", "db1003": "0-1001-101"],
                "db1002 has errant transactions 0-1002-101 that the primary db1001 lacks"
            ),
            (
                "errant replica that would move", ["db1003": "0-1001-100,0-1003-7"],
                "db1003 has errant transactions 0-1003-7 that the primary db1001 lacks"
            ),
            (
                "errant in a domain the primary never had", ["db1002": "0-1001-100,9-1002-1,9-1003-4"],
                "db1002 has errant transactions 9-1002-1,9-1003-4"
            ),
            (
                "a former primary's pair ahead of the primary's", ["db1001": "0-1001-100,0-1002-40", "db1002": "0-1001-100,0-1002-120"],
                "db1002 has errant transactions 0-1002-120"
            ),
            ("candidate state unknown", ["db1002": nil], "db1002 gtid_binlog_state is unknown: errant transactions cannot be ruled out"),
            ("replica state unknown", ["db1003": nil], "db1003 gtid_binlog_state is unknown: errant transactions cannot be ruled out"),
            ("primary state unknown", ["db1001": nil], "the primary db1001 gtid_binlog_state is unknown: errant transactions cannot be ruled out"),
        ] as [(String, [String: String?], String)])
    func errantRefusals(case name: String, changes: [String: String?], expected: String) {
        let (roles, refusals) = Switchover.preflight(request(), playbook: playbook, topology: topology(), live: states(changes))
        #expect(roles == nil, "\(name)")
        #expect(refusals.contains { $0.hasPrefix(expected) }, "\(name): \(refusals)")
    }

    @Test(
        "accepted: lagging or partial binlog states, a former primary's pairs, the primary's own id read ahead",
        arguments: [
            ("a replica lags", ["db1003": "0-1001-90"]),
            (
                "replicas lack pairs the primary has",
                ["db1001": "0-1001-100,0-1002-40,1-2001-5", "db1002": "0-1001-100,1-2001-5", "db1003": "0-1001-80"]
            ),
            (
                "a former primary's pairs on every instance",
                ["db1001": "0-1002-40,0-1001-100", "db1002": "0-1001-100,0-1002-40", "db1003": "0-1002-40,0-1001-99"]
            ),
            ("a replica read just after the primary wrote", ["db1002": "0-1001-102", "db1003": "0-1001-101"]),
            ("empty replica states (binary logs just started)", ["db1002": "", "db1003": ""]),
        ] as [(String, [String: String?])])
    func accepted(case name: String, changes: [String: String?]) {
        let (roles, refusals) = Switchover.preflight(request(), playbook: playbook, topology: topology(), live: states(changes))
        #expect(refusals == [], "\(name)")
        #expect(roles?.replicasToMove.map(\.name) == ["db1003"], "\(name)")
    }

    @Test("a skipped replica's errant transactions do not matter: it is not moved")
    func skippedErrantReplica() {
        let (roles, refusals) = Switchover.preflight(
            request(skip: ["db1003"]), playbook: playbook, topology: topology(),
            live: states(["db1003": "0-1001-100,0-1003-7"]))
        #expect(refusals == [])
        #expect(roles?.skipped.map(\.name) == ["db1003"])
    }

    @Test(
        "the candidate must log what it replicates, in a binary log",
        arguments: [
            ("log_slave_updates OFF", "db1002 has log_slave_updates OFF"),
            ("log_slave_updates unknown", "db1002 log_slave_updates is unknown"),
            ("log_bin OFF", "db1002 has no binary log (log_bin is OFF)"),
        ])
    func binaryLog(case name: String, expected: String) {
        var live = healthy()
        switch name {
        case "log_slave_updates OFF": live["db1002"]?.logSlaveUpdates = false
        case "log_slave_updates unknown": live["db1002"]?.logSlaveUpdates = nil
        case "log_bin OFF": live["db1002"]?.logBin = false
        default: break
        }
        let (roles, refusals) = Switchover.preflight(request(), playbook: playbook, topology: topology(), live: live)
        #expect(roles == nil, "\(name)")
        #expect(refusals.contains { $0.hasPrefix(expected) }, "\(name): \(refusals)")
    }

    @Test("a replica other than the candidate may run without log_slave_updates")
    func replicaWithoutLogSlaveUpdates() {
        var live = healthy()
        live["db1003"]?.logSlaveUpdates = false
        #expect(Switchover.preflight(request(), playbook: playbook, topology: topology(), live: live).refusals == [])
    }
}
