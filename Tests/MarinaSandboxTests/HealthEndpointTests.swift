import Foundation
import MarinaSandbox
import MarinaTestSupport
import Synchronization
import Testing

/// The agent's health checks as a load balancer sees them, against real servers: `/primary`
/// through a switchover polled every 10 ms, `/replica?lag=N` through a stopped SQL thread and a
/// depool, malformed requests, and `/metrics` read by Prometheus's own parser.
@Suite("Agent health endpoints", .serialized)
struct HealthEndpointTests {
    @Test("/primary polled every 10 ms through a switchover: never two 200s in a round; the old primary alone before, the new one alone after")
    func primaryThroughSwitchover() async throws {
        let sandbox = try await TestServers.privateSandbox("health-switch", replicas: 2, controller: true, agentInterval: 0.2)
        defer { TestServers.stop(sandbox) }
        let ports = try healthPorts(sandbox)
        #expect(try await eventually(20) { try await primaryRound(ports) == ["db1001"] }, "db1001 never answered 200 alone on /primary")

        let poller = PrimaryPoller(ports: ports)
        poller.start()
        #expect(try await eventually(10) { poller.roundCount >= 50 }, "the poller does not poll")
        let switchStarted = poller.roundCount
        let result = try await blocking { try switchover(sandbox, ["s1", "--to", "db1002", "--yes"]) }
        let switchDone = poller.roundCount
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        // The new primary answers 200 within a bounded time once the journal says done (its
        // agent reads the commit and takes the primary lease).
        let answered = try await eventually(10) { poller.rounds.dropFirst(switchDone).contains { $0.ok == ["db1002"] } }
        #expect(answered, "db1002 did not answer 200 alone on /primary within 10 s of the switchover's end")
        let firstNew = poller.roundCount
        #expect(try await eventually(10) { poller.roundCount >= firstNew + 100 }, "the poller stopped")  // a second more at 10 ms
        let rounds = await blocking { poller.stop() }

        #expect(rounds.count > 200, "only \(rounds.count) rounds")
        let twoWriters = rounds.filter { $0.ok.count > 1 }
        #expect(twoWriters.isEmpty, "rounds with two 200s: \(twoWriters.prefix(5))")
        let before = rounds.prefix(switchStarted)
        #expect(before.allSatisfy { $0.ok == ["db1001"] }, "before the switchover: \(before.filter { $0.ok != ["db1001"] }.prefix(5))")
        guard let newFirst = rounds.indices.first(where: { $0 >= switchDone && rounds[$0].ok == ["db1002"] }) else { return }
        let after = rounds[newFirst...]
        #expect(after.allSatisfy { $0.ok.isSubset(of: ["db1002"]) }, "after: \(after.filter { !$0.ok.isSubset(of: ["db1002"]) }.prefix(5))")
        #expect(after.suffix(20).allSatisfy { $0.ok == ["db1002"] }, "db1002 does not answer 200 steadily after the switchover")
        #expect(rounds[..<switchStarted].allSatisfy { !$0.ok.contains("db1002") })
        // The write-blocked window, as the load balancer sees it: rounds where nobody answers 200.
        let blocked = rounds.indices.filter { rounds[$0].ok.isEmpty }
        let seconds = blocked.first.map { rounds[blocked.last!].at.timeIntervalSince(rounds[$0].at) } ?? 0
        print(
            "health: \(rounds.count) rounds of /primary; \(blocked.count) with no 200 (the write-blocked window, rounds \(blocked.first ?? -1)...\(blocked.last ?? -1), "
                + String(format: "%.3f s", seconds) + "); the switchover ran over rounds \(switchStarted)...\(switchDone)")
    }

    @Test("/replica?lag=N: 503 while the SQL thread is stopped (reason given), 200 again after START SLAVE SQL_THREAD; a depooled replica is 503")
    func replicaLag() async throws {
        let sandbox = try await TestServers.privateSandbox("health-replica", replicas: 2, controller: true, agentInterval: 0.2)
        defer { TestServers.stop(sandbox) }
        let ports = try healthPorts(sandbox)
        let db1002 = try #require(ports["db1002"])
        #expect(try await eventually(20) { await httpGet(db1002, "/replica?lag=5").status == 200 }, "db1002 never answered 200")
        #expect(await httpGet(try #require(ports["db1001"]), "/replica?lag=5").status == 503, "the primary is no replica")

        try await execute(sandbox, "db1002", "STOP SLAVE SQL_THREAD")
        var refused = (status: 0, body: [String: Any]())
        #expect(
            try await eventually(10) {
                refused = await httpGet(db1002, "/replica?lag=1")
                return refused.status == 503
            }, "db1002 still answers 200 with its SQL thread stopped")
        let reason = refused.body["reason"] as? String ?? ""
        #expect(reason.contains("SQL thread not running") || reason.contains("heartbeat lag"), "\(refused.body)")
        #expect(refused.body["instance"] as? String == "db1002" && refused.body["ok"] as? Bool == false)

