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

    @Test("a silent death: IO threads still 'Yes' but no heartbeat for longer than master_failure_timeout: dead")
    func silent() {
        let health = Self.assess(controller: false, replicas: [Self.replica("db1002", lag: 4), Self.replica("db1003", lag: 4.2)])
        guard case .dead(let witnesses) = health else {
            Issue.record("\(health)")
            return
        }
        #expect(witnesses.contains("db1002 has received no heartbeat for 4 s"))
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

    static func plan(_ choice: FailoverChoice) -> [FailoverStep] {
        FailoverPlan.steps(
            section: "s1", deadPrimary: "db1001", choice: choice, instances: instances, received: received, others: ["db1002", "db1003", "db1004"],
            timeout: 5)
    }

    /// The MariaDB-safe order, checked on every plan: on each replica of the dead primary, its
    /// received events are applied before anything stops its threads; the new primary is
    /// committed before it becomes writable; every other replica is repointed after that.
    static func checkOrder(_ steps: [FailoverStep], candidate: String) {
        var applied = Set<String>()
        for step in steps {
            if step.kind == .applyReceived { applied.insert(step.host) }
            if step.statements.contains(SwitchoverSQL.stopReplication) {
                #expect(applied.contains(step.host), "\(step.host) is stopped before it applied what it received")
            }
        }
        let commit = steps.firstIndex { $0.kind == .commitPrimary }!
        let writable = steps.firstIndex { $0.kind == .candidateWritable }!
        #expect(commit < writable)
        #expect(steps[writable].host == candidate)
        for (index, step) in steps.enumerated() where step.kind == .repoint { #expect(index > writable) }
        #expect(steps.last?.kind == .markOldPrimary)
    }

    @Test("one phase: the candidate applies what it received, detaches, is committed, becomes writable; the others follow it")
    func onePhase() {
        let steps = Self.plan(FailoverChoice(candidate: "db1003", catchUpFrom: nil, rejected: [:]))
        Self.checkOrder(steps, candidate: "db1003")
        #expect(
            steps.map(\.kind.rawValue) == [
                "apply-received", "detach-candidate", "commit-primary", "candidate-writable", "apply-received", "repoint", "apply-received",
                "repoint", "mark-old-primary",
            ])
        #expect(steps[0].statements == ["SELECT MASTER_GTID_WAIT('0-1001-120', 5.0) AS waited"])
        #expect(steps[1].statements == ["STOP SLAVE", "RESET SLAVE ALL"])
        #expect(steps[5].statements[1] == "CHANGE MASTER TO MASTER_HOST = '10.0.0.3', MASTER_PORT = 3306, MASTER_USE_GTID = slave_pos")
    }

    @Test("two phases: the most advanced applies, the candidate applies, then catches up from it before it detaches")
    func twoPhases() {
        let steps = Self.plan(FailoverChoice(candidate: "db1002", catchUpFrom: "db1003", rejected: [:]))
        Self.checkOrder(steps, candidate: "db1002")
        #expect(Array(steps.prefix(3).map(\.kind)) == [.applyReceived, .applyReceived, .catchUp])
        #expect(steps[0].host == "db1003" && steps[1].host == "db1002")
        #expect(
            steps[2].statements == [
                "STOP SLAVE", "CHANGE MASTER TO MASTER_HOST = '10.0.0.3', MASTER_PORT = 3306, MASTER_USE_GTID = slave_pos", "START SLAVE",
                "SELECT MASTER_GTID_WAIT('0-1001-120', 5.0) AS waited",
            ])
        // db1003 already applied what it received: it is repointed without a second wait.
        #expect(steps.filter { $0.host == "db1003" && $0.kind == .applyReceived }.count == 1)
    }
}
