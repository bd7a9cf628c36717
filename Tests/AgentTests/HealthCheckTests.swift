import Foundation
import Observation
import Testing

@testable import Agent

/// The health checks' decisions, from facts alone: what a load balancer is told.
@Suite("Health checks: decisions")
struct HealthCheckTests {
    /// A primary `db1001` of `s1` with `db1002` (weight 100) and `db1003` pooled, fresh facts,
    /// the lease held with 3.5 s left.
    static func facts(
        _ instance: String = "db1001", readOnly: Bool? = false, lag: Double? = 0.3, channel: ReplicationChannel? = nil,
        fencing: Bool = true
    ) -> HealthCheck.Facts {
        var observation = Observation(
            instance: instance, agent: "host", agentStartedAt: Date(timeIntervalSince1970: 0), observedAt: Date(timeIntervalSince1970: 10),
            reachable: true)
        observation.readOnly = readOnly
        observation.heartbeatLag = lag
        if let channel { observation.replication = [channel] }
        return HealthCheck.Facts(
            instance: instance, section: "s1", observation: observation, observationAge: 0.4, observationLimit: 2,
            committed: .init(age: 0.2, primary: "db1001", replicas: ["db1002": 100, "db1003": 50]), committedError: nil, committedLimit: 10,
            lease: fencing ? .init(held: true, secondsLeft: 3.5, selfFence: nil) : nil, fencingConfigured: fencing,
            liveReadOnly: .value(false))
    }

    static let running = ReplicationChannel(sourceHost: "127.0.0.1", sourcePort: 3306, ioThread: "Yes", sqlThread: "Yes", usingGTID: "Slave_Pos")

    static func replicaFacts(_ instance: String = "db1002", lag: Double? = 0.3, channel: ReplicationChannel = running) -> HealthCheck.Facts {
        var facts = facts(instance, readOnly: true, lag: lag, channel: channel)
        facts.liveReadOnly = nil
        facts.lease = nil
        return facts
    }

    @Test("/primary: 200 for the committed, writable primary holding its lease, with the lease's time left in the body")
    func primaryOK() throws {
        let answer = HealthCheck.primary(Self.facts())
        #expect(answer.status == .ok)
        #expect(answer.body.writable == true && answer.body.role == "primary" && answer.body.lease == "held, 3.5 s left")
        let json = String(decoding: answer.response.body, as: UTF8.self)
        #expect(json.contains("\"instance\":\"db1001\"") && json.contains("\"ok\":true") && json.hasSuffix("}\n"), "\(json)")
    }

    @Test(
        "/primary: 503 with the reason when any condition fails",
        arguments: [
            ("read_only is ON", { @Sendable (f: inout HealthCheck.Facts) in f.liveReadOnly = .value(true) }),
            ("not the committed primary of s1 (db1002 is)", { @Sendable (f: inout HealthCheck.Facts) in f.committed?.primary = "db1002" }),
            ("this agent does not hold the primary lease of s1", { @Sendable (f: inout HealthCheck.Facts) in f.lease?.held = false }),
            ("the primary lease of s1 has no time left", { @Sendable (f: inout HealthCheck.Facts) in f.lease?.secondsLeft = -0.1 }),
            ("self-fenced: lost", { @Sendable (f: inout HealthCheck.Facts) in f.lease?.selfFence = "lost" }),
            ("read_only could not be read within 2 s", { @Sendable (f: inout HealthCheck.Facts) in f.liveReadOnly = .timedOut(2) }),
            ("read_only cannot be read: gone", { @Sendable (f: inout HealthCheck.Facts) in f.liveReadOnly = .failed("gone") }),
            ("8 reads of read_only are already waiting for the server", { @Sendable (f: inout HealthCheck.Facts) in f.liveReadOnly = .busy(8) }),
            (
                "the committed configuration was read from etcd 11 s ago (limit 10 s)",
                { @Sendable (f: inout HealthCheck.Facts) in f.committed?.age = 11 }
            ),
            (
                "the committed configuration of s1 is unknown: etcd down",
                { @Sendable (f: inout HealthCheck.Facts) in (f.committed, f.committedError) = (nil, "etcd down") }
            ),
            ("no section: the agent's configuration gives this instance no shard", { @Sendable (f: inout HealthCheck.Facts) in f.section = nil }),
        ] as [(String, @Sendable (inout HealthCheck.Facts) -> Void)])
    func primaryRefused(reason: String, change: @Sendable (inout HealthCheck.Facts) -> Void) {
        var facts = Self.facts()
        change(&facts)
        let answer = HealthCheck.primary(facts)
        #expect(answer.status == .serviceUnavailable)
        #expect(answer.body.reason == reason && !answer.body.ok)
    }

