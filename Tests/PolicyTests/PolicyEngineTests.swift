import Foundation
import Observation
import Policy
import Testing
import Topology

let start = Date(timeIntervalSince1970: 1_800_000_000)

/// s1: db1001 primary; db1002, db1003, db1004 pooled replicas; at least 1 pooled.
func section(replicas: [String] = ["db1002", "db1003", "db1004"], minReplicas: Int = 1) -> Topology {
    var instances = ["db1001": Instance(name: "db1001", host: "10.0.0.1", datacenter: "dc1", sections: ["s1": Membership(pooled: true, weight: 0)])]
    for name in replicas {
        instances[name] = Instance(name: name, host: "10.0.0.2", datacenter: "dc1", sections: ["s1": Membership(pooled: true, weight: 100)])
    }
    return Topology(
        datacenters: ["dc1"], sections: ["s1": Section(name: "s1", primary: "db1001", datacenter: "dc1", minReplicas: minReplicas)],
        instances: instances)
}

/// The replicas' observations at `start` with these lags, and the primary db1001's, whose
/// heartbeat writer last wrote at `start`: every replica's lag is its own.
func lagging(_ lags: [String: Double?], primaryWrote written: Date? = start) -> [String: Observation] {
    var observations = [String: Observation]()
    var primary = Observation(instance: "db1001", agent: "a", agentStartedAt: start, observedAt: start, reachable: true)
    primary.heartbeatLag = 0
    primary.heartbeatWrittenAt = written
    observations["db1001"] = primary
    for (name, lag) in lags {
        var observation = Observation(instance: name, agent: "a", agentStartedAt: start, observedAt: start, reachable: true)
        observation.replication = [
            ReplicationChannel(sourceHost: "10.0.0.1", sourcePort: 3306, ioThread: "Yes", sqlThread: "Yes", usingGTID: "Slave_Pos")
        ]
        observation.heartbeatLag = lag
        observations[name] = observation
    }
    return observations
}

/// A policy engine driven by a manual clock, applying each change to the topology as the controller's commit would.
struct Harness {
    var engine = PolicyEngine(
        defaults: DepoolPolicy(
            depoolLag: 5, depoolAfter: 10, repoolLag: 2, repoolAfter: 30, ladder: [25, 50, 100],
            stepPause: 60, maxDepooledFraction: 0.5, minInterval: 5))
    var topology = section()
    var state = PolicyState()
    var timers = PolicyEngine.Timers()
    var now = start
    var changes = [PolicyAction]()

    mutating func tick(_ observations: [String: Observation], after seconds: Double = 1) {
        now = now.addingTimeInterval(seconds)
        let (change, newState) = engine.evaluate(now: now, topology: topology, observations: observations, state: state, timers: &timers)
        state = newState
        guard let change else { return }
        changes.append(change)
        switch change {
        case .depool(let name, let section, _): topology = try! topology.applying(.depool(instance: name, section: section, group: nil))
        case .repool(let name, let section, let percentage, _):
            topology = try! topology.applying(.pool(instance: name, section: section, group: nil, percentage: percentage))
        case .refused: break
        }
    }

    mutating func run(_ observations: [String: Observation], seconds: Int) {
        for _ in 0..<seconds { tick(observations) }
    }

    func pooled(_ name: String) -> Bool { topology.instances[name]!.sections["s1"]!.pooled }
    func percentage(_ name: String) -> Int { topology.instances[name]!.sections["s1"]!.percentage }
}

@Suite("Depool policy")
struct PolicyEngineTests {
    let healthy = lagging(["db1002": 0.3, "db1003": 0.3, "db1004": 0.3])

    @Test("a replica lagging for depool_after is depooled, with the lag and the duration as the reason; not before")
    func depoolsAfterDelay() {
        var harness = Harness()
        let slow = lagging(["db1002": 12.4, "db1003": 0.3, "db1004": 0.3])
        harness.run(slow, seconds: 9)
        #expect(harness.changes.isEmpty)
        harness.run(slow, seconds: 2)
        #expect(harness.changes == [.depool(instance: "db1002", section: "s1", reason: "lag 12.4 s > 5 s for 10 s")])
        #expect(!harness.pooled("db1002"))
        #expect(harness.state.describe("db1002") == "depooled by policy (lag 12.4 s > 5 s for 10 s)")
    }

