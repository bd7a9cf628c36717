import EtcdClient
import Foundation
import MarinaTwins
import Observation
import Policy
import Synchronization
import Testing
import Topology

@testable import Controller

/// The leader's automatic depool loop (`DepoolLoop.tick`: one read transaction, the engine, at
/// most one commit with the state) on the twin store, under each guard rail, with a wall
/// clock the test moves. The engine's decisions alone are tested in `PolicyEngineTests`; these
/// check what the loop commits, and that a guard rail leaves the source of truth untouched.
@Suite("automatic depool decisions on the twin store")
struct DepoolDecisionTests {
    final class WallClock: Sendable {
        private let date = Mutex(Date(timeIntervalSince1970: 1_900_000_000))
        var now: Date { date.withLock { $0 } }
        func advance(_ seconds: Double) { date.withLock { $0 = $0.addingTimeInterval(seconds) } }
    }

    struct Setup {
        let site: TwinSite
        let controller: TwinController
        let loop: DepoolLoop
        let wall: WallClock
    }

    static func setup(
        _ policy: DepoolPolicy = DepoolPolicy(depoolLag: 5, depoolAfter: 10, minInterval: 5),
        minReplicas: Int = 1
    ) async throws -> Setup {
        let site = try await TwinSite(minReplicas: minReplicas)
        let controller = site.controller("c1")
        _ = try await controller.campaign()
        let wall = WallClock()
        let loop = DepoolLoop(context: controller.context, depool: ControllerConfiguration.Depool(defaults: policy), now: { wall.now })
        return Setup(site: site, controller: controller, loop: loop, wall: wall)
    }

    /// Observations as the agents publish them: the primary wrote its heartbeat just now; each
    /// replica replicates with `lags[name]` of heartbeat lag, its SQL thread that far behind
    /// when `witness` (else not behind at all, as when the primary's heartbeat stalled).
    static func observe(_ setup: Setup, lags: [String: Double], witness: Bool = true, primaryHeartbeatAge: Double = 0) async throws {
        let now = setup.wall.now
        var primary = Observation(instance: "db1001", agent: "a", agentStartedAt: now, observedAt: now, reachable: true)
        primary.readOnly = false
        primary.heartbeatLag = primaryHeartbeatAge
        primary.heartbeatWrittenAt = now.addingTimeInterval(-primaryHeartbeatAge)
        var values = ["db1001": primary]
        for name in ["db1002", "db1003"] {
            let lag = lags[name] ?? 0
            var replica = Observation(
                instance: name, agent: "a", agentStartedAt: now, observedAt: now, reachable: true,
                replication: [
                    ReplicationChannel(
                        sourceHost: "10.64.0.1", sourcePort: 3306, sourceServerID: 1001, ioThread: "Yes", sqlThread: "Yes",
                        usingGTID: "Slave_Pos", secondsBehindMaster: witness ? Int(lag) : 0)
                ])
            replica.readOnly = true
            replica.heartbeatLag = lag
            values[name] = replica
        }
        for (name, observation) in values {
            try await setup.site.store.put(setup.site.keys.observed + name, try ObservationJSON.encode(observation))
        }
    }

    /// Ticks every `step` seconds of wall time for `seconds`, with fresh observations each time.
    static func run(
        _ setup: Setup, for seconds: Double, step: Double = 1, lags: [String: Double], witness: Bool = true,
        primaryHeartbeatAge: Double = 0
    ) async throws {
        var elapsed = 0.0
        while elapsed <= seconds {
            try await observe(setup, lags: lags, witness: witness, primaryHeartbeatAge: primaryHeartbeatAge)
            try await setup.loop.tick()
            setup.wall.advance(step)
            elapsed += step
        }
    }

    static func pooled(_ setup: Setup) async throws -> [String: Bool] {
        let topology = try await setup.site.committedTopology()
        var pooled = [String: Bool]()
        for name in ["db1002", "db1003"] { pooled[name] = topology.instances[name]?.sections[TwinSite.section]?.pooled }
        return pooled
    }

    static func state(_ setup: Setup) async throws -> PolicyState {
        guard let kv = try await setup.site.store.value(setup.site.keys.policyState) else { return PolicyState() }
        return try PolicyJSON.decode(kv.value)
    }

    @Test("hysteresis: a lagging replica is depooled only once it has lagged for depool_after, then committed with the state")
    func hysteresis() async throws {
        let setup = try await Self.setup()
        try await Self.run(setup, for: 8, lags: ["db1002": 20])
        #expect(try await Self.pooled(setup) == ["db1002": true, "db1003": true])
        try await Self.run(setup, for: 3, lags: ["db1002": 20])
        #expect(try await Self.pooled(setup) == ["db1002": false, "db1003": true])
        #expect(try await Self.state(setup).managed["db1002"]?.phase == .depooled)
    }

