import Foundation
import MariaDBClient

/// One `mariadbd` of a sandbox: prepared from the datadir template, started by pid.
public enum MariaDBServer {
    /// Writes the option file (including `conf.d/`, created empty) and copies the template
    /// datadir into `member.directory`.
    /// `address`: what it binds to and reports (its own in namespaces mode).
    public static func prepare(_ member: SandboxPlan.Member, template: String, tls: Certificates? = nil, address: String = "127.0.0.1") throws {
        let files = FileManager.default
        try? files.removeItem(atPath: member.directory)
        try files.createDirectory(atPath: member.directory, withIntermediateDirectories: true)
        try files.copyItem(atPath: template, toPath: member.directory + "/data")
        // Its own temporary files, not the machine's /tmp: nothing another process cleans up
        // (or another server's names) can reach them.
        try files.createDirectory(atPath: member.directory + "/tmp", withIntermediateDirectories: true)
        // The agent's managed option file goes in conf.d (`managedOptionFile`).
        try files.createDirectory(atPath: includeDirectory(member.directory), withIntermediateDirectories: true)
        try (SandboxPlan.optionFile(for: member, tls: tls, address: address) + "!includedir \(includeDirectory(member.directory))\n").write(
            toFile: member.directory + "/my.cnf", atomically: true, encoding: .utf8)
    }

    /// The directory of option files the instance's configuration includes, last
    /// (`!includedir`): what is there overrides `my.cnf`.
    public static func includeDirectory(_ instanceDirectory: String) -> String { instanceDirectory + "/conf.d" }

    /// The option file the sandbox's agent keeps for the instance in `instanceDirectory`, with
    /// the managed variables (`variables.option_file`).
    public static func managedOptionFile(_ instanceDirectory: String) -> String { includeDirectory(instanceDirectory) + "/99-marina.cnf" }

    /// Starts `mariadbd` on the option file in `directory`; in `namespace`'s network when given
    /// (through `nsenter`, which becomes `mariadbd`: the pid is the server's own).
    public static func start(_ toolchain: Toolchain, directory: String, namespace: String? = nil) throws -> Int32 {
        let tools = try namespace.map { _ in try HostNetwork.preflight() }
        let (executable, arguments) = HostNetwork.command(
            toolchain.mariadbd, ["--defaults-file=\(directory)/my.cnf"], in: namespace, tools: tools)
        return try ChildProcess.spawn(executable, arguments, logFile: directory + "/stdout.log")
    }

    /// Connects as MariaDB's `root` over the unix socket (no password in a sandbox).
    public static func rootConfiguration(socket: String, readTimeout: Int = 30) -> MariaDBConfiguration {
        MariaDBConfiguration(endpoint: .socket(path: socket), user: "root", connectTimeout: 2, readTimeout: readTimeout, writeTimeout: readTimeout)
    }

    /// Waits until the server accepts a connection on its socket, or throws naming its error log.
    public static func waitReady(
        name: String, socket: String, pid: Int32, marker: String, errorLog: String,
        timeout: Double = 30
    ) async throws -> MariaDBClient {
        let deadline = Date().addingTimeInterval(timeout)
        var lastError = "no answer"
        while Date() < deadline {
            guard ChildProcess.isRunning(pid, marker: marker) else {
                // Errors before the error log is open (bad options, a missing library) go to stdout.log.
                let tail = ChildProcess.logTail([errorLog, (errorLog as NSString).deletingLastPathComponent + "/stdout.log"])
                throw SandboxError.notReady(what: "mariadbd \(name)", log: errorLog, detail: "the process \(ChildProcess.ending(of: pid)): \(tail)")
            }
            if FileManager.default.fileExists(atPath: socket) {
                do {
                    return try await MariaDBClient.connect(rootConfiguration(socket: socket))
                } catch {
                    lastError = "\(error)"
                }
            }
            try await Task.sleep(for: .milliseconds(30))
        }
        throw SandboxError.notReady(what: "mariadbd \(name)", log: errorLog, detail: "no connection within \(Int(timeout)) s: \(lastError)")
    }
}
