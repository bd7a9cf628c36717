import EtcdClient

/// The settings of the `marina` command line, each with where it came from, resolved from
/// five layers, each overriding single settings of the ones before it:
///
/// 1. the system file, `/etc/marina/marina.yaml`;
/// 2. the user's file, `$XDG_CONFIG_HOME/marina/marina.yaml` (else `~/.config/marina/marina.yaml`);
/// 3. the file named by `--config`, else by `MARINA_CONFIG`;
/// 4. the environment (`MARINA_ETCD`, `MARINA_ETCD_CA`, ..., `CLISettingName.environmentVariable`);
/// 5. the flags (`--etcd`, `--etcd-ca`, ..., `CLISettingName.flag`).
///
/// The first two may be absent; a file named explicitly must exist. Every value given is
/// checked, whether or not a later layer overrides it. Which etcd: the highest layer that
/// names endpoints or a sandbox decides (`--etcd` with `--sandbox` is refused; in the
/// environment `MARINA_ETCD` goes before `MARINA_SANDBOX_DIR`; a file naming both is refused).
/// A sandbox's `etcd.yaml` then gives the `etcd:` settings, and only layers from the one that
/// named the sandbox up override them: a production CA in `/etc` never reaches a sandbox.
///
/// Pure: file texts, the environment and the flags in; settings out. `StoreOptions` reads.
public struct CLISettings: Sendable, Equatable {
    /// The files consulted, in order, and whether each was there.
    public var files: [CLIConfigurationLayer.Consulted]
    public var endpoints: CLISetting<[String]>
    /// The sandbox directory whose `etcd.yaml` gave the etcd, when one did.
    public var sandboxDir: CLISetting<String>?
    public var caFile: CLISetting<String>?
    public var certFile: CLISetting<String>?
    public var keyFile: CLISetting<String>?
    public var user: CLISetting<String>?
    /// Where the password of `user` is read (never the password itself); nil without a user.
    public var password: CLISetting<CLIPassword>?
    public var root: CLISetting<String>
    /// Nil: nobody named one, and the command line uses the login and host name.
    public var author: CLISetting<String>?
    public var output: CLISetting<CLIOutputFormat>

    public static let systemPath = "/etc/marina/marina.yaml"
    public static let defaultRoot = "/marina/v1"

    /// The files to read, in order: the system file (`systemPath`, injectable for tests), the
    /// user's, and the one named by `--config` (`configFlag`) or `MARINA_CONFIG`.
    public static func files(
        environment: [String: String], configFlag: String?, systemPath: String = CLISettings.systemPath
    ) throws(ConfigurationError) -> [(kind: CLIConfigurationLayer.Kind, path: String)] {
        var files: [(kind: CLIConfigurationLayer.Kind, path: String)] = [(.system, systemPath)]
        if let home = environment["XDG_CONFIG_HOME"], home.hasPrefix("/") {
            files.append((.user, home + "/marina/marina.yaml"))
        } else if let home = environment["HOME"], !home.isEmpty {
            files.append((.user, home + "/.config/marina/marina.yaml"))
        }
        let (named, by) = configFlag.map { ($0, "--config") } ?? (environment["MARINA_CONFIG"], "MARINA_CONFIG")
        if let named {
            guard !named.isEmpty else { throw ConfigurationError(message: "\(by) is empty: name a configuration file") }
            files.append((.named(by: by), named))
        }
        return files
    }

