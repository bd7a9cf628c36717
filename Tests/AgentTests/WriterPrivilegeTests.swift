import Agent
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Testing

/// One sandbox for the tests of this suite: a primary (`db1001`, section `s1`) and no replica,
/// with no heartbeat writer of its own (neither pt-heartbeat nor an agent), so that every
/// heartbeat row is one an agent of these tests wrote. The suite is serialized; each test
/// starts from an empty heartbeat table and stops the agent it started.
private actor PrivilegeSandbox {
    static let shared = PrivilegeSandbox()
    private var starting: Task<SandboxState, Error>?

    func get() async throws -> SandboxState {
        if let starting { return try await starting.value }
        let task = Task { try await TestServers.privateSandbox("agent-privileges", replicas: 0, heartbeat: .agent) }
        starting = task
        return try await task.value
    }
}

@Suite("The heartbeat writer's account", .serialized)
struct WriterPrivilegeTests {
    /// The sandbox with `db1001` running and no heartbeat row.
    func prepared() async throws -> SandboxState {
        let sandbox = try await PrivilegeSandbox.shared.get()
        try await Sandbox.startInstance(directory: sandbox.directory, name: "db1001")
        let root = try await sandbox.root("db1001")
        try await root.execute("DELETE FROM heartbeat.heartbeat")
        await root.close()
        return sandbox
    }

    func heartbeatRows(_ sandbox: SandboxState) async throws -> Int {
        let root = try await sandbox.root("db1001")
        let count = try await root.query("SELECT COUNT(*) AS n FROM heartbeat.heartbeat").first?.int("n")
        await root.close()
        return count ?? -1
    }

