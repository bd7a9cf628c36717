import Drift
import Foundation
import Observation
import Testing
import Topology

let now = Date(timeIntervalSince1970: 1_800_000_000)

/// s1 in dc1: db1001 primary, db1002 and db1003 pooled candidate replicas; all as configured.
func cleanTopology() -> Topology {
    Topology(
        datacenters: ["dc1"],
        sections: ["s1": Section(name: "s1", primary: "db1001", datacenter: "dc1", minReplicas: 1)],
        instances: [
            "db1001": Instance(
                name: "db1001", host: "10.0.0.1", datacenter: "dc1", candidatePrimary: true, sections: ["s1": Membership(pooled: true, weight: 0)]),
            "db1002": Instance(
                name: "db1002", host: "10.0.0.2", datacenter: "dc1", candidatePrimary: true, sections: ["s1": Membership(pooled: true, weight: 100)]),
            "db1003": Instance(
                name: "db1003", host: "10.0.0.3", datacenter: "dc1", candidatePrimary: true, sections: ["s1": Membership(pooled: true, weight: 100)]),
        ])
}

func observed(_ name: String, serverID: Int, readOnly: Bool, source: (String, Int)?, position: String = "0-1001-100") -> Observation {
    var observation = Observation(instance: name, agent: "host", agentStartedAt: now, observedAt: now, reachable: true, lastGoodProbeAt: now)
    observation.serverID = serverID
    observation.readOnly = readOnly
    observation.gtidStrictMode = true
    observation.logBin = true
    observation.binlogFormat = "ROW"
    observation.gtidCurrentPos = try? GTIDPosition(parsing: position)
    observation.gtidBinlogPos = try? GTIDPosition(parsing: position)
    observation.gtidSlavePos = source == nil ? GTIDPosition() : try? GTIDPosition(parsing: position)
    observation.heartbeatLag = 0.3
    if let (host, port) = source {
        observation.replication = [
            ReplicationChannel(
                sourceHost: host, sourcePort: port, sourceServerID: 1001, ioThread: "Yes", sqlThread: "Yes",
                usingGTID: "Slave_Pos", secondsBehindMaster: 0)
        ]
    }
    return observation
}

func cleanObservations() -> [String: Observation] {
    [
        "db1001": observed("db1001", serverID: 1001, readOnly: false, source: nil),
        "db1002": observed("db1002", serverID: 1002, readOnly: true, source: ("10.0.0.1", 3306)),
        "db1003": observed("db1003", serverID: 1003, readOnly: true, source: ("10.0.0.1", 3306)),
    ]
}

