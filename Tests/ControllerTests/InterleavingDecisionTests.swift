import EtcdClient
import FuzzSupport
import MarinaTwins
import Observation
import Operations
import Synchronization
import Testing

@testable import Controller

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
        /// A switchover is requested to a replica (`pick`), and controller 0 or 1 runs it and
        /// freezes (as under SIGSTOP) once it sends the statement of `point` (in `freezePoints`):
        /// the statement is held by the server, and the controller waits for it while other
        /// events go on. `thaw` lets every held statement go (it applies then, unless a new
        /// leader killed its session meanwhile).
        case freeze(controller: Int, pick: Int, point: Int)
        case thaw

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
            case .freeze(let controller, let pick, let point):
                "freeze c\(controller) (replica #\(pick)) at \(InterleavingDecisionTests.freezePoints[point])"
            case .thaw: "thaw"
            }
        }
    }

    /// Where a switchover can freeze: the role of the host and the statement sent to it.
    enum Role { case oldPrimary, candidate, otherReplica }
    static let freezePoints: [(role: Role, statement: String)] = [
        (.otherReplica, "CHANGE MASTER"), (.oldPrimary, "read_only = ON"), (.oldPrimary, "gtid_binlog_pos"), (.candidate, "MASTER_GTID_WAIT"),
        (.candidate, "STOP SLAVE"), (.candidate, "read_only = OFF"), (.oldPrimary, "CHANGE MASTER"), (.oldPrimary, "START SLAVE"),
        (.candidate, "RESET SLAVE"),
    ]

    static let statements = [
        "read_only = ON", "read_only = OFF", "CHANGE MASTER", "START SLAVE", "STOP SLAVE", "MASTER_GTID_WAIT",
        "RESET SLAVE", "gtid_binlog_pos", "SHOW SLAVE STATUS", "KILL CONNECTION",
    ]

    static func events(seed: UInt64, count: Int) -> [Event] {
        var random = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<18: .request(candidate: TwinSite.names.randomElement(using: &random)!)
            case 18..<50:
                .run(
                    controller: Int.random(in: 0...1, using: &random),
                    cut: Bool.random(using: &random) ? Int.random(in: 1...40, using: &random) : nil, answerLost: Bool.random(using: &random))
            case 50..<58: .expire
            case 58..<64: .keepAlive(controller: Int.random(in: 0...1, using: &random))
            case 64..<78:
                .fault(
                    server: TwinSite.names.randomElement(using: &random)!, statement: statements.randomElement(using: &random)!,
                    code: [1205, 2013, 1927].randomElement(using: &random)!, applies: Bool.random(using: &random))
            case 78..<84: .stopReplica(pick: Int.random(in: 0...1, using: &random))
            case 84..<88: .restart
            case 88..<93:
                .freeze(
                    controller: Int.random(in: 0...1, using: &random), pick: Int.random(in: 0...1, using: &random),
                    point: Int.random(in: 0..<freezePoints.count, using: &random))
            case 93..<96: .thaw
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
        /// Stops the process as by SIGSTOP (`freeze`), until `thaw`.
        let freezer = Freezer()
        /// The run of a frozen controller, awaited when it thaws, and the server holding its statement.
        var frozen: Task<Void, Never>?
        var frozenOn: MemoryMariaDB?

        init(site: TwinSite, index: Int) {
            self.site = site
            self.index = index
            view = CuttingStore(site.store, cutAt: nil)
            controller = site.controller("c\(index).0", store: view, playbook: Self.playbook, freezer: freezer)
        }

        /// Timeouts long enough for a frozen statement to stay held while other events run.
        static let playbook = TwinSite.playbook(timeouts: 3)

        func restart() async {
            await controller.close()
            incarnation += 1
            view = CuttingStore(site.store, cutAt: nil)
            controller = site.controller("c\(index).\(incarnation)", store: view, playbook: Self.playbook, freezer: freezer)
        }
    }

    @Test("interleavings drawn from 40 seeds keep the safety rules", arguments: 1...40 as ClosedRange<UInt64>)
    func interleaved(seed: UInt64) async throws {
        let site = try await TwinSite()
        let processes = [Process(site: site, index: 0), Process(site: site, index: 1)]
        // Random events, then a settling tail: hosts back, leases gone, one controller left to finish.
        let events =
            Self.events(seed: seed, count: 20) + [
                .thaw, .restart, .expire, .run(controller: 0, cut: nil, answerLost: false),
                .run(controller: 0, cut: nil, answerLost: false),
            ]
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
        for process in processes {
            await process.frozen?.value
            await process.controller.close()
        }
    }

    private func apply(_ event: Event, site: TwinSite, processes: [Process]) async throws {
        switch event {
        case .request(let candidate):
            _ = try await site.requestSwitchover(to: candidate)
        case .run(let index, let cut, let answerLost):
            let process = processes[index]
            guard process.frozen == nil else { return }  // a frozen process does nothing
            let before = process.view.requests
            process.view.cut(afterMore: cut, answerLost: answerLost)
            await Self.runOnce(process.controller, site: site)
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
        case .freeze(let index, let pick, let point):
            // The controller that leads, if one does: a freeze is worth testing on a leader.
            var process = processes[index]
            for candidate in processes where await candidate.controller.leadership.isLeader { process = candidate }
            guard process.frozen == nil, let primary = try await site.committedTopology().sections[TwinSite.section]?.primary else { return }
            let replicas = TwinSite.names.filter { $0 != primary }
            let candidate = replicas[pick % replicas.count]
            _ = try await site.requestSwitchover(to: candidate)
            let (role, statement) = Self.freezePoints[point]
            let server = site.server(role == .oldPrimary ? primary : role == .candidate ? candidate : replicas.first { $0 != candidate }!)
            let hang = server.hang(matching: statement, times: 1, onRelease: .applies, onKill: .discarded)
            let controller = process.controller
            let finished = Mutex(false)
            let run = Task {
                await Self.runOnce(controller, site: site)
                finished.withLock { $0 = true }
            }
            // Frozen once the statement is held; not frozen if the run ended without sending it.
            while server.hungThreads.isEmpty && !finished.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(1)) }
            if !server.hungThreads.isEmpty {
                process.freezer.stop(at: site.clock.now)
                process.frozen = run
                process.frozenOn = server
            } else {
                hang.release()
                await run.value
            }
        case .thaw:
            // The server lets the held statements go, and the frozen processes run again. If
            // another controller has taken their operation over, the servers go first: that
            // controller must have killed what they left, or it applies now, after their lease.
            // Otherwise the processes go first: they see their fence closed (if their lease
            // lapsed) and kill their own statement before the server lets it go. (With neither,
            // a statement held past the lease of a process still stopped would apply: no
            // controller can prevent that; see docs/operations/switchover.md.)
            let frozen = processes.filter { $0.frozen != nil }
            let lock = site.lockHolder
            let takenOver = try await lock.asyncMap { try await site.operation($0)?.controller }
            let serversFirst = frozen.allSatisfy { process in lock == nil || (takenOver.flatMap { $0 } ?? "") != process.controller.id }
            if serversFirst { for server in site.fleet.servers { server.releaseAll() } }
            for process in frozen {
                process.freezer.resume()
                if !serversFirst, let server = process.frozenOn {
                    let deadline = ContinuousClock.now + .seconds(20)  // only reached on failure
                    while server.processes.contains(where: { $0.hung && $0.user == TwinSite.controllerUser }) && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(2))
                    }
                }
            }
            for server in site.fleet.servers { server.releaseAll() }
            for process in processes {
                await process.frozen?.value
                process.frozen = nil
                process.frozenOn = nil
            }
        }
    }

    /// What a controller does in one turn: lead if it can, recover what a lock names, take requests.
    static func runOnce(_ controller: TwinController, site: TwinSite) async {
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

extension Optional {
    fileprivate func asyncMap<U>(_ transform: (Wrapped) async throws -> U) async rethrows -> U? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
