import Drift
import EtcdClient
import Foundation
import MarinaSandbox
import Observation
import Topology
import TopologyStore

// Benchmarks whose figures go in docs/benchmarks.md. Run with `make bench`.
//
//   marina-bench sandbox-up [--runs N]
//     Time from `Sandbox.up` being called to its return, for one section of a primary and
//     two replicas: etcd answering, every mariadbd accepting connections, replication set up
//     and caught up (MASTER_GTID_WAIT), and the first heartbeat row written. The first run
//     uses an empty template cache (the "first time"); the others reuse the template.
//
//   marina-bench agent --marina PATH [--seconds N]
//     A sandbox of 10 instances (2 sections of a primary and 4 replicas) and one agent (PATH:
//     the release `marina-agent`, or `marina` to run `marina agent`) probing them every second. After a 15 s warm-up, over N seconds (60):
//     the agent's CPU (utime+stime from /proc/PID/stat) as a share of one core, its resident
//     memory (VmRSS, sampled every second: max and median), and every write to
//     /marina/v1/observed/ counted by an etcd watch, per instance per 5 s.
//
//   marina-bench drift [--runs N]
//     Drift.findings over a generated snapshot of 10,000 instances in 500 sections (one
//     primary and 19 replicas each, one observation per instance, 1% of them drifting in
//     various ways), timed N times (20) after one warm-up run; the snapshot is built once.
//
//   marina-bench config-commit [--runs N] [--marina PATH]
//     A topology of 500 instances in 20 sections (25 each, one datacenter) in a real etcd
//     (an etcd-only sandbox). Each run stages one edit (a weight), then times a commit:
//     `TopologyStore.commit` (read everything in one transaction, validate, generate, diff,
//     write generated config + history entry with the full snapshot), and, with --marina, the
//     whole `marina config commit -m ...` process.

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = p * Double(sorted.count - 1)
    let low = Int(rank.rounded(.down))
    let high = Int(rank.rounded(.up))
    return sorted[low] + (sorted[high] - sorted[low]) * (rank - Double(low))
}

/// Median and spread, in milliseconds when the median is under a second.
func describe(_ samples: [Double]) -> String {
    let sorted = samples.sorted()
    let milliseconds = percentile(sorted, 0.5) < 1
    let scale = milliseconds ? 1000.0 : 1.0
    let unit = milliseconds ? "ms" : "s"
    let format = milliseconds ? "%.1f" : "%.2f"
    let value = { (x: Double) in String(format: format, x * scale) + " " + unit }
    return "n=\(sorted.count)  median \(value(percentile(sorted, 0.5)))  min \(value(sorted.first ?? .nan))  "
        + "p90 \(value(percentile(sorted, 0.9)))  max \(value(sorted.last ?? .nan))"
}

func benchmarkSandboxUp(runs: Int) async throws {
    let root = NSTemporaryDirectory() + "marina-bench-\(getpid())"
    let cache = root + "/cache"
    setenv("MARINA_CACHE_DIR", cache, 1)
    defer { try? FileManager.default.removeItem(atPath: root) }
    var warm = [Double]()
    var cold: Double?
    for run in 0..<(runs + 1) {
        let directory = "\(root)/sandbox-\(run)"
        let clock = ContinuousClock()
        let start = clock.now
        let started = try await Sandbox.up(.init(directory: directory, sections: 1, replicas: 2))
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        _ = try await Sandbox.stop(directory: started.state.directory, purge: true)
        if run == 0 { cold = seconds } else { warm.append(seconds) }
        print(String(format: "run %2d  %@  %.2f s", run, run == 0 ? "cold (template built)" : "warm", seconds))
    }
    print("sandbox up, 1 primary + 2 replicas, first time: " + String(format: "%.2f s", cold ?? .nan))
    print("sandbox up, 1 primary + 2 replicas, after the first time: " + describe(warm))
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// 20 sections × 25 instances: a primary (weight 0) and 24 pooled replicas each.
func largeTopology() -> Topology {
    var topology = Topology(datacenters: ["eqiad"])
    for section in 1...20 {
        let name = "s\(section)"
        topology.sections[name] = Section(name: name, primary: "db\(section)001", datacenter: "eqiad", minReplicas: 10)
        for index in 1...25 {
            let instance = "db\(section)\(String(format: "%03d", index))"
            topology.instances[instance] = Instance(
                name: instance, host: "10.\(section).0.\(index)", datacenter: "eqiad", candidatePrimary: index <= 3,
                sections: [
                    name: Membership(
                        pooled: true, weight: index == 1 ? 0 : 100 + index,
                        groups: index % 5 == 0 ? ["vslow": GroupMembership(weight: 50)] : [:])
                ])
        }
    }
    return topology
}

func benchmarkConfigCommit(runs: Int, marina: String?) async throws {
    let root = NSTemporaryDirectory() + "marina-bench-commit-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: root) }
    let sandbox = try await Sandbox.up(.init(directory: root, sections: 0)).state
    defer { _ = try? Sandbox.down(directory: root, purge: true) }
    let store = TopologyStore(etcd: EtcdClient(endpoints: [sandbox.etcd.url]))
    let actor = ChangeAuthor(author: "bench", now: Date())
    guard case .applied = try await store.replaceStaged(with: largeTopology(), by: actor, change: "bench") else {
        fatalError("the benchmark topology was refused")
    }
    _ = try await store.commit(message: "initial", by: actor)
    var library = [Double]()
    var command = [Double]()
    for run in 0..<runs {
        _ = try await store.apply(.setWeight(instance: "db1002", section: "s1", group: nil, weight: 200 + run), by: actor)
        let clock = ContinuousClock()
        let start = clock.now
        guard case .committed = try await store.commit(message: "run \(run)", by: actor) else { fatalError("run \(run) did not commit") }
        library.append(seconds(clock.now - start))
        guard let marina else { continue }
        _ = try await store.apply(.setWeight(instance: "db1002", section: "s1", group: nil, weight: 100 + run), by: actor)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: marina)
        process.arguments = ["config", "commit", "--yes", "-m", "cli run \(run)", "--etcd", sandbox.etcd.url]
        process.standardOutput = FileHandle.nullDevice
        let started = clock.now
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { fatalError("marina config commit exited \(process.terminationStatus)") }
        command.append(seconds(clock.now - started))
    }
    let newest = try await store.etcd.get(store.keys.history, prefix: true).kvs.last
    print("newest history entry (with the full snapshot): \(newest?.value.count ?? 0) bytes")
    print("config commit, 500 instances / 20 sections, TopologyStore.commit: " + describe(library))
    if !command.isEmpty { print("config commit, 500 instances / 20 sections, whole marina process: " + describe(command)) }
}