/// One broken situation per code: what to change, and the one finding it must produce.
let cases: [(DriftCode, String?, @Sendable (inout Topology, inout [String: Observation], inout [ConfigChange]) -> Void)] = [
    (.twoWriters, "db1002", { _, o, _ in o["db1002"]!.readOnly = false }),
    (.primaryReadOnly, "db1001", { _, o, _ in o["db1001"]!.readOnly = true }),
    (
        .selfFenced, "db1001",
        { _, o, _ in
            // Instead of PRIMARY_READ_ONLY: the agent says why.
            o["db1001"]!.readOnly = true
            o["db1001"]!.selfFence = SelfFence(
                since: now, reason: "the primary lease of s1 could not be renewed", actions: ["read_only = ON", "killed 3 client sessions"])
        }
    ),
    (
        .primaryUnreachable, "db1001",
        { _, o, _ in
            o["db1001"] = Observation(instance: "db1001", agent: "h", agentStartedAt: now, observedAt: now, reachable: false, error: "timeout")
        }
    ),
    (
        .replicaUnreachable, "db1003",
        { _, o, _ in
            o["db1003"] = Observation(instance: "db1003", agent: "h", agentStartedAt: now, observedAt: now, reachable: false, error: "refused")
        }
    ),
    (
        .errantGTID, "db1002",
        { _, o, _ in
            // A local write (server 1002) beyond what it replicated.
            o["db1002"]!.gtidBinlogPos = try? GTIDPosition(parsing: "0-1002-101")
            o["db1002"]!.gtidCurrentPos = try? GTIDPosition(parsing: "0-1002-101")
        }
    ),
    (
        .wrongSource, "db1003",
        { _, o, _ in
            o["db1003"]!.replication[0].sourceHost = "10.0.0.2"
            o["db1003"]!.replication[0].sourceServerID = 1002
        }
    ),
    (.noSource, "db1003", { _, o, _ in o["db1003"]!.replication = [] }),
    (.primaryHeartbeatStalled, "db1001", { _, o, _ in o["db1001"]!.heartbeatWrittenAt = now.addingTimeInterval(-30) }),
    (
        .replicationError, "db1002",
        { _, o, _ in
            o["db1002"]!.replication[0].sqlThread = "No"
            o["db1002"]!.replication[0].lastSQLError = "Error 'Can't create database 'x'; database exists'"
        }
    ),
    (
        .replicationStopped, "db1002",
        { _, o, _ in
            o["db1002"]!.replication[0].sqlThread = "No"
            o["db1002"]!.replication[0].ioThread = "No"
        }
    ),
    (.pooledReplicaLagging, "db1003", { _, o, _ in o["db1003"]!.heartbeatLag = 12.5 }),
    (
        .heartbeatMissing, "db1001",
        { _, o, _ in
            o["db1001"]!.heartbeatLag = nil
            o["db1001"]!.heartbeatError = "no heartbeat row"
        }
    ),
    (.heartbeatStale, "db1001", { _, o, _ in o["db1001"]!.heartbeatLag = 60 }),
    (.gtidNotUsed, "db1002", { _, o, _ in o["db1002"]!.replication[0].usingGTID = "No" }),
    (.gtidStrictModeOff, "db1003", { _, o, _ in o["db1003"]!.gtidStrictMode = false }),
    (.binlogOff, "db1003", { _, o, _ in o["db1003"]!.logBin = false }),
    (.binlogFormatMismatch, "db1002", { _, o, _ in o["db1002"]!.binlogFormat = "STATEMENT" }),
    (.noObservation, "db1003", { _, o, _ in o["db1003"] = nil }),
    (.observationStale, "db1003", { _, o, _ in o["db1003"]!.observedAt = now.addingTimeInterval(-61) }),
    (.mirrorStale, "db1002", { _, _, _ in }),  // the mirror is set in the test: see `code(_:)`
    (.operationInProgress, nil, { _, _, _ in }),  // the lock is set in the test: see `code(_:)`
    (.unknownInstance, "db9999", { _, o, _ in o["db9999"] = observed("db9999", serverID: 9999, readOnly: true, source: nil) }),
    (.automaticActionRefused, "db1003", { _, _, _ in }),  // the refusal is set in the test: see `code(_:)`
    (.primaryUnreachableFromController, "db1001", { _, _, _ in }),  // the controller's view is set in the test: see `code(_:)`
    (
        .needsRejoin, "db1003",
        { t, o, _ in
            // A failover's old primary, down: this instead of REPLICA_UNREACHABLE and NO_SOURCE.
            t.instances["db1003"]!.sections["s1"] = Membership(
                pooled: false, weight: 100, needsRejoin: RejoinMark(operation: "fo-1", newPrimary: "db1001", forkPoint: "0-1001-5"))
            o["db1003"] = Observation(instance: "db1003", agent: "h", agentStartedAt: now, observedAt: now, reachable: false, error: "refused")
        }
    ),
    (
        .variableMismatch, "db1002",
        { t, o, _ in
            // A replica value the controller has not set yet on db1002 (db1003 has it).
            t.variables["s1"] = ManagedVariables(all: ["long_query_time": "2"], replica: ["max_connections": "500"])
            for name in ["db1001", "db1002", "db1003"] { o[name]!.variables = ["long_query_time": "2.000000"] }
            o["db1002"]!.variables!["max_connections"] = "151"
            o["db1003"]!.variables!["max_connections"] = "500"
        }
    ),
    (
        .variablePendingRestart, "db1001",
        { t, o, _ in
            t.variables["s1"] = ManagedVariables(primary: ["thread_stack": "512K"])
            o["db1001"]!.variables = ["thread_stack": "299008"]
            o["db1001"]!.pendingRestart = ["thread_stack"]
            o["db1001"]!.optionFile = "/etc/mysql/conf.d/99-marina.cnf"
        }
    ),
    (
        .optionFileUnwritable, "db1003",
        { _, o, _ in
            o["db1003"]!.optionFile = "/etc/mysql/conf.d/99-marina.cnf"
            o["db1003"]!.optionFileError = "create /etc/mysql/conf.d/99-marina.cnf.marina-7.tmp: Permission denied"
        }
    ),
    (
        .uncommittedChange, nil,
        { _, _, u in
            u = [ConfigChange(datacenter: "dc1", key: "sectionLoads", entry: "s1", before: "[{}]", after: "[{},{}]")]
        }
    ),
]