    @Test("recovery repools step by step, 25 → 50 → 100, pausing at each, then Marina forgets it")
    func repoolLadder() {
        var harness = Harness()
        harness.run(lagging(["db1002": 30, "db1003": 0.3, "db1004": 0.3]), seconds: 11)
        #expect(!harness.pooled("db1002"))
        harness.run(healthy, seconds: 30)
        #expect(!harness.pooled("db1002"))  // repool_after is 30 s, counted from the first healthy observation
        harness.run(healthy, seconds: 1)
        #expect(harness.pooled("db1002") && harness.percentage("db1002") == 25)
        #expect(harness.state.describe("db1002") == "repooling at 25%")
        harness.run(healthy, seconds: 59)
        #expect(harness.percentage("db1002") == 25)
        harness.run(healthy, seconds: 1)
        #expect(harness.percentage("db1002") == 50)
        harness.run(healthy, seconds: 60)
        #expect(harness.percentage("db1002") == 100)
        #expect(harness.state.managed["db1002"] == nil)
        #expect(harness.changes.count == 4)
    }

    @Test(
        "flapping lag: short spikes never depool; lag between repool_lag and depool_lag neither depools nor repools; a relapse while repooling depools again"
    )
    func flapping() {
        var harness = Harness()
        for _ in 0..<10 {  // 5 s lagging, 5 s fine, over and over: never 10 s in a row
            harness.run(lagging(["db1002": 8, "db1003": 0.3, "db1004": 0.3]), seconds: 5)
            harness.run(healthy, seconds: 5)
        }
        #expect(harness.changes.isEmpty)

        harness.run(lagging(["db1002": 8, "db1003": 0.3, "db1004": 0.3]), seconds: 11)
        #expect(!harness.pooled("db1002"))
        harness.run(lagging(["db1002": 3, "db1003": 0.3, "db1004": 0.3]), seconds: 120)  // above repool_lag: hysteresis
        #expect(!harness.pooled("db1002"))
        harness.run(healthy, seconds: 31)
        #expect(harness.percentage("db1002") == 25 && harness.pooled("db1002"))
        harness.run(lagging(["db1002": 9, "db1003": 0.3, "db1004": 0.3]), seconds: 11)
        #expect(!harness.pooled("db1002"))
        #expect(harness.state.managed["db1002"]?.phase == .depooled)
        #expect(harness.state.managed["db1002"]?.originalPercentage == 100)
    }

    @Test("never below the section's minimum: the refusal is kept in the state until the reason passes")
    func minimum() {
        var harness = Harness()
        harness.topology = section(replicas: ["db1002", "db1003"], minReplicas: 1)
        harness.run(lagging(["db1002": 20, "db1003": 0.3]), seconds: 11)
        #expect(!harness.pooled("db1002"))
        harness.run(lagging(["db1002": 20, "db1003": 20]), seconds: 20)
        #expect(harness.pooled("db1003"))
        #expect(harness.state.refusals["db1003"]?.reason == "depooling db1003 would leave s1 0 pooled replicas, below its minimum of 1")
        #expect(harness.state.refusals["db1003"]?.since == start.addingTimeInterval(22))  // lagging from 12 s, refused from 22 s
        harness.run(lagging(["db1002": 20, "db1003": 0.3]), seconds: 1)
        #expect(harness.state.refusals.isEmpty)
    }

    @Test("never more than max_depooled_fraction of a section at once")
    func fraction() {
        var harness = Harness()
        harness.topology = section(replicas: ["db1002", "db1003", "db1004", "db1005"], minReplicas: 0)
        harness.run(lagging(["db1002": 20, "db1003": 20, "db1004": 20, "db1005": 0.3]), seconds: 30)
        #expect(!harness.pooled("db1002") && !harness.pooled("db1003"))
        #expect(harness.pooled("db1004"))
        #expect(harness.state.refusals["db1004"]?.reason.contains("more than max_depooled_fraction 0.5") == true)
    }