        try await execute(sandbox, "db1002", "START SLAVE SQL_THREAD")
        #expect(try await eventually(10) { await httpGet(db1002, "/replica?lag=5").status == 200 }, "db1002 did not answer 200 again")

        // Lag alone: the SQL thread runs but cannot apply the heartbeat (a read lock on its table).
        let locker = try await sandbox.root("db1002", readTimeout: 30)
        try await locker.execute("LOCK TABLES heartbeat.heartbeat READ")
        var lagged = (status: 0, body: [String: Any]())
        let sawLag = try await eventually(15) {
            lagged = await httpGet(db1002, "/replica?lag=2")
            return lagged.status == 503
        }
        try await locker.execute("UNLOCK TABLES")
        await locker.close()
        #expect(sawLag, "db1002 stayed 200 with its heartbeat blocked")
        #expect((lagged.body["reason"] as? String ?? "").contains("is not under 2 s"), "\(lagged.body)")
        #expect(try await eventually(10) { await httpGet(db1002, "/replica?lag=2").status == 200 })

        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"]
        let depool = try runMarina(["instance", "depool", "db1002", "--section", "s1"], environment: environment)
        #expect(depool.status == 0, "\(depool.stderr)")
        let commit = try runMarina(["config", "commit", "--yes", "-m", "depool db1002"], environment: environment)
        #expect(commit.status == 0, "\(commit.stderr)")
        #expect(try await eventually(10) { await httpGet(db1002, "/replica").status == 503 }, "a depooled replica still answers 200")
        let depooled = await httpGet(db1002, "/replica")
        #expect((depooled.body["reason"] as? String ?? "").contains("not pooled in s1"), "\(depooled.body)")
        #expect(await httpGet(try #require(ports["db1003"]), "/replica").status == 200, "db1003 is still pooled")
    }

    @Test("malformed requests get a 4xx and the agent keeps serving; /metrics parses and holds each instance's gauges")
    func malformedAndMetrics() async throws {
        let sandbox = try await TestServers.privateSandbox("health-metrics", replicas: 2, agent: true, agentInterval: 0.2)
        defer { TestServers.stop(sandbox) }
        let ports = try healthPorts(sandbox)
        let port = try #require(ports["db1002"])
        #expect(try await eventually(20) { await httpGet(port, "/health").status == 200 })

        let huge = "GET /health HTTP/1.1\r\nX-Pad: " + String(repeating: "a", count: 64 * 1024) + "\r\n\r\n"
        let cases: [(String, [UInt8], ClosedRange<Int>)] = [
            ("garbage", Array("\u{1}\u{2}garbage\r\n\r\n".utf8), 400...400), ("huge header", Array(huge.utf8), 431...431),
            ("POST", Array("POST /primary HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}".utf8), 405...405),
            ("unknown path", Array("GET /../../etc/passwd HTTP/1.1\r\n\r\n".utf8), 404...404),
            ("bad lag", Array("GET /replica?lag=-3 HTTP/1.1\r\n\r\n".utf8), 400...400),
            ("HTTP/2 preface", Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8), 400...505),
        ]
        for (name, bytes, expected) in cases {
            let answer = await blocking { rawExchange(port, bytes) }
            #expect(answer.status.map { expected.contains($0) } == true, "\(name): \(answer.text.prefix(200))")
        }
        let post = await blocking { rawExchange(port, Array("POST /primary HTTP/1.1\r\n\r\n".utf8)) }
        #expect(post.text.contains("\r\nAllow: GET, HEAD\r\n"), "\(post.text)")
        #expect(await httpGet(port, "/health").status == 200, "the agent stopped serving after malformed requests")

        let http = try #require(sandbox.http)
        for (name, metricsPort) in [("metrics_listen", UInt16(http.agentMetricsPort)), ("health listener", port)] {
            let text = await blocking { rawExchange(metricsPort, Array("GET /metrics HTTP/1.1\r\n\r\n".utf8)) }
            #expect(text.status == 200, "\(name): \(text.text.prefix(200))")
            let body = String(text.text.split(separator: "\r\n\r\n", maxSplits: 1).last ?? "")
            let samples = try parseMetrics(Data(body.utf8))
            func value(_ metric: String, _ instance: String) -> Double? {
                let entries: [[String: Any]] = samples[metric] ?? []
                let entry = entries.first { entry in (entry["labels"] as? [String: String])?["db_instance"] == instance }
                return entry?["value"] as? Double
            }
            for instance in ["db1001", "db1002", "db1003"] {
                #expect(value("marina_instance_up", instance) == 1, "\(name): \(instance) up")
                #expect(value("marina_instance_read_only", instance) == (instance == "db1001" ? 0 : 1), "\(name): \(instance) read_only")
                #expect((value("marina_instance_observation_age_seconds", instance) ?? 99) < 5, "\(name): \(instance) age")
            }
            #expect(value("marina_instance_replication_sql_running", "db1002") == 1 && value("marina_instance_replication_io_running", "db1003") == 1)
            #expect(value("marina_agent_primary_lease_held", "db1001") == 1, "\(name): the lease of s1")
            let probes: [[String: Any]] = samples["marina_agent_probes_total"] ?? []
            #expect(probes.first?["type"] as? String == "counter")
            let ups: [[String: Any]] = samples["marina_instance_up"] ?? []
            let section = ups.compactMap { entry in (entry["labels"] as? [String: String])?["section"] }
            #expect(Set(section) == ["s1"])
        }
        #expect(throws: (any Error).self) { try parseMetrics(Data("marina_bad{ 1\n".utf8)) }
    }
}

