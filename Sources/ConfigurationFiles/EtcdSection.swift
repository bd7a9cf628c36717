import EtcdClient

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The `etcd:` section of the agent's and the controller's configurations, and of the file a
/// sandbox writes for the command line (`etcd.yaml`): one type, one decoding (unknown keys
/// refused with their path), one validation, one way to a client configuration.
public struct EtcdSection: Decodable, Sendable, Equatable {
    /// Endpoint URLs, tried in order.
    public var endpoints: [String]
    /// TLS: CA to verify etcd, and a client certificate and key.
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    /// Username/password authentication; the password is read from `password_file`.
    public var user: String?
    public var passwordFile: String?
    /// Key prefix of the source of truth. Default `/marina/v1`.
    public var root: String?

    /// The key prefix, `root` or its default.
    public var keyRoot: String { root ?? "/marina/v1" }

    public init(
        endpoints: [String], caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, user: String? = nil,
        passwordFile: String? = nil, root: String? = nil
    ) {
        self.endpoints = endpoints
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.user = user
        self.passwordFile = passwordFile
        self.root = root
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case endpoints
        case caFile = "ca_file"
        case certFile = "cert_file"
        case keyFile = "key_file"
        case user
        case passwordFile = "password_file"
        case root
    }

    public init(from decoder: Decoder) throws {
        try decoder.refuseUnknownConfigurationKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        endpoints = try c.decode([String].self, forKey: .endpoints)
        caFile = try c.decodeIfPresent(String.self, forKey: .caFile)
        certFile = try c.decodeIfPresent(String.self, forKey: .certFile)
        keyFile = try c.decodeIfPresent(String.self, forKey: .keyFile)
        user = try c.decodeIfPresent(String.self, forKey: .user)
        passwordFile = try c.decodeIfPresent(String.self, forKey: .passwordFile)
        root = try c.decodeIfPresent(String.self, forKey: .root)
    }

    /// Every problem of the section, each naming its key (`etcd.endpoints ...`).
    public func problems() -> [String] {
        var problems = [String]()
        do {
            try EtcdConfiguration(endpoints: endpoints).validate(setting: "etcd.endpoints")
        } catch {
            problems.append("\(error)")
        }
        if user != nil && passwordFile == nil {
            problems.append("etcd.user needs etcd.password_file (a password is never written in the configuration)")
        }
        if (certFile == nil) != (keyFile == nil) { problems.append("etcd.cert_file and etcd.key_file go together: give both or neither") }
        if let root, !root.hasPrefix("/") || root.hasSuffix("/") {
            problems.append("etcd.root must start with / and not end with / (got \(root), default /marina/v1)")
        }
        return problems
    }

    /// The client configuration, with the password read from `password_file` (never from the YAML).
    public func clientConfiguration() throws -> EtcdConfiguration {
        if let problem = problems().first { throw ConfigurationError(message: problem) }
        var credentials: EtcdConfiguration.Credentials?
        if let user {
            guard let passwordFile, let password = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw ConfigurationError(message: "etcd.user needs a readable etcd.password_file")
            }
            credentials = .init(username: user, password: password.trimmed())
        }
        let tls = (caFile ?? certFile ?? keyFile) == nil ? nil : EtcdConfiguration.TLS(caFile: caFile, certificateFile: certFile, keyFile: keyFile)
        return EtcdConfiguration(endpoints: endpoints, tls: tls, credentials: credentials)
    }

    /// The section as YAML lines (`etcd:` and its keys, every value quoted), for a file Marina
    /// writes: the sandbox's agent, controller and `etcd.yaml`.
    public func yamlLines() -> [String] {
        func quoted(_ text: String) -> String {
            "\"" + text.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"") + "\""
        }
        var lines = ["etcd:", "  endpoints: [" + endpoints.map(quoted).joined(separator: ", ") + "]"]
        let optional: [(String, String?)] = [
            ("ca_file", caFile), ("cert_file", certFile), ("key_file", keyFile), ("user", user),
            ("password_file", passwordFile), ("root", root),
        ]
        for case (let key, let value?) in optional { lines.append("  \(key): \(quoted(value))") }
        return lines
    }

    /// Reads a YAML file (the agent's subset) holding one `etcd:` section and nothing else, and
    /// checks it; every problem names the file.
    public static func load(file path: String) throws -> EtcdSection {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ConfigurationError(message: "cannot read \(path)") }
        let section: EtcdSection
        do {
            section = try JSONDecoder().decode(EtcdFile.self, from: try ConfigurationYAML.json(text)).etcd
        } catch let error as ConfigurationError {
            throw ConfigurationError(message: "\(path): \(error.message)")
        } catch let DecodingError.dataCorrupted(context) where context.underlyingError is ConfigurationError {
            throw ConfigurationError(message: "\(path): \(context.underlyingError!)")
        } catch let DecodingError.keyNotFound(key, context) {
            throw ConfigurationError(message: "\(path): \(configurationPath(context.codingPath + [key])) is required")
        } catch {
            throw ConfigurationError(message: "\(path): not an etcd: section (\(error))")
        }
        if let problem = section.problems().first { throw ConfigurationError(message: "\(path): \(problem)") }
        return section
    }

    private struct EtcdFile: Decodable {
        var etcd: EtcdSection

        enum CodingKeys: String, CodingKey, CaseIterable { case etcd }

        init(from decoder: Decoder) throws {
            try decoder.refuseUnknownConfigurationKeys(CodingKeys.self)
            etcd = try decoder.container(keyedBy: CodingKeys.self).decode(EtcdSection.self, forKey: .etcd)
        }
    }
}

/// How the command line reaches a sandbox's etcd when asked to (`--sandbox DIR`,
/// `MARINA_SANDBOX_DIR`): the sandbox writes `DIR/etcd.yaml` (an `etcd:` section) when it
/// starts and removes it when it stops; this reads it without the sandbox's code.
public enum SandboxEtcd {
    public static let fileName = "etcd.yaml"

    public static func path(in directory: String) -> String { directory + "/" + fileName }

    /// The `etcd:` section of the sandbox in `directory`; a `ConfigurationError` when none runs there.
    public static func section(in directory: String) throws -> EtcdSection {
        let path = path(in: directory)
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigurationError(
                message: "no sandbox runs in \(directory) (no \(fileName) there): start one with `marina sandbox up --dir \(directory)`")
        }
        return try EtcdSection.load(file: path)
    }
}
