import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Starting and stopping the server processes of a sandbox.
///
/// Children are spawned in a session of their own (`setsid`), so a terminal's Ctrl-C or the
/// exit of `marina` does not reach them: they live until `down` ends them by pid. Before a pid
/// is signalled, its command line is checked to still name the sandbox directory, so a pid
/// that the system has since reused for another program is never touched.
public enum ChildProcess {
    /// Starts `executable` with `arguments`, stdout and stderr appended to `logFile`.
    public static func spawn(
        _ executable: String, _ arguments: [String], logFile: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> pid_t {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, logFile, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)
        // Nothing else is inherited: an open pipe of this process (a test reading another
        // command's output, a libcurl socket) would otherwise stay open in a long-lived server,
        // and whoever waits for that pipe's end would wait as long as the server lives.
        guard let closeFrom = addCloseFrom, closeFrom(&fileActions, 3) == 0 else {
            throw SandboxError.cannotStart(executable, "posix_spawn_file_actions_addclosefrom_np is unavailable (glibc 2.34 or later is needed)")
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        sigaddset(&defaultSignals, SIGINT)
        sigaddset(&defaultSignals, SIGTERM)
        sigaddset(&defaultSignals, SIGPIPE)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        // 0x80 is glibc's POSIX_SPAWN_SETSID, which Swift does not import as a constant.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | 0x80))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid = pid_t()
        let status = posix_spawn(&pid, executable, &fileActions, &attributes, argv, envp)
        guard status == 0 else {
            throw SandboxError.cannotStart(executable, String(cString: strerror(status)))
        }
        return pid
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which Swift's Glibc module
    /// does not import (it is a GNU extension), looked up once at run time.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// Runs a program to completion and returns its exit status and output (for short tools
    /// such as `mariadb-install-db`).
    public static func run(_ executable: String, _ arguments: [String], logFile: String) throws -> Int32 {
        let pid = try spawn(executable, arguments, logFile: logFile)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    /// What the kernel says of a recorded pid.
    enum Identity: Equatable {
        /// Alive, and its command line contains the marker.
        case ours
        /// Gone, a zombie, or another program now.
        case gone
        /// Alive but with an empty command line: in the middle of `exec` (a `#!` script such
        /// as pt-heartbeat takes a while to become `perl ...`), or a kernel thread.
        case undetermined
    }

    static func identity(_ pid: pid_t, marker: String) -> Identity {
        guard pid > 0 else { return .gone }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {  // our own child, exited: reap it and remember how
            endings.withLock { $0[pid] = (status & 0x7F) == 0 ? "exited with status \((status >> 8) & 0xFF)" : "killed by signal \(status & 0x7F)" }
        }
        guard kill(pid, 0) == 0, !isZombie(pid) else { return .gone }
        guard let commandLine = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else {
            return kill(pid, 0) == 0 ? .undetermined : .gone
        }
        if commandLine.isEmpty { return .undetermined }
        let text = String(decoding: commandLine.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
        return text.contains(marker) ? .ours : .gone
    }

    /// How reaped children ended, for error messages.
    private static let endings = Mutex<[pid_t: String]>([:])

    /// How a child of this process ended ("exited with status 1", "killed by signal 9"), if it
    /// was reaped here; "ended (not a child of this process)" otherwise.
    public static func ending(of pid: pid_t) -> String {
        endings.withLock { $0[pid] } ?? (kill(pid, 0) == 0 ? "still running" : "ended (not reaped here)")
    }

    /// Whether `pid` is alive and still the process started for `marker` (its command line
    /// contains that string). A pid caught mid-`exec` counts as running: its owner just
    /// started it.
    public static func isRunning(_ pid: pid_t, marker: String) -> Bool {
        identity(pid, marker: marker) != .gone
    }

    /// Sends SIGTERM, waits up to `grace` seconds, then SIGKILL (at once with `grace` 0). Signals only a pid proven to
    /// be the process started for `marker` (waiting up to a second for one caught mid-`exec`
    /// to show its command line). Returns whether a process was ended.
    @discardableResult
    public static func stop(_ pid: pid_t, marker: String, grace: Double = 15) -> Bool {
        var identity = identity(pid, marker: marker)
        for _ in 0..<100 where identity == .undetermined {
            usleep(10_000)
            identity = self.identity(pid, marker: marker)
        }
        guard identity == .ours else { return false }
        if grace > 0 { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline {
            if self.identity(pid, marker: marker) == .gone { return true }
            usleep(20_000)
        }
        if self.identity(pid, marker: marker) == .ours { kill(pid, SIGKILL) }
        while self.identity(pid, marker: marker) != .gone { usleep(10_000) }
        return true
    }

    /// Sends `signal` to `pid` if it is proven to be the process started for `marker` (as `stop`
    /// checks). Returns whether it was sent.
    @discardableResult
    public static func signal(_ pid: pid_t, marker: String, _ signal: Int32) -> Bool {
        var identity = identity(pid, marker: marker)
        for _ in 0..<100 where identity == .undetermined {
            usleep(10_000)
            identity = self.identity(pid, marker: marker)
        }
        return identity == .ours && kill(pid, signal) == 0
    }

    /// The last lines of the first non-empty of `logs`, for an error that says why a process died.
    public static func logTail(_ logs: [String], characters: Int = 400) -> String {
        logs.compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }
            .map { String($0.suffix(characters)).trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty }
            .joined(separator: " | ")
    }

    /// Whether `pid` is stopped by a signal (SIGSTOP): `T` in `/proc/PID/stat`, for every thread
    /// with `allThreads` (a group stop has reached them all), else for the main thread.
    public static func isStopped(_ pid: pid_t, allThreads: Bool = false) -> Bool {
        func state(_ path: String) -> Character? {
            guard let stat = try? String(contentsOfFile: path, encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
            return stat[stat.index(after: close)...].first { $0 != " " }
        }
        guard allThreads else { return state("/proc/\(pid)/stat") == "T" }
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return !threads.isEmpty && threads.allSatisfy { state("/proc/\(pid)/task/\($0)/stat") == "T" }
    }

    private static func isZombie(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.first == "Z"
    }
}
