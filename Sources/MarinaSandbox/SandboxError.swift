/// Why a sandbox could not be started, inspected or stopped. Each message names the problem
/// and what to do about it.
public enum SandboxError: Error, CustomStringConvertible, Equatable {
    case missingBinary(name: String, package: String)
    case directoryNotWritable(String, reason: String)
    case portInUse(Int, purpose: String)
    case noFreePorts(count: Int)
    case invalidArgument(String)
    case cannotStart(String, String)
    case notReady(what: String, log: String, detail: String)
    case setupFailed(what: String, detail: String)
    case notRunning(directory: String)
    case partlyRunning(directory: String, dead: [String])
    case corruptState(path: String, detail: String)
    /// `--hosts namespaces` needs root and these programs (each named with its Debian package).
    case namespacesUnavailable(missing: [String], packages: [String])
    /// Something on the machine already has an address or a route in the sandbox's subnet.
    case subnetInUse(String, by: String)

    public var description: String {
        switch self {
        case .missingBinary(let name, let package):
            return "\(name) is not installed: run `apt-get install \(package)` (or `make deps`)"
        case .directoryNotWritable(let directory, let reason):
            return "cannot write the sandbox directory \(directory) (\(reason)): choose another with --dir"
        case .portInUse(let port, let purpose):
            return "port \(port) (for \(purpose)) is already in use on 127.0.0.1: choose another --base-port, or omit it to pick free ports"
        case .noFreePorts(let count):
            return "found no \(count) consecutive free ports on 127.0.0.1: free some, or pass --base-port"
        case .invalidArgument(let message):
            return message
        case .cannotStart(let executable, let reason):
            return "could not start \(executable): \(reason)"
        case .notReady(let what, let log, let detail):
            return "\(what) did not become ready: \(detail) (see \(log))"
        case .setupFailed(let what, let detail):
            return "setting up \(what) failed: \(detail)"
        case .notRunning(let directory):
            return "no sandbox is running in \(directory): start one with `marina sandbox up --dir \(directory)`"
        case .partlyRunning(let directory, let dead):
            return
                "the sandbox in \(directory) is only partly running (\(dead.joined(separator: ", ")) stopped): run `marina sandbox down --dir \(directory)` then `up` again"
        case .corruptState(let path, let detail):
            return "cannot read the sandbox state \(path): \(detail); run `marina sandbox down` or remove the directory"
        case .namespacesUnavailable(let missing, let packages):
            let install = packages.isEmpty ? "" : "; install with `apt-get install \(packages.joined(separator: " "))` (or `make deps`)"
            return "--hosts namespaces needs \(missing.joined(separator: ", "))\(install)"
        case .subnetInUse(let subnet, let user):
            return
                "the sandbox subnet \(subnet) is already in use (\(user)): another sandbox, or one a killed run left (docs/sandbox.md, \"Cleaning up by hand\"), holds it; choose another --base-port"
        }
    }
}
