import Foundation
import MariaDBClient

/// An application for the sandbox: writes numbered rows at a steady rate to whichever instance
/// of a section takes them, as `marina_app` (no SUPER, no READ ONLY ADMIN, so `read_only`
/// stops it), and records every acknowledged id; beside it a sampler reads `@@read_only` on
/// every instance every 5 ms and counts the samples in which two instances were writable.
public actor LoadGenerator {
    public struct Report: Sendable, Codable {
        /// Ids the servers acknowledged: each must exist on every instance afterwards.
        public var acknowledged: [UInt64]
        public var attempts: Int
        public var failedAttempts: Int
        /// Each stretch in which no instance took a write, from the first refused write to the
        /// next acknowledged one, in milliseconds.
        public var outages: [Double]
        public var samples: Int
        /// Samples in which two or more instances reported `read_only = 0`.
        public var twoWritersSamples: Int
        public var seconds: Double
    }

    struct Target: Sendable {
        let name: String
        let configuration: MariaDBConfiguration
    }

    private let targets: [Target]
    private let interval: Duration
    private var running = false
    private var tasks = [Task<Void, Never>]()
    private var report = Report(acknowledged: [], attempts: 0, failedAttempts: 0, outages: [], samples: 0, twoWritersSamples: 0, seconds: 0)
    private var startedAt = ContinuousClock.now

    /// A generator for `section` of the sandbox, at `rate` writes per second.
    public init(state: SandboxState, section: String = "s1", rate: Double = 200) throws {
        let credentials = try Credentials.load(from: state.credentialsFile)
        targets = state.instances(in: section).map { instance in
            Target(
                name: instance.name,
                configuration: MariaDBConfiguration(
                    endpoint: .tcp(host: instance.host, port: instance.port), user: Sandbox.applicationUser,
                    password: credentials.applicationPassword,
                    database: Sandbox.loadDatabase, connectTimeout: 1, readTimeout: 2, writeTimeout: 2))
        }
        interval = .microseconds(Int(1_000_000 / rate))
    }

    public func start() {
        guard !running else { return }
        running = true
        startedAt = .now
        tasks = [Task { await self.writeLoop() }, Task { await self.sampleLoop() }]
    }

    /// Stops both loops and gives what they saw.
    public func stop() async -> Report {
        running = false
        for task in tasks { await task.value }
        tasks = []
        report.seconds =
            Double((ContinuousClock.now - startedAt).components.seconds)
            + Double((ContinuousClock.now - startedAt).components.attoseconds) / 1e18
        return report
    }

    private func writeLoop() async {
        let clock = ContinuousClock()
        var clients = [String: MariaDBClient]()
        var preferred = 0
        var nextID = UInt64(Date().timeIntervalSince1970 * 1000) * 1000  // distinct across runs on one sandbox
        var outageStart: ContinuousClock.Instant?
        var next = clock.now
        while running {
            var acknowledged = false
            for offset in 0..<targets.count {
                let index = (preferred + offset) % targets.count
                let target = targets[index]
                nextID += 1
                report.attempts += 1
                do {
                    let client: MariaDBClient
                    if let open = clients[target.name] {
                        client = open
                    } else {
                        client = try await MariaDBClient.connect(target.configuration)
                        clients[target.name] = client
                    }
                    do {
                        try await client.execute("INSERT INTO writes (id, written_at) VALUES (?, NOW(6))", .integer(Int64(nextID)))
                    } catch let error as MariaDBError where !error.isReadOnly {
                        clients[target.name] = nil  // the connection's state is unknown: open a new one
                        await client.close()
                        throw error
                    }
                    report.acknowledged.append(nextID)
                    preferred = index
                    acknowledged = true
                    break
                } catch {
                    report.failedAttempts += 1
                    if outageStart == nil { outageStart = clock.now }
                }
            }
            if acknowledged {
                if let start = outageStart {
                    let outage = clock.now - start
                    report.outages.append(Double(outage.components.seconds) * 1000 + Double(outage.components.attoseconds) / 1e15)
                    outageStart = nil
                }
                next += interval
                if next < clock.now { next = clock.now }
                try? await Task.sleep(until: next, clock: clock)
            } else {
                try? await Task.sleep(for: .microseconds(500))  // no writer: try again at once
                next = clock.now
            }
        }
        for client in clients.values { await client.close() }
    }

    private func sampleLoop() async {
        var clients = [String: MariaDBClient]()
        for target in targets {
            clients[target.name] = try? await MariaDBClient.connect(target.configuration)
        }
        let samplers = clients
        while running {
            let writable = await withTaskGroup(of: MariaDBClient?.self) { group in
                for client in samplers.values {
                    group.addTask { await Self.isWritable(client) ? client : nil }
                }
                var writable = [MariaDBClient]()
                for await client in group { if let client { writable.append(client) } }
                return writable
            }
            report.samples += 1
            if writable.count >= 2, await Self.confirmTwoWriters(writable) { report.twoWritersSamples += 1 }
            try? await Task.sleep(for: .milliseconds(5))
        }
        for client in samplers.values { await client.close() }
    }

    private static func isWritable(_ client: MariaDBClient) async -> Bool {
        (try? await client.query("SELECT @@GLOBAL.read_only AS ro").first?["ro"]) == "0"
    }

    /// Two instances answered writable in one round of parallel reads; on a loaded machine the
    /// reads may run milliseconds apart, on either side of a switch. Confirmed only if the first
    /// is still writable after the second answered writable: then both were at that moment.
    public static func confirmTwoWriters(_ writable: [MariaDBClient]) async -> Bool {
        guard writable.count >= 2 else { return false }
        let first = writable[0]
        let second = writable[1]
        guard await isWritable(first), await isWritable(second) else { return false }
        return await isWritable(first)
    }

    /// Acknowledged ids missing on a new primary that are not one block: an id missing while a
    /// later-acknowledged one written before it is present. After a failover, only the last
    /// writes the dead primary acknowledged before any replica received them may be missing
    /// (asynchronous replication), and they are consecutive: anything else is a lost write a
    /// replica had received. `missing` as `missing(_:on:state:)` gives it.
    public static func holes(acknowledged: [UInt64], missing: [UInt64]) -> [UInt64] {
        guard let first = missing.min(), let last = missing.max() else { return [] }
        let gone = Set(missing)
        let presentInside = acknowledged.contains { $0 > first && $0 < last && !gone.contains($0) }
        return presentInside ? missing.sorted() : []
    }

    /// The acknowledged ids missing on `instance` (after it caught up with its source).
    public static func missing(_ acknowledged: [UInt64], on instance: SandboxState.Instance, state: SandboxState) async throws -> [UInt64] {
        let credentials = try Credentials.load(from: state.credentialsFile)
        let client = try await MariaDBClient.connect(
            MariaDBConfiguration(
                endpoint: .socket(path: instance.socket), user: Sandbox.adminUser,
                password: credentials.adminPassword))
        defer { Task { await client.close() } }
        var present = Set<UInt64>()
        for row in try await client.query("SELECT id FROM \(Sandbox.loadDatabase).writes").rows {
            if let id = row["id"].flatMap(UInt64.init) { present.insert(id) }
        }
        return acknowledged.filter { !present.contains($0) }
    }
}