    @Test("/primary without fencing: the lease is not a condition, and the body says so")
    func primaryWithoutFencing() {
        let answer = HealthCheck.primary(Self.facts(fencing: false))
        #expect(answer.status == .ok)
        #expect(answer.body.lease == "not checked: fencing is not configured")
    }

    @Test("/primary asks the server only when everything else holds")
    func liveReadOnlyOnlyWhenNeeded() {
        var facts = Self.facts()
        facts.liveReadOnly = nil
        #expect(HealthCheck.primaryNeedsLiveRead(facts))
        #expect(HealthCheck.primary(facts).status == .serviceUnavailable, "never 200 without a live reading")
        facts.committed?.primary = "db1002"
        #expect(!HealthCheck.primaryNeedsLiveRead(facts))
    }

    @Test("/replica: 200 on a pooled replica replicating with a known lag under the bound; no bound without lag")
    func replicaOK() {
        #expect(HealthCheck.replica(Self.replicaFacts(), maxLag: 5).status == .ok)
        #expect(HealthCheck.replica(Self.replicaFacts(lag: 3600), maxLag: nil).status == .ok)
        // etcd away for ten minutes: the replica still serves on the last configuration it read.
        var etcdAway = Self.replicaFacts()
        etcdAway.committed?.age = 600
        etcdAway.committedError = "etcd down"
        #expect(HealthCheck.replica(etcdAway, maxLag: 5).status == .ok)
        #expect(HealthCheck.replica(Self.replicaFacts(lag: 5), maxLag: 5).status == .serviceUnavailable, "under, not at")
    }

    @Test(
        "/replica: 503 with the reason when any condition fails",
        arguments: [
            ("heartbeat lag 7.2 s is not under 5 s", { @Sendable (f: inout HealthCheck.Facts) in f.observation?.heartbeatLag = 7.2 }),
            (
                "heartbeat lag unknown: no row",
                { @Sendable (f: inout HealthCheck.Facts) in
                    f.observation?.heartbeatLag = nil
                    f.observation?.heartbeatError = "no row"
                }
            ),
            (
                "replication SQL thread not running: No: oops",
                { @Sendable (f: inout HealthCheck.Facts) in
                    f.observation?.replication[0].sqlThread = "No"
                    f.observation?.replication[0].lastSQLError = "oops"
                }
            ),
            (
                "replication IO thread not running: Connecting",
                { @Sendable (f: inout HealthCheck.Facts) in f.observation?.replication[0].ioThread = "Connecting" }
            ),
            ("not replicating: no replication connection", { @Sendable (f: inout HealthCheck.Facts) in f.observation?.replication = [] }),
            ("too old: the latest probe is 2.5 s old (limit 2 s)", { @Sendable (f: inout HealthCheck.Facts) in f.observationAge = 2.5 }),
            (
                "unreachable: boom",
                { @Sendable (f: inout HealthCheck.Facts) in
                    f.observation?.reachable = false
                    f.observation?.error = "boom"
                }
            ),
            ("not pooled in s1 (depooled, or not a member)", { @Sendable (f: inout HealthCheck.Facts) in f.committed?.replicas["db1002"] = nil }),
            ("pooled in s1 with weight 0", { @Sendable (f: inout HealthCheck.Facts) in f.committed?.replicas["db1002"] = 0 }),
            ("the committed primary of s1, not a replica", { @Sendable (f: inout HealthCheck.Facts) in f.committed?.primary = "db1002" }),
            ("not probed yet", { @Sendable (f: inout HealthCheck.Facts) in (f.observation, f.observationAge) = (nil, nil) }),
        ] as [(String, @Sendable (inout HealthCheck.Facts) -> Void)])
    func replicaRefused(reason: String, change: @Sendable (inout HealthCheck.Facts) -> Void) {
        var facts = Self.replicaFacts()
        change(&facts)
        let answer = HealthCheck.replica(facts, maxLag: 5)
        #expect(answer.status == .serviceUnavailable)
        #expect(answer.body.reason == reason, "\(answer.body.reason)")
    }