    @Test("rate limit: one change per section per min_interval, the wait reported")
    func rateLimit() {
        var harness = Harness()
        harness.topology = section(replicas: ["db1002", "db1003", "db1004", "db1005"], minReplicas: 0)
        harness.engine.defaults.minInterval = 60
        harness.run(lagging(["db1002": 20, "db1003": 20, "db1004": 0.3, "db1005": 0.3]), seconds: 11)
        #expect(harness.changes.count == 1)
        harness.run(lagging(["db1002": 20, "db1003": 20, "db1004": 0.3, "db1005": 0.3]), seconds: 30)
        #expect(harness.changes.count == 1)
        #expect(harness.state.refusals["db1003"]?.reason.hasPrefix("rate limit: the last automatic change in s1 was") == true)
        harness.run(lagging(["db1002": 20, "db1003": 20, "db1004": 0.3, "db1005": 0.3]), seconds: 30)
        #expect(harness.changes.count == 2)
    }

    @Test("a replica a human depooled is never touched; one a human repooled or re-weighted is Marina's no longer")
    func humans() {
        var harness = Harness()
        harness.topology = try! harness.topology.applying(.depool(instance: "db1003", section: "s1", group: nil))
        harness.run(lagging(["db1002": 0.3, "db1003": 0.1, "db1004": 0.3]), seconds: 300)
        #expect(!harness.pooled("db1003"))
        #expect(harness.changes.isEmpty)

        harness.run(lagging(["db1002": 20, "db1003": 0.1, "db1004": 0.3]), seconds: 11)
        #expect(harness.state.managed["db1002"] != nil)
        harness.topology = try! harness.topology.applying(.pool(instance: "db1002", section: "s1", group: nil, percentage: 10))  // a DBA steps in
        harness.run(lagging(["db1002": 0.3, "db1003": 0.1, "db1004": 0.3]), seconds: 300)
        #expect(harness.state.managed["db1002"] == nil)
        #expect(harness.percentage("db1002") == 10)
        #expect(harness.changes.count == 1)
    }

    @Test("broken replication and a vanished agent depool too; a busy section is left alone")
    func brokenAndVanished() {
        var harness = Harness()
        var broken = healthy
        broken["db1002"]?.replication[0].sqlThread = "No"
        broken["db1002"]?.replication[0].lastSQLError = "Duplicate entry"
        harness.run(broken, seconds: 11)
        if case .depool(_, _, let reason) = harness.changes.first {
            #expect(reason == "replication broken (IO Yes, SQL No: Duplicate entry) for 10 s")
        } else {
            Issue.record("no depool: \(harness.changes)")
        }

        var other = Harness()
        var vanished = healthy
        vanished["db1004"] = nil
        var timers = PolicyEngine.Timers()
        let busy = other.engine.evaluate(
            now: start.addingTimeInterval(100), topology: other.topology, observations: vanished, state: other.state,
            timers: &timers, busySections: ["s1"])
        #expect(busy.change == nil)
        other.run(vanished, seconds: 11)
        #expect(other.changes == [.depool(instance: "db1004", section: "s1", reason: "no observation (its agent vanished) for 10 s")])
    }

    @Test("the primary's heartbeat stalled: replicas lagging by it alone are never depooled, each refusal names the primary and lasts")
    func stalledPrimaryHeartbeat() {
        var harness = Harness()
        // The writer stopped 20 s before the probes; the replicas applied everything it wrote.
        let stalled = lagging(["db1002": 20, "db1003": 20, "db1004": 20], primaryWrote: start.addingTimeInterval(-20))
        harness.run(stalled, seconds: 60)
        #expect(harness.changes.isEmpty)
        #expect(["db1002", "db1003", "db1004"].allSatisfy(harness.pooled))
        let reason =
            "the heartbeat on the primary db1001 stalled: db1002 has applied the heartbeats db1001 wrote, and its SQL thread is not behind, so its lag is the primary's, not its own"
        #expect(
            harness.state.refusals["db1002"]
                == PolicyState.Refusal(section: "s1", action: "depool", reason: reason, since: start.addingTimeInterval(11)))
        #expect(Set(harness.state.refusals.keys) == ["db1002", "db1003", "db1004"])