    @Test("no second witness: the primary's heartbeat stalled, every replica 'lags' by it; nothing is depooled and the refusal says why")
    func stalledPrimaryHeartbeat() async throws {
        let setup = try await Self.setup()
        try await Self.run(setup, for: 15, lags: ["db1002": 20, "db1003": 20], witness: false, primaryHeartbeatAge: 20)
        #expect(try await Self.pooled(setup) == ["db1002": true, "db1003": true])
        let refusal = try #require(try await Self.state(setup).refusals["db1002"])
        #expect(refusal.reason.contains("the heartbeat on the primary db1001 stalled"), "\(refusal.reason)")
    }

    @Test("the section's minimum: the second lagging replica stays pooled, refused with the minimum")
    func minimum() async throws {
        let setup = try await Self.setup()
        try await Self.run(setup, for: 20, lags: ["db1002": 20, "db1003": 20])
        let pooled = try await Self.pooled(setup)
        #expect(pooled.values.filter { !$0 }.count == 1, "\(pooled)")
        let refused = try #require(pooled.first { $0.value }?.key)
        #expect(try await Self.state(setup).refusals[refused]?.reason.contains("below its minimum of 1") == true)
    }

    @Test("the maximum share: with no minimum, max_depooled_fraction 0.5 of two replicas holds the second one pooled")
    func maximumShare() async throws {
        let setup = try await Self.setup(DepoolPolicy(depoolLag: 5, depoolAfter: 10, maxDepooledFraction: 0.5, minInterval: 0), minReplicas: 0)
        try await Self.run(setup, for: 20, lags: ["db1002": 20, "db1003": 20])
        let pooled = try await Self.pooled(setup)
        #expect(pooled.values.filter { !$0 }.count == 1, "\(pooled)")
        let refused = try #require(pooled.first { $0.value }?.key)
        #expect(try await Self.state(setup).refusals[refused]?.reason.contains("max_depooled_fraction") == true)
    }

    @Test("the rate limit: a second change in the section waits min_interval after the first")
    func rateLimit() async throws {
        let setup = try await Self.setup(DepoolPolicy(depoolLag: 5, depoolAfter: 10, maxDepooledFraction: 1, minInterval: 30), minReplicas: 0)
        try await Self.run(setup, for: 12, lags: ["db1002": 20, "db1003": 20])
        #expect(try await Self.pooled(setup).values.filter { !$0 }.count == 1)
        let state = try await Self.state(setup)
        #expect(state.refusals.values.contains { $0.reason.hasPrefix("rate limit") }, "\(state.refusals)")
        try await Self.run(setup, for: 30, lags: ["db1002": 20, "db1003": 20])
        #expect(try await Self.pooled(setup) == ["db1002": false, "db1003": false])
    }

    @Test("a section whose lock an operation holds: nothing automatic happens there")
    func busySection() async throws {
        let setup = try await Self.setup()
        try await setup.site.store.put(setup.site.keys.lock(TwinSite.section), "op-1")
        try await Self.run(setup, for: 20, lags: ["db1002": 20])
        #expect(try await Self.pooled(setup) == ["db1002": true, "db1003": true])
    }

    @Test("an observation that does not decode depools nothing")
    func unreadableObservation() async throws {
        let setup = try await Self.setup()
        for _ in 0...20 {
            try await Self.observe(setup, lags: ["db1002": 20])
            try await setup.site.store.put(setup.site.keys.observed + "db1002", "{garbage")
            try await setup.loop.tick()
            setup.wall.advance(1)
        }
        #expect(try await Self.pooled(setup) == ["db1002": true, "db1003": true])
    }

    @Test("etcd without quorum: the tick fails, nothing is committed; a controller that lost the lead commits nothing")
    func noQuorumAndNoLead() async throws {
        let setup = try await Self.setup()
        try await Self.run(setup, for: 8, lags: ["db1002": 20])
        let revision = setup.site.store.revision
        setup.site.store.fail(.unreachable)
        setup.wall.advance(5)
        await #expect(throws: EtcdError.self) { try await setup.loop.tick() }
        setup.site.store.heal()
        #expect(setup.site.store.revision == revision)

        // Another controller leads now: the lapsed leader's commit loses its compare.
        setup.site.clock.advance(seconds: Double(TwinSite.ttl) + 1)
        #expect(try await setup.site.controller("c2").campaign())
        try await Self.run(setup, for: 5, lags: ["db1002": 20])
        #expect(try await Self.pooled(setup) == ["db1002": true, "db1003": true])
    }
}