    /// An option file with `[client]` and the given lines, readable by its owner only.
    func optionFile(_ sandbox: SandboxState, _ name: String, _ lines: [String]) throws -> String {
        let path = sandbox.directory + "/\(name).cnf"
        _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        try (["[client]"] + lines).joined(separator: "\n").appending("\n").write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    /// Creates `user@localhost` with the agent's grants plus `statements` (`?` stands for the
    /// user); gives its credentials file.
    func account(_ sandbox: SandboxState, _ user: String, _ statements: [String]) async throws -> String {
        let password = UUID().uuidString
        let root = try await sandbox.root("db1001")
        try await root.execute("DROP USER IF EXISTS ?@'localhost'", .string(user))
        try await root.execute("CREATE USER ?@'localhost' IDENTIFIED BY ?", .string(user), .string(password))
        for statement in Sandbox.agentGrants + statements {
            if statement.contains("?") { try await root.execute(statement, .string(user)) } else { try await root.execute(statement) }
        }
        await root.close()
        return try optionFile(sandbox, user, ["user=\(user)", "password=\(password)"])
    }

    /// The sandbox's agent configuration (heartbeat writer on) with `credentialsFile`, edited by `edit`.
    func configuration(_ sandbox: SandboxState, _ name: String, credentialsFile: String, edit: (String) -> String = { $0 }) throws -> String {
        let path = sandbox.directory + "/\(name).yaml"
        try edit(Sandbox.agentConfiguration(for: sandbox, credentialsFile: credentialsFile, interval: 0.5, leaseTTL: 5, writeHeartbeat: true))
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Runs `marina agent --config FILE`: its exit status and output (standard error and
    /// standard output), or a nil status when it was still running after `timeout` seconds
    /// (it is then stopped).
    func runAgent(_ configFile: String, timeout: Double = 15) async throws -> (status: Int32?, output: String) {
        let outputFile = configFile + ".out"
        _ = FileManager.default.createFile(atPath: outputFile, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputFile))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: marinaExecutable())
        process.arguments = ["agent", "--config", configFile]
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        let finished = !process.isRunning
        if !finished {
            process.terminate()
            while process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        }
        try output.close()
        return (finished ? process.terminationStatus : nil, try String(contentsOfFile: outputFile, encoding: .utf8))
    }

    /// Runs `body` with an agent started by `Sandbox.startAgent`, then stops the agent.
    func withAgent(
        _ sandbox: SandboxState, credentialsFile: String? = nil,
        _ body: (_ pid: Int32, _ log: () throws -> String) async throws -> Void
    ) async throws {
        let logFile = sandbox.directory + "/agent.log"
        let logStart = (try? FileManager.default.attributesOfItem(atPath: logFile)[.size] as? Int) ?? 0
        let log = { String(decoding: try Data(contentsOf: URL(fileURLWithPath: logFile)).dropFirst(logStart), as: UTF8.self) }
        let pid = try await Sandbox.startAgent(
            directory: sandbox.directory, executable: marinaExecutable(), interval: 0.5, leaseTTL: 5,
            credentialsFile: credentialsFile)
        func stop() async {
            kill(pid, SIGTERM)
            for _ in 0..<100 where ChildProcess.isRunning(pid, marker: sandbox.directory + "/") {
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        do {
            try await body(pid, log)
        } catch {
            await stop()
            throw error
        }
        await stop()
    }

    @Test("the admin account (ALL PRIVILEGES) is refused at start-up: one clear error, a non-zero exit, no heartbeat")
    func adminAccountRefused() async throws {
        let sandbox = try await prepared()
        let password = try Credentials.load(from: sandbox.credentialsFile).adminPassword
        let credentials = try optionFile(sandbox, "admin", ["user=\(Sandbox.adminUser)", "password=\(password)"])
        let result = try await runAgent(try configuration(sandbox, "admin", credentialsFile: credentials))
        #expect(result.status != nil && result.status != 0, "the agent did not exit: \(result.output)")
        #expect(
            result.output.contains("heartbeat.write: on db1001, the account \(Sandbox.adminUser)@localhost holds ALL PRIVILEGES ON *.*"),
            "\(result.output)")
        #expect(result.output.contains("sql/agent-grants.sql"))
        #expect(!result.output.contains(password))
        #expect(try await heartbeatRows(sandbox) == 0)
    }

    @Test(
        "an account holding READ_ONLY ADMIN or SUPER, directly or through a role, is refused at start-up",
        arguments: [
            ("agent_roa", ["GRANT READ_ONLY ADMIN ON *.* TO ?@'localhost'"], "READ_ONLY ADMIN ON *.*"),
            ("agent_super", ["GRANT SUPER ON *.* TO ?@'localhost'"], "SUPER ON *.*"),
            // A role not enabled at login: the agent's session would not use it, but the account can enable it.
            (
                "agent_role",
                [
                    "DROP ROLE IF EXISTS heartbeat_admin", "CREATE ROLE heartbeat_admin",
                    "GRANT READ_ONLY ADMIN ON *.* TO heartbeat_admin", "GRANT heartbeat_admin TO ?@'localhost'",
                ],
                "READ_ONLY ADMIN ON *.* (granted to role `heartbeat_admin`)"
            ),
        ])
    func privilegedAccountRefused(user: String, statements: [String], finding: String) async throws {
        let sandbox = try await prepared()
        let credentials = try await account(sandbox, user, statements)
        let result = try await runAgent(try configuration(sandbox, user, credentialsFile: credentials))
        #expect(result.status != nil && result.status != 0, "the agent did not exit: \(result.output)")
        #expect(result.output.contains("heartbeat.write: on db1001, the account \(user)@localhost holds \(finding)"), "\(result.output)")
        #expect(try await heartbeatRows(sandbox) == 0)
    }

    @Test("the least-privilege account passes the check and writes the heartbeat")
    func leastPrivilegeWrites() async throws {
        let sandbox = try await prepared()
        try await withAgent(sandbox) { _, log in
            let root = try await sandbox.root("db1001")
            var rows = 0
            for _ in 0..<100 where rows == 0 {
                rows =
                    try await root.query(
                        "SELECT COUNT(*) AS n FROM heartbeat.heartbeat WHERE server_id = 1001 AND shard = 's1' AND datacenter = 'dc1'"
                    )
                    .first?.int("n") ?? 0
                if rows == 0 { try await Task.sleep(for: .milliseconds(100)) }
            }
            await root.close()
            #expect(rows == 1)
            let text = try log()
            #expect(
                text.contains("heartbeat writer enabled on db1001: \(Sandbox.agentUser)@localhost holds no privilege that writes through read_only"),
                "\(text)")
        }
    }

    @Test("a privileged account on an instance unreachable at start-up: the agent starts, and refuses that instance when it is back")
    func uncheckedUntilReachable() async throws {
        let sandbox = try await prepared()
        let password = try Credentials.load(from: sandbox.credentialsFile).adminPassword
        let credentials = try optionFile(sandbox, "admin-later", ["user=\(Sandbox.adminUser)", "password=\(password)"])
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1001")
        try await withAgent(sandbox, credentialsFile: credentials) { pid, log in
            #expect(try log().contains("heartbeat writer on db1001: the account's privileges cannot be checked now"))
            try await Sandbox.startInstance(directory: sandbox.directory, name: "db1001")
            let refusal =
                "heartbeat writer disabled on db1001 until the agent restarts: on db1001, the account \(Sandbox.adminUser)@localhost holds ALL PRIVILEGES ON *.*"
            var text = ""
            for _ in 0..<200 where !text.contains(refusal) {
                try await Task.sleep(for: .milliseconds(100))
                text = try log()
            }
            #expect(text.contains(refusal), "\(text)")
            // Logged at error level (StreamLogHandler writes the level before the label).
            #expect(text.split(separator: "\n").first { $0.contains(refusal) }?.contains(" error marina.agent") == true)
            // Four more probes of the writable primary. A sleep: a refused writer leaves no trace per probe (no log line,
            // and an unchanged observation is republished only every `refresh`), so the window is the test.
            try await Task.sleep(for: .seconds(2))
            #expect(try await heartbeatRows(sandbox) == 0)
            #expect(ChildProcess.isRunning(pid, marker: sandbox.directory + "/"))
            #expect(!(try log()).contains(password))
        }
    }

    @Test(
        "a configuration naming no MariaDB user is refused naming the key, and nothing is written",
        arguments: [
            ("no-credentials-file", nil, "instances[0].credentials_file is required (db1001)"),
            ("no-user", "password=secret-but-no-user", "instances[0].credentials_file (db1001): "),
        ] as [(String, String?, String)])
    func noUser(name: String, credentialsLine: String?, message: String) async throws {
        let sandbox = try await prepared()
        let credentials = try optionFile(sandbox, name, credentialsLine.map { [$0] } ?? [])
        let config = try configuration(sandbox, name, credentialsFile: credentials) { yaml in
            credentialsLine == nil ? yaml.split(separator: "\n").filter { !$0.contains("credentials_file") }.joined(separator: "\n") + "\n" : yaml
        }
        let result = try await runAgent(config)
        #expect(result.status == 1, "the agent did not exit: \(result.output)")
        #expect(result.output.contains(message), "\(result.output)")
        #expect(result.output.contains("never connects as root by default"), "\(result.output)")
        #expect(!result.output.contains("secret-but-no-user"))
        #expect(try await sandbox.etcdClient.get("/marina/v1/observed/", prefix: true).kvs.isEmpty)
        #expect(try await heartbeatRows(sandbox) == 0)
    }
}
