import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import Synchronization

/// Real servers for the integration tests, started by the test process itself on free
/// loopback ports, under `$TMPDIR/marina-tests/<pid>-<random>/`.
///
/// - `shared()`: one sandbox (section `s1`: a primary and two replicas) for every test of the
///   process that does not break servers; started on first use.
/// - `privateSandbox(...)`: a sandbox of a test's own, for tests that kill, stop or
///   restart servers. The test calls `stop()` when done.
///
/// Every sandbox is stopped when the process exits, and a test process first stops the
/// sandboxes of earlier test processes that died without doing so.
public enum TestServers {
    public static let root: String = {
        let base = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/marina-tests"
        reapOrphans(in: base)
        let directory = "\(base)/\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        atexit { TestServers.stopAll() }
        return directory
    }()

    private static let started = Mutex<[String]>([])
    private static let sharedSandbox = SharedSandbox()

    /// The process-wide sandbox: `s1` with `db1001` (primary), `db1002` and `db1003`.
    public static func shared() async throws -> SandboxState {
        try await sharedSandbox.get()
    }

    /// A sandbox for one test. `sections: 0` gives etcd alone. `hosts: .namespaces` gives each
    /// instance (with its own agent) and the controller a network namespace of their own (root
    /// only); `agentLeaseTTL` is the agents' lease in seconds; `agentExtraLines` are appended to
    /// every agent configuration (nil: `Sandbox.defaultAgentExtraLines`).
    ///
    /// At most `gate.capacity` private sandboxes run at once in a test process (the rest wait
    /// their turn): Swift Testing runs every suite in parallel, and some forty sets of servers
    /// started together on a two-core machine starve the tests that measure time (lease TTLs,
    /// lag thresholds). Each `privateSandbox` must be paired with `stop`, as every test does in
    /// a `defer`.
    public static func privateSandbox(
        _ name: String, sections: Int = 1, replicas: Int = 0, tls: Bool = false,
        agent: Bool = false, controller: Bool = false,
        heartbeat: Sandbox.HeartbeatWriter? = nil, failover: SandboxFailoverMode = .manual, agentInterval: Double = 1,
        hosts: SandboxHosts = .loopback, agentLeaseTTL: Int = 10, agentExtraLines: [String]? = nil,
        fencing: SandboxFencing = .standard
    ) async throws -> SandboxState {
        await gate.acquire()
        do {
            return try await upWithOneRetry { attempt in
                let directory = "\(root)/\(name)-\(UInt32.random(in: 0...UInt32.max))"
                started.withLock { $0.append(directory) }
                return try await Sandbox.up(
                    .init(
                        directory: directory, sections: sections, replicas: replicas, tls: tls,
                        agentExecutable: agent || controller ? marinaExecutable() : nil,
                        controllerExecutable: controller ? marinaExecutable() : nil, heartbeat: heartbeat, failover: failover,
                        agentInterval: agentInterval, hosts: hosts, agentLeaseTTL: agentLeaseTTL, agentExtraLines: agentExtraLines,
                        fencing: fencing)
                ).state
            }
        } catch {
            gate.release()
            throw error
        }
    }

    static let gate = Gate(capacity: Int(ProcessInfo.processInfo.environment["MARINA_TEST_SANDBOXES"] ?? "") ?? 4)

    /// Stops a sandbox and deletes its directory, in the background so that a test's `defer`
    /// does not hold a cooperative thread while the servers shut down; the process's exit
    /// waits for every such stop.
    public static func stop(_ state: SandboxState) {
        stopping.enter()
        DispatchQueue.global().async {
            _ = try? Sandbox.down(directory: state.directory, purge: !keepDirectories)
            started.withLock { $0.removeAll { $0 == state.directory } }
            stopping.leave()
            gate.release()
        }
    }

    private static let stopping = DispatchGroup()

    static func startShared() async throws -> SandboxState {
        try await upWithOneRetry { attempt in
            let directory = "\(root)/shared-\(attempt)"
            started.withLock { $0.append(directory) }
            return try await Sandbox.up(.init(directory: directory, sections: 1, replicas: 2, agentExecutable: marinaExecutable())).state
        }
    }