func processTicks(_ pid: Int32) -> Double {
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
    // After the command name: state is field 0; utime and stime are fields 11 and 12.
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return user + system
}

func residentMegabytes(_ pid: Int32) -> Double {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
    else { return 0 }
    return kilobytes / 1024
}

func benchmarkAgent(marina: String, seconds duration: Int) async throws {
    let root = NSTemporaryDirectory() + "marina-bench-agent-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: root) }
    let sandbox = try await Sandbox.up(.init(directory: root, sections: 2, replicas: 4)).state
    defer { _ = try? Sandbox.down(directory: root, purge: true) }
    let pid = try await Sandbox.startAgent(directory: root, executable: marina, interval: 1, leaseTTL: 10)
    print("agent pid \(pid) watching \(sandbox.instances.count) instances; warming up 15 s")
    try await Task.sleep(for: .seconds(15))
    let etcd = EtcdClient(endpoints: [sandbox.etcd.url])
    let from = try await etcd.status().revision + 1
    let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    let clock = ContinuousClock()
    let start = clock.now
    let startTicks = processTicks(pid)
    var resident = [Double]()
    for _ in 0..<duration {
        try await Task.sleep(for: .seconds(1))
        resident.append(residentMegabytes(pid))
    }
    let elapsed = seconds(clock.now - start)
    let cpu = (processTicks(pid) - startTicks) / ticksPerSecond / elapsed * 100
    let to = try await etcd.status().revision
    // Count every write under observed/ between the two revisions with a watch replay.
    var writes = 0
    let stream = etcd.watch("/marina/v1/observed/", prefix: true, startRevision: from)
    for try await response in stream {
        writes += response.events.filter { $0.kv.modRevision <= to }.count
        if response.events.contains(where: { $0.kv.modRevision >= to }) || response.headerRevision >= to { break }
    }
    let perInstancePer5s = Double(writes) / Double(sandbox.instances.count) / (elapsed / 5)
    print(
        String(
            format: "agent, %d instances, 1 s interval, %.0f s: CPU %.2f%% of one core; RSS max %.1f MB, median %.1f MB; "
                + "%d observation writes = %.2f per instance per 5 s",
            sandbox.instances.count, elapsed, cpu, resident.max() ?? 0, percentile(resident.sorted(), 0.5), writes, perInstancePer5s))
}

