@testable import Controller
import EtcdClient
import FuzzSupport
import MarinaTwins
import Observation
import Operations
import Testing

/// Two controllers, crashes, lease expiries, application writes and host failures, in an
/// order drawn from a seed, on the twins. After every event the safety rules are checked:
/// - rule 1, one writer at most, and rule 9, a controller acts only while it holds the leader
///   key, after every statement any controller runs (`TwinSite.check`);
/// - rule 5, when no lock is held: the only writable instance is the committed primary, or
///   none when an operation left the section for a human;
/// - rule 2, when no lock is held: every acknowledged application write is on the writable primary.
/// A failing seed prints its events: rerun it alone with that seed to see the interleaving.
@Suite("two controllers, crashes and host failures interleaved: safety rules 1, 2, 5 and 9 after every event")
struct InterleavingDecisionTests {
    enum Event: CustomStringConvertible {
        case request(candidate: String)
        /// Controller 0 or 1 leads if it can, recovers what is left, takes the requests; cut
        /// from etcd at its n-th request (a crash: it restarts as a new process afterwards).
        case run(controller: Int, cut: Int?, answerLost: Bool)
        /// Time passes beyond the lease TTL: every lease not renewed meanwhile expires.
        case expire
        case keepAlive(controller: Int)
        /// The next statement matching `statement` on `server` fails with `code` (applied or not).
        case fault(server: String, statement: String, code: UInt32, applies: Bool)
        /// A replica (never the committed primary) is killed; `restart` starts every stopped one.
        case stopReplica(pick: Int)
        case restart
        case write

        var description: String {
            switch self {
            case .request(let candidate): "request → \(candidate)"
            case .run(let controller, let cut, let lost): "run c\(controller)\(cut.map { " cut@\($0)\(lost ? " answer lost" : "")" } ?? "")"
            case .expire: "expire"
            case .keepAlive(let controller): "keep-alive c\(controller)"
            case .fault(let server, let statement, let code, let applies): "fault \(server) '\(statement)' \(code)\(applies ? " applied" : "")"
            case .stopReplica(let pick): "stop replica #\(pick)"
            case .restart: "restart"
            case .write: "write"
            }
        }
    }

    static let statements = ["read_only = ON", "read_only = OFF", "CHANGE MASTER", "START SLAVE", "STOP SLAVE", "MASTER_GTID_WAIT",
                             "RESET SLAVE", "gtid_binlog_pos", "SHOW SLAVE STATUS", "KILL CONNECTION"]

