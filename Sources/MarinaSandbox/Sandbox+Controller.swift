import EtcdClient
import Foundation
import MariaDBClient

extension Sandbox {
    /// The controller configuration for a sandbox: its etcd (at the bridge's address in
    /// namespaces mode), the controller's account from the credentials file, the repository's
    /// playbooks, and the MediaWiki v2 mirror the sandbox registers with.
    /// `depool` is a YAML `depool:` block (the controller's defaults without one). The
    /// `failover:` block always waits for the agents' primary lease (`state.fencingTiming`);
    /// `failover` automatic adds `automatic: ["*"], master_failure_timeout: 2`, nil takes the
    /// sandbox's mode (`state.failoverMode`: manual unless `up` was given automatic), and
    /// `failoverLines` (indented) are added to the block as they are. `grants` is a YAML
    /// `grants:` block (default: the grant watch every 2 s, no automatic sync). `http` adds the
    /// `http:` block on the sandbox's controller port: only the sandbox's own controller takes
    /// it (a second controller a test starts would find the port taken).
    public static func controllerConfiguration(
        for state: SandboxState, playbooks: String, id: String = "sandbox-controller",
        leaseTTL: Int = 5, pauseBefore: String? = nil, pauseAfter: String? = nil,
        depool: String? = nil, failover: SandboxFailoverMode? = nil, failoverLines: [String] = [], grants: String? = nil,
        http: Bool = false
    ) -> String {
        var lines =
            [
                "# Written by marina sandbox: the controller of this sandbox.",
                "id: \(id)",
                "lease_ttl: \(leaseTTL)",
            ] + etcdSection(state)
        lines += [
            "mariadb:",
            "  credentials_file: \(state.credentialsFile)",
            "  credentials_group: marina-controller",
            "  replication_group: marina-replication",
            // Grant and variable sync need an account that may grant anything: the sandbox's admin.
            "  settings_group: client",
            "playbooks: \(playbooks)",
            grants ?? "grants:\n  check_interval: 2",
            "mirror:",
            "  v2_prefix: conftool/v1/mediawiki-config",
        ]
        if http, let http = state.http {
            // In namespaces mode the controller listens on its host's address, which the root namespace reaches.
            lines += [
                "http:",
                "  listen: \(state.network?.controller.address ?? "127.0.0.1"):\(http.controllerPort)",
                "  token_file: \(http.tokenFile)",
            ]
            // A sandbox with TLS serves HTTPS with its server certificate (valid for 127.0.0.1 and every host address).
            if let certificates = state.certificates {
                lines += ["  certificate_file: \(certificates.serverCertificate)", "  key_file: \(certificates.serverKey)"]
            }
        }
        if let pauseBefore { lines.append("pause_before: \(pauseBefore)") }
        if let pauseAfter { lines.append("pause_after: \(pauseAfter)") }
        // The test-only hooks are refused without this flag (and the controller logs it loudly).
        if pauseBefore != nil || pauseAfter != nil { lines += ["testing:", "  enable_hooks: true"] }
        if let depool { lines.append(depool.hasSuffix("\n") ? String(depool.dropLast()) : depool) }
        // The primary lease it waits for before a failover makes anyone writable, as the agents hold it.
        lines += ["failover:"] + state.fencingTiming.controllerLines + (failover ?? state.failoverMode).controllerLines + failoverLines
        return lines.joined(separator: "\n") + "\n"
    }

    /// Starts `marina controller` for a running sandbox (recorded, so `down` stops it) and waits
    /// until it leads. Gives its pid. `failover` sets the sandbox's failover mode (kept in the
    /// state for later controllers); nil keeps the mode the sandbox has.
    @discardableResult
    public static func startController(
        directory: String, executable: String, playbooks: String? = nil, pauseBefore: String? = nil,
        pauseAfter: String? = nil, depool: String? = nil, failover: SandboxFailoverMode? = nil, grants: String? = nil
    ) async throws -> Int32 {
        var state = try state(directory: directory)
        let credentials = try Credentials.load(from: state.credentialsFile)
        if let failover { state.failover = failover }
        try await startController(
            executable, state: &state, credentials: credentials,
            playbooks: try playbooks ?? locatePlaybooks(from: executable), pauseBefore: pauseBefore, pauseAfter: pauseAfter,
            depool: depool, grants: grants)
        return state.controller?.pid ?? 0
    }

    /// Stops the sandbox's controller: gracefully (it resigns the lease), or with SIGKILL, as a crash.
    public static func stopController(directory: String, kill: Bool = false) async throws {
        var state = try state(directory: directory)
        guard let controller = state.controller else { return }
        let directory = state.directory
        _ = try await blocking.run { ChildProcess.stop(controller.pid, marker: marker(directory), grace: kill ? 0 : 15) }
        state.controller = nil
        try state.save()
    }

