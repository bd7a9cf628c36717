import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Testing

/// Runs `executable` with `arguments` (in `directory`, with `environment` added); gives its exit
/// status and what it wrote on standard output and standard error, together.
private func run(
    _ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:]
) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// `systemd-analyze`, which `make deps` installs (Debian package systemd).
private let systemdAnalyze = "/usr/bin/systemd-analyze"

/// A fresh temporary directory.
private func temporaryDirectory(_ name: String) throws -> String {
    let path = NSTemporaryDirectory() + "marina-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("make install: binaries, systemd units, sysusers, man pages, completions")
struct PackagingTests {
    @Test(
        "make install DESTDIR=... PREFIX=/usr installs everything; systemd-analyze verify accepts the units and catches a broken one",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: systemdAnalyze),
            "systemd-analyze is missing: install the Debian package systemd (make deps does)"))
    func install() throws {
        let destination = try temporaryDirectory("install")
        defer { try? FileManager.default.removeItem(atPath: destination) }
        // The binaries under test (the debug build `swift test` made): CONFIGURATION=debug builds nothing.
        let built = URL(fileURLWithPath: marinaExecutable()).deletingLastPathComponent().path
        let make = try run(
            "/usr/bin/make",
            ["--no-print-directory", "install", "DESTDIR=\(destination)", "PREFIX=/usr", "CONFIGURATION=debug", "BUILT=\(built)"],
            in: packageRoot)
        #expect(make.status == 0, "make install failed: \(make.output)")
        #expect(!make.output.contains("apt-get") && !make.output.contains("swift build"), "make install did more than install: \(make.output)")

        let root = destination + "/usr"
        let manager = FileManager.default
        for binary in ["marina", "marina-agent"] {
            #expect(manager.isExecutableFile(atPath: "\(root)/bin/\(binary)"), "\(binary) not installed")
        }
        // Nothing in /etc: the examples go to the documentation directory.
        #expect(!manager.fileExists(atPath: destination + "/etc"))
        for example in ["agent.example.yaml", "controller.example.yaml", "playbooks/switchover.yaml", "playbooks/failover.yaml"] {
            #expect(manager.fileExists(atPath: "\(root)/share/doc/marina/examples/\(example)"), "\(example) not installed")
        }
        #expect(manager.fileExists(atPath: "\(root)/share/doc/marina/deployment.md"))

        // The units name the installed binaries and the configuration in /etc/marina; no placeholder is left.
        let units = "\(root)/lib/systemd/system"
        let agentUnit = try String(contentsOfFile: units + "/marina-agent.service", encoding: .utf8)
        let controllerUnit = try String(contentsOfFile: units + "/marina-controller.service", encoding: .utf8)
        #expect(agentUnit.contains("\nExecStart=/usr/bin/marina-agent --config /etc/marina/agent.yaml\n"))
        #expect(controllerUnit.contains("\nExecStart=/usr/bin/marina controller --config /etc/marina/controller.yaml\n"))
        for unit in [agentUnit, controllerUnit] {
            for placeholder in ["@BINDIR@", "@SYSCONFDIR@", "@DOCDIR@"] { #expect(!unit.contains(placeholder), "\(placeholder) is left") }
            #expect(unit.contains("\nUser=marina\n") && unit.contains("\nMemoryDenyWriteExecute=yes\n") && unit.contains("\nProtectSystem=strict\n"))
        }

        // The sysusers file creates the marina user, with no login shell.
        let sysusersRoot = try temporaryDirectory("sysusers")
        defer { try? manager.removeItem(atPath: sysusersRoot) }
        try manager.createDirectory(atPath: sysusersRoot + "/etc", withIntermediateDirectories: true)
        let sysusers = try run("/usr/bin/systemd-sysusers", ["--root=\(sysusersRoot)", "\(root)/lib/sysusers.d/marina.conf"])
        #expect(sysusers.status == 0, "\(sysusers.output)")
        let passwd = try String(contentsOfFile: sysusersRoot + "/etc/passwd", encoding: .utf8)
        #expect(passwd.contains("marina:x:") && passwd.contains(":/var/lib/marina:/usr/sbin/nologin\n"), "\(passwd)")

        try checkManPages(root + "/share/man/man1")
        try checkCompletions(root)
        try verifyUnits(destination)

        let uninstall = try run(
            "/usr/bin/make", ["--no-print-directory", "uninstall", "DESTDIR=\(destination)", "PREFIX=/usr"], in: packageRoot)
        #expect(uninstall.status == 0, "\(uninstall.output)")
        for path in ["bin/marina", "bin/marina-agent", "lib/systemd/system/marina-agent.service", "share/man/man1/marina.1", "share/doc/marina"] {
            #expect(!manager.fileExists(atPath: "\(root)/\(path)"), "make uninstall left \(path)")
        }
    }

    /// marina.1 holds a section for every subcommand `marina --experimental-dump-help` lists,
    /// and groff formats both pages without a warning.
    func checkManPages(_ directory: String) throws {
        let page = try String(contentsOfFile: directory + "/marina.1", encoding: .utf8)
        let agentPage = try String(contentsOfFile: directory + "/marina-agent.1", encoding: .utf8)
        #expect(page.contains("\n.TH \"MARINA\" \"1\"") && agentPage.contains("\n.TH \"MARINA-AGENT\" \"1\""))
        let dump = try run(marinaExecutable(), ["--experimental-dump-help"])
        let tool = try #require(try JSONSerialization.jsonObject(with: Data(dump.output.utf8)) as? [String: Any])
        let command = try #require(tool["command"] as? [String: Any])
        let subcommands = try #require(command["subcommands"] as? [[String: Any]]).compactMap { $0["commandName"] as? String }
        #expect(subcommands.contains("switchover") && subcommands.contains("controller"))
        for name in subcommands where name != "help" {
            #expect(page.contains(".SS \"marina \(name)\"\n"), "marina.1 has no section for marina \(name)")
        }
        #expect(page.contains(".SS \"marina operation show\"\n"), "nested subcommands have sections too")
        #expect(FileManager.default.isExecutableFile(atPath: "/usr/bin/groff"), "groff is missing: install groff-base (make deps does)")
        for name in ["marina.1", "marina-agent.1"] {
            let formatted = try run("/usr/bin/groff", ["-man", "-Tutf8", "-ww", "-z", directory + "/" + name])
            #expect(formatted.status == 0 && formatted.output.isEmpty, "groff warns about \(name): \(formatted.output)")
        }
    }

    /// The completion scripts are where bash, zsh and fish look on Debian, and the bash one parses.
    func checkCompletions(_ root: String) throws {
        let bash = root + "/share/bash-completion/completions/marina"
        let zsh = try String(contentsOfFile: root + "/share/zsh/vendor-completions/_marina", encoding: .utf8)
        let fish = try String(contentsOfFile: root + "/share/fish/vendor_completions.d/marina.fish", encoding: .utf8)
        #expect(try String(contentsOfFile: bash, encoding: .utf8).contains("\ncomplete -o filenames -F _marina marina\n"))
        #expect(zsh.hasPrefix("#compdef marina"))
        #expect(fish.contains("complete -c 'marina' "))
        let syntax = try run("/bin/bash", ["-n", bash])
        #expect(syntax.status == 0, "\(syntax.output)")
    }

    /// `systemd-analyze verify --root=DESTDIR` on the installed units: exit 0 and not a word
    /// (systemd 252 only warns about an unknown key or a bad value, exit 0, so silence is the
    /// test). With --root it checks that ExecStart's binary exists inside DESTDIR, and with
    /// MANPATH that the `man:` pages of Documentation= exist. It needs the targets every
    /// service depends on (sysinit.target, ...), which DESTDIR lacks: the host's are copied
    /// into DESTDIR/etc/systemd/system. Then a copy with a typo in a key, and one whose
    /// binary is missing, must both be reported.
    func verifyUnits(_ destination: String) throws {
        let manager = FileManager.default
        let targets = destination + "/etc/systemd/system"
        try manager.createDirectory(atPath: targets, withIntermediateDirectories: true)
        for name in try manager.contentsOfDirectory(atPath: "/usr/lib/systemd/system") where name.hasSuffix(".target") {
            try manager.copyItem(atPath: "/usr/lib/systemd/system/" + name, toPath: targets + "/" + name)
        }
        let environment = ["MANPATH": destination + "/usr/share/man"]
        func verify(_ units: [String]) throws -> (status: Int32, output: String) {
            try run(systemdAnalyze, ["verify", "--root=\(destination)"] + units.map { "/usr/lib/systemd/system/" + $0 }, environment: environment)
        }
        let accepted = try verify(["marina-agent.service", "marina-controller.service"])
        #expect(accepted.status == 0 && accepted.output.isEmpty, "systemd-analyze verify: \(accepted.output)")

        let units = destination + "/usr/lib/systemd/system"
        let agentUnit = try String(contentsOfFile: units + "/marina-agent.service", encoding: .utf8)
        try agentUnit.replacingOccurrences(of: "\nRestart=on-failure\n", with: "\nRestrat=on-failure\n")
            .write(toFile: units + "/marina-typo.service", atomically: true, encoding: .utf8)
        let typo = try verify(["marina-typo.service"])
        #expect(typo.output.contains("Unknown key") && typo.output.contains("Restrat"), "a typo went unnoticed: \(typo.output)")

        try agentUnit.replacingOccurrences(of: "/usr/bin/marina-agent ", with: "/usr/bin/marina-agnet ")
            .write(toFile: units + "/marina-nobinary.service", atomically: true, encoding: .utf8)
        let missing = try verify(["marina-nobinary.service"])
        #expect(missing.status != 0 && missing.output.contains("/usr/bin/marina-agnet"), "a missing binary went unnoticed: \(missing.output)")
    }
}

