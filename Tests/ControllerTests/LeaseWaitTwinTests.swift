import EtcdClient
import Foundation
import MarinaTwins
import Observation
import Operations
import StoredRecords
import Testing
import Topology
import TopologyStore

@testable import Controller

/// The failover's wait for the old primary's lease, on the twins: db1001 stopped with its agent
/// silent (a host cut off), its lease key in the twin etcd. Nobody may be made writable while
/// the key is there; a key that outlives its time-to-live is renewed, and the failover is
/// refused. The twin etcd's leases expire on its manual clock, so the test decides when.
@Suite("failover waits for the old primary's lease (twins)")
struct LeaseWaitTwinTests {
    static let settings = ControllerConfiguration.Failover(primaryLeaseTTL: 2, primaryLeaseMargin: 0.2)

    /// The lease db1001's agent held, bound to a twin lease of `ttl` seconds.
    static func holdLease(_ site: TwinSite, ttl: Int64 = 2) async throws -> Int64 {
        let lease = try await site.store.grantLease(ttl: ttl)
        let record = PrimaryLease(section: TwinSite.section, instance: "db1001", agent: "host-db1001", ttl: Int(ttl), margin: 0.2, acquiredAt: Date())
        _ = try await site.store.put(site.keys.primaryLease(TwinSite.section), try StoredJSON.encode(record), lease: lease.id)
        return lease.id
    }

    @Test("the candidate takes writes only after the old primary's lease vanished, then the margin")
    func waitsForExpiry() async throws {
        let site = try await TwinSite()
        _ = try await Self.holdLease(site)
        site.server("db1001").stop()  // no agent report: the host is cut off, agent and all
        let controller = site.controller("c1", failover: Self.settings)
        try await controller.campaign()
        let id = try await FailoverTwinDecisionTests.requestFailover(site)
        async let handled: Void = controller.handle(id)

        // The lease stands: for a while, nobody is writable and nothing is committed.
        let until = Date().addingTimeInterval(0.8)
        while Date() < until {
            #expect(site.writable == [], "writable while the old primary's lease stands: \(site.writable)")
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await site.committedTopology().sections[TwinSite.section]?.primary == "db1001")
        #expect(try await site.store.value(site.keys.primaryLease(TwinSite.section)) != nil)

        site.clock.advance(seconds: 3)  // the agent renewed nothing: etcd lets the lease expire
        try await handled
        let record = try #require(try await site.operation(id))
        #expect(record.state == .done, "\(record.state) \(record.refusals) \(record.failure.map { "\($0)" } ?? "")")
        #expect(record.failover?.leaseWait?.contains("expired") == true, "\(record.failover?.leaseWait ?? "-")")
        #expect(try await FailoverTwinDecisionTests.promotedProblems(site, record) == [])
        #expect(site.violations == [])
    }

    @Test("a lease still renewed after its time-to-live refuses the failover: the old primary's host reaches etcd")
    func renewedLeaseRefuses() async throws {
        let site = try await TwinSite()
        _ = try await Self.holdLease(site)
        site.server("db1001").stop()
        let controller = site.controller("c1", failover: Self.settings)
        try await controller.campaign()
        let id = try await FailoverTwinDecisionTests.requestFailover(site)
        try await controller.handle(id)  // the manual clock never moves: the lease lives on
        let record = try #require(try await site.operation(id))
        #expect(record.state == .refused)
        #expect(record.refusals.contains { $0.contains("still renewed by db1001's agent") }, "\(record.refusals)")
        #expect(site.writable == [])
        #expect(try await site.committedTopology().sections[TwinSite.section]?.primary == "db1001")
        #expect(site.lockHolder == nil)
    }

    @Test("a lease key that does not decode, or names another instance, refuses the failover and changes nothing")
    func garbledLeaseRefuses() async throws {
        for (value, expected) in [
            (Array("not json".utf8), "is not a primary lease this controller can read"),
            (
                try StoredJSON.encode(PrimaryLease(section: "s1", instance: "db1003", agent: "x", ttl: 2, margin: 0.2, acquiredAt: Date())),
                "names db1003, not its primary db1001"
            ),
        ] {
            let site = try await TwinSite()
            _ = try await site.store.put(site.keys.primaryLease(TwinSite.section), value)
            site.server("db1001").stop()
            let controller = site.controller("c1", failover: Self.settings)
            try await controller.campaign()
            let id = try await FailoverTwinDecisionTests.requestFailover(site)
            try await controller.handle(id)
            let record = try #require(try await site.operation(id))
            #expect(record.state == .refused)
            #expect(record.refusals.contains { $0.contains(expected) }, "\(record.refusals)")
            #expect(site.writable == [])
        }
    }

    @Test("no lease key and no agent report: the full primary_lease_ttl + margin passes before anyone takes writes")
    func noKeyWaitsTheWholeLease() async throws {
        let site = try await TwinSite()
        site.server("db1001").stop()
        let controller = site.controller("c1", failover: Self.settings)
        try await controller.campaign()
        let id = try await FailoverTwinDecisionTests.requestFailover(site)
        let started = ContinuousClock.now
        try await controller.handle(id)
        let record = try #require(try await site.operation(id))
        #expect(record.state == .done, "\(record.state) \(record.refusals)")
        #expect(ContinuousClock.now - started >= .milliseconds(2200))
        #expect(record.failover?.leaseWait?.contains("primary_lease_ttl + primary_lease_margin") == true)
        #expect(site.violations == [])
    }
}
