import EtcdClient
import Foundation
import MarinaTwins
import Operations
import Testing
import Topology
import TopologyStore

@testable import Controller

/// The failover run on the twins: db1001, the primary, killed; the real `OperationRun` promotes
/// a replica. Every statement is watched (`TwinSite`): never two writable instances, never a
/// write by a controller that does not lead.
@Suite("failover decisions on the twins")
struct FailoverTwinDecisionTests {
    /// Writes a failover request as `marina failover` does; gives its id.
    static func requestFailover(_ site: TwinSite, id: String = "fo-\(UUID().uuidString.prefix(8))") async throws -> String {
        var record = OperationRecord(
            id: id, kind: "failover", section: TwinSite.section, candidate: "", reason: "test", requestedBy: "test", requestedAt: Date())
        record.failover = FailoverDetails(automatic: false)
        _ = try await site.store.transaction(
            Transaction(
                compares: [.absent(site.keys.operation(id))],
                success: [.put(site.keys.operation(id), try OperationJSON.encode(record)), .put(site.keys.request(id), id)]))
        return id
    }

    /// What the servers and the source of truth say after a failover that ended `done`: one
    /// writer, the candidate, committed; the other replica under it; db1001 marked to rejoin.
    static func promotedProblems(_ site: TwinSite, _ record: OperationRecord) async throws -> [String] {
        var problems = [String]()
        if site.writable != [record.candidate] { problems.append("writable: \(site.writable), candidate \(record.candidate)") }
        let topology = try await site.committedTopology()
        if topology.sections[TwinSite.section]?.primary != record.candidate {
            problems.append("committed primary \(topology.sections[TwinSite.section]?.primary ?? "-")")
        }
        if topology.instances["db1001"]?.sections[TwinSite.section]?.needsRejoin?.newPrimary != record.candidate {
            problems.append("db1001 is not marked to rejoin under \(record.candidate)")
        }
        for name in ["db1002", "db1003"] where name != record.candidate {
            let source = site.server(name).source
            if source?.host != site.server(record.candidate).host || !site.server(name).isReplicating {
                problems.append("\(name) replicates from \(source.map { "\($0.host)" } ?? "nobody") (running: \(site.server(name).isReplicating))")
            }
        }
        return problems
    }

    @Test("a failover on the twins: a replica promoted, the other under it, the old primary marked; refused while db1001 lives")
    func forward() async throws {
        let site = try await TwinSite()
        let controller = site.controller("c1")
        try await controller.campaign()
        let alive = try await Self.requestFailover(site)
        try await controller.handle(alive)
        #expect(try await site.operation(alive)?.state == .refused)
        #expect(site.writable == ["db1001"])

        try await site.kill("db1001")
        let id = try await Self.requestFailover(site)
        try await controller.handle(id)
        let record = try #require(try await site.operation(id))
        #expect(record.state == .done, "\(record.state) \(record.refusals) \(record.failure.map { "\($0)" } ?? "") \(record.attention)")
        #expect(try await Self.promotedProblems(site, record) == [])
        #expect(site.violations == [])
        #expect(site.lockHolder == nil)
    }

    static func requestsOfOneRun() async throws -> Int {
        let site = try await TwinSite()
        try await site.kill("db1001")
        let view = CuttingStore(site.store, cutAt: nil)
        let controller = site.controller("c1", store: view)
        try await controller.campaign()
        let id = try await requestFailover(site)
        try await controller.handle(id)
        guard try await site.operation(id)?.state == .done else { throw TwinSiteError("the uncut failover did not finish") }
        return view.requests
    }

