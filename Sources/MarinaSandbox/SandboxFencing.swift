/// The primary lease every sandbox agent holds and the controller waits for
/// (`docs/operations/fencing.md`): the agent's `fencing:` block, with the sandbox's fence
/// account, and the controller's `failover.primary_lease_*` to match.
public struct SandboxFencing: Codable, Sendable, Equatable {
    public var leaseTTL: Int
    public var margin: Double
    public var renewInterval: Double
    public var requestTimeout: Double
    public var fenceTimeout: Double

    public init(leaseTTL: Int, margin: Double, renewInterval: Double, requestTimeout: Double, fenceTimeout: Double) {
        self.leaseTTL = leaseTTL
        self.margin = margin
        self.renewInterval = renewInterval
        self.requestTimeout = requestTimeout
        self.fenceTimeout = fenceTimeout
    }

    /// The sandbox's: a 6 s lease fenced 2 s before it can end, so that a loaded machine (a test
    /// suite on two cores) does not fence a healthy primary over one slow keep-alive.
    public static let standard = SandboxFencing(leaseTTL: 6, margin: 2, renewInterval: 0.5, requestTimeout: 1, fenceTimeout: 1)

    /// The partition tests' and benchmark's: a 5 s lease fenced 2.5 s before it can end (the
    /// fence may wait 1 s for sessions blocked in a semi-synchronous commit, then kill them).
    public static let fast = SandboxFencing(leaseTTL: 5, margin: 2.5, renewInterval: 0.5, requestTimeout: 0.5, fenceTimeout: 2)

    /// The agent's `fencing:` block, fencing as the account of `credentialsFile`.
    public func agentLines(credentialsFile: String) -> [String] {
        [
            "fencing:", "  lease_ttl: \(leaseTTL)", "  margin: \(margin)", "  renew_interval: \(renewInterval)",
            "  request_timeout: \(requestTimeout)", "  fence_timeout: \(fenceTimeout)", "  credentials_file: \(credentialsFile)",
        ]
    }

    /// The lines of the controller's `failover:` block that wait for this lease.
    public var controllerLines: [String] { ["  primary_lease_ttl: \(leaseTTL)", "  primary_lease_margin: \(margin)"] }
}
