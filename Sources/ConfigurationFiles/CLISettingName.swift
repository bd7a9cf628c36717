/// One setting of the `marina` command line, with how each layer spells it: its key in a
/// configuration file, its environment variable and its flag.
public enum CLISettingName: String, Sendable, CaseIterable, Hashable {
    case endpoints, caFile, certFile, keyFile, user, passwordFile, root, author, output, sandboxDir

    /// The key in a configuration file (the `etcd:` keys are those of the agent's and the controller's).
    public var fileKey: String {
        switch self {
        case .endpoints: "etcd.endpoints"
        case .caFile: "etcd.ca_file"
        case .certFile: "etcd.cert_file"
        case .keyFile: "etcd.key_file"
        case .user: "etcd.user"
        case .passwordFile: "etcd.password_file"
        case .root: "etcd.root"
        case .author: "author"
        case .output: "output"
        case .sandboxDir: "sandbox_dir"
        }
    }

    public var environmentVariable: String {
        switch self {
        case .endpoints: "MARINA_ETCD"
        case .caFile: "MARINA_ETCD_CA"
        case .certFile: "MARINA_ETCD_CERT"
        case .keyFile: "MARINA_ETCD_KEY"
        case .user: "MARINA_ETCD_USER"
        case .passwordFile: "MARINA_ETCD_PASSWORD_FILE"
        case .root: "MARINA_ROOT"
        case .author: "MARINA_AUTHOR"
        case .output: "MARINA_OUTPUT"
        case .sandboxDir: "MARINA_SANDBOX_DIR"
        }
    }

    /// The flag (`--json` sets the output to json; there is no flag for text).
    public var flag: String {
        switch self {
        case .endpoints: "--etcd"
        case .caFile: "--etcd-ca"
        case .certFile: "--etcd-cert"
        case .keyFile: "--etcd-key"
        case .user: "--etcd-user"
        case .passwordFile: "--etcd-password-file"
        case .root: "--root"
        case .author: "--author"
        case .output: "--json"
        case .sandboxDir: "--sandbox"
        }
    }

    /// Whether the setting belongs to the `etcd:` section: taken from a sandbox's `etcd.yaml`
    /// when a sandbox is used, never from a layer below the one that named the sandbox.
    public var isEtcd: Bool {
        switch self {
        case .endpoints, .caFile, .certFile, .keyFile, .user, .passwordFile, .root: true
        case .author, .output, .sandboxDir: false
        }
    }

    /// What is wrong with a text `value` of this setting, spelled `name` where it was given
    /// (`etcd.root`, `MARINA_ROOT`, `--root`); nil when it can be used. The endpoints and the
    /// output have checks of their own.
    public func problem(_ value: String, as name: String) -> String? {
        if value.isEmpty { return "\(name) is empty: remove it or give a value" }
        if value.contains(where: \.isNewline) { return "\(name) must be one line" }
        if self == .root, !value.hasPrefix("/") || value.hasSuffix("/") {
            return "\(name) must start with / and not end with / (got \(value), default /marina/v1)"
        }
        if Self.isNonFiniteNumber(value) { return "\(name) is a number that is not finite (\(value)), not a name or a path" }
        return nil
    }

    /// `.nan`, `.inf`, `-.Inf`, `1e400`: what YAML reads as a number that is not finite.
    static func isNonFiniteNumber(_ text: String) -> Bool {
        let lowered = text.lowercased()
        if [".nan", ".inf", "+.inf", "-.inf"].contains(lowered) { return true }
        let unsigned = lowered.hasPrefix("-") || lowered.hasPrefix("+") ? lowered.dropFirst() : Substring(lowered)
        let digits = unsigned.hasPrefix(".") ? unsigned.dropFirst() : unsigned
        guard let first = digits.first, first.isASCII, first.isNumber else { return false }
        return Double(lowered).map { !$0.isFinite } ?? false
    }
}
