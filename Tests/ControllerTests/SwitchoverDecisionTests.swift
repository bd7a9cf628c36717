import EtcdClient
import Foundation
import MarinaTwins
import Operations
import Testing
import TopologyStore

@testable import Controller

/// The switchover's decisions on the in-memory twins: the real `OperationRun`, `Hosts` and
/// `Leadership`, with etcd and MariaDB replaced by twins, so that every crash point can be
/// tried in a fraction of a second. The integration tests on real servers stay; these reach
/// the interleavings those cannot.
@Suite("switchover decisions on the twins")
struct SwitchoverDecisionTests {
    @Test("a switchover on the twins ends done: db1002 the only writer, the others under it, nothing lost")
    func forward() async throws {
        let site = try await TwinSite()
        let controller = site.controller("c1")
        #expect(try await controller.campaign())
        try await site.applicationWrite()
        let id = try await site.requestSwitchover(to: "db1002")
        try await controller.handle(id)
        let record = try #require(try await site.operation(id))
        #expect(record.state == .done, "\(record.steps.map { "\($0.name): \($0.state) \($0.error ?? "")" })")
        #expect(try await site.settledProblems(record) == [])
        #expect(site.violations == [])
        #expect(site.lockHolder == nil)
        #expect(try await site.applicationWrite())
    }

    /// The commit of the new primary is checked against the source of truth's rules in
    /// preflight: a candidate the rules refuse as primary (here, depooled) is refused before
    /// the old primary goes read-only, not rolled back from inside the window.
    @Test("a depooled candidate is refused before anything changes, not rolled back from inside the flip")
    func depooledCandidate() async throws {
        let site = try await TwinSite()
        let sourceOfTruth = TopologyStore(etcd: site.store, keys: site.keys)
        guard
            case .success(let prepared) = try await sourceOfTruth.prepare(
                [.depool(instance: "db1002", section: TwinSite.section, group: nil)], message: "depool db1002",
                by: .init(author: "test", now: Date()), kind: .commit),
            case .committed = try await sourceOfTruth.commit(prepared)
        else {
            Issue.record("db1002 could not be depooled")
            return
        }
        let controller = site.controller("c1")
        #expect(try await controller.campaign())
        let id = try await site.requestSwitchover(to: "db1002")
        try await controller.handle(id)
        let record = try #require(try await site.operation(id))
        #expect(record.state == .refused, "\(record.state): \(record.failure?.error ?? "")")
        #expect(
            record.refusals == [
                "the source of truth would refuse db1002 as the primary of s1: sections.s1.primary: the primary db1002 must stay pooled"
            ])
        #expect(record.steps.allSatisfy { $0.state == .pending }, "a step ran")
        #expect(site.writable == ["db1001"])
        #expect(site.violations == [])
    }

    /// How many etcd requests a whole switchover makes from the controller's campaign on.
    static func requestsOfOneRun() async throws -> Int {
        let site = try await TwinSite()
        let view = CuttingStore(site.store, cutAt: nil)
        let controller = site.controller("c1", store: view)
        try await controller.campaign()
        let id = try await site.requestSwitchover(to: "db1002")
        try await controller.handle(id)
        guard try await site.operation(id)?.state == .done else { throw TwinSiteError("the uncut run did not finish") }
        return view.requests
    }

    /// The leader is cut from etcd at its n-th request (with the answer of that request lost, or
    /// the request never arriving), its lease expires, and a second controller takes over. For
    /// every n from the campaign to the last journal write, the section must end rolled back
    /// or switched; never with two writers, never half-switched, never
    /// with a statement run by a controller that no longer led; and, since every host answers,
    /// never left for a human.
    @Test(
        "the leader cut from etcd at every one of its requests: the next leader finishes or rolls back, safely",
        arguments: [false, true])
    func cutAtEveryRequest(answerLost: Bool) async throws {
        let total = try await Self.requestsOfOneRun()
        #expect(total > 20, "a switchover makes more etcd requests than that: the count is wrong")
        var outcomes = [OperationRecord.State: Int]()
        for cut in 1...total {
            let site = try await TwinSite()
            let first = site.controller("c1", store: CuttingStore(site.store, cutAt: cut, answerLost: answerLost))
            let id = try await site.requestSwitchover(to: "db1002")
            if (try? await first.campaign()) == true {
                _ = try? await site.applicationWrite()
                do {
                    try await first.handle(id)
                } catch {
                    // Cut: the controller stops where it was, as if it died there.
                }
            }
            await first.close()
            site.clock.advance(seconds: Double(TwinSite.ttl) + 1)
            try site.heartbeat()

            let second = site.controller("c2")
            #expect(try await second.campaign(), "cut at \(cut): the second controller could not lead")
            try await second.recoverUnfinished()
            if try await site.operation(id)?.state == .requested { try await second.handle(id) }

            let record = try #require(try await site.operation(id))
            let where_ = "cut at request \(cut) of \(total)\(answerLost ? " (answer lost)" : ""), state \(record.state)"
            // Every host answers: no outcome may need a human, and none may stop half-way.
            #expect(record.state == .done || record.state == .rolledBack, "\(where_): \(record.steps.map { "\($0.name) \($0.state)" })")
            #expect(try await site.settledProblems(record) == [], "\(where_)")
            #expect(site.violations == [], "\(where_)")
            #expect(site.lockHolder == nil, "\(where_): the lock is still held")
            outcomes[record.state, default: 0] += 1
            await second.close()
        }
        // Both ends are reached: early cuts roll back or never start, late ones finish.
        #expect(outcomes[.done, default: 0] > 0 && (outcomes[.rolledBack, default: 0] + outcomes[.refused, default: 0]) > 0, "\(outcomes)")
    }
}

