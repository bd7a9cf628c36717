import Foundation
import MarinaSandbox
import MarinaTestSupport
import Testing

/// The command line uses a sandbox's etcd only when told to (`--sandbox DIR`,
/// `MARINA_SANDBOX_DIR`), through the `etcd.yaml` the sandbox writes, TLS included.
@Suite("marina --sandbox")
struct SandboxFlagTests {
    static let unset = ["MARINA_ETCD", "MARINA_SANDBOX_DIR"]

    @Test("--sandbox DIR and MARINA_SANDBOX_DIR reach a TLS sandbox's etcd; down removes etcd.yaml")
    func tlsSandbox() async throws {
        let sandbox = try await TestServers.privateSandbox("sandbox-flag", sections: 0, tls: true)
        defer { TestServers.stop(sandbox) }
        #expect(FileManager.default.fileExists(atPath: sandbox.directory + "/etcd.yaml"))
        let byFlag = try runMarina(["datacenter", "list", "--sandbox", sandbox.directory], removing: Self.unset)
        #expect(byFlag.status == 0, "\(byFlag.stderr)")
        let byEnvironment = try runMarina(["datacenter", "list"], environment: ["MARINA_SANDBOX_DIR": sandbox.directory], removing: ["MARINA_ETCD"])
        #expect(byEnvironment.status == 0, "\(byEnvironment.stderr)")
        let both = try runMarina(["datacenter", "list", "--sandbox", sandbox.directory, "--etcd", sandbox.etcd.url], removing: Self.unset)
        #expect(both.status != 0 && both.stderr.contains("--etcd and --sandbox name two etcds: give one"), "\(both.stderr)")
        _ = try Sandbox.down(directory: sandbox.directory)
        #expect(!FileManager.default.fileExists(atPath: sandbox.directory + "/etcd.yaml"))
    }

    @Test("without --etcd, --sandbox or their variables, no sandbox is looked for, even in ./.sandbox")
    func neverSilently() throws {
        let directory = NSTemporaryDirectory() + "marina-no-sandbox-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory + "/.sandbox", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "etcd:\n  endpoints: [http://127.0.0.1:1]\n".write(toFile: directory + "/.sandbox/etcd.yaml", atomically: true, encoding: .utf8)
        let result = try runMarina(["datacenter", "list"], removing: Self.unset, in: directory)
        #expect(result.status == 1)
        #expect(
            result.stderr.contains("no etcd given: pass --etcd URL or set MARINA_ETCD (for a sandbox: --sandbox DIR or MARINA_SANDBOX_DIR)"),
            "\(result.stderr)")
        let missing = try runMarina(["datacenter", "list", "--sandbox", directory + "/none"], removing: Self.unset)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("--sandbox: no sandbox runs in \(directory)/none (no etcd.yaml there)"), "\(missing.stderr)")
    }
}

/// `sandbox up --failover manual|automatic` and `--agent-interval SECONDS`; `kill --signal`.
@Suite("sandbox up --failover and --agent-interval")
struct SandboxUpFlagTests {
    @Test(
        "a refused value is one error naming the flag and what it accepts, exit 1, and nothing is started or created",
        arguments: [
            (["--failover", "auto"], "--failover must be manual or automatic (got auto)"),
            (["--failover", "AUTOMATIC"], "--failover must be manual or automatic (got AUTOMATIC)"),
            (["--failover", ""], "--failover must be manual or automatic (got )"),
            (["--agent-interval", "0"], "--agent-interval must be a number of seconds above 0.01 and at most 60 (got 0.0)"),
            (["--agent-interval", "0.01"], "--agent-interval must be a number of seconds above 0.01 and at most 60 (got 0.01)"),
            (["--agent-interval=-1"], "--agent-interval must be a number of seconds above 0.01 and at most 60 (got -1.0)"),
            (["--agent-interval", "nan"], "--agent-interval must be a number of seconds above 0.01 and at most 60 (got nan)"),
            (["--agent-interval", "inf"], "--agent-interval must be a number of seconds above 0.01 and at most 60 (got inf)"),
            (["--agent-interval", "60.5"], "--agent-interval must be a number of seconds above 0.01 and at most 60 (got 60.5)"),
            (["--agent-interval", "1e300"], "--agent-interval must be a number of seconds above 0.01 and at most 60 (got 1e+300)"),
            (
                ["--failover", "automatic", "--agent-interval", "0.001"],
                "--agent-interval must be a number of seconds above 0.01 and at most 60 (got 0.001)"
            ),
        ])
    func refused(flags: [String], message: String) throws {
        let directory = TestServers.root + "/cli-up-flag-\(UInt32.random(in: 0...UInt32.max))"
        let result = try runMarina(["sandbox", "up", "--dir", directory] + flags)
        #expect(result.status == 1, "\(result.status): \(result.stderr)")
        #expect(result.stderr == "marina: \(message)\n")
        #expect(result.stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: directory))
        #expect(processes(containing: directory + "/").isEmpty)
    }

