import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Observation
import Probing
import Testing

@testable import Agent

/// Runs `executable` with `arguments` until it exits or `timeout` seconds pass (then SIGTERM);
/// gives its exit status (nil: it was still running) and its output.
private func runUntilExit(_ executable: String, _ arguments: [String], timeout: Double) async throws -> (status: Int32?, output: String) {
    let outputFile = NSTemporaryDirectory() + "marina-agent-run-\(UInt32.random(in: 0...UInt32.max)).out"
    _ = FileManager.default.createFile(atPath: outputFile, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: outputFile) }
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputFile))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
    let finished = !process.isRunning
    if !finished {
        process.terminate()
        while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
    }
    try output.close()
    return (finished ? process.terminationStatus : nil, try String(contentsOfFile: outputFile, encoding: .utf8))
}

@Suite("The agent refuses root unless allow_root")
struct AgentRootTests {
    /// The lean binary beside `marina`.
    static var agentBinary: String {
        URL(fileURLWithPath: marinaExecutable()).deletingLastPathComponent().appendingPathComponent("marina-agent").path
    }

    @Test(
        "as root without allow_root: exit 1 and one line saying why and how, from marina-agent and marina agent; with it, past the check",
        .enabled(if: geteuid() == 0, "needs root (as CI runs the tests)"))
    func root() async throws {
        let directory = NSTemporaryDirectory() + "marina-agent-root-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "[client]\nuser=marina_agent\npassword=x\n".write(toFile: directory + "/agent.cnf", atomically: true, encoding: .utf8)
        // etcd at a port nothing listens on: the agent, once started, keeps retrying until SIGTERM.
        let body = """
            etcd:
              endpoints: [http://127.0.0.1:9]
            instances:
              - {name: db1001, socket: \(directory)/nothing.sock, credentials_file: \(directory)/agent.cnf}

            """
        let refused = directory + "/refused.yaml"
        try body.write(toFile: refused, atomically: true, encoding: .utf8)
        let allowed = directory + "/allowed.yaml"
        try ("allow_root: true\n" + body).write(toFile: allowed, atomically: true, encoding: .utf8)

        let message =
            "refusing to run as root: the agent needs no privilege beyond reading its configuration, its credentials files and the MariaDB socket. Run it as its own user (the marina user of marina-agent.service, in the mysql group; docs/deployment.md), or set allow_root: true in \(refused)"
        let lean = try await runUntilExit(Self.agentBinary, ["--config", refused], timeout: 10)
        #expect(lean.status == 1)
        #expect(lean.output == "marina-agent: \(message)\n")
        let command = try await runUntilExit(marinaExecutable(), ["agent", "--config", refused], timeout: 10)
        #expect(command.status == 1)
        #expect(command.output.contains(message) && command.output.split(separator: "\n").count == 1, "\(command.output)")

        // allow_root: the agent starts (and runs until stopped), then stops gracefully.
        for arguments in [[Self.agentBinary, "--config", allowed], [marinaExecutable(), "agent", "--config", allowed]] {
            let started = try await runUntilExit(arguments[0], Array(arguments.dropFirst()), timeout: 2)
            #expect(started.status == nil, "\(arguments[0]) exited: \(started.output)")
            #expect(started.output.contains("agent started") && !started.output.contains("refusing to run as root"), "\(started.output)")
        }
    }
}

/// An account that connects only over TLS, with the agent's grants, on 127.0.0.1; its
/// credentials file.
private func tlsAccount(_ sandbox: SandboxState) async throws -> String {
    let password = UUID().uuidString
    let root = try await sandbox.root("db1001")
    try await root.execute("CREATE USER IF NOT EXISTS 'marina_agent_tls'@'127.0.0.1' IDENTIFIED BY ? REQUIRE SSL", .string(password))
    for statement in Sandbox.agentGrants {
        try await root.execute(statement.replacingOccurrences(of: "@'localhost'", with: "@'127.0.0.1'"), .string("marina_agent_tls"))
    }
    await root.close()
    let path = sandbox.directory + "/agent-tls.cnf"
    try "[client]\nuser=marina_agent_tls\npassword=\(password)\n".write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite("The agent's probe over TLS against a real mariadbd", .serialized)
struct AgentTLSTests {
    /// The agent's configuration for `db1001` over TCP, with the `tls` block given (nil: none).
    func configuration(_ sandbox: SandboxState, credentials: String, tls: String?) throws -> AgentConfiguration {
        let port = try #require(sandbox.instance(named: "db1001")).port
        return try AgentConfiguration.parse(
            """
            etcd:
              endpoints: [http://127.0.0.1:9]
            \(tls.map { "tls: \($0)" } ?? "")
            instances:
              - {name: db1001, host: 127.0.0.1, port: \(port), credentials_file: \(credentials), shard: s1}

            """, file: "agent.yaml")
    }

    func probe(_ configuration: AgentConfiguration) async throws -> Observation {
        let prober = Prober(
            instance: configuration.instances[0].target, configuration: try Agent.mariaDBConfiguration(configuration, instance: 0),
            heartbeat: configuration.heartbeat.source, agent: "test", agentStartedAt: Date())
        let observation = await prober.probe(now: Date())
        await prober.disconnect()
        return observation
    }

    @Test("with the CA the probe connects over TLS (an account that requires it); a wrong CA is refused with a clear error")
    func tls() async throws {
        let sandbox = try await TestServers.privateSandbox("agent-tls", tls: true)
        defer { TestServers.stop(sandbox) }
        let certificates = try #require(sandbox.certificates)
        let credentials = try await tlsAccount(sandbox)

        let good = try configuration(sandbox, credentials: credentials, tls: "{ca_file: \(certificates.caFile)}")
        let observation = try await probe(good)
        #expect(observation.reachable && observation.error == nil, "\(String(describing: observation.error))")
        #expect(observation.serverID == 1001)
        // The connection the agent makes is encrypted: the server says so.
        let client = try await MariaDBClient.connect(try Agent.mariaDBConfiguration(good, instance: 0))
        let cipher = try await client.query("SHOW SESSION STATUS LIKE 'Ssl_version'").first?["Value"]
        await client.close()
        #expect(cipher?.hasPrefix("TLSv1.") == true, "\(String(describing: cipher))")

        // Without tls, the account that requires it is refused: TLS is what made the probe work.
        let plain = try await probe(try configuration(sandbox, credentials: credentials, tls: nil))
        #expect(!plain.reachable && plain.error?.contains("Access denied") == true, "\(String(describing: plain.error))")

        // A CA that did not sign the server's certificate: unreachable, saying why, never plain TCP.
        let stranger = try Certificates.create(in: sandbox.directory + "/stranger-ca")
        let wrong = try await probe(try configuration(sandbox, credentials: credentials, tls: "{ca_file: \(stranger.caFile)}"))
        #expect(!wrong.reachable)
        let error = try #require(wrong.error)
        // CR_SSL_CONNECTION_ERROR, with libmariadb's reason (the certificate's verification).
        #expect(error.contains("MariaDB connect failed on 127.0.0.1:") && error.contains("[2026/"), "\(error)")
        #expect(error.contains("TLS/SSL error: ") && error.contains("certificate"), "\(error)")
    }
}