    static func events(seed: UInt64, count: Int) -> [Event] {
        var random = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<18: .request(candidate: TwinSite.names.randomElement(using: &random)!)
            case 18..<50:
                .run(controller: Int.random(in: 0...1, using: &random),
                     cut: Bool.random(using: &random) ? Int.random(in: 1...40, using: &random) : nil, answerLost: Bool.random(using: &random))
            case 50..<58: .expire
            case 58..<64: .keepAlive(controller: Int.random(in: 0...1, using: &random))
            case 64..<78:
                .fault(server: TwinSite.names.randomElement(using: &random)!, statement: statements.randomElement(using: &random)!,
                       code: [1205, 2013, 1927].randomElement(using: &random)!, applies: Bool.random(using: &random))
            case 78..<84: .stopReplica(pick: Int.random(in: 0...1, using: &random))
            case 84..<90: .restart
            default: .write
            }
        }
    }

    /// One controller process: a new incarnation (new id, lease, sessions) after each crash.
    final class Process {
        let site: TwinSite
        let index: Int
        var incarnation = 0
        var view: CuttingStore
        var controller: TwinController

        init(site: TwinSite, index: Int) {
            self.site = site
            self.index = index
            view = CuttingStore(site.store, cutAt: nil)
            controller = site.controller("c\(index).0", store: view)
        }

        func restart() async {
            await controller.close()
            incarnation += 1
            view = CuttingStore(site.store, cutAt: nil)
            controller = site.controller("c\(index).\(incarnation)", store: view)
        }
    }

    @Test("interleavings drawn from 40 seeds keep the safety rules", arguments: 1...40 as ClosedRange<UInt64>)
    func interleaved(seed: UInt64) async throws {
        let site = try await TwinSite()
        let processes = [Process(site: site, index: 0), Process(site: site, index: 1)]
        // Random events, then a settling tail: hosts back, leases gone, one controller left to finish.
        let events = Self.events(seed: seed, count: 20) + [.restart, .expire, .run(controller: 0, cut: nil, answerLost: false),
                                                           .run(controller: 0, cut: nil, answerLost: false)]
        var humanNeeded = false
        for (number, event) in events.enumerated() {
            try await apply(event, site: site, processes: processes)
            for kv in try await site.store.get(site.keys.operations, prefix: true).kvs {
                if let record = try? OperationJSON.decode(kv.value), record.state == .needsHuman { humanNeeded = true }
            }
            let problems = try await problems(site, humanNeeded: humanNeeded)
            if !problems.isEmpty || !site.violations.isEmpty {
                Issue.record("seed \(seed), after event \(number + 1) (\(event)): \(problems + site.violations)\nevents: \(events)")
                break
            }
        }
        for kv in try await site.store.get(site.keys.operations, prefix: true).kvs {
            let record = try OperationJSON.decode(kv.value)
            #expect(record.state.isFinished, "seed \(seed): \(record.id) is \(record.state) after the settling tail; events: \(events)")
        }
        for process in processes { await process.controller.close() }
    }

    private func apply(_ event: Event, site: TwinSite, processes: [Process]) async throws {
        switch event {
        case .request(let candidate):
            _ = try await site.requestSwitchover(to: candidate)
        case .run(let index, let cut, let answerLost):
            let process = processes[index]
            let before = process.view.requests
            process.view.cut(afterMore: cut, answerLost: answerLost)
            let controller = process.controller
            do {
                if await !controller.leadership.isLeader {
                    if await controller.leadership.holdsLease { _ = try? await controller.keepAlive() }
                    if await !controller.leadership.isLeader { try await controller.campaign() }
                }
                if await controller.leadership.isLeader {
                    try await controller.recoverUnfinished()
                    for kv in try await site.store.get(site.keys.requests, prefix: true, keysOnly: true).kvs {
                        try await controller.handle(String(kv.key.dropFirst(site.keys.requests.count)))
                    }
                }
            } catch {
                // A cut (or a lost lead) stops the controller where it was.
            }
            if let cut, process.view.requests >= before + cut {
                await process.restart()  // it crashed: a new process, with a new lease to win
            } else {
                process.view.heal()
            }
        case .expire:
            site.clock.advance(seconds: Double(TwinSite.ttl) + 1)
            try site.heartbeat()
        case .keepAlive(let index):
            _ = try? await processes[index].controller.keepAlive()
        case .fault(let server, let statement, let code, let applies):
            site.server(server).failNext(matching: statement, code: code, applies: applies)
        case .stopReplica(let pick):
            let primary = try await site.committedTopology().sections[TwinSite.section]?.primary
            let replicas = TwinSite.names.filter { $0 != primary && site.server($0).isUp }
            if !replicas.isEmpty { site.server(replicas[pick % replicas.count]).stop() }
        case .restart:
            for server in site.fleet.servers where !server.isUp { server.start() }
        case .write:
            try await site.applicationWrite()
        }
    }

    /// Rules 5 and 2 once no operation holds the section (rules 1 and 9 are checked per statement).
    private func problems(_ site: TwinSite, humanNeeded: Bool) async throws -> [String] {
        guard site.lockHolder == nil else { return [] }
        let committed = try await site.committedTopology().sections[TwinSite.section]?.primary ?? ""
        let writable = site.writable
        var problems = [String]()
        if writable.isEmpty {
            if !humanNeeded && site.server(committed).isUp { problems.append("no writable instance, and no operation asked for a human") }
        } else if writable != [committed] {
            problems.append("writable \(writable), committed primary \(committed)")
        }
        if writable.count == 1 {
            site.fleet.replicate()
            let position = GTIDPosition(site.server(writable[0]).binlogState.gtids)
            let missing = site.acknowledgedWrites.filter { !position.contains(GTIDPosition([$0])) }
            if !missing.isEmpty { problems.append("acknowledged writes missing on \(writable[0]): \(missing)") }
        }
        return problems
    }
}