    /// The settings of `files` (in order, `text` nil for an absent file), `environment` and
    /// `flags`; `sandbox` reads the `etcd:` section of a sandbox directory when one is used.
    public static func resolve(
        files: [CLIConfigurationLayer], environment: [String: String], flags: CLIFlags,
        sandbox: (String) throws(ConfigurationError) -> EtcdSection
    ) throws(ConfigurationError) -> CLISettings {
        var layers = [Layer]()
        for file in files {
            guard let text = file.text else {
                if case .named(let by) = file.kind { throw ConfigurationError(message: "\(by) names \(file.path), which does not exist") }
                continue
            }
            layers.append(Layer(file: try CLIConfigurationFile.parse(text, path: file.path), source: .file(file.kind, path: file.path)))
        }
        layers.append(try Layer(environment: environment))
        layers.append(try Layer(flags: flags))

        // The etcd: the highest layer naming endpoints or a sandbox.
        guard let target = layers.lastIndex(where: { $0.endpoints != nil || $0.texts[.sandboxDir] != nil }) else {
            let paths = files.filter { $0.kind == .system || $0.kind == .user }.map(\.path)
            throw ConfigurationError(
                message: "no etcd given: pass --etcd URL or set MARINA_ETCD (for a sandbox: --sandbox DIR or MARINA_SANDBOX_DIR), "
                    + "or set etcd.endpoints in \(paths.joined(separator: " or ")) or a file named by MARINA_CONFIG or --config")
        }
        var etcdLayers = layers
        var sandboxDir: CLISetting<String>?
        let endpoints: CLISetting<[String]>
        if let named = layers[target].endpoints {
            endpoints = named
        } else {
            let directory = layers[target].texts[.sandboxDir]!
            let section: EtcdSection
            do {
                section = try sandbox(directory.value)
            } catch {
                throw ConfigurationError(message: "\(directory.origin): \(error.message)")
            }
            let base = Layer(sandbox: section, path: SandboxEtcd.path(in: directory.value))
            sandboxDir = directory
            endpoints = base.endpoints!
            etcdLayers = [base] + layers[target...]
        }
        func highest(_ name: CLISettingName, in layers: [Layer]) -> CLISetting<String>? {
            layers.last { $0.texts[name] != nil }?.texts[name]
        }
        var settings = CLISettings(
            files: files.map { .init(kind: $0.kind, path: $0.path, present: $0.text != nil) },
            endpoints: endpoints, sandboxDir: sandboxDir,
            caFile: highest(.caFile, in: etcdLayers), certFile: highest(.certFile, in: etcdLayers), keyFile: highest(.keyFile, in: etcdLayers),
            user: highest(.user, in: etcdLayers), password: nil,
            root: highest(.root, in: etcdLayers) ?? CLISetting(value: defaultRoot, source: .builtIn, name: "default"),
            author: highest(.author, in: layers),
            output: layers.last { $0.output != nil }?.output ?? CLISetting(value: .text, source: .builtIn, name: "default"))

        switch (settings.certFile, settings.keyFile) {
        case (let certificate?, nil):
            throw ConfigurationError(
                message:
                    "\(certificate.origin) names a client certificate but no client key is given (etcd.key_file, MARINA_ETCD_KEY or --etcd-key): give both or neither"
            )
        case (nil, let key?):
            throw ConfigurationError(
                message:
                    "\(key.origin) names a client key but no client certificate is given (etcd.cert_file, MARINA_ETCD_CERT or --etcd-cert): give both or neither"
            )
        default: break
        }
        if let user = settings.user {
            guard let password = etcdLayers.last(where: { $0.password != nil })?.password else {
                throw ConfigurationError(
                    message: "\(user.origin) names etcd user \(user.value) but no password is given: "
                        + "set etcd.password_file, MARINA_ETCD_PASSWORD_FILE, MARINA_ETCD_PASSWORD or --etcd-password-file")
            }
            settings.password = password
        }
        return settings
    }
}

/// One setting's value and where it came from.
public struct CLISetting<Value: Sendable & Equatable>: Sendable, Equatable {
    public var value: Value
    public var source: CLISettingSource
    /// How its source spells it: `etcd.ca_file`, `MARINA_ETCD_CA`, `--etcd-ca`, `default`.
    public var name: String

    public init(value: Value, source: CLISettingSource, name: String) {
        self.value = value
        self.source = source
        self.name = name
    }

    /// Where it came from, for a person: `etcd.ca_file in /etc/marina/marina.yaml`,
    /// `MARINA_ETCD_CA`, `--etcd-ca`, `default`.
    public var origin: String {
        switch source {
        case .file(_, let path), .sandbox(let path): "\(name) in \(path)"
        case .builtIn, .environment, .flag: name
        }
    }
}

/// Which layer gave a setting.
public enum CLISettingSource: Sendable, Equatable {
    case builtIn
    case file(CLIConfigurationLayer.Kind, path: String)
    case environment
    case flag
    /// A sandbox's `etcd.yaml`, used because a layer named the sandbox.
    case sandbox(path: String)
}

/// Where the etcd password is read: a file, or `MARINA_ETCD_PASSWORD`.
public enum CLIPassword: Sendable, Equatable {
    case file(String)
    case environment
}

/// One configuration file as resolution takes it.
public struct CLIConfigurationLayer: Sendable, Equatable {
    public enum Kind: Sendable, Equatable, CustomStringConvertible {
        case system, user
        /// Named by `--config` or `MARINA_CONFIG`: it must exist.
        case named(by: String)

        public var description: String {
            switch self {
            case .system: "system file"
            case .user: "user file"
            case .named(let by): "file named by \(by)"
            }
        }
    }

    /// A file consulted, and whether it was there.
    public struct Consulted: Sendable, Equatable {
        public var kind: Kind
        public var path: String
        public var present: Bool
    }

    public var kind: Kind
    public var path: String
    /// The file's text; nil when there is no file at `path`.
    public var text: String?

    public init(kind: Kind, path: String, text: String?) {
        self.kind = kind
        self.path = path
        self.text = text
    }
}

/// The flags of the command line that take part in the layering (`StoreOptions`).
public struct CLIFlags: Sendable, Equatable {
    public var endpoints: String?
    public var sandboxDir: String?
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    public var user: String?
    public var passwordFile: String?
    public var root: String?
    public var author: String?
    public var json: Bool

    public init(
        endpoints: String? = nil, sandboxDir: String? = nil, caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil,
        user: String? = nil, passwordFile: String? = nil, root: String? = nil, author: String? = nil, json: Bool = false
    ) {
        self.endpoints = endpoints
        self.sandboxDir = sandboxDir
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.user = user
        self.passwordFile = passwordFile
        self.root = root
        self.author = author
        self.json = json
    }

