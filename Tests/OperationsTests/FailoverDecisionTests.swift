import Foundation
import Observation
import Operations
import Testing
import Topology

/// The two pure decisions of unplanned failover: is the primary dead (on two witnesses), and
/// which replica replaces it (with every other one's reason).
@Suite("failover decisions")
struct FailoverDecisionTests {
    static let now = Date(timeIntervalSince1970: 1_900_000_000)

    static func replica(
        _ name: String, io: String = "Yes", lag: Double? = 0.5, received: String = "0-1001-100", applied: String? = nil,
        state: String = "0-1001-100", logBin: Bool = true, logSlaveUpdates: Bool? = true, sourceServerID: Int = 1001,
        age: Double = 1
    ) -> Observation {
        var observation = Observation(
            instance: name, agent: "a", agentStartedAt: now, observedAt: now.addingTimeInterval(-age), reachable: true,
            replication: [
                ReplicationChannel(
                    sourceHost: "10.0.0.1", sourcePort: 3306, sourceServerID: sourceServerID, ioThread: io, sqlThread: "Yes",
                    usingGTID: "Slave_Pos", lastIOError: io == "Yes" ? "" : "error reconnecting to master",
                    gtidIOPos: try! GTIDPosition(parsing: received))
            ])
        observation.heartbeatLag = lag
        observation.gtidSlavePos = try! GTIDPosition(parsing: applied ?? received)
        observation.gtidBinlogState = try! GTIDState(parsing: state)
        observation.logBin = logBin
        observation.logSlaveUpdates = logSlaveUpdates
        observation.readOnly = true
        return observation
    }

    // MARK: Detection

    static func assess(controller: Bool?, primary: Observation? = nil, replicas: [Observation]) -> PrimaryHealth {
        FailureDetection.assess(
            primaryName: "db1001", controllerReaches: controller, primary: primary, replicas: replicas, now: now,
            masterFailureTimeout: 3, maxObservationAge: 5)
    }

    @Test("reachable by the controller: alive, whatever the replicas say")
    func reachable() {
        #expect(Self.assess(controller: true, replicas: [Self.replica("db1002", io: "Connecting")]) == .alive)
    }

    @Test("unreachable by the controller, every replica's IO thread disconnected: dead, with each witness named")
    func dead() {
        let health = Self.assess(controller: false, replicas: [Self.replica("db1002", io: "Connecting"), Self.replica("db1003", io: "No")])
        guard case .dead(let witnesses) = health else {
            Issue.record("\(health)")
            return
        }
        #expect(witnesses.count == 3)
        #expect(witnesses[0] == "the controller cannot reach db1001 over SQL")
        #expect(witnesses[1].hasPrefix("db1002's IO thread is Connecting"))
    }

    @Test("a silent death: IO threads still 'Yes', everything received applied, no heartbeat for longer than master_failure_timeout: dead")
    func silent() {
        let health = Self.assess(controller: false, replicas: [Self.replica("db1002", lag: 4), Self.replica("db1003", lag: 4.2)])
        guard case .dead(let witnesses) = health else {
            Issue.record("\(health)")
            return
        }
        #expect(witnesses.contains("db1002 applied all it received and has no heartbeat for 4 s"))
    }

    @Test("a replica merely behind in applying (its heartbeat old, relay log not applied) is no witness: unreachable")
    func applyLagIsNoWitness() {
        let behind = Self.replica("db1002", lag: 10, received: "0-1001-100", applied: "0-1001-60")
        let health = Self.assess(controller: false, replicas: [behind, Self.replica("db1003", io: "Connecting")])
        #expect(health == .unreachable(because: "db1002 still replicates from db1001: the controller alone cannot reach it"))
    }

    @Test("the primary's own agent cannot reach it, but a replica still replicates: unreachable, not dead")
    func agentOutweighedByReplica() {
        var primary = Observation(instance: "db1001", agent: "a", agentStartedAt: Self.now, observedAt: Self.now, reachable: false)
        primary.error = "Too many connections"
        let health = Self.assess(controller: false, primary: primary, replicas: [Self.replica("db1002")])
        #expect(health == .unreachable(because: "db1002 still replicates from db1001: the controller alone cannot reach it"))
    }

    @Test("unreachable by the controller while one replica still replicates: unreachable, not dead (no promotion)")
    func partitionedController() {
        let health = Self.assess(controller: false, replicas: [Self.replica("db1002", io: "Connecting"), Self.replica("db1003")])
        #expect(health == .unreachable(because: "db1003 still replicates from db1001: the controller alone cannot reach it"))
    }