@Suite("leader hand-over on the twins")
struct HandOverDecisionTests {
    /// The old leader sent `read_only = ON` to the old primary and froze there (its statement
    /// held by the server, its own timeout far away). Its lease runs out; the next leader kills
    /// its sessions, rolls the switchover back and makes db1001 writable again. The held
    /// statement must never apply: applied late, it would leave the section with no writer
    /// while the journal says it was rolled back.
    @Test("a frozen leader's statement in flight is killed by the next leader and never applies after the rollback")
    func frozenLeaderStatementNeverApplies() async throws {
        let site = try await TwinSite()
        // Stopped as by SIGSTOP once its statement is held: it cannot kill that statement itself
        // when its lease lapses; only the next leader's kill keeps it from applying.
        let freezer = Freezer()
        let frozen = site.controller("c1", playbook: TwinSite.playbook(timeouts: 30), freezer: freezer)
        #expect(try await frozen.campaign())
        let hang = site.server("db1001").hang(matching: "read_only = ON", onRelease: .applies, onKill: .discarded)
        let id = try await site.requestSwitchover(to: "db1002")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try? await frozen.handle(id) }
            #expect(await site.server("db1001").waitUntilHung(), "the old leader never reached old-primary-read-only")
            freezer.stop(at: site.clock.now)
            site.clock.advance(seconds: Double(TwinSite.ttl) + 1)
            try site.heartbeat()

            let next = site.controller("c2")
            #expect(try await next.campaign())
            try await next.recoverUnfinished()
            hang.release()  // the lock on the server goes: the held statement would apply now
            freezer.resume()  // SIGCONT: its clock jumps, its fence is closed
            try await group.waitForAll()
            await next.close()
        }
        await frozen.close()
        let record = try #require(try await site.operation(id))
        #expect(record.state == .rolledBack)
        #expect(try await site.settledProblems(record) == [])
        #expect(site.writable == ["db1001"])
        #expect(site.violations == [])
        #expect(site.lockHolder == nil)
    }
}

@Suite("host failures at every statement of a switchover, on the twins")
struct StatementFaultDecisionTests {
    enum Fault: String, CaseIterable, CustomTestStringConvertible {
        /// The server refuses it (a lock wait timeout): it did not apply.
        case refused
        /// The connection breaks before it reaches the server.
        case lostBefore
        /// It applies, then the connection breaks before the answer.
        case lostAfter
        var testDescription: String { rawValue }
        var code: UInt32 { self == .refused ? 1205 : 2013 }
        var applies: Bool { self == .lostAfter }
    }

    static func statementsOfOneRun() async throws -> Int {
        let site = try await TwinSite()
        let controller = site.controller("c1")
        try await controller.campaign()
        let id = try await site.requestSwitchover(to: "db1002")
        let before = site.statementCount
        try await controller.handle(id)
        guard try await site.operation(id)?.state == .done else { throw TwinSiteError("the run without faults did not finish") }
        return site.statementCount - before
    }

    /// Each statement of the run in turn fails once; the controller goes on (it is not cut).
    /// It must refuse, roll back, or finish, with the servers matching what the journal says;
    /// and a human is never needed for one failed statement on hosts that answer again.
    @Test(
        "one statement fails (refused, lost before, lost after applying): refused, rolled back or finished, never two writers",
        arguments: Fault.allCases)
    func everyStatement(_ fault: Fault) async throws {
        let total = try await Self.statementsOfOneRun()
        #expect(total > 30, "a switchover sends more statements than that: the count is wrong")
        var outcomes = [OperationRecord.State: Int]()
        for number in 1...total {
            let site = try await TwinSite()
            let controller = site.controller("c1")
            try await controller.campaign()
            try await site.applicationWrite()
            let id = try await site.requestSwitchover(to: "db1002")
            site.fail(statement: number, code: fault.code, applies: fault.applies)
            try await controller.handle(id)
            let record = try #require(try await site.operation(id))
            let where_ = "statement \(number) of \(total) \(fault): \(record.state), \(record.failure?.error ?? "")"
            #expect([.done, .doneNeedsAttention, .rolledBack, .refused].contains(record.state), "\(where_)")
            #expect(try await site.settledProblems(record) == [], "\(where_)")
            #expect(site.violations == [], "\(where_)")
            #expect(site.lockHolder == nil, "\(where_)")
            outcomes[record.state, default: 0] += 1
            await controller.close()
        }
        #expect(outcomes[.rolledBack, default: 0] + outcomes[.refused, default: 0] > 0, "\(outcomes)")
    }
}