// MARK: Helpers

/// Each instance's health port, from the sandbox's state.
private func healthPorts(_ sandbox: SandboxState) throws -> [String: UInt16] {
    let http = try #require(sandbox.http, "the sandbox serves no HTTP")
    return http.healthPorts.mapValues { UInt16($0) }
}

/// Runs blocking work (a socket, a child process) on a thread of its own, not the cooperative pool.
private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}

private func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: body()) }
    }
}

/// Sends `bytes` to 127.0.0.1:`port`, half-closes, and reads the answer until the server
/// closes (5 s at most). The status is nil when the answer is no HTTP response.
private func rawExchange(_ port: UInt16, _ bytes: [UInt8], host: String = "127.0.0.1") -> (status: Int?, text: String) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return (nil, "no socket") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr(host)
    var time = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return (nil, "cannot connect to port \(port)") }
    var offset = 0
    while offset < bytes.count {
        let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent > 0 else { break }  // the server may refuse before reading everything
        offset += sent
    }
    shutdown(fd, Int32(SHUT_WR))
    var answer = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { break }
        answer += chunk[..<count]
    }
    let text = String(decoding: answer, as: UTF8.self)
    guard text.hasPrefix("HTTP/1.1 ") else { return (nil, text) }
    return (Int(text.dropFirst(9).prefix(3)), text)
}

/// GET `path` on a health port: the status (0 when there is no answer) and the JSON body.
private func httpGet(_ port: UInt16, _ path: String) async -> (status: Int, body: [String: Any]) {
    let answer = await blocking { rawExchange(port, Array("GET \(path) HTTP/1.1\r\nHost: sandbox\r\n\r\n".utf8)) }
    let body = answer.text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
    let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
    return (answer.status ?? 0, object ?? [:])
}

/// The instances that answer 200 on `/primary` in one round (all asked at once).
private func primaryRound(_ ports: [String: UInt16]) async throws -> Set<String> {
    await withTaskGroup(of: (String, Int).self) { group in
        for (name, port) in ports { group.addTask { (name, await httpGet(port, "/primary").status) } }
        var ok = Set<String>()
        for await (name, status) in group where status == 200 { ok.insert(name) }
        return ok
    }
}

/// Parses exposition text with Prometheus's Python parser (`Scripts/parse_metrics.py`).

/// Asks `/primary` of every instance at once, every 10 ms, on threads of its own, and keeps
/// each round: when it began and who answered 200.
private final class PrimaryPoller: Sendable {
    struct Round: Sendable, CustomStringConvertible {
        var at: Date
        var ok: Set<String>
        var description: String { "\(at.timeIntervalSince1970): \(ok.sorted())" }
    }

    let ports: [String: UInt16]
    private let state = Mutex<(rounds: [Round], stopped: Bool)>(([], false))
    private let finished = DispatchSemaphore(value: 0)

    init(ports: [String: UInt16]) { self.ports = ports }

    var rounds: [Round] { state.withLock { $0.rounds } }
    var roundCount: Int { state.withLock { $0.rounds.count } }

    func start() {
        let ports = self.ports
        Thread.detachNewThread { [self] in
            let group = DispatchGroup()
            while !state.withLock({ $0.stopped }) {
                let started = Date()
                let ok = Mutex(Set<String>())
                for (name, port) in ports {
                    DispatchQueue.global().async(group: group) {
                        if rawExchange(port, Array("GET /primary HTTP/1.1\r\n\r\n".utf8)).status == 200 { ok.withLock { _ = $0.insert(name) } }
                    }
                }
                group.wait()
                state.withLock { $0.rounds.append(Round(at: started, ok: ok.withLock { $0 })) }
                let left = 0.01 - Date().timeIntervalSince(started)
                if left > 0 { usleep(UInt32(left * 1_000_000)) }
            }
            finished.signal()
        }
    }

    /// Stops polling and gives every round.
    func stop() -> [Round] {
        state.withLock { $0.stopped = true }
        finished.wait()
        return rounds
    }
}