/// `MemoryDenyWriteExecute=yes` in both units holds only if nothing in the processes maps memory
/// writable and executable. The kernel's PR_SET_MDWE (Linux 6.3+, inherited across execve) is the
/// same rule: the binaries run under it against a real etcd and mariadbd, the agent probing and
/// publishing, the controller leading and serving HTTP.
@Suite("The binaries under MemoryDenyWriteExecute")
struct MemoryDenyWriteExecuteTests {
    /// Python's prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN), then execv of the arguments.
    static let wrapper = """
        import ctypes, os, sys
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(65, 1, 0, 0, 0) != 0:
            sys.exit("PR_SET_MDWE: errno %d" % ctypes.get_errno())
        os.execv(sys.argv[1], sys.argv[1:])
        """

    static func kernelSupportsMDWE() -> Bool {
        (try? run("/usr/bin/python3", ["-c", wrapper, "/bin/true"]).status) == 0
    }

    @Test(
        "marina-agent and marina controller run under PR_SET_MDWE: the agent publishes, the controller leads and serves HTTP",
        .enabled(if: kernelSupportsMDWE(), "the kernel has no PR_SET_MDWE (Linux 6.3 or later)"))
    func underMDWE() async throws {
        // A W+X mapping is refused under the wrapper: the rule is really on.
        let probe = try run(
            "/usr/bin/python3",
            [
                "-c", Self.wrapper, "/usr/bin/python3", "-c",
                "import ctypes; libc = ctypes.CDLL(None); libc.mmap.restype = ctypes.c_void_p; "
                    + "print(libc.mmap(None, 4096, 7, 0x22, -1, 0) == ctypes.c_void_p(-1).value)",
            ])
        #expect(probe.output == "True\n", "PR_SET_MDWE did not refuse a writable and executable mapping: \(probe.output)")

        let sandbox = try await TestServers.privateSandbox("packaging-mdwe", replicas: 0)
        defer { TestServers.stop(sandbox) }
        let credentials = try Credentials.load(from: sandbox.credentialsFile)
        let agentConfig = sandbox.directory + "/mdwe-agent.yaml"
        try
            (Sandbox.agentConfiguration(for: sandbox, credentialsFile: credentials.agentFile, interval: 0.5, leaseTTL: 5)
            + "log_format: json\n")
            .write(toFile: agentConfig, atomically: true, encoding: .utf8)
        let controllerConfig = sandbox.directory + "/mdwe-controller.yaml"
        try
            (Sandbox.controllerConfiguration(
                for: sandbox, playbooks: try Sandbox.locatePlaybooks(from: marinaExecutable()), id: "mdwe", http: true) + "log_format: json\n")
            .write(toFile: controllerConfig, atomically: true, encoding: .utf8)
        let agentBinary = URL(fileURLWithPath: marinaExecutable()).deletingLastPathComponent().appendingPathComponent("marina-agent").path
        let marker = sandbox.directory + "/"
        let agent = try ChildProcess.spawn(
            "/usr/bin/python3", ["-c", Self.wrapper, agentBinary, "--config", agentConfig], logFile: sandbox.directory + "/mdwe-agent.log")
        let controller = try ChildProcess.spawn(
            "/usr/bin/python3", ["-c", Self.wrapper, marinaExecutable(), "controller", "--config", controllerConfig],
            logFile: sandbox.directory + "/mdwe-controller.log")
        defer {
            for pid in [agent, controller] where ChildProcess.isRunning(pid, marker: marker) { kill(pid, SIGKILL) }
        }
        let etcd = sandbox.etcdClient
        let deadline = Date().addingTimeInterval(30)
        var observed = false
        var leading = false
        /// The value of `key` in etcd, as text ("" when absent or etcd does not answer).
        func value(_ key: String) async -> String {
            let value = try? await etcd.get(key).kvs.first?.value
            return value.map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        while Date() < deadline && !(observed && leading) {
            if !observed { observed = await value("/marina/v1/observed/db1001").contains("\"reachable\":true") }
            if !leading { leading = await value("/marina/v1/leader").contains("\"mdwe\"") }
            try await Task.sleep(for: .milliseconds(100))
        }
        let logs = { (try? String(contentsOfFile: sandbox.directory + "/mdwe-agent.log", encoding: .utf8)) ?? "" }
        let controllerLog = { (try? String(contentsOfFile: sandbox.directory + "/mdwe-controller.log", encoding: .utf8)) ?? "" }
        #expect(observed, "the agent under MDWE published no reachable observation: \(logs())")
        #expect(leading, "the controller under MDWE did not lead: \(controllerLog())")
        let port = try #require(sandbox.http).controllerPort
        let page = try run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/metrics"])
        #expect(page.output == "200", "the controller's /metrics under MDWE: \(page.output)")

        // SIGTERM: both stop gracefully, status 0.
        for pid in [agent, controller] { kill(pid, SIGTERM) }
        for pid in [agent, controller] {
            var status: Int32 = -1
            let stopBy = Date().addingTimeInterval(20)
            while waitpid(pid, &status, WNOHANG) == 0 && Date() < stopBy { try await Task.sleep(for: .milliseconds(50)) }
            #expect(status == 0, "pid \(pid) ended with status \(status): \(logs()) \(controllerLog())")
        }
        // Every line of both logs is one JSON object (log_format: json).
        for line in (logs() + controllerLog()).split(separator: "\n") {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any], "not a JSON line: \(line)")
        }
    }
}

