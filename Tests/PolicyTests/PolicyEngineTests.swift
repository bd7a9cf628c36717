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
    return Topology(datacenters: ["dc1"], sections: ["s1": Section(name: "s1", primary: "db1001", datacenter: "dc1", minReplicas: minReplicas)],
                    instances: instances)
}

func lagging(_ lags: [String: Double?]) -> [String: Observation] {
    var observations = [String: Observation]()
    for (name, lag) in lags {
        var observation = Observation(instance: name, agent: "a", agentStartedAt: start, observedAt: start, reachable: true)
        observation.replication = [ReplicationChannel(sourceHost: "10.0.0.1", sourcePort: 3306, ioThread: "Yes", sqlThread: "Yes", usingGTID: "Slave_Pos")]
        observation.heartbeatLag = lag
        observations[name] = observation
    }
    return observations
}

/// A policy engine driven by a manual clock, applying each change to the topology as the controller's commit would.
struct Harness {
    var engine = PolicyEngine(defaults: DepoolPolicy(depoolLag: 5, depoolAfter: 10, repoolLag: 2, repoolAfter: 30, ladder: [25, 50, 100],
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

    @Test("flapping lag: short spikes never depool; lag between repool_lag and depool_lag neither depools nor repools; a relapse while repooling depools again")
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
        let busy = other.engine.evaluate(now: start.addingTimeInterval(100), topology: other.topology, observations: vanished, state: other.state,
                                         timers: &timers, busySections: ["s1"])
        #expect(busy.change == nil)
        other.run(vanished, seconds: 11)
        #expect(other.changes == [.depool(instance: "db1004", section: "s1", reason: "no observation (its agent vanished) for 10 s")])
    }

    @Test("a policy's problems are named")
    func problems() {
        #expect(DepoolPolicy().problems().isEmpty)
        #expect(DepoolPolicy(depoolLag: 5, repoolLag: 5).problems() == ["repool_lag must be at least 0 and below depool_lag (hysteresis)"])
        #expect(DepoolPolicy(ladder: [50, 25, 100]).problems() == ["ladder must be increasing percentages between 1 and 100, ending at 100"])
    }
}