    /// The leader is cut from etcd at its n-th request (the request lost, or its answer lost
    /// after it applied), its lease expires, and a second controller takes over. For every n,
    /// the failover ends with exactly one promotion (never a second candidate, never two
    /// writers), or never started; and since every live host answers, never left for a human.
    @Test("the leader cut from etcd at every one of its requests during a failover: one promotion, by whichever leader", arguments: [false, true])
    func cutAtEveryRequest(answerLost: Bool) async throws {
        let total = try await Self.requestsOfOneRun()
        #expect(total > 10, "a failover makes more etcd requests than that: the count is wrong")
        for cut in 1...total {
            let site = try await TwinSite()
            try await site.kill("db1001")
            let first = site.controller("c1", store: CuttingStore(site.store, cutAt: cut, answerLost: answerLost))
            let id = try await Self.requestFailover(site)
            if (try? await first.campaign()) == true {
                do {
                    try await first.handle(id)
                } catch {
                    // Cut: the controller stops where it was, as if it died there.
                }
            }
            await first.close()
            let planned = try await site.operation(id)?.candidate ?? ""
            site.clock.advance(seconds: Double(TwinSite.ttl) + 1)

            let second = site.controller("c2")
            #expect(try await second.campaign(), "cut at \(cut): the second controller could not lead")
            try await second.recoverUnfinished()
            if try await site.operation(id)?.state == .requested { try await second.handle(id) }

            let record = try #require(try await site.operation(id))
            let where_ = "cut at request \(cut) of \(total)\(answerLost ? " (answer lost)" : ""), state \(record.state)"
            #expect(record.state == .done || record.state == .rolledBack, "\(where_): \(record.steps.map { "\($0.name) \($0.state)" })")
            if record.state == .done {
                #expect(try await Self.promotedProblems(site, record) == [], "\(where_)")
                #expect(planned.isEmpty || planned == record.candidate, "\(where_): planned \(planned), promoted \(record.candidate)")
            } else {
                // Stopped before its plan was made (the next leader found no steps): nothing promoted.
                #expect(site.writable == [], "\(where_): \(site.writable)")
            }
            #expect(site.violations == [], "\(where_)")
            #expect(site.lockHolder == nil, "\(where_): the lock is still held")
            await second.close()
        }
    }

    /// db1001 comes back (a freeze that ended, a network that healed) after the candidate was
    /// committed and before it takes writes. The last look at the old primary finds it
    /// answering: the failover stops for a human, the candidate stays read-only, and a next
    /// leader that finds the journal never goes forward from that decision.
    @Test("the old primary answering again before the point of no return: stopped for a human, never two writers, not overruled by the next leader")
    func oldPrimaryBack() async throws {
        let site = try await TwinSite()
        try await site.kill("db1001")
        let first = site.controller("c1", pauseBefore: "candidate-writable")
        try await first.campaign()
        let id = try await Self.requestFailover(site)
        async let ran: Void = first.handle(id)
        var paused = false
        for _ in 0..<500 where !paused {
            paused = try await site.operation(id)?.pausedBefore != nil
            if !paused { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(paused, "the failover never reached candidate-writable")
        site.server("db1001").start()
        _ = try await site.store.put(site.keys.resume + id, "go")
        try await ran

        let record = try #require(try await site.operation(id))
        #expect(record.state == .needsHuman, "\(record.state) \(record.attention)")
        #expect(
            record.failure?.host == "db1001" && record.failure?.error.hasPrefix("answers again") == true, "\(record.failure.map { "\($0)" } ?? "")")
        #expect(site.writable == ["db1001"], "\(site.writable)")
        #expect(try await site.committedTopology().sections[TwinSite.section]?.readOnly == true)
        #expect(site.violations == [])

        // A next leader recovering the same journal (as if the first had died after journaling the stop).
        var resumed = record
        resumed.state = .running
        _ = try await site.store.put(site.keys.operation(id), try OperationJSON.encode(resumed))
        _ = try await site.store.put(site.keys.lock(TwinSite.section), id)
        site.clock.advance(seconds: Double(TwinSite.ttl) + 1)
        let second = site.controller("c2")
        try await second.campaign()
        try await second.recoverUnfinished()
        #expect(try await site.operation(id)?.state == .needsHuman)
        #expect(site.writable == ["db1001"], "\(site.writable)")
        #expect(site.violations == [])
    }

    /// The candidate dies halfway (before it stops replicating): nothing can be promoted, so the
    /// failover stops for a human with the section read-only in the source of truth, and no
    /// instance takes writes.
    @Test("the candidate dying halfway through: stopped for a human, the section read-only, no writer")
    func candidateDiesHalfway() async throws {
        let site = try await TwinSite()
        try await site.kill("db1001")
        let controller = site.controller("c1", pauseBefore: "detach-candidate")
        try await controller.campaign()
        let id = try await Self.requestFailover(site)
        async let ran: Void = controller.handle(id)
        var paused: OperationRecord?
        for _ in 0..<500 where paused == nil {
            paused = try await site.operation(id).flatMap { $0.pausedBefore != nil ? $0 : nil }
            if paused == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let candidate = try #require(paused, "the failover never reached detach-candidate").candidate
        site.server(candidate).stop()
        _ = try await site.store.put(site.keys.resume + id, "go")
        try await ran

        let record = try #require(try await site.operation(id))
        #expect(record.state == .needsHuman, "\(record.state) \(record.attention)")
        #expect(record.failure?.host == candidate, "\(record.failure.map { "\($0)" } ?? "")")
        #expect(site.writable == [])
        let section = try await site.committedTopology().sections[TwinSite.section]
        #expect(section?.readOnly == true && section?.primary == "db1001")
        #expect(site.violations == [])
        #expect(site.lockHolder == nil)
    }
}