    @Test("the primary's own agent reports it down: dead even with no replica observation")
    func ownAgent() {
        var primary = Observation(instance: "db1001", agent: "a", agentStartedAt: Self.now, observedAt: Self.now, reachable: false)
        primary.error = "Can't connect to server (111)"
        guard case .dead(let witnesses) = Self.assess(controller: false, primary: primary, replicas: []) else {
            Issue.record("not dead")
            return
        }
        #expect(witnesses.last == "db1001's own agent cannot reach it (Can't connect to server (111))")
    }

    @Test("stale observations are no witness: unreachable")
    func stale() {
        let health = Self.assess(controller: false, replicas: [Self.replica("db1002", io: "Connecting", age: 30)])
        #expect(health == .unreachable(because: "no fresh observation of db1001 or of a replica of it: no second witness"))
    }

    // MARK: Choosing the candidate

    static var topology: Topology {
        var topology = Topology(datacenters: ["eqiad"])
        topology.sections["s1"] = Section(name: "s1", primary: "db1001", datacenter: "eqiad", minReplicas: 1)
        for name in ["db1001", "db1002", "db1003", "db1004"] {
            topology.instances[name] = Instance(
                name: name, host: name, datacenter: "eqiad", candidatePrimary: name != "db1004",
                sections: ["s1": Membership(pooled: true, weight: 100)])
        }
        return topology
    }

    static func choose(_ replicas: [Observation], preferred: String? = nil) -> Result<FailoverChoice, FailoverRefused> {
        FailoverCandidates.choose(
            section: topology.sections["s1"]!, topology: topology, deadPrimary: "db1001", primaryServerID: 1001,
            replicas: replicas, preferred: preferred)
    }

    @Test("the replica that received the most is chosen, even if it applied less; the others are named with their position")
    func mostReceived() throws {
        let choice = try Self.choose([
            Self.replica("db1002", received: "0-1001-100"),
            Self.replica("db1003", received: "0-1001-120", applied: "0-1001-90"),
        ]).get()
        #expect(choice.candidate == "db1003")
        #expect(choice.catchUpFrom == nil)
        #expect(choice.rejected["db1002"] == "eligible, not chosen: received 0-1001-100 (chosen db1003 at 0-1001-120)")
    }

    @Test("received alike: the one that applied more; alike again: by name")
    func tieBreaks() throws {
        #expect(
            try Self.choose([Self.replica("db1002", applied: "0-1001-90"), Self.replica("db1003", applied: "0-1001-95")]).get().candidate
                == "db1003")
        #expect(try Self.choose([Self.replica("db1003"), Self.replica("db1002")]).get().candidate == "db1002")
    }

    @Test("the most advanced carries an errant transaction: it is not chosen, and the reason names the GTID")
    func errant() throws {
        let choice = try Self.choose([
            Self.replica("db1002", received: "0-1001-100"),
            Self.replica("db1003", received: "0-1001-100", state: "0-1001-100,0-1003-5"),
        ]).get()
        #expect(choice.candidate == "db1002")
        #expect(choice.rejected["db1003"] == "errant transactions 0-1003-5 that no other replica has")
    }

    @Test("log_slave_updates OFF, no binary log, not a candidate primary, replicating from elsewhere: never chosen")
    func ineligible() throws {
        let choice = try Self.choose([
            Self.replica("db1002", received: "0-1001-90"),
            Self.replica("db1003", received: "0-1001-100", logSlaveUpdates: false),
            Self.replica("db1004", received: "0-1001-100"),
        ]).get()
        #expect(choice.candidate == "db1002")
        #expect(choice.rejected["db1003"] == "log_slave_updates is OFF")
        #expect(choice.rejected["db1004"] == "not a candidate primary (candidate_primary is false)")
        // db1002 has received less than db1003 and db1004: it catches up first from db1004, which
        // may not be promoted but logs what it replicates (db1003 does not, so it cannot serve).
        #expect(choice.catchUpFrom == "db1004")
        let noBinlog = Self.choose([Self.replica("db1002", logBin: false)])
        #expect(noBinlog == .failure(FailoverRefused(reasons: ["db1002": "no binary log (log_bin is OFF)"])))
        let elsewhere = Self.choose([Self.replica("db1002", sourceServerID: 1003)])
        #expect(elsewhere == .failure(FailoverRefused(reasons: ["db1002": "replicates from server_id 1003, not directly from db1001"])))
    }

    @Test("a replica a human depooled is not promoted (it can still serve a catch-up) unless named with --to")
    func humanDepooled() throws {
        let replicas = [Self.replica("db1002", received: "0-1001-120"), Self.replica("db1003", received: "0-1001-100")]
        let choice = try FailoverCandidates.choose(
            section: Self.topology.sections["s1"]!, topology: Self.topology, deadPrimary: "db1001", primaryServerID: 1001, replicas: replicas,
            preferred: nil, depooledByHuman: ["db1002"]
        ).get()
        #expect(choice.candidate == "db1003" && choice.catchUpFrom == "db1002")
        #expect(choice.rejected["db1002"] == "depooled by a human (not by the automatic depool): promoted only if named with --to")
        let named = try FailoverCandidates.choose(
            section: Self.topology.sections["s1"]!, topology: Self.topology, deadPrimary: "db1001", primaryServerID: 1001, replicas: replicas,
            preferred: "db1002", depooledByHuman: ["db1002"]
        ).get()
        #expect(named.candidate == "db1002" && named.catchUpFrom == nil)
    }

    @Test("a preferred candidate behind another replica: chosen, catching up from the most advanced first (two-phase)")
    func twoPhase() throws {
        let choice = try Self.choose(
            [
                Self.replica("db1002", received: "0-1001-100"),
                Self.replica("db1003", received: "0-1001-120"),
            ], preferred: "db1002"
        ).get()
        #expect(choice.candidate == "db1002")
        #expect(choice.catchUpFrom == "db1003")
    }

    @Test("no replica received everything the others did (two domains, each ahead in one): none is chosen, a human decides")
    func divergedDomains() {
        let result = Self.choose([
            Self.replica("db1002", received: "0-1001-100,1-1001-50", state: "0-1001-100,1-1001-50"),
            Self.replica("db1003", received: "0-1001-90,1-1001-60", state: "0-1001-90,1-1001-60"),
        ])
        guard case .failure(let refused) = result else {
            Issue.record("\(result)")
            return
        }
        #expect(refused.reasons["(all)"]?.hasPrefix("no eligible replica has received everything the others have") == true)
    }
}