    /// Starts the controller with the sandbox's failover mode (`state.failoverMode`), in the
    /// controller's own namespace in namespaces mode.
    static func startController(
        _ executable: String, state: inout SandboxState, credentials: Credentials, playbooks: String,
        pauseBefore: String? = nil, pauseAfter: String? = nil, depool: String? = nil, grants: String? = nil
    ) async throws {
        let configFile = state.directory + "/controller.yaml"
        let logFile = state.directory + "/controller.log"
        try controllerConfiguration(
            for: state, playbooks: playbooks, pauseBefore: pauseBefore, pauseAfter: pauseAfter, depool: depool, grants: grants,
            http: true
        ).write(
            toFile: configFile, atomically: true, encoding: .utf8)
        let namespace = state.network?.controller.namespace
        let (program, arguments) = HostNetwork.command(
            executable, ["controller", "--config", configFile], in: namespace, tools: try namespace.map { _ in try HostNetwork.preflight() })
        let pid = try ChildProcess.spawn(program, arguments, logFile: logFile)
        state.controller = .init(configFile: configFile, logFile: logFile, pid: pid)
        try state.save()
        let etcd = EtcdClient(EtcdConfiguration(endpoints: [state.etcd.url], tls: state.certificates?.etcdClientTLS))
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            guard ChildProcess.isRunning(pid, marker: marker(state.directory)) else {
                throw SandboxError.notReady(
                    what: "marina controller", log: logFile, detail: "the process \(ChildProcess.ending(of: pid)): \(ChildProcess.logTail([logFile]))"
                )
            }
            if let leader = try await etcd.value("/marina/v1/leader"),
                String(decoding: leader.value, as: UTF8.self).contains("\"sandbox-controller\""),
                state.http.map({ accepts(state.network?.controller.address ?? "127.0.0.1", port: $0.controllerPort) }) ?? true
            {
                return  // it leads, and its HTTP listener (which starts beside it) accepts connections
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw SandboxError.notReady(
            what: "marina controller", log: logFile,
            detail: "did not become the leader and serve HTTP within 20 s (another controller leads? see its log)")
    }

    /// Whether something accepts TCP connections on `address:port`.
    static func accepts(_ address: String, port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = in_port_t(UInt16(port).bigEndian)
        target.sin_addr.s_addr = inet_addr(address)
        return withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// The repository's `playbooks/` directory: `$MARINA_PLAYBOOKS`, else the nearest
    /// `playbooks/switchover.yaml` above the executable or the working directory.
    public static func locatePlaybooks(from executable: String) throws -> String {
        if let directory = ProcessInfo.processInfo.environment["MARINA_PLAYBOOKS"] { return directory }
        let starts = [
            URL(fileURLWithPath: absolute(executable)).deletingLastPathComponent(), URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
        ]
        for start in starts {
            var directory = start
            while directory.path != "/" {
                let candidate = directory.appendingPathComponent("playbooks")
                if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("switchover.yaml").path) { return candidate.path }
                directory = directory.deletingLastPathComponent()
            }
        }
        throw SandboxError.invalidArgument("cannot find playbooks/switchover.yaml above \(executable) or the working directory: set MARINA_PLAYBOOKS")
    }

    /// Waits until the agent has written a heartbeat on every primary and published a lag for
    /// every instance, so that `marina status` right after `sandbox up` shows lag everywhere.
    static func waitForHeartbeats(_ state: SandboxState, credentials: Credentials) async throws {
        try await waitForPrimaryHeartbeats(state, credentials: credentials)
        let etcd = EtcdClient(EtcdConfiguration(endpoints: [state.etcd.url], tls: state.certificates?.etcdClientTLS))
        let seconds = 15 + 2 * state.agentProbeInterval  // every replica probed again after the primary's first write
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let observed = try await etcd.get("/marina/v1/observed/", prefix: true).kvs
            let withLag = observed.filter { kv in
                ((try? JSONSerialization.jsonObject(with: Data(kv.value))) as? [String: Any])?["heartbeat_lag"] != nil
            }
            if withLag.count >= state.instances.count { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw SandboxError.notReady(
            what: "the agent", log: state.agent?.logFile ?? "", detail: "no heartbeat lag observed on every instance within \(Int(seconds)) s")
    }

    private static func waitForPrimaryHeartbeats(_ state: SandboxState, credentials: Credentials) async throws {
        for section in state.sections {
            guard let primary = state.primary(of: section) else { continue }
            let client = try await MariaDBClient.connect(
                MariaDBConfiguration(
                    endpoint: .socket(path: primary.socket), user: adminUser,
                    password: credentials.adminPassword))
            defer { Task { await client.close() } }
            let deadline = Date().addingTimeInterval(15 + 2 * state.agentProbeInterval)
            while true {
                if try await !client.query("SELECT ts FROM heartbeat.heartbeat WHERE server_id = ?", .integer(Int64(primary.serverID))).rows.isEmpty {
                    break
                }
                guard Date() < deadline else {
                    throw SandboxError.notReady(
                        what: "the agent's heartbeat", log: state.agent?.logFile ?? "",
                        detail: "no heartbeat row on \(primary.name) within \(Int(15 + 2 * state.agentProbeInterval)) s")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }
}