@Suite("Drift detection (pure)")
struct DriftTests {
    @Test("a clean snapshot yields nothing, a mirror equal to the committed configuration included")
    func clean() {
        #expect(Drift.findings(DriftSnapshot(topology: cleanTopology(), observations: cleanObservations(), now: now)).isEmpty)
        var snapshot = DriftSnapshot(topology: cleanTopology(), observations: cleanObservations(), now: now)
        snapshot.mirror = mirror(mirrored: ["dc1": .config(cleanTopology().generatedConfigs()["dc1"]!)])
        #expect(Drift.findings(snapshot).isEmpty)
    }

    @Test("every code has a case, and each case yields exactly its code for exactly its instance", arguments: cases.indices)
    func code(_ index: Int) {
        let (code, instance, breakIt) = cases[index]
        var topology = cleanTopology()
        var observations = cleanObservations()
        var uncommitted = [ConfigChange]()
        breakIt(&topology, &observations, &uncommitted)
        var snapshot = DriftSnapshot(topology: topology, observations: observations, uncommitted: uncommitted, now: now)
        if code == .automaticActionRefused {
            snapshot.refusals = [AutomaticRefusal(instance: "db1003", section: "s1", action: "depool", reason: "below the minimum", since: now)]
        }
        if code == .mirrorStale {
            var mirrored = topology.generatedConfigs()["dc1"]!
            mirrored.hostsByName["db1002"] = "10.0.0.9"
            snapshot.mirror = mirror(mirrored: ["dc1": .config(mirrored)])
        }
        if code == .operationInProgress { snapshot.locks = ["s1": "20260101-000000-s1-abcd"] }
        if code == .primaryUnreachableFromController {
            snapshot.controllerCannotReach = [
                "s1": ControllerView(primary: "db1001", reason: "db1002 still replicates from db1001", since: now, controller: "c1")
            ]
        }
        let findings = Drift.findings(snapshot)
        #expect(findings.map(\.code) == [code], "\(code): \(findings)")
        #expect(findings.first?.instance == instance)
        #expect(findings.first?.severity == code.severity)
    }

    @Test(
        "a stalled heartbeat writer on the primary: judged within its observation, reachable or not; an observation only republished late is no stall"
    )
    func primaryHeartbeatStalled() {
        var observations = cleanObservations()
        // Written 1 s before a probe published 9 s ago (a refresh interval): fine.
        observations["db1001"]!.observedAt = now.addingTimeInterval(-9)
        observations["db1001"]!.heartbeatWrittenAt = now.addingTimeInterval(-10)
        #expect(Drift.findings(DriftSnapshot(topology: cleanTopology(), observations: observations, now: now)).isEmpty)

        // The table is locked: the probe's read of it times out, the writer has written nothing for 24 s.
        var locked = Observation(
            instance: "db1001", agent: "host1", agentStartedAt: now, observedAt: now.addingTimeInterval(-2), reachable: false,
            error: "no answer within the timeout")
        locked.heartbeatWrittenAt = now.addingTimeInterval(-26)
        observations["db1001"] = locked
        let findings = Drift.findings(DriftSnapshot(topology: cleanTopology(), observations: observations, now: now))
        let stalled = findings.first { $0.code == .primaryHeartbeatStalled }
        #expect(stalled?.instance == "db1001" && stalled?.section == "s1", "\(findings)")
        #expect(
            stalled?.observed.hasPrefix("last heartbeat written 26 s ago by agent host1 (24 s before its latest probe, which found it unreachable")
                == true,
            "\(stalled?.observed ?? "")")
        #expect(findings.map(\.code).sorted { $0.rawValue < $1.rawValue } == [.primaryHeartbeatStalled, .primaryUnreachable])