@Suite("failover plan")
struct FailoverPlanTests {
    static var instances: [String: Instance] {
        Dictionary(
            uniqueKeysWithValues: ["db1001", "db1002", "db1003", "db1004"].map { name in
                (name, Instance(name: name, host: "10.0.0.\(name.last!)", datacenter: "eqiad", candidatePrimary: true))
            })
    }

    static let received: [String: GTIDPosition] = [
        "db1002": try! GTIDPosition(parsing: "0-1001-100"), "db1003": try! GTIDPosition(parsing: "0-1001-120"),
        "db1004": try! GTIDPosition(parsing: "0-1001-110"),
    ]

    static func plan(_ choice: FailoverChoice, playbook: Playbook = .standardFailover) -> [StepRecord] {
        FailoverPlan.steps(
            playbook, section: "s1", deadPrimary: "db1001", choice: choice, instances: instances, received: received,
            others: ["db1002", "db1003", "db1004"])
    }

    /// The statements of a step on `host`, without the host prefix.
    static func statements(_ step: StepRecord, on host: String) -> [String] {
        step.statements.filter { $0.hasPrefix(host + ": ") }.map { String($0.dropFirst(host.count + 2)) }
    }

    /// The MariaDB-safe order, checked on every plan: on each replica of the dead primary, its
    /// received events are applied before anything stops its threads (the repoint step waits
    /// itself, first); the new primary is committed before it becomes writable, the point of no
    /// return; every other replica is repointed after that.
    static func checkOrder(_ steps: [StepRecord], candidate: String) {
        var applied = Set<String>()
        for step in steps {
            if step.action == .applyReceived, let host = step.subject { applied.insert(host) }
            for host in step.hosts {
                let own = statements(step, on: host)
                guard let stop = own.firstIndex(of: SwitchoverSQL.stopReplication) else { continue }
                let waitsFirst = own[..<stop].contains { $0.hasPrefix("SELECT MASTER_GTID_WAIT") }
                #expect(applied.contains(host) || waitsFirst, "\(host) is stopped before it applied what it received")
            }
        }
        let commit = steps.firstIndex { $0.action == .commitPrimary }!
        let writable = steps.firstIndex { $0.action == .candidateWritable }!
        #expect(commit < writable)
        #expect(steps[writable].pointOfNoReturn && steps.filter(\.pointOfNoReturn).count == 1)
        #expect(steps[writable].statements.last == "\(candidate): SET GLOBAL read_only = OFF")
        for (index, step) in steps.enumerated() where step.action == .repointReplicas { #expect(index > writable) }
    }

    @Test("one phase: the candidate applies what it received, detaches, is committed, becomes writable; the others follow it")
    func onePhase() {
        let steps = Self.plan(FailoverChoice(candidate: "db1003", catchUpFrom: nil, rejected: [:]))
        Self.checkOrder(steps, candidate: "db1003")
        #expect(
            steps.map(\.name) == [
                "db1003 applies what it received", "db1003 stops replicating", "commit db1003 primary of s1", "db1003 writable",
                "repoint db1002 under db1003", "repoint db1004 under db1003",
            ])
        #expect(
            Self.statements(steps[1], on: "db1003") == ["STOP SLAVE", "RESET SLAVE ALL", "SELECT @@GLOBAL.gtid_binlog_pos AS pos (the fork point)"])
        #expect(
            Self.statements(steps[4], on: "db1002")[2]
                == "CHANGE MASTER TO MASTER_HOST = '10.0.0.3', MASTER_PORT = 3306, MASTER_USE_GTID = slave_pos, MASTER_HEARTBEAT_PERIOD = 1")
        #expect(steps[0].statements[0].contains("planned 0-1001-120"))
    }

    @Test("two phases: the most advanced applies, the candidate applies, then catches up from it before it detaches")
    func twoPhases() {
        let steps = Self.plan(FailoverChoice(candidate: "db1002", catchUpFrom: "db1003", rejected: [:]))
        Self.checkOrder(steps, candidate: "db1002")
        #expect(Array(steps.prefix(3).map(\.action)) == [.applyReceived, .applyReceived, .catchUp])
        #expect(steps[0].subject == "db1003" && steps[1].subject == "db1002")
        #expect(
            Self.statements(steps[2], on: "db1002") == [
                "STOP SLAVE",
                "CHANGE MASTER TO MASTER_HOST = '10.0.0.3', MASTER_PORT = 3306, MASTER_USE_GTID = slave_pos, MASTER_HEARTBEAT_PERIOD = 1",
                "SET GLOBAL slave_net_timeout = 4", "START SLAVE", "SELECT MASTER_GTID_WAIT('0-1001-120', 30.0) AS waited",
            ])
        // db1003, the source of the catch-up, is repointed under the new primary like the others.
        #expect(steps.filter { $0.action == .repointReplicas }.compactMap(\.subject) == ["db1003", "db1004"])
    }

    @Test("the playbook's exec hooks are planned in place, with the dead primary and the candidate substituted")
    func execHooks() {
        var playbook = Playbook.standardFailover
        playbook.steps.insert(.init(action: .exec, command: ["notify", "{old_primary}", "{candidate_host}"], name: "page"), at: 5)
        #expect(playbook.safetyProblems().isEmpty)
        let steps = Self.plan(FailoverChoice(candidate: "db1003", catchUpFrom: nil, rejected: [:]), playbook: playbook)
        #expect(steps[4].command == ["notify", "db1001", "10.0.0.3"])
    }
}

