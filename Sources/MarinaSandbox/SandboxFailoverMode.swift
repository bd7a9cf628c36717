import Foundation

/// Whether the sandbox's controller fails a dead primary over on its own (`sandbox up --failover`).
public enum SandboxFailoverMode: String, Codable, Sendable, CaseIterable {
    /// The controller's default: it fails over no section on its own.
    case manual
    /// Every section (`failover.automatic: ["*"]`), a primary counted dead after
    /// `masterFailureTimeout` seconds without anything received by its replicas.
    case automatic

    /// The `master_failure_timeout` an automatic sandbox gives its controller: above the replicas'
    /// `MASTER_HEARTBEAT_PERIOD` (1 s), so an idle primary does not look dead.
    public static let masterFailureTimeout = 2

    /// Reads `--failover`'s value, or one error naming the flag and the values it accepts.
    public init(flag value: String) throws {
        guard let mode = Self(rawValue: value) else {
            throw SandboxError.invalidArgument(
                "--failover must be \(Self.allCases.map(\.rawValue).joined(separator: " or ")) (got \(value))")
        }
        self = mode
    }

    /// This mode's lines of the `failover:` block of `controller.yaml`: none for manual (the
    /// controller's default).
    public var controllerLines: [String] {
        switch self {
        case .manual: return []
        case .automatic: return ["  automatic: [\"*\"]", "  master_failure_timeout: \(Self.masterFailureTimeout)"]
        }
    }
}

/// What `marina sandbox kill --signal` sends to one `mariadbd`.
public enum SandboxSignal: String, Sendable, CaseIterable {
    /// SIGKILL: a crash. The data directory stays; `restart` starts it again.
    case kill = "KILL"
    /// SIGSTOP: the server freezes, holding its connections open and answering nothing, as a
    /// host that died without closing its sockets.
    case stop = "STOP"
    /// SIGCONT: a frozen server runs again.
    case cont = "CONT"

    /// Reads `--signal`'s value (`KILL`, `STOP`, `CONT`; any case, `SIG` prefix allowed), or one
    /// error naming the flag and the values it accepts.
    public init(flag value: String) throws {
        var name = value.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        guard let signal = Self(rawValue: name) else {
            throw SandboxError.invalidArgument("--signal must be KILL, STOP or CONT (got \(value))")
        }
        self = signal
    }

    var number: Int32 {
        switch self {
        case .kill: return SIGKILL
        case .stop: return SIGSTOP
        case .cont: return SIGCONT
        }
    }
}