    @Test("/health: 200 while the latest probe succeeded recently, with the observed role, read_only and lag")
    func health() {
        let ok = HealthCheck.health(Self.replicaFacts())
        #expect(ok.status == .ok && ok.body.role == "replica" && ok.body.readOnly == true && ok.body.lag == 0.3)
        #expect(HealthCheck.health(Self.facts()).body.role == "primary")
        var stale = Self.replicaFacts()
        stale.observationAge = 30
        #expect(HealthCheck.health(stale).status == .serviceUnavailable)
        var down = Self.replicaFacts()
        down.observation?.reachable = false
        #expect(HealthCheck.health(down).status == .serviceUnavailable)
    }

    static func head(_ target: String, method: String = "GET") -> HTTPRequestHead {
        guard case .complete(let head) = HTTPRequestHead.parse(Array("\(method) \(target) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)) else {
            fatalError("unparsed \(target)")
        }
        return head
    }

    @Test("routes: GET and HEAD only (405 with Allow), known paths, lag a positive finite number of seconds (400 naming it)")
    func routes() throws {
        #expect(HealthCheck.route(Self.head("/primary")) == .success(.primary))
        #expect(HealthCheck.route(Self.head("/replica?lag=2.5", method: "HEAD")) == .success(.replica(maxLag: 2.5)))
        #expect(HealthCheck.route(Self.head("/replica")) == .success(.replica(maxLag: nil)))
        #expect(HealthCheck.route(Self.head("/metrics"), metricsOnly: true) == .success(.metrics))
        #expect(throws: HealthCheck.Refusal.self) { try HealthCheck.route(Self.head("/primary"), metricsOnly: true).get() }
        let post = HealthCheck.route(Self.head("/primary", method: "POST"))
        guard case .failure(let refusal) = post else {
            Issue.record("POST accepted")
            return
        }
        #expect(refusal.status == .methodNotAllowed && refusal.headers == [.init(name: "Allow", value: "GET, HEAD")])
        for bad in ["lag=0", "lag=-1", "lag=nan", "lag=inf", "lag=abc", "lag=", "lag", "lag=1e400", "lag=100000", "lag=1&lag=2", "lga=5"] {
            guard case .failure(let refusal) = HealthCheck.route(Self.head("/replica?\(bad)")) else {
                Issue.record("\(bad) accepted")
                continue
            }
            #expect(refusal.status == .badRequest && (refusal.reason.contains("lag") || refusal.reason.contains("lga")), "\(bad): \(refusal)")
        }
        guard case .failure(let missing) = HealthCheck.route(Self.head("/nope")) else { return }
        #expect(missing.status == .notFound)
    }

    @Test("committed sections: the primary first, pooled replicas with their weights, DEFAULT is s3")
    func committedSections() throws {
        let json = #"{"schema":1,"config":{"sectionLoads":{"s1":[{"db1001":0},{"db1002":100,"db1003":0}],"DEFAULT":[{"db3001":0},{}]}}}"#
        let sections = try CommittedSections([.init(key: "/marina/v1/generated/dc1", value: Array(json.utf8))])
        #expect(sections.sections["s1"] == .init(primary: "db1001", replicas: ["db1002": 100, "db1003": 0]))
        #expect(sections.sections["s3"] == .init(primary: "db3001", replicas: [:]))
    }
}
