import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import TopologyStore

/// Samples `@@read_only` of every instance of a section, as often as it can (about every 5 ms),
/// and counts the samples in which two or more were writable at once.
actor ReadOnlySampler {
    let sandbox: SandboxState
    private(set) var samples = 0
    private(set) var twoWriters = 0
    private var task: Task<Void, Never>?

    init(_ sandbox: SandboxState) { self.sandbox = sandbox }

    func start() {
        task = Task { await loop() }
    }

    private func loop() async {
        var clients = [String: MariaDBClient]()
        while !Task.isCancelled {
            var writable = [MariaDBClient]()
            for instance in sandbox.instances(in: "s1") {
                if clients[instance.name] == nil { clients[instance.name] = try? await sandbox.root(instance.name, readTimeout: 2) }
                guard let client = clients[instance.name] else { continue }
                do {
                    if try await client.query("SELECT @@GLOBAL.read_only AS ro").first?["ro"] == "0" { writable.append(client) }
                } catch {
                    await client.close()
                    clients[instance.name] = nil
                }
            }
            samples += 1
            // Read one after the other, so confirmed as the load generator does: the first still writable after the second.
            if await LoadGenerator.confirmTwoWriters(writable) { twoWriters += 1 }
            try? await Task.sleep(for: .milliseconds(5))
        }
        for client in clients.values { await client.close() }
    }

    /// Stops sampling; gives (samples, samples with two writers).
    func stop() async -> (samples: Int, twoWriters: Int) {
        task?.cancel()
        await task?.value
        return (samples, twoWriters)
    }
}

/// A writer as MariaDB's root (which holds READ_ONLY ADMIN, so `read_only` does not stop it):
/// inserts an increasing id into `privileged.writes` on one instance every 2 ms, and records
/// each acknowledged id. Killed, it either stops or reconnects to the same instance at once.
actor PrivilegedWriter {
    let sandbox: SandboxState
    let instance: String
    let reconnect: Bool
    private(set) var acknowledged = [Int]()
    private(set) var errors = 0
    private var task: Task<Void, Never>?

    init(_ sandbox: SandboxState, on instance: String, reconnect: Bool) {
        self.sandbox = sandbox
        self.instance = instance
        self.reconnect = reconnect
    }

    static func createTable(_ sandbox: SandboxState, on primary: String) async throws {
        try await execute(sandbox, primary, "CREATE DATABASE privileged", "CREATE TABLE privileged.writes (id INT PRIMARY KEY)")
    }

    func start() {
        task = Task { await loop() }
    }

    private func loop() async {
        var client = try? await sandbox.root(instance, readTimeout: 5)
        var next = 1
        while !Task.isCancelled {
            if client == nil {
                guard reconnect else { break }
                client = try? await sandbox.root(instance, readTimeout: 5)
            }
            if let connection = client {
                do {
                    try await connection.execute("INSERT INTO privileged.writes VALUES (\(next))")
                    acknowledged.append(next)
                } catch {
                    errors += 1
                    await connection.close()
                    client = nil
                }
                next += 1
            }
            try? await Task.sleep(for: .milliseconds(2))
        }
        await client?.close()
    }

    func stop() async -> (acknowledged: [Int], errors: Int) {
        task?.cancel()
        await task?.value
        return (acknowledged, errors)
    }

    /// The acknowledged ids missing on `instance`.
    static func missing(_ ids: [Int], on instance: String, _ sandbox: SandboxState) async throws -> [Int] {
        let client = try await sandbox.root(instance)
        defer { Task { await client.close() } }
        let present = Set(try await client.query("SELECT id FROM privileged.writes").rows.compactMap { $0["id"].flatMap { Int($0) } })
        return ids.filter { !present.contains($0) }
    }
}

/// A second controller, `standby`, on the sandbox's etcd with a 5 s lease. Gives its pid.
func startStandby(_ sandbox: SandboxState) throws -> Int32 {
    let configFile = sandbox.directory + "/standby.yaml"
    let playbooks = try Sandbox.locatePlaybooks(from: marinaExecutable())
    try Sandbox.controllerConfiguration(for: sandbox, playbooks: playbooks, id: "standby", leaseTTL: 5)
        .write(toFile: configFile, atomically: true, encoding: .utf8)
    return try ChildProcess.spawn(marinaExecutable(), ["controller", "--config", configFile], logFile: sandbox.directory + "/standby.log")
}

/// The pid of the sandbox's own controller, as last started.
func controllerPID(_ sandbox: SandboxState) throws -> Int32 {
    guard let pid = try Sandbox.state(directory: sandbox.directory).controller?.pid else {
        throw SandboxError.invalidArgument("the sandbox runs no controller")
    }
    return pid
}

/// The name in the leader key, if any.
func leaderName(_ sandbox: SandboxState) async throws -> String? {
    guard let kv = try await sandbox.etcdClient.value(StoreKeys().leader),
        let object = try JSONSerialization.jsonObject(with: Data(kv.value)) as? [String: Any]
    else { return nil }
    return object["id"] as? String
}

/// `@@read_only` of one instance, read as root. A session the instance's agent kills while
/// fencing it (it ends every client session) is read again on a new one.
func readOnly(_ sandbox: SandboxState, _ instance: String) async throws -> Bool {
    var attempt = 0
    while true {
        let client = try await sandbox.root(instance)
        do {
            let value = try await client.query("SELECT @@GLOBAL.read_only AS ro").first?["ro"]
            await client.close()
            return value == "1"
        } catch {
            await client.close()
            guard let lost = error as? MariaDBError, lost.isConnectionLost, attempt < 3 else { throw error }
            attempt += 1
        }
    }
}

/// The step a controller paused with `pause_after` names, once it has paused.
func pausedAfter(_ sandbox: SandboxState, _ id: String, seconds: Double = 30) async throws -> String {
    let key = StoreKeys().resume + id + "/paused"
    var step: String?
    _ = try await eventually(seconds) {
        step = try await sandbox.etcdClient.value(key).map { String(decoding: $0.value, as: UTF8.self) }
        return step != nil
    }
    guard let step else {
        let record = try await operation(sandbox, id)
        throw SandboxError.invalidArgument(
            "operation \(id) did not pause within \(seconds) s: "
                + "\(record.map { "\($0.state) \($0.refusals) \($0.failure.map { "\($0)" } ?? "")" } ?? "no journal")")
    }
    return step
}

/// The number of other sessions of `instance` whose current statement contains `text`.
func sessions(_ sandbox: SandboxState, _ instance: String, running text: String) async throws -> Int {
    let client = try await sandbox.root(instance)
    let count = try await client.query(
        """
        SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE CONCAT('%', ?, '%')
        """, .string(text)
    ).first?.int("n")
    await client.close()
    return count ?? -1
}

/// Seconds since the newest heartbeat row `instance` holds was written (a large number when it holds none).
func heartbeatAge(_ sandbox: SandboxState, on instance: String) async throws -> Double {
    let client = try await sandbox.root(instance)
    let micro = try await client.query("SELECT TIMESTAMPDIFF(MICROSECOND, MAX(ts), UTC_TIMESTAMP(6)) AS us FROM heartbeat.heartbeat")
        .first?["us"].flatMap { Double($0) }
    await client.close()
    return (micro ?? 1e12) / 1e6
}