    /// Whether any of them is given.
    public var isEmpty: Bool { self == CLIFlags() }
}

/// What one layer sets.
private struct Layer {
    var endpoints: CLISetting<[String]>?
    var texts = [CLISettingName: CLISetting<String>]()
    var output: CLISetting<CLIOutputFormat>?
    var password: CLISetting<CLIPassword>?

    static let textSettings: [CLISettingName] = [.caFile, .certFile, .keyFile, .user, .passwordFile, .root, .author, .sandboxDir]

    init(file: CLIConfigurationFile, source: CLISettingSource) {
        func setting<Value>(_ value: Value?, _ name: CLISettingName) -> CLISetting<Value>? {
            value.map { CLISetting(value: $0, source: source, name: name.fileKey) }
        }
        endpoints = setting(file.etcd?.endpoints, .endpoints)
        let values: [(CLISettingName, String?)] = [
            (.caFile, file.etcd?.caFile), (.certFile, file.etcd?.certFile), (.keyFile, file.etcd?.keyFile), (.user, file.etcd?.user),
            (.passwordFile, file.etcd?.passwordFile), (.root, file.etcd?.root), (.author, file.author), (.sandboxDir, file.sandboxDir),
        ]
        for case (let name, let value?) in values { texts[name] = setting(value, name) }
        output = setting(file.output, .output)
        password = texts[.passwordFile].map { CLISetting(value: .file($0.value), source: source, name: $0.name) }
    }

    init(sandbox section: EtcdSection, path: String) {
        self.init(
            file: CLIConfigurationFile(
                etcd: .init(
                    endpoints: section.endpoints, caFile: section.caFile, certFile: section.certFile, keyFile: section.keyFile, user: section.user,
                    passwordFile: section.passwordFile, root: section.root)),
            source: .sandbox(path: path))
    }

    init(environment: [String: String]) throws(ConfigurationError) {
        if let list = environment[CLISettingName.endpoints.environmentVariable] {
            endpoints = try Self.endpoints(list, name: CLISettingName.endpoints.environmentVariable, source: .environment)
        }
        for name in Self.textSettings {
            guard let value = environment[name.environmentVariable] else { continue }
            if let problem = name.problem(value, as: name.environmentVariable) { throw ConfigurationError(message: problem) }
            texts[name] = CLISetting(value: value, source: .environment, name: name.environmentVariable)
        }
        if let text = environment[CLISettingName.output.environmentVariable] {
            guard let format = CLIOutputFormat(rawValue: text) else {
                throw ConfigurationError(message: "MARINA_OUTPUT must be text or json (got \(text))")
            }
            output = CLISetting(value: format, source: .environment, name: "MARINA_OUTPUT")
        }
        let passwordFile = texts[.passwordFile]
        if environment["MARINA_ETCD_PASSWORD"] != nil {
            if passwordFile != nil {
                throw ConfigurationError(message: "MARINA_ETCD_PASSWORD and MARINA_ETCD_PASSWORD_FILE both give the etcd password: unset one")
            }
            password = CLISetting(value: .environment, source: .environment, name: "MARINA_ETCD_PASSWORD")
        } else if let passwordFile {
            password = CLISetting(value: .file(passwordFile.value), source: .environment, name: passwordFile.name)
        }
        // With MARINA_ETCD set, MARINA_SANDBOX_DIR is not looked at (an endpoint before a sandbox).
        if endpoints != nil { texts[.sandboxDir] = nil }
    }

    init(flags: CLIFlags) throws(ConfigurationError) {
        if flags.endpoints != nil && flags.sandboxDir != nil { throw ConfigurationError(message: "--etcd and --sandbox name two etcds: give one") }
        if let list = flags.endpoints { endpoints = try Self.endpoints(list, name: "--etcd", source: .flag) }
        let values: [(CLISettingName, String?)] = [
            (.caFile, flags.caFile), (.certFile, flags.certFile), (.keyFile, flags.keyFile), (.user, flags.user),
            (.passwordFile, flags.passwordFile), (.root, flags.root), (.author, flags.author), (.sandboxDir, flags.sandboxDir),
        ]
        for case (let name, let value?) in values {
            if let problem = name.problem(value, as: name.flag) { throw ConfigurationError(message: problem) }
            texts[name] = CLISetting(value: value, source: .flag, name: name.flag)
        }
        if flags.json { output = CLISetting(value: .json, source: .flag, name: "--json") }
        password = texts[.passwordFile].map { CLISetting(value: .file($0.value), source: .flag, name: $0.name) }
    }

    private static func endpoints(_ list: String, name: String, source: CLISettingSource) throws(ConfigurationError) -> CLISetting<[String]> {
        do {
            return CLISetting(value: try EtcdConfiguration.endpoints(fromList: list, setting: name), source: source, name: name)
        } catch {
            throw ConfigurationError(message: "\(error)")
        }
    }
}