    @Test("kill --signal other than KILL, STOP or CONT is refused before the sandbox is looked at; restart without a sandbox says so")
    func killSignalRefused() throws {
        let directory = TestServers.root + "/cli-no-sandbox-\(UInt32.random(in: 0...UInt32.max))"
        for signal in ["HUP", "TERM", "9"] {
            let result = try runMarina(["sandbox", "kill", "db1001", "--signal", signal, "--dir", directory])
            #expect(result.status == 1)
            #expect(result.stderr == "marina: --signal must be KILL, STOP or CONT (got \(signal))\n")
        }
        for command in [["restart", "db1002"], ["kill", "db1002"]] {
            let result = try runMarina(["sandbox"] + command + ["--dir", directory])
            #expect(result.status == 1)
            #expect(result.stderr == "marina: no sandbox is running in \(directory): start one with `marina sandbox up --dir \(directory)`\n")
        }
        let missing = try runMarina(["sandbox", "restart", "--dir", directory])
        #expect(missing.status != 0 && missing.stderr.contains("Missing expected argument '<name>'"), "\(missing.stderr)")
    }

    @Test(
        "up --failover automatic --agent-interval 0.2: the controller fails every section over, status shows it, a controller restarted through the library keeps it"
    )
    func automaticFailover() async throws {
        let directory = TestServers.root + "/cli-automatic-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try await checkAutomatic(directory)
        } catch {
            _ = try? await Sandbox.stop(directory: directory, purge: Self.purge)
            throw error
        }
        _ = try await Sandbox.stop(directory: directory, purge: Self.purge)
        #expect(processes(containing: directory + "/").isEmpty)
    }

    /// Keep the directory with `MARINA_KEEP_TEST_DIRS=1`, as `TestServers` does.
    static let purge = ProcessInfo.processInfo.environment["MARINA_KEEP_TEST_DIRS"] != "1"

    private func checkAutomatic(_ directory: String) async throws {
        let block = "\nfailover:\n  primary_lease_ttl: 6\n  primary_lease_margin: 2.0\n  automatic: [\"*\"]\n  master_failure_timeout: 2\n"
        let up = try runMarina([
            "sandbox", "up", "--dir", directory, "--replicas", "1", "--failover", "automatic", "--agent-interval", "0.2", "--json",
        ])
        #expect(up.status == 0, "\(up.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(up.stdout.utf8)) as? [String: Any], "\(up.stdout)")
        #expect(json["failover"] as? String == "automatic")
        #expect(json["agentInterval"] as? Double == 0.2)
        #expect((json["controller"] as? [String: Any])?["running"] as? Bool == true)
        let controllerFile = directory + "/controller.yaml"
        #expect(try String(contentsOfFile: controllerFile, encoding: .utf8).hasSuffix(block))
        #expect(try String(contentsOfFile: directory + "/agent.yaml", encoding: .utf8).contains("\ninterval: 0.2\n"))
        let state = try Sandbox.state(directory: directory)
        #expect(state.failoverMode == .automatic && state.agentProbeInterval == 0.2)

        let status = try runMarina(["sandbox", "status", "--dir", directory])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(
            status.stdout.contains(
                "failover     automatic: the controller fails over every section whose primary is dead (master_failure_timeout 2 s)"),
            "\(status.stdout)")
        #expect(status.stdout.contains("marina agent, pid \(state.agent?.pid ?? 0), running, probing every 0.2 s; log "), "\(status.stdout)")

        // Restarted through the library, the controller keeps the sandbox's mode (and leads: it accepted the block).
        try await Sandbox.stopController(directory: directory)
        try await Sandbox.startController(directory: directory, executable: marinaExecutable())
        #expect(try String(contentsOfFile: controllerFile, encoding: .utf8).hasSuffix(block))
        #expect(try Sandbox.state(directory: directory).failoverMode == .automatic)

        // Told another mode, it runs with it and the sandbox keeps that one.
        try await Sandbox.stopController(directory: directory)
        try await Sandbox.startController(directory: directory, executable: marinaExecutable(), failover: .manual)
        #expect(try !String(contentsOfFile: controllerFile, encoding: .utf8).contains("automatic: ["))
        #expect(try Sandbox.state(directory: directory).failoverMode == .manual)
        let manual = try runMarina(["sandbox", "status", "--json", "--dir", directory])
        #expect(manual.status == 0, "\(manual.stderr)")
        #expect((try JSONSerialization.jsonObject(with: Data(manual.stdout.utf8)) as? [String: Any])?["failover"] as? String == "manual")
    }
}