        // Another writer (pt-heartbeat): no written heartbeat, HEARTBEAT_STALE judges the row instead.
        observations = cleanObservations()
        observations["db1001"]!.heartbeatLag = 60
        #expect(Drift.findings(DriftSnapshot(topology: cleanTopology(), observations: observations, now: now)).map(\.code) == [.heartbeatStale])
    }

    @Test("the table covers every code")
    func coverage() {
        #expect(Set(cases.map(\.0)).union(GrantDriftTests.codes.map(\.0)) == Set(DriftCode.allCases))
        #expect(Drift.detections.map(\.code) == DriftCode.allCases)
    }

    @Test("a replica ahead of a slightly older primary observation is not errant; only its own writes are")
    func errantNeedsOwnServerID() {
        var observations = cleanObservations()
        for key in ["db1002"] {  // replicated after the primary's probe: server 1001's events
            observations[key]!.gtidCurrentPos = try? GTIDPosition(parsing: "0-1001-105")
            observations[key]!.gtidBinlogPos = try? GTIDPosition(parsing: "0-1001-105")
            observations[key]!.gtidSlavePos = try? GTIDPosition(parsing: "0-1001-105")
        }
        #expect(Drift.findings(DriftSnapshot(topology: cleanTopology(), observations: observations, now: now)).isEmpty)
        // Its own write in domain 7, though the primary has since moved on in domain 0.
        observations["db1002"]!.gtidBinlogPos = try? GTIDPosition(parsing: "0-1001-105,7-1002-1")
        #expect(Drift.findings(DriftSnapshot(topology: cleanTopology(), observations: observations, now: now)).map(\.code) == [.errantGTID])
        // The strict-mode case: the primary's sequence passed the errant one, replication stopped at 100.
        observations["db1002"]!.gtidBinlogPos = try? GTIDPosition(parsing: "0-1002-101")
        observations["db1002"]!.gtidSlavePos = try? GTIDPosition(parsing: "0-1001-100")
        observations["db1001"]!.gtidBinlogPos = try? GTIDPosition(parsing: "0-1001-250")
        #expect(Drift.findings(DriftSnapshot(topology: cleanTopology(), observations: observations, now: now)).map(\.code) == [.errantGTID])
        // A former primary's own last write, already replicated (slave_pos caught up): not errant.
        observations["db1002"]!.gtidSlavePos = try? GTIDPosition(parsing: "0-1002-101")
        observations["db1002"]!.gtidCurrentPos = try? GTIDPosition(parsing: "0-1002-101")
        #expect(Drift.findings(DriftSnapshot(topology: cleanTopology(), observations: observations, now: now)).isEmpty)
    }

    @Test("findings are sorted most severe first, and a section filter keeps its own")
    func sorting() {
        var observations = cleanObservations()
        observations["db1003"]!.gtidStrictMode = false
        observations["db1002"]!.readOnly = false
        observations["db1003"]!.heartbeatLag = 30
        let findings = Drift.findings(DriftSnapshot(topology: cleanTopology(), observations: observations, now: now))
        #expect(findings.map(\.severity) == [.critical, .error, .warning])
        #expect(Drift.findings(DriftSnapshot(topology: cleanTopology(), observations: observations, now: now), section: "s9").isEmpty)
    }
}

/// The site mirror of the clean topology's committed configuration, holding `mirrored`.
func mirror(mirrored: [String: MirroredValue], readError: String? = nil) -> MirrorReading {
    MirrorReading(
        location: "/v2/keys/conftool/v1/mediawiki-config", committed: cleanTopology().generatedConfigs(), mirrored: mirrored,
        readError: readError)
}

