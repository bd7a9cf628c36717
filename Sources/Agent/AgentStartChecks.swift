import ConfigurationFiles
import MariaDBClient

#if canImport(Glibc)
    import Glibc
#endif

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The agent was started as root, and its configuration does not say `allow_root: true`.
public struct AgentRunsAsRoot: Error, Equatable, CustomStringConvertible {
    /// The configuration file, for the message.
    public var file: String

    public init(file: String) { self.file = file }

    public var description: String {
        """
        refusing to run as root: the agent needs no privilege beyond reading its configuration, its credentials files and \
        the MariaDB socket. Run it as its own user (the marina user of marina-agent.service, in the mysql group; \
        docs/deployment.md), or set allow_root: true in \(file)
        """
    }
}

extension AgentConfiguration {
    /// Throws `AgentRunsAsRoot` when the effective user is root (0) and `allow_root` is not set.
    /// A pure decision: the caller passes `geteuid()`.
    public func checkUser(effectiveUserID: UInt32, file: String) throws {
        if effectiveUserID == 0 && !allowRoot { throw AgentRunsAsRoot(file: file) }
    }

    /// `checkUser` for this process.
    public func checkProcessUser(file: String) throws {
        try checkUser(effectiveUserID: UInt32(geteuid()), file: file)
    }
}

extension AgentConfiguration.TLS {
    /// Throws a `ConfigurationError` naming the key (`tls.ca_file`, `instances[2].tls.key_file`)
    /// of the first file the agent cannot read or that holds no PEM block, so that a missing CA is
    /// one message at start-up rather than a TLS error at every probe.
    func checkFiles(_ key: String) throws {
        let files =
            [("ca_file", caFile)]
            + [("certificate_file", certificateFile), ("key_file", keyFile)].compactMap { name, value in value.map { (name, $0) } }
        for (name, path) in files {
            let descriptor = open(path, O_RDONLY)
            guard descriptor >= 0 else {
                let reason = String(cString: strerror(errno))
                throw ConfigurationError(message: "\(key).\(name): cannot read \(path) (\(reason))")
            }
            close(descriptor)
            guard let text = try? String(contentsOfFile: path, encoding: .utf8), text.contains("-----BEGIN ") else {
                throw ConfigurationError(message: "\(key).\(name): \(path) holds no PEM block (-----BEGIN ...)")
            }
        }
    }
}