/// The etcd roles of docs/deployment.md, made by `tools/etcd-roles.sh` on a real etcd with
/// authentication on: each process works with its own user, and no more.
@Suite("etcd users and roles (tools/etcd-roles.sh)")
struct EtcdRolesTests {
    /// Runs etcdctl against the sandbox's etcd as `user` (nil: before auth, or root's own); secrets on standard input.
    static func etcdctl(_ sandbox: SandboxState, _ arguments: [String], input: String = "") throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Toolchain.find("etcdctl", package: "etcd-client", in: Toolchain.defaultSearchPath))
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["ETCDCTL_API": "3", "ETCDCTL_ENDPOINTS": sandbox.etcd.url]) { $1 }
        let stdin = Pipe()
        let output = Pipe()
        process.standardInput = stdin
        process.standardOutput = output
        process.standardError = output
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "etcdctl \(arguments.joined(separator: " ")): \(text)")
    }

    @Test("the agent writes its observation and primary lease but no topology key; controller, DBA and read-only users as documented")
    func roles() async throws {
        let sandbox = try await TestServers.privateSandbox("packaging-etcd-roles", replicas: 0)
        defer { TestServers.stop(sandbox) }
        let etcdctlPath = try Toolchain.find("etcdctl", package: "etcd-client", in: Toolchain.defaultSearchPath)
        let environment = ["ETCDCTL": etcdctlPath, "ETCDCTL_ENDPOINTS": sandbox.etcd.url]
        for arguments in [["shared"], ["agent", "marina-agent-db1001", "db1001=s1"]] {
            let made = try run("/bin/sh", [packageRoot + "/tools/etcd-roles.sh"] + arguments, environment: environment)
            #expect(made.status == 0, "tools/etcd-roles.sh \(arguments.joined(separator: " ")): \(made.output)")
        }
        var passwords = [String: String]()
        for (user, role) in [
            ("root", "root"), ("marina-agent-db1001", "marina-agent-db1001"), ("marina-controller", "marina-controller"),
            ("marina-dba", "marina-dba"), ("marina-readonly", "marina-readonly"),
        ] {
            let password = "pw-\(UInt64.random(in: 0...UInt64.max))"
            passwords[user] = sandbox.directory + "/etcd-\(user).password"
            try (password + "\n").write(toFile: passwords[user]!, atomically: true, encoding: .utf8)
            try Self.etcdctl(sandbox, ["user", "add", user, "--interactive=false"], input: password + "\n")
            if user == "root" { try Self.etcdctl(sandbox, ["role", "add", "root"]) }
            try Self.etcdctl(sandbox, ["user", "grant-role", user, role])
        }
        try Self.etcdctl(sandbox, ["auth", "enable"])
        func client(_ user: String) throws -> EtcdClient {
            let password = try String(contentsOfFile: passwords[user]!, encoding: .utf8).trimmingCharacters(in: .newlines)
            return EtcdClient(EtcdConfiguration(endpoints: [sandbox.etcd.url], credentials: .init(username: user, password: password)))
        }
        let root = try client("root")
        /// The etcd lines of a configuration, as `user`.
        func asUser(_ configuration: String, _ user: String) -> String {
            configuration.replacingOccurrences(of: "\netcd:\n", with: "\netcd:\n  user: \(user)\n  password_file: \(passwords[user]!)\n")
        }

        // The agent, with fencing: it publishes db1001 and takes the primary lease of s1.
        let credentials = try Credentials.load(from: sandbox.credentialsFile)
        let agentConfig = sandbox.directory + "/roles-agent.yaml"
        try asUser(
            Sandbox.agentConfiguration(
                for: sandbox, credentialsFile: credentials.agentFile, interval: 0.5, leaseTTL: 5, extraLines: sandbox.agentExtraLines ?? []),
            "marina-agent-db1001"
        ).write(toFile: agentConfig, atomically: true, encoding: .utf8)
        let controllerConfig = sandbox.directory + "/roles-controller.yaml"
        try asUser(
            Sandbox.controllerConfiguration(for: sandbox, playbooks: try Sandbox.locatePlaybooks(from: marinaExecutable()), id: "roles"),
            "marina-controller"
        ).write(toFile: controllerConfig, atomically: true, encoding: .utf8)
        let agentLog = sandbox.directory + "/roles-agent.log"
        let controllerLog = sandbox.directory + "/roles-controller.log"
        let agent = try ChildProcess.spawn(marinaExecutable(), ["agent", "--config", agentConfig], logFile: agentLog)
        let controller = try ChildProcess.spawn(marinaExecutable(), ["controller", "--config", controllerConfig], logFile: controllerLog)
        let marker = sandbox.directory + "/"
        defer {
            for pid in [agent, controller] where ChildProcess.isRunning(pid, marker: marker) { kill(pid, SIGKILL) }
        }
        func value(_ key: String) async -> String {
            let value = try? await root.value(key)?.value
            return value.map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        let log = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        var (observed, leased, leading) = (false, false, false)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && !(observed && leased && leading) {
            if !observed { observed = await value("/marina/v1/observed/db1001").contains("\"reachable\":true") }
            if !leased { leased = await value("/marina/v1/fencing/lease/s1").contains("\"instance\":\"db1001\"") }
            if !leading { leading = await value("/marina/v1/leader").contains("\"roles\"") }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(observed, "the agent's observation of db1001 was not written: \(log(agentLog))")
        #expect(leased, "the agent did not take the primary lease of s1: \(log(agentLog))")
        #expect(leading, "the controller did not lead as marina-controller: \(log(controllerLog))")
        #expect(!log(agentLog).contains("permission denied"), "\(log(agentLog))")

        // The agent's user: not a topology key, not another instance's observation, no password hash.
        let agentClient = try client("marina-agent-db1001")
        for key in ["/marina/v1/sections/s1", "/marina/v1/observed/db1002", "/marina/v1/committed", "/marina/v1/fencing/lease/s2"] {
            let refused = try await #require(throws: EtcdError.self) { try await agentClient.put(key, "{}") }
            #expect(refused.message.contains("permission denied"), "\(key): \(refused)")
        }
        let hashes = try await #require(throws: EtcdError.self) { try await agentClient.get("/marina/v1/grants/", prefix: true) }
        #expect(hashes.message.contains("permission denied"))

        // The command line: read-only reads and cannot stage; the DBA can.
        func marina(_ user: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try runMarina(arguments + ["--etcd", sandbox.etcd.url, "--etcd-user", user, "--etcd-password-file", passwords[user]!])
        }
        let status = try marina("marina-readonly", ["status"])
        #expect(status.status == 0 && status.stdout.contains("db1001"), "\(status.stderr)")
        let readOnlyEdit = try marina("marina-readonly", ["datacenter", "add", "dc9"])
        #expect(readOnlyEdit.status != 0 && readOnlyEdit.stderr.contains("permission denied"), "\(readOnlyEdit)")
        let dbaEdit = try marina("marina-dba", ["datacenter", "add", "dc9"])
        #expect(dbaEdit.status == 0, "\(dbaEdit.stderr)")

        // A graceful stop: the agent revokes its lease (its observation goes at once), the controller resigns.
        for pid in [agent, controller] { kill(pid, SIGTERM) }
        for pid in [agent, controller] {
            var status: Int32 = -1
            let stopBy = Date().addingTimeInterval(20)
            while waitpid(pid, &status, WNOHANG) == 0 && Date() < stopBy { try await Task.sleep(for: .milliseconds(50)) }
            #expect(status == 0, "pid \(pid) ended with status \(status)")
        }
        #expect(await value("/marina/v1/observed/db1001").isEmpty, "the agent could not revoke its lease: \(log(agentLog))")
    }
}
