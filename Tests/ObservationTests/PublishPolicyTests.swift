import Foundation
import Observation
import Testing

let start = Date(timeIntervalSince1970: 1_800_000_000)

func replica(lag: Double?, io: String = "Yes", sql: String = "Yes", gtid: String = "0-1001-10", at seconds: TimeInterval = 0) -> Observation {
    var observation = Observation(
        instance: "db1002", agent: "host", agentStartedAt: start, observedAt: start + seconds, reachable: true,
        replication: [
            ReplicationChannel(
                sourceHost: "127.0.0.1", sourcePort: 3306, ioThread: io, sqlThread: sql,
                usingGTID: "Slave_Pos", secondsBehindMaster: 0,
                gtidIOPos: try? GTIDPosition(parsing: gtid))
        ])
    observation.serverID = 1002
    observation.readOnly = true
    observation.gtidCurrentPos = try? GTIDPosition(parsing: gtid)
    observation.heartbeatLag = lag
    return observation
}

@Suite("When an agent publishes")
struct PublishPolicyTests {
    let policy = PublishPolicy(lagBands: [2, 5, 10], refreshInterval: 10)

    @Test(
        "meaningful changes publish at once; positions and in-band lag wait for the refresh",
        arguments: [
            ("first", nil, replica(lag: 0.3), "first observation"),
            ("same", replica(lag: 0.3), replica(lag: 0.4, gtid: "0-1001-99", at: 1), nil),
            ("lag within the band", replica(lag: 2.1), replica(lag: 4.9, at: 1), nil),
            ("lag crossing up", replica(lag: 4.9), replica(lag: 5.1, at: 1), "lag band changed"),
            ("lag crossing down", replica(lag: 5.1), replica(lag: 1.0, at: 1), "lag band changed"),
            ("lag lost", replica(lag: 0.3), replica(lag: nil, at: 1), "lag band changed"),
            ("sql thread stopped", replica(lag: 0.3), replica(lag: 0.3, sql: "No", at: 1), "replication changed"),
            ("io connecting", replica(lag: 0.3), replica(lag: 0.3, io: "Connecting", at: 1), "replication changed"),
            ("refresh due", replica(lag: 0.3), replica(lag: 0.3, at: 10), "refresh"),
        ] as [(String, Observation?, Observation, String?)])
    func table(name: String, published: Observation?, current: Observation, expected: String?) {
        #expect(
            policy.reason(toPublish: current, after: published, publishedAt: published?.observedAt, now: current.observedAt) == expected, "\(name)")
    }

    @Test("unreachable and back, read_only and errors publish at once")
    func states() {
        let good = replica(lag: 0.3)
        var down = Observation(
            instance: "db1002", agent: "host", agentStartedAt: start, observedAt: start + 1, reachable: false,
            error: "read timeout", lastGoodProbeAt: start)
        #expect(policy.reason(toPublish: down, after: good, publishedAt: start, now: start + 1) == "unreachable")
        #expect(policy.reason(toPublish: good, after: down, publishedAt: start + 1, now: start + 2) == "reachable again")
        down.error = "connection refused"
        var earlier = down
        earlier.error = "read timeout"
        #expect(policy.reason(toPublish: down, after: earlier, publishedAt: start, now: start + 1) == "error changed")
        var writable = good
        writable.readOnly = false
        #expect(policy.reason(toPublish: writable, after: good, publishedAt: start, now: start + 1) == "read_only changed")
    }

    @Test("log_slave_updates is a binlog setting; a binlog state moving is not meaningful on its own")
    func binlogSettings() throws {
        var before = replica(lag: 0.3)
        before.logSlaveUpdates = true
        before.gtidBinlogState = try GTIDState(parsing: "0-1001-10")
        var after = before
        after.observedAt = start + 1
        after.gtidBinlogState = try GTIDState(parsing: "0-1001-11")
        #expect(policy.reason(toPublish: after, after: before, publishedAt: start, now: start + 1) == nil)
        after.logSlaveUpdates = false
        #expect(policy.reason(toPublish: after, after: before, publishedAt: start, now: start + 1) == "binlog settings changed")
    }

    @Test("an idle instance is written once per refresh interval: 6 writes in a minute of 1 s probes")
    func steadyState() {
        var published: Observation?
        var publishedAt: Date?
        var writes = 0
        for second in 0..<60 {
            let current = replica(lag: 0.2 + Double(second % 3) * 0.1, gtid: "0-1001-\(second)", at: TimeInterval(second))
            if policy.reason(toPublish: current, after: published, publishedAt: publishedAt, now: current.observedAt) != nil {
                writes += 1
                published = current
                publishedAt = current.observedAt
            }
        }
        #expect(writes == 6)
    }
}