@Suite("Failover playbook: checked against the safety rules on load")
struct FailoverPlaybookTests {
    @Test("the repository's playbooks/failover.yaml loads, and is the standard one")
    func repositoryPlaybook() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../playbooks/failover.yaml").path
        let playbook = try Playbook.load(file, operation: "failover")
        #expect(playbook.steps == Playbook.standardFailover.steps)
    }

    @Test("the candidate writable before the commit, replicas repointed before it is writable, a switchover step: refused, each named")
    func unsafeOrders() {
        func problems(_ actions: [StepAction]) -> [String] {
            Playbook(operation: "failover", steps: actions.map { Playbook.Step(action: $0) }).safetyProblems()
        }
        #expect(
            problems([.applyReceived, .catchUp, .detachCandidate, .candidateWritable, .commitPrimary, .repointReplicas]) == [
                "candidate-writable (step 4) comes before commit-primary (step 5): the candidate would take writes before the source of truth names it the primary"
            ])
        #expect(
            problems([.applyReceived, .catchUp, .detachCandidate, .commitPrimary, .repointReplicas, .candidateWritable]) == [
                "repoint-replicas (step 5) comes before candidate-writable (step 6): replicas would replicate from an instance that is not yet the primary"
            ])
        #expect(
            problems([.applyReceived, .catchUp, .detachCandidate, .commitPrimary, .candidateWritable]) == ["the step repoint-replicas is missing"])
        #expect(
            problems([.applyReceived, .catchUp, .detachCandidate, .commitPrimary, .candidateWritable, .repointReplicas, .oldPrimaryReadOnly])
                == ["step 7 (old-primary-read-only): old-primary-read-only is not a step of a failover"])
    }

    @Test("a switchover file where a failover playbook is expected is refused")
    func wrongOperation() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../playbooks/switchover.yaml").path
        #expect(throws: PlaybookError.self) { try Playbook.load(file, operation: "failover") }
    }
}