    /// Starts a sandbox, and once more in a new directory on new ports if a server did not
    /// become ready: setting up the environment may hit a loaded machine, assertions are never
    /// retried. The first failure is printed (with how the process ended), so it stays visible.
    private static func upWithOneRetry(_ start: (Int) async throws -> SandboxState) async throws -> SandboxState {
        do {
            return try await start(1)
        } catch let error as SandboxError {
            guard case .notReady = error else { throw error }
            FileHandle.standardError.write(Data("marina tests: sandbox start failed, retrying once: \(error)\n".utf8))
            return try await start(2)
        }
    }

    /// With `MARINA_KEEP_TEST_DIRS=1`, the servers are stopped but their directories (data,
    /// logs) are kept under `root` for a post-mortem.
    static let keepDirectories = ProcessInfo.processInfo.environment["MARINA_KEEP_TEST_DIRS"] == "1"

    static func stopAll() {
        stopping.wait()
        for directory in started.withLock({ $0 }) {
            _ = try? Sandbox.down(directory: directory, purge: !keepDirectories)
        }
        if !keepDirectories { try? FileManager.default.removeItem(atPath: root) }
    }

    /// Stops the sandboxes left by test processes that are no longer alive.
    private static func reapOrphans(in base: String) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for entry in entries {
            guard let pid = Int32(entry.split(separator: "-").first ?? ""), kill(pid, 0) != 0 else { continue }
            let processRoot = base + "/" + entry
            for sandbox in (try? FileManager.default.contentsOfDirectory(atPath: processRoot)) ?? [] {
                _ = try? Sandbox.down(directory: processRoot + "/" + sandbox, purge: !keepDirectories)
            }
            if !keepDirectories { try? FileManager.default.removeItem(atPath: processRoot) }
        }
    }
}

/// Starts the shared sandbox once, however many tests ask for it at the same time.
private actor SharedSandbox {
    private var starting: Task<SandboxState, Error>?

    func get() async throws -> SandboxState {
        if let starting { return try await starting.value }
        let task = Task { try await TestServers.startShared() }
        starting = task
        return try await task.value
    }
}

extension SandboxState {
    /// A connection as MariaDB's root over the instance's unix socket.
    public func root(_ instance: String, readTimeout: Int = 10) async throws -> MariaDBClient {
        guard let member = self.instance(named: instance) else { throw SandboxError.invalidArgument("no instance \(instance)") }
        return try await MariaDBClient.connect(MariaDBServer.rootConfiguration(socket: member.socket, readTimeout: readTimeout))
    }

    /// The sandbox's admin user over TCP (at the instance's own address in namespaces mode),
    /// with the password from the credentials file.
    public func adminConfiguration(_ instance: String) throws -> MariaDBConfiguration {
        guard let member = self.instance(named: instance) else { throw SandboxError.invalidArgument("no instance \(instance)") }
        let credentials = try Credentials.load(from: credentialsFile)
        return MariaDBConfiguration(
            endpoint: .tcp(host: member.host, port: member.port), user: Sandbox.adminUser,
            password: credentials.adminPassword)
    }

    /// Runs a program inside the network namespace of `host` (an instance's name, or
    /// `controller`) of a namespaces sandbox, as `ip netns exec` does, killing it after
    /// `timeout` seconds. Gives its exit status (SIGKILL: 137) and its output.
    public func run(
        inNamespaceOf host: String, _ executable: String, _ arguments: [String], timeout: Double = 10
    ) throws -> (status: Int32, output: String) {
        guard let namespace = network?.host(named: host)?.namespace else {
            throw SandboxError.invalidArgument("no host \(host) in the sandbox's network")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        process.arguments = ["--net=/run/netns/\(namespace)", "--", executable] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus, text)
    }

    public var etcdClient: EtcdClient {
        EtcdClient(EtcdConfiguration(endpoints: [etcd.url], tls: certificates?.etcdClientTLS))
    }
}

/// A key prefix no other test uses.
public func uniquePrefix(_ name: String) -> String {
    "/test/\(name)-\(UInt64.random(in: 0...UInt64.max))/"
}

/// A counting semaphore for async callers, released from any thread.
final class Gate: Sendable {
    let capacity: Int
    private let state = Mutex<(available: Int, waiting: [CheckedContinuation<Void, Never>])>((0, []))

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        state.withLock { $0.available = self.capacity }
    }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty {
                state.available = min(capacity, state.available + 1)
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
