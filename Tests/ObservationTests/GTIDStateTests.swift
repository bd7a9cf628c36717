import Foundation
import Observation
import Testing

@Suite("GTID binlog states and errant transactions")
struct GTIDStateTests {
    @Test("parses what the server prints: one GTID per (domain, server id), printed back sorted")
    func parse() throws {
        let state = try GTIDState(parsing: "1-2001-3,0-1002-7,0-1001-42")
        #expect(state[domain: 0, server: 1001] == GTID(domain: 0, server: 1001, sequence: 42))
        #expect(state[domain: 0, server: 1002] == GTID(domain: 0, server: 1002, sequence: 7))
        #expect(state[domain: 1, server: 2001] == GTID(domain: 1, server: 2001, sequence: 3))
        #expect(state[domain: 1, server: 1001] == nil)
        #expect(state.description == "0-1001-42,0-1002-7,1-2001-3")
        #expect(try GTIDState(parsing: "").isEmpty)
        #expect(try GTIDState(parsing: " 0-1-1 ,\n0-2-5 ").description == "0-1-1,0-2-5")
        #expect(GTIDState([GTID(domain: 0, server: 1, sequence: 3), GTID(domain: 0, server: 1, sequence: 9)]).description == "0-1-9")
    }

    @Test(
        "malformed states are errors that name them",
        arguments: [
            "0-1", "0-1-2-3", "a-1-2", "0-1-", "0-1-2,", ",0-1-2", "0-1-2,0-1-3", "0-1-+2", "0–1–2", "4294967296-1-1", "0-1-2;DROP TABLE x",
        ])
    func malformed(_ text: String) {
        do {
            let parsed = try GTIDState(parsing: text)
            Issue.record("accepted \(text.debugDescription) as \(parsed)")
        } catch {
            #expect(error is GTIDError)
            #expect("\(error)".hasPrefix("malformed GTID binlog state \(text.debugDescription)"), "\(error)")
        }
    }

    @Test(
        "errant transactions: what the replica's state has that the primary's lacks or has lower",
        arguments: [
            ("identical", "0-1001-100", "0-1001-100", [String]()),
            ("hidden behind a replicated GTID", "0-1001-101,0-1002-101", "0-1001-101", ["0-1002-101"]),
            ("the replica lags", "0-1001-90", "0-1001-100", []),
            ("the replica lacks pairs the primary has", "0-1001-100", "0-1001-100,0-1002-40,1-2001-5", []),
            ("a former primary's pair on both", "0-1002-40,0-1001-100", "0-1001-100,0-1002-40", []),
            ("a former primary wrote again", "0-1002-101,0-1001-100", "0-1001-100,0-1002-40", ["0-1002-101"]),
            ("a domain the primary never had", "0-1001-100,5-1003-1", "0-1001-100", ["5-1003-1"]),
            ("another server's pair ahead", "0-1001-100,0-2001-9", "0-1001-100,0-2001-5", ["0-2001-9"]),
            ("several, sorted", "1-1003-2,0-1003-7,0-1001-100", "0-1001-100", ["0-1003-7", "1-1003-2"]),
            ("the primary's own id ahead: read after the primary", "0-1001-103", "0-1001-100", []),
            ("the primary's own id in a domain it lacks", "0-1001-100,3-1001-4", "0-1001-100", []),
            ("an empty replica", "", "0-1001-100", []),
            ("an empty primary", "0-1001-100,0-1003-2", "", ["0-1003-2"]),
        ] as [(String, String, String, [String])])
    func errant(name: String, replica: String, primary: String, expected: [String]) throws {
        let errant = try GTIDState(parsing: replica).errant(comparedWith: GTIDState(parsing: primary), primaryServerID: 1001)
        #expect(errant.map(\.description) == expected, "\(name)")
    }

    @Test("without the primary's server id, its own pair is compared like any other")
    func unknownPrimaryServerID() throws {
        let replica = try GTIDState(parsing: "0-1001-103")
        #expect(replica.errant(comparedWith: try GTIDState(parsing: "0-1001-100"), primaryServerID: nil).map(\.description) == ["0-1001-103"])
    }

    @Test("an observation compares binlog states; an unknown one is unknown, not clean")
    func observations() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var primary = Observation(instance: "db1001", agent: "host", agentStartedAt: now, observedAt: now, reachable: true)
        primary.serverID = 1001
        primary.gtidBinlogState = try GTIDState(parsing: "0-1001-101")
        var replica = Observation(instance: "db1002", agent: "host", agentStartedAt: now, observedAt: now, reachable: true)
        replica.serverID = 1002
        replica.gtidBinlogPos = try GTIDPosition(parsing: "0-1001-101")
        replica.gtidSlavePos = try GTIDPosition(parsing: "0-1001-101")
        replica.gtidCurrentPos = try GTIDPosition(parsing: "0-1001-101")
        #expect(replica.errantTransactions(comparedWith: primary) == nil)
        // Positions alone cannot see this one: the replicated GTID came after it.
        replica.gtidBinlogState = try GTIDState(parsing: "0-1001-101,0-1002-101")
        #expect(replica.errantGTIDs(primaryPosition: try GTIDPosition(parsing: "0-1001-101")).isEmpty)
        #expect(replica.errantTransactions(comparedWith: primary) == [GTID(domain: 0, server: 1002, sequence: 101)])
        primary.gtidBinlogState = nil
        #expect(replica.errantTransactions(comparedWith: primary) == nil)
    }

    @Test("stored as the server's text; observations stored without the new fields still decode")
    func codable() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var observation = Observation(instance: "db1002", agent: "host", agentStartedAt: now, observedAt: now, reachable: true)
        observation.gtidBinlogState = try GTIDState(parsing: "0-1002-7,0-1001-42")
        observation.logSlaveUpdates = true
        let stored = String(decoding: try ObservationJSON.encode(observation), as: UTF8.self)
        #expect(stored.contains(#""gtid_binlog_state":"0-1001-42,0-1002-7""#) && stored.contains(#""log_slave_updates":true"#), "\(stored)")
        #expect(try ObservationJSON.decode(Array(stored.utf8)) == observation)

        let older = #"""
            {"agent":"host","agent_started_at":"2027-01-15T08:00:00.000Z","gtid_binlog_pos":"0-1001-42","instance":"db1002",
             "log_bin":true,"observed_at":"2027-01-15T08:00:00.000Z","reachable":true,"replication":[],"schema":1,"server_id":1002}
            """#
        let decoded = try ObservationJSON.decode(Array(older.utf8))
        #expect(decoded.gtidBinlogState == nil && decoded.logSlaveUpdates == nil && decoded.logBin == true)
        #expect(throws: (any Error).self) {
            try ObservationJSON.decode(Array(older.replacingOccurrences(of: #""log_bin""#, with: #""gtid_binlog_state":"0-1-x","log_bin""#).utf8))
        }
    }
}