        // The heartbeat resumes after the replicas' last probes: that proves nothing yet about them, however long they were bad.
        var resumed = stalled
        resumed["db1001"]!.observedAt = start.addingTimeInterval(1)
        resumed["db1001"]!.heartbeatWrittenAt = start.addingTimeInterval(1)
        harness.run(resumed, seconds: 5)
        #expect(harness.changes.isEmpty)
        #expect(harness.state.refusals["db1002"]?.reason.hasPrefix("no second witness of db1002's lag yet") == true)
        // Their next probes show them caught up: nothing to refuse any more.
        harness.run(lagging(["db1002": 0.3, "db1003": 0.3, "db1004": 0.3], primaryWrote: start.addingTimeInterval(1)), seconds: 1)
        #expect(harness.state.refusals.isEmpty)
        #expect(harness.changes.isEmpty)
    }

    @Test(
        "second witnesses: the replica's own SQL thread behind, or the primary having written what the replica lacks; with neither, no depool",
        arguments: [
            // (Seconds_Behind_Master, the primary's last write relative to the replica's probe, depooled)
            (Int?(25), -20.0, true),  // heartbeat stalled, but the replica's own SQL thread is 25 s behind
            (Int?(3), -20.0, false),  // stalled, and the SQL thread only 3 s behind (under depool_lag)
            (Int?(0), -1.0, true),  // the primary wrote 1 s before the probe: the replica misses 19 s of it
            (Int?(0), -14.0, true),  // wrote 14 s before: 6 s missed, over depool_lag
            (Int?(0), -16.0, false),  // wrote 16 s before: 4 s missed, under depool_lag
            (nil, 2.0, false),  // written after the replica's probe: nothing known about the replica yet
        ])
    func witnesses(behind: Int?, written: Double, depooled: Bool) {
        var harness = Harness()
        var observations = lagging(["db1002": 20, "db1003": 0.3, "db1004": 0.3], primaryWrote: start.addingTimeInterval(written))
        observations["db1002"]!.replication[0].secondsBehindMaster = behind
        harness.run(observations, seconds: 11)
        #expect(harness.pooled("db1002") == !depooled, "\(harness.state.refusals)")
        #expect((harness.state.refusals["db1002"] == nil) == depooled)
    }

    @Test("another heartbeat writer (pt-heartbeat): the primary's own measured heartbeat is the witness; no primary observation is none")
    func measuredPrimaryHeartbeat() {
        var fresh = lagging(["db1002": 12, "db1003": 0.3, "db1004": 0.3], primaryWrote: nil)
        fresh["db1001"]!.heartbeatLag = 0.5
        var harness = Harness()
        harness.run(fresh, seconds: 11)
        #expect(!harness.pooled("db1002"))

        var stale = fresh
        stale["db1001"]!.heartbeatLag = 12
        harness = Harness()
        harness.run(stale, seconds: 11)
        #expect(harness.pooled("db1002"))
        #expect(harness.state.refusals["db1002"]?.reason.hasPrefix("the heartbeat on the primary db1001 stalled") == true)

        var gone = fresh
        gone["db1001"] = nil
        harness = Harness()
        harness.run(gone, seconds: 11)
        #expect(harness.pooled("db1002"))
        #expect(
            harness.state.refusals["db1002"]?.reason.hasPrefix("no second witness of db1002's lag: the primary db1001 shows no heartbeat") == true)

        // Broken replication needs no witness.
        var broken = gone
        broken["db1002"]!.replication[0].ioThread = "No"
        harness = Harness()
        harness.run(broken, seconds: 11)
        #expect(!harness.pooled("db1002"))
    }

    @Test("a policy's problems are named")
    func problems() {
        #expect(DepoolPolicy().problems().isEmpty)
        #expect(DepoolPolicy(depoolLag: 5, repoolLag: 5).problems() == ["repool_lag must be at least 0 and below depool_lag (hysteresis)"])
        #expect(DepoolPolicy(ladder: [50, 25, 100]).problems() == ["ladder must be increasing percentages between 1 and 100, ending at 100"])
    }
}
