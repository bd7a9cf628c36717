import Foundation

/// The processes of this machine whose command line contains `marker`: what a test uses to
/// prove that nothing a sandbox started is left running.
public func processes(containing marker: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")), !data.isEmpty else { return false }
        let text = String(decoding: data.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
        guard text.contains(marker) else { return false }
        // A zombie still has a cmdline until it is reaped; it is not running.
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !(stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? false)
    }
}

/// The `marina` executable built next to the test bundle.
public func marinaExecutable() -> String {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    return bundle.appendingPathComponent("marina").path
}

/// Runs `marina` with `arguments`; gives its exit status, standard output and standard error.
/// The environment a test gives `marina`: this process's without any `MARINA_` setting of the
/// person running the tests (an exported `MARINA_ETCD` would send commands to their etcd) and
/// without their CLI configuration files (`/etc/marina/marina.yaml`, `~/.config/marina/`),
/// then `extra`.
public func cliEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MARINA_") }
    environment["MARINA_SYSTEM_CONFIG"] = "/nonexistent/marina-tests/marina.yaml"
    environment["XDG_CONFIG_HOME"] = "/nonexistent/marina-tests"
    return environment.merging(extra) { $1 }
}

public func runMarina(
    _ arguments: [String], environment: [String: String] = [:],
    removing unset: [String] = [], in directory: String? = nil
) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: marinaExecutable())
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.environment = cliEnvironment(environment).filter { !unset.contains($0.key) }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

/// Waits until every thread of `pid` is in the stopped state (`T` in /proc), as after SIGSTOP.
public func waitUntilStopped(_ pid: Int32) async throws {
    func state(_ path: String) -> Substring? {
        let stat = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return stat.split(separator: ")").last?.drop(while: { $0 == " " }).prefix(1)
    }
    for _ in 0..<500 {
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        if !threads.isEmpty, threads.allSatisfy({ state("/proc/\(pid)/task/\($0)/stat") == "T" }) { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw ProcessNotStopped(pid: pid)
}

public struct ProcessNotStopped: Error, CustomStringConvertible {
    public var pid: Int32
    public var description: String { "process \(pid) did not stop within 5 s of SIGSTOP" }
}
