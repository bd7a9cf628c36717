import EtcdClient

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One configuration file of the `marina` command line (`/etc/marina/marina.yaml`,
/// `~/.config/marina/marina.yaml`, the file named by `MARINA_CONFIG` or `--config`), in the
/// agent's YAML subset (`ConfigurationYAML`). Every setting is optional: a file may set only
/// what it changes of the files before it (`CLISettings`).
///
///     etcd:                 # the same keys as the agent's and the controller's `etcd:` section
///       endpoints: ["https://etcd1:2379"]
///       ca_file: /etc/marina/etcd-ca.pem
///       cert_file: /etc/marina/etcd-client.pem
///       key_file: /etc/marina/etcd-client.key
///       user: marina                          # with password_file, never a password
///       password_file: /etc/marina/etcd-password
///       root: /marina/v1
///     author: alice@example.org
///     output: text                            # or json
///     sandbox_dir: /home/alice/marina-sandbox # instead of etcd.endpoints
///
/// Unknown keys, a value of the wrong type, a password written in the file and both
/// `etcd.endpoints` and `sandbox_dir` in one file are refused, each naming the file and the key.
public struct CLIConfigurationFile: Decodable, Sendable, Equatable {
    /// The `etcd:` section: `EtcdSection`'s keys, every one optional here.
    public struct Etcd: Decodable, Sendable, Equatable {
        public var endpoints: [String]?
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var user: String?
        public var passwordFile: String?
        public var root: String?

        public init(
            endpoints: [String]? = nil, caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, user: String? = nil,
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

        /// The keys of the agent's and the controller's `etcd:` section, so that one can be copied here.
        typealias CodingKeys = EtcdSection.CodingKeys

        public init(from decoder: Decoder) throws {
            try decoder.refusePassword()
            try decoder.refuseUnknownConfigurationKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            endpoints = try c.decodeIfPresent([String].self, forKey: .endpoints)
            caFile = try c.decodeIfPresent(String.self, forKey: .caFile)
            certFile = try c.decodeIfPresent(String.self, forKey: .certFile)
            keyFile = try c.decodeIfPresent(String.self, forKey: .keyFile)
            user = try c.decodeIfPresent(String.self, forKey: .user)
            passwordFile = try c.decodeIfPresent(String.self, forKey: .passwordFile)
            root = try c.decodeIfPresent(String.self, forKey: .root)
        }
    }

    public var etcd: Etcd?
    /// Who is making changes, recorded with each staged edit and commit.
    public var author: String?
    /// `text` or `json`: what every command prints.
    public var output: CLIOutputFormat?
    /// A sandbox's directory, whose `etcd.yaml` names its etcd (instead of `etcd.endpoints`).
    public var sandboxDir: String?

    public init(etcd: Etcd? = nil, author: String? = nil, output: CLIOutputFormat? = nil, sandboxDir: String? = nil) {
        self.etcd = etcd
        self.author = author
        self.output = output
        self.sandboxDir = sandboxDir
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case etcd, author, output
        case sandboxDir = "sandbox_dir"
    }

    public init(from decoder: Decoder) throws {
        try decoder.refusePassword()
        try decoder.refuseUnknownConfigurationKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        etcd = try c.decodeIfPresent(Etcd.self, forKey: .etcd)
        author = try c.decodeIfPresent(String.self, forKey: .author)
        if let text = try c.decodeIfPresent(String.self, forKey: .output) {
            guard let format = CLIOutputFormat(rawValue: text) else {
                throw ConfigurationError(message: "output must be text or json (got \(text))")
            }
            output = format
        }
        sandboxDir = try c.decodeIfPresent(String.self, forKey: .sandboxDir)
    }

    /// The file's settings; a `ConfigurationError` starting with `path` for anything wrong in it.
    public static func parse(_ text: String, path: String) throws(ConfigurationError) -> CLIConfigurationFile {
        let file: CLIConfigurationFile
        do {
            file = try JSONDecoder().decode(CLIConfigurationFile.self, from: try ConfigurationYAML.json(text))
        } catch let error as ConfigurationError {
            throw ConfigurationError(message: "\(path): \(error.message)")
        } catch let DecodingError.dataCorrupted(context) where context.underlyingError is ConfigurationError {
            throw ConfigurationError(message: "\(path): \(context.underlyingError!)")
        } catch let DecodingError.typeMismatch(type, context) {
            let key = context.codingPath.isEmpty ? "the file" : configurationPath(context.codingPath)
            throw ConfigurationError(message: "\(path): \(key) must be \(Self.expected(type))")
        } catch let DecodingError.valueNotFound(type, context) {
            throw ConfigurationError(message: "\(path): \(configurationPath(context.codingPath)) must be \(Self.expected(type))")
        } catch {
            throw ConfigurationError(message: "\(path): not a marina configuration (\(error))")
        }
        if let problem = file.problems().first { throw ConfigurationError(message: "\(path): \(problem)") }
        return file
    }

    /// What a setting of this file cannot be, each naming its key; checked whether or not a
    /// later layer overrides the setting, so that a wrong file is found before it is needed.
    public func problems() -> [String] {
        var problems = [String]()
        if let endpoints = etcd?.endpoints {
            do {
                try EtcdConfiguration(endpoints: endpoints).validate(setting: "etcd.endpoints")
            } catch {
                problems.append("\(error)")
            }
        }
        let texts: [(CLISettingName, String?)] = [
            (.caFile, etcd?.caFile), (.certFile, etcd?.certFile), (.keyFile, etcd?.keyFile), (.user, etcd?.user),
            (.passwordFile, etcd?.passwordFile), (.root, etcd?.root), (.author, author), (.sandboxDir, sandboxDir),
        ]
        for case (let setting, let value?) in texts {
            if let problem = setting.problem(value, as: setting.fileKey) { problems.append(problem) }
        }
        if etcd?.endpoints != nil && sandboxDir != nil {
            problems.append("etcd.endpoints and sandbox_dir name two etcds: give one")
        }
        return problems
    }

    private static func expected(_ type: Any.Type) -> String {
        if type == [String].self || type == [Any].self { return "a list of strings, as in [\"https://etcd1:2379\"]" }
        if type == String.self { return "a string (quote it if it looks like a number or true/false)" }
        return "a mapping of settings (key: value)"
    }
}

/// What the command line prints.
public enum CLIOutputFormat: String, Sendable, Equatable, CaseIterable, Decodable {
    case text, json
}

extension Decoder {
    /// A `password:` key, refused by name: a password is never written in a configuration file.
    fileprivate func refusePassword() throws {
        let keys = try container(keyedBy: CLIConfigurationFile.AnyKey.self).allKeys
        if let key = keys.first(where: { $0.stringValue == "password" }) {
            throw ConfigurationError(
                message:
                    "\(configurationPath(codingPath + [key])): a password is never written in a configuration file: write it alone in a file only marina's user can read and name that file in etcd.password_file (or set MARINA_ETCD_PASSWORD)"
            )
        }
    }
}

extension CLIConfigurationFile {
    fileprivate struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