func driftSnapshot() -> DriftSnapshot {
    let now = Date()
    var topology = Topology(datacenters: ["eqiad"])
    var observations = [String: Observation]()
    for section in 1...500 {
        let name = "s\(section)"
        let primary = "db\(section)001"
        topology.sections[name] = Section(name: name, primary: primary, datacenter: "eqiad", minReplicas: 5)
        for index in 1...20 {
            let instance = "db\(section)\(String(format: "%03d", index))"
            let host = "10.\(section / 250).\(section % 250).\(index)"
            topology.instances[instance] = Instance(
                name: instance, host: host, datacenter: "eqiad", candidatePrimary: index <= 3,
                sections: [name: Membership(pooled: true, weight: index == 1 ? 0 : 100)])
            var observation = Observation(
                instance: instance, agent: "host\(section)", agentStartedAt: now, observedAt: now, reachable: true,
                lastGoodProbeAt: now)
            observation.serverID = section * 1000 + index
            observation.readOnly = index != 1
            observation.gtidStrictMode = true
            observation.logBin = true
            observation.binlogFormat = "ROW"
            observation.gtidBinlogPos = try? GTIDPosition(parsing: "0-\(section * 1000 + 1)-\(1000 + index)")
            observation.gtidCurrentPos = observation.gtidBinlogPos
            observation.heartbeatLag = 0.2
            if index != 1 {
                observation.replication = [
                    ReplicationChannel(
                        sourceHost: "10.\(section / 250).\(section % 250).1", sourcePort: 3306,
                        sourceServerID: section * 1000 + 1, ioThread: "Yes", sqlThread: "Yes", usingGTID: "Slave_Pos")
                ]
            }
            if (section * 20 + index) % 100 == 7 { observation.heartbeatLag = 30 }  // 1% lagging
            if (section * 20 + index) % 1000 == 13 { observation.readOnly = false }  // some writable replicas
            observations[instance] = observation
        }
    }
    return DriftSnapshot(topology: topology, observations: observations, now: now)
}

func benchmarkDrift(runs: Int) {
    let snapshot = driftSnapshot()
    let clock = ContinuousClock()
    _ = Drift.findings(snapshot)
    var samples = [Double]()
    var count = 0
    for _ in 0..<runs {
        let start = clock.now
        count = Drift.findings(snapshot).count
        samples.append(seconds(clock.now - start))
    }
    print(
        "drift, \(snapshot.topology.instances.count) instances in \(snapshot.topology.sections.count) sections, \(count) findings: "
            + describe(samples))
}

let arguments = CommandLine.arguments.dropFirst()
let runs =
    arguments.firstIndex(of: "--runs").flatMap { arguments.index(after: $0) < arguments.endIndex ? Int(arguments[arguments.index(after: $0)]) : nil }
    ?? 10
switch arguments.first {
case "sandbox-up":
    try await benchmarkSandboxUp(runs: runs)
case "agent":
    guard let marina = arguments.firstIndex(of: "--marina").map({ arguments[arguments.index(after: $0)] }) else {
        FileHandle.standardError.write(Data("marina-bench agent needs --marina PATH\n".utf8))
        exit(2)
    }
    let duration = arguments.firstIndex(of: "--seconds").flatMap { Int(arguments[arguments.index(after: $0)]) } ?? 60
    try await benchmarkAgent(marina: marina, seconds: duration)
case "drift":
    benchmarkDrift(runs: runs)
case "depool":
    guard let marina = arguments.firstIndex(of: "--marina").map({ arguments[arguments.index(after: $0)] }) else {
        FileHandle.standardError.write(Data("marina-bench depool needs --marina PATH\n".utf8))
        exit(2)
    }
    try await benchmarkDepool(marina: marina, runs: runs)
case "failover":
    guard let marina = arguments.firstIndex(of: "--marina").map({ arguments[arguments.index(after: $0)] }) else {
        FileHandle.standardError.write(Data("marina-bench failover needs --marina PATH\n".utf8))
        exit(2)
    }
    let silent = arguments.firstIndex(of: "--silent").flatMap { Int(arguments[arguments.index(after: $0)]) } ?? 5
    let interval = arguments.firstIndex(of: "--agent-interval").flatMap { Double(arguments[arguments.index(after: $0)]) } ?? 0.2
    try await benchmarkFailover(marina: marina, runs: runs, silent: silent, agentInterval: interval)
case "partition":
    guard let marina = arguments.firstIndex(of: "--marina").map({ arguments[arguments.index(after: $0)] }) else {
        FileHandle.standardError.write(Data("marina-bench partition needs --marina PATH (and root, for the namespaces)\n".utf8))
        exit(2)
    }
    try await benchmarkPartition(marina: marina, runs: arguments.contains("--runs") ? runs : 10)
case "switchover":
    guard let marina = arguments.firstIndex(of: "--marina").map({ arguments[arguments.index(after: $0)] }) else {
        FileHandle.standardError.write(Data("marina-bench switchover needs --marina PATH\n".utf8))
        exit(2)
    }
    try await benchmarkSwitchover(marina: marina, runs: runs)
case "grant-sync":
    guard let marina = arguments.firstIndex(of: "--marina").map({ arguments[arguments.index(after: $0)] }) else {
        FileHandle.standardError.write(Data("marina-bench grant-sync needs --marina PATH\n".utf8))
        exit(2)
    }
    try await benchmarkGrantSync(marina: marina, runs: runs)
case "api":
    try await benchmarkAPI(runs: arguments.contains("--runs") ? runs : 200)
case "config-commit":
    let marina = arguments.firstIndex(of: "--marina").map { arguments[arguments.index(after: $0)] }
    try await benchmarkConfigCommit(runs: runs, marina: marina)
default:
    FileHandle.standardError.write(
        Data(
            "usage: marina-bench sandbox-up|config-commit|api|agent|drift|switchover|failover|partition|depool|grant-sync [--runs N] [--seconds N] [--marina PATH]\n"
                .utf8))
    exit(2)
}