@Suite("Drift against what is committed, stale observations, the mirror (pure)")
struct CommittedDriftTests {
    @Test("a staged change not committed yet is informational only: no drift, whatever it changes")
    func uncommittedIsInformational() {
        // The committed topology still names db1001; a staged set-primary db1002 only shows as a change.
        let change = ConfigChange(
            datacenter: "dc1", key: "sectionLoads", entry: "s1",
            before: #"[{"db1001":0},{"db1002":100,"db1003":100}]"#, after: #"[{"db1002":0},{"db1001":100,"db1003":100}]"#)
        let findings = Drift.findings(DriftSnapshot(topology: cleanTopology(), observations: cleanObservations(), uncommitted: [change], now: now))
        #expect(findings.map(\.code) == [.uncommittedChange])
        #expect(findings.allSatisfy { !$0.severity.isDrift })
        #expect(DriftCode.uncommittedChange.severity == .info && DriftCode.operationInProgress.severity == .info)
    }

    @Test(
        "an observation older than the limit, or dated in the future, is stale; one within it is not",
        arguments: [
            (-59.0, 60.0, false), (-61.0, 60.0, true), (-61.0, 120.0, false), (120.0, 60.0, true), (30.0, 60.0, false), (-3600.0, 60.0, true),
        ])
    func staleObservation(_ offset: Double, _ limit: Double, _ stale: Bool) {
        var observations = cleanObservations()
        observations["db1002"]!.observedAt = now.addingTimeInterval(offset)
        let findings = Drift.findings(DriftSnapshot(topology: cleanTopology(), observations: observations, now: now, observationStaleAfter: limit))
        #expect(findings.map(\.code) == (stale ? [.observationStale] : []))
        if stale {
            #expect(findings.first?.instance == "db1002")
            #expect(findings.first?.section == "s1")
            #expect(findings.first?.observed.contains(offset < 0 ? "s ago" : "in the future") == true, "\(findings)")
        }
    }

    @Test("a mirror that is absent, unreadable, unreachable or different is MIRROR_STALE, per datacenter or per entry")
    func mirrorStale() {
        let committed = cleanTopology().generatedConfigs()["dc1"]!
        func findings(_ reading: MirrorReading) -> [DriftFinding] {
            var snapshot = DriftSnapshot(topology: cleanTopology(), observations: cleanObservations(), now: now)
            snapshot.mirror = reading
            return Drift.findings(snapshot)
        }
        let absent = findings(mirror(mirrored: [:]))
        #expect(absent.map(\.code) == [.mirrorStale])
        #expect(absent.first?.observed == "absent")
        #expect(absent.first?.expected == "/v2/keys/conftool/v1/mediawiki-config/dc1/dbconfig holds the committed configuration")
        #expect(findings(mirror(mirrored: ["dc1": .unreadable("value: is required")])).first?.observed == "not a configuration: value: is required")
        #expect(findings(mirror(mirrored: [:], readError: "v2 off")).first?.observed == "could not be read: v2 off")

        // The mirror still names the old primary and a depooled replica: one finding per differing entry.
        var old = committed
        old.sectionLoads["s1"] = [["db1002": 0], ["db1001": 100, "db1003": 100]]
        old.readOnlyBySection["s1"] = "switchover"
        let stale = findings(mirror(mirrored: ["dc1": .config(old)]))
        #expect(stale.map(\.code) == [.mirrorStale, .mirrorStale])
        #expect(Set(stale.compactMap(\.section)) == ["s1"])
        #expect(stale.allSatisfy { $0.severity == .error })
        #expect(stale.contains { $0.expected.hasPrefix("dc1 sectionLoads committed: ") && $0.observed.contains(#""db1002":0"#) })
        // A datacenter only in the mirror is not judged: nothing commits it.
        #expect(findings(mirror(mirrored: ["dc1": .config(committed), "dc9": .unreadable("x")])).isEmpty)
    }

    @Test("a section under an operation's lock is reported as informational, beside its real findings")
    func operationInProgress() {
        var observations = cleanObservations()
        observations["db1001"]!.readOnly = true  // the switchover's read-only step
        var snapshot = DriftSnapshot(topology: cleanTopology(), observations: observations, now: now)
        snapshot.locks = ["s1": "op-1"]
        let findings = Drift.findings(snapshot)
        #expect(findings.map(\.code) == [.primaryReadOnly, .operationInProgress])
        #expect(Drift.findings(snapshot, section: "s1").count == 2)
    }
}
