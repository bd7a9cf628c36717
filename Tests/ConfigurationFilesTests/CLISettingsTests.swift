import ConfigurationFiles
import Foundation
import Testing

/// The command line's configuration, resolved from texts, an environment and flags: no file
/// is read, no etcd is reached.
@Suite("The command line's configuration layers")
struct CLISettingsTests {
    static let systemPath = "/etc/marina/marina.yaml"
    static let userPath = "/home/alice/.config/marina/marina.yaml"
    static let namedPath = "/srv/site.yaml"

    static let system = """
        etcd:
          endpoints: ["https://system:2379"]
          ca_file: /system/ca.pem
          cert_file: /system/client.pem
          key_file: /system/client.key
          root: /system
        author: system-author
        output: json
        """
    static let user = """
        etcd:
          ca_file: /user/ca.pem
          root: /user
        author: user-author
        """
    static let named = "etcd:\n  root: /named\n"

    func layers(system: String? = Self.system, user: String? = Self.user, named: String? = nil) -> [CLIConfigurationLayer] {
        var files = [
            CLIConfigurationLayer(kind: .system, path: Self.systemPath, text: system),
            CLIConfigurationLayer(kind: .user, path: Self.userPath, text: user),
        ]
        if let named { files.append(CLIConfigurationLayer(kind: .named(by: "MARINA_CONFIG"), path: Self.namedPath, text: named)) }
        return files
    }

    func resolve(
        _ files: [CLIConfigurationLayer], environment: [String: String] = [:], flags: CLIFlags = CLIFlags(),
        sandboxes: [String: EtcdSection] = [:]
    ) throws(ConfigurationError) -> CLISettings {
        try CLISettings.resolve(files: files, environment: environment, flags: flags) { (directory) throws(ConfigurationError) in
            guard let section = sandboxes[directory] else { throw ConfigurationError(message: "no sandbox runs in \(directory)") }
            return section
        }
    }

    @Test("system file < user file < MARINA_CONFIG file < environment < flags, one setting at a time, each naming where it came from")
    func precedence() throws {
        let system = CLISettingSource.file(.system, path: Self.systemPath)
        let user = CLISettingSource.file(.user, path: Self.userPath)

        let onlySystem = try resolve(layers(user: nil))
        #expect(onlySystem.endpoints == CLISetting(value: ["https://system:2379"], source: system, name: "etcd.endpoints"))
        #expect(onlySystem.caFile == CLISetting(value: "/system/ca.pem", source: system, name: "etcd.ca_file"))
        #expect(onlySystem.root.value == "/system" && onlySystem.author?.value == "system-author" && onlySystem.output.value == .json)
        #expect(onlySystem.files.map(\.present) == [true, false])

        let withUser = try resolve(layers())
        #expect(withUser.caFile == CLISetting(value: "/user/ca.pem", source: user, name: "etcd.ca_file"))
        #expect(withUser.certFile == CLISetting(value: "/system/client.pem", source: system, name: "etcd.cert_file"))
        #expect(withUser.root == CLISetting(value: "/user", source: user, name: "etcd.root"))
        #expect(withUser.author?.value == "user-author" && withUser.output.source == system)
        #expect(withUser.endpoints.source == system)

        let withNamed = try resolve(layers(named: Self.named))
        #expect(withNamed.root == CLISetting(value: "/named", source: .file(.named(by: "MARINA_CONFIG"), path: Self.namedPath), name: "etcd.root"))
        #expect(withNamed.root.origin == "etcd.root in /srv/site.yaml")
        #expect(withNamed.caFile?.source == user && withNamed.author?.source == user)

        let environment = [
            "MARINA_ROOT": "/env", "MARINA_AUTHOR": "env-author", "MARINA_OUTPUT": "text", "MARINA_ETCD": "https://env:2379",
            "MARINA_ETCD_KEY": "/env/client.key", "MARINA_ETCD_CERT": "/env/client.pem",
        ]
        let withEnvironment = try resolve(layers(named: Self.named), environment: environment)
        #expect(withEnvironment.root == CLISetting(value: "/env", source: .environment, name: "MARINA_ROOT"))
        #expect(withEnvironment.endpoints == CLISetting(value: ["https://env:2379"], source: .environment, name: "MARINA_ETCD"))
        #expect(withEnvironment.output == CLISetting(value: .text, source: .environment, name: "MARINA_OUTPUT"))
        #expect(withEnvironment.author?.value == "env-author" && withEnvironment.keyFile?.value == "/env/client.key")
        #expect(withEnvironment.caFile?.source == user)

        let flags = CLIFlags(endpoints: "https://flag:2379", caFile: "/flag/ca.pem", root: "/flag", json: true)
        let withFlags = try resolve(layers(named: Self.named), environment: environment, flags: flags)
        #expect(withFlags.root == CLISetting(value: "/flag", source: .flag, name: "--root"))
        #expect(withFlags.caFile == CLISetting(value: "/flag/ca.pem", source: .flag, name: "--etcd-ca"))
        #expect(withFlags.endpoints.value == ["https://flag:2379"] && withFlags.endpoints.origin == "--etcd")
        #expect(withFlags.output == CLISetting(value: .json, source: .flag, name: "--json"))
        #expect(withFlags.author?.source == .environment && withFlags.certFile?.source == .environment)
    }

    @Test("nothing set: the root is /marina/v1, the output text, no author (login@host), each from the default")
    func defaults() throws {
        let settings = try resolve([], environment: ["MARINA_ETCD": "http://127.0.0.1:2379"])
        #expect(settings.root == CLISetting(value: "/marina/v1", source: .builtIn, name: "default"))
        #expect(settings.output.value == .text && settings.output.source == .builtIn)
        #expect(settings.author == nil && settings.caFile == nil && settings.user == nil && settings.password == nil)
    }

    @Test("the files: /etc, then $XDG_CONFIG_HOME or ~/.config, then --config before MARINA_CONFIG")
    func files() throws {
        let home = try CLISettings.files(environment: ["HOME": "/home/a"], configFlag: nil)
        #expect(home.map(\.path) == ["/etc/marina/marina.yaml", "/home/a/.config/marina/marina.yaml"])
        let xdg = try CLISettings.files(environment: ["HOME": "/home/a", "XDG_CONFIG_HOME": "/x", "MARINA_CONFIG": "/m.yaml"], configFlag: nil)
        #expect(xdg.map(\.path) == ["/etc/marina/marina.yaml", "/x/marina/marina.yaml", "/m.yaml"])
        #expect(xdg.map(\.kind) == [.system, .user, .named(by: "MARINA_CONFIG")])
        // A relative XDG_CONFIG_HOME is ignored, as the XDG specification says.
        let relative = try CLISettings.files(
            environment: ["HOME": "/home/a", "XDG_CONFIG_HOME": "cfg"], configFlag: "/f.yaml", systemPath: "/t/s.yaml")
        #expect(relative.map(\.path) == ["/t/s.yaml", "/home/a/.config/marina/marina.yaml", "/f.yaml"])
        #expect(relative.last?.kind == .named(by: "--config"))
        #expect(try CLISettings.files(environment: [:], configFlag: nil).map(\.path) == ["/etc/marina/marina.yaml"])
        #expect(throws: ConfigurationError(message: "MARINA_CONFIG is empty: name a configuration file")) {
            try CLISettings.files(environment: ["MARINA_CONFIG": ""], configFlag: nil)
        }
    }

    @Test(
        "a file that cannot be used is refused naming the file and the key, even when every setting comes from flags",
        arguments: [
            (
                "etcd:\n  endpoints: [\"https://x:2379\"]\n  password: hunter2\n",
                "\(systemPath): etcd.password: a password is never written in a configuration file: write it alone in a file only marina's user can read and name that file in etcd.password_file (or set MARINA_ETCD_PASSWORD)"
            ),
            (
                "password: hunter2\n",
                "\(systemPath): password: a password is never written in a configuration file: write it alone in a file only marina's user can read and name that file in etcd.password_file (or set MARINA_ETCD_PASSWORD)"
            ),
            (
                "etcd:\n  ca: /ca.pem\n",
                "\(systemPath): etcd.ca: unknown key (known: ca_file, cert_file, endpoints, key_file, password_file, root, user)"
            ),
            ("colour: blue\n", "\(systemPath): colour: unknown key (known: author, etcd, output, sandbox_dir)"),
            ("author: 12\n", "\(systemPath): author must be a string (quote it if it looks like a number or true/false)"),
            ("etcd:\n  endpoints: https://x:2379\n", "\(systemPath): etcd.endpoints must be a list of strings, as in [\"https://etcd1:2379\"]"),
            ("etcd: [a, b]\n", "\(systemPath): etcd must be a mapping of settings (key: value)"),
            ("- a\n", "\(systemPath): the file must be a mapping of settings (key: value)"),
            ("author: .inf\n", "\(systemPath): author is a number that is not finite (.inf), not a name or a path"),
            ("etcd:\n  user: 1e400\n", "\(systemPath): etcd.user is a number that is not finite (1e400), not a name or a path"),
            ("output: yaml\n", "\(systemPath): output must be text or json (got yaml)"),
            ("etcd:\n  root: marina/\n", "\(systemPath): etcd.root must start with / and not end with / (got marina/, default /marina/v1)"),
            ("etcd:\n  endpoints: []\n", "\(systemPath): etcd.endpoints must list at least one URL (such as http://127.0.0.1:2379)"),
            ("etcd:\n  ca_file: \"\"\n", "\(systemPath): etcd.ca_file is empty: remove it or give a value"),
            (
                "etcd:\n  endpoints: [\"http://x:1\"]\nsandbox_dir: /sb\n",
                "\(systemPath): etcd.endpoints and sandbox_dir name two etcds: give one"
            ),
            ("etcd:\n\troot: /x\n", "\(systemPath): line 2: tabs cannot indent YAML"),
            ("etcd:\n  root: /x\n   user: y\n", "\(systemPath): line 3: unexpected indentation"),
        ])
    func refusedFile(text: String, message: String) {
        let flags = CLIFlags(endpoints: "http://127.0.0.1:2379", root: "/flag", author: "flag")
        #expect(throws: ConfigurationError(message: message)) {
            try resolve(layers(system: text, user: nil), flags: flags)
        }
    }

    @Test("a file named by MARINA_CONFIG or --config must exist; the default files may be absent")
    func namedFileMissing() throws {
        let missing = [CLIConfigurationLayer(kind: .named(by: "--config"), path: "/nowhere.yaml", text: nil)]
        #expect(throws: ConfigurationError(message: "--config names /nowhere.yaml, which does not exist")) {
            try resolve(missing, flags: CLIFlags(endpoints: "http://127.0.0.1:2379"))
        }
        let absent = try resolve(layers(system: nil, user: nil), flags: CLIFlags(endpoints: "http://127.0.0.1:2379"))
        #expect(absent.files.map(\.present) == [false, false])
        // An empty file is a valid file that sets nothing.
        #expect(try resolve(layers(system: "", user: "# nothing\n"), flags: CLIFlags(endpoints: "http://h:1")).root.source == .builtIn)
    }

    @Test("no etcd anywhere: one message naming the flags, the variables and the files, and no sandbox is looked for")
    func noEtcd() {
        let message =
            "no etcd given: pass --etcd URL or set MARINA_ETCD (for a sandbox: --sandbox DIR or MARINA_SANDBOX_DIR), "
            + "or set etcd.endpoints in \(Self.systemPath) or \(Self.userPath) or a file named by MARINA_CONFIG or --config"
        #expect(throws: ConfigurationError(message: message)) {
            try resolve(layers(system: "author: a\n", user: nil), environment: ["MARINA_ROOT": "/r"])
        }
    }

    @Test("a sandbox takes the etcd settings of its etcd.yaml; only layers from the one naming it override them")
    func sandbox() throws {
        let section = EtcdSection(endpoints: ["https://127.0.0.1:2379"], caFile: "/sb/ca.pem", certFile: "/sb/c.pem", keyFile: "/sb/k.pem")
        let sandboxes = ["/sb": section]
        let sandboxSource = CLISettingSource.sandbox(path: "/sb/etcd.yaml")

        // --sandbox beats a file's etcd; the file's CA and root do not reach the sandbox; its author does.
        let byFlag = try resolve(layers(), flags: CLIFlags(sandboxDir: "/sb"), sandboxes: sandboxes)
        #expect(byFlag.endpoints == CLISetting(value: ["https://127.0.0.1:2379"], source: sandboxSource, name: "etcd.endpoints"))
        #expect(byFlag.caFile?.value == "/sb/ca.pem" && byFlag.caFile?.source == sandboxSource)
        #expect(byFlag.root.value == "/marina/v1" && byFlag.root.source == .builtIn)
        #expect(byFlag.sandboxDir == CLISetting(value: "/sb", source: .flag, name: "--sandbox"))
        #expect(byFlag.author?.value == "user-author")

        // A flag next to --sandbox overrides one setting of the sandbox's; the environment (below) does not.
        let overridden = try resolve(
            layers(), environment: ["MARINA_ETCD_CA": "/env/ca.pem"], flags: CLIFlags(sandboxDir: "/sb", caFile: "/flag/ca.pem", root: "/r"),
            sandboxes: sandboxes)
        #expect(overridden.caFile?.value == "/flag/ca.pem" && overridden.certFile?.value == "/sb/c.pem" && overridden.root.value == "/r")
        let belowIgnored = try resolve(
            layers(), environment: ["MARINA_ETCD_CA": "/env/ca.pem"], flags: CLIFlags(sandboxDir: "/sb"), sandboxes: sandboxes)
        #expect(belowIgnored.caFile?.value == "/sb/ca.pem")

        // The user's file naming a sandbox beats the system file's endpoints.
        let byUserFile = try resolve(layers(user: "sandbox_dir: /sb\n"), sandboxes: sandboxes)
        #expect(byUserFile.sandboxDir?.origin == "sandbox_dir in \(Self.userPath)" && byUserFile.endpoints.source == sandboxSource)

        // In the environment an endpoint goes before a sandbox, as before; a flag's endpoints beat an environment's sandbox.
        let both = ["MARINA_ETCD": "http://e:1", "MARINA_SANDBOX_DIR": "/sb"]
        #expect(try resolve([], environment: both, sandboxes: sandboxes).sandboxDir == nil)
        #expect(
            try resolve([], environment: ["MARINA_SANDBOX_DIR": "/sb"], flags: CLIFlags(endpoints: "http://f:1")).endpoints.value == ["http://f:1"])

        #expect(throws: ConfigurationError(message: "--etcd and --sandbox name two etcds: give one")) {
            try resolve([], flags: CLIFlags(endpoints: "http://x:1", sandboxDir: "/sb"), sandboxes: sandboxes)
        }
        #expect(throws: ConfigurationError(message: "MARINA_SANDBOX_DIR: no sandbox runs in /none")) {
            try resolve(layers(), environment: ["MARINA_SANDBOX_DIR": "/none"])
        }
    }

    @Test("client certificate and key go together; a user needs a password file or MARINA_ETCD_PASSWORD, the highest layer wins")
    func credentials() throws {
        let endpoint = CLIFlags(endpoints: "https://e:1")
        #expect(
            throws: ConfigurationError(
                message:
                    "--etcd-cert names a client certificate but no client key is given (etcd.key_file, MARINA_ETCD_KEY or --etcd-key): give both or neither"
            )
        ) {
            try resolve([], flags: CLIFlags(endpoints: "https://e:1", certFile: "/c.pem"))
        }
        #expect(
            throws: ConfigurationError(
                message:
                    "MARINA_ETCD_USER names etcd user dba but no password is given: set etcd.password_file, MARINA_ETCD_PASSWORD_FILE, MARINA_ETCD_PASSWORD or --etcd-password-file"
            )
        ) {
            try resolve([], environment: ["MARINA_ETCD_USER": "dba"], flags: endpoint)
        }
        let file = layers(system: "etcd:\n  user: dba\n  password_file: /etc/marina/pw\n", user: nil)
        let fromFile = try resolve(file, flags: endpoint)
        #expect(
            fromFile.password == CLISetting(value: .file("/etc/marina/pw"), source: .file(.system, path: Self.systemPath), name: "etcd.password_file")
        )
        let fromEnvironment = try resolve(file, environment: ["MARINA_ETCD_PASSWORD": "secret"], flags: endpoint)
        #expect(fromEnvironment.password == CLISetting(value: .environment, source: .environment, name: "MARINA_ETCD_PASSWORD"))
        let fromFlag = try resolve(
            file, environment: ["MARINA_ETCD_PASSWORD": "secret"], flags: CLIFlags(endpoints: "https://e:1", passwordFile: "/p"))
        #expect(fromFlag.password?.value == .file("/p") && fromFlag.user?.value == "dba")
        #expect(throws: ConfigurationError(message: "MARINA_ETCD_PASSWORD and MARINA_ETCD_PASSWORD_FILE both give the etcd password: unset one")) {
            try resolve(file, environment: ["MARINA_ETCD_PASSWORD": "s", "MARINA_ETCD_PASSWORD_FILE": "/p"], flags: endpoint)
        }
    }

    @Test(
        "a value in the environment or a flag is checked where it is given, even when overridden",
        arguments: [
            (["MARINA_ETCD": ","], CLIFlags(), "MARINA_ETCD must list at least one URL (such as http://127.0.0.1:2379)"),
            (["MARINA_OUTPUT": "yaml"], CLIFlags(endpoints: "http://h:1"), "MARINA_OUTPUT must be text or json (got yaml)"),
            (
                ["MARINA_ROOT": "/r/"], CLIFlags(endpoints: "http://h:1", root: "/ok"),
                "MARINA_ROOT must start with / and not end with / (got /r/, default /marina/v1)"
            ),
            (["MARINA_ETCD_CA": ""], CLIFlags(endpoints: "http://h:1"), "MARINA_ETCD_CA is empty: remove it or give a value"),
            ([:], CLIFlags(endpoints: "h:1"), "--etcd endpoint \"h:1\" must start with http:// or https://"),
            ([:], CLIFlags(endpoints: "http://h:1", root: "x"), "--root must start with / and not end with / (got x, default /marina/v1)"),
            ([:], CLIFlags(endpoints: "http://h:1", author: ""), "--author is empty: remove it or give a value"),
        ])
    func refusedValue(environment: [String: String], flags: CLIFlags, message: String) {
        #expect(throws: ConfigurationError(message: message)) { try resolve([], environment: environment, flags: flags) }
    }

    @Test("the agent's and the controller's etcd: section, copied, is a command-line configuration with the same settings")
    func sameEtcdSection() throws {
        let section = EtcdSection(
            endpoints: ["https://etcd1:2379", "https://etcd2:2379"], caFile: "/etc/marina/ca.pem", certFile: "/etc/marina/c.pem",
            keyFile: "/etc/marina/c.key", user: "marina", passwordFile: "/etc/marina/pw", root: "/marina/site")
        let file = try CLIConfigurationFile.parse(section.yamlLines().joined(separator: "\n"), path: "copied.yaml")
        #expect(
            file.etcd
                == .init(
                    endpoints: section.endpoints, caFile: section.caFile, certFile: section.certFile, keyFile: section.keyFile, user: section.user,
                    passwordFile: section.passwordFile, root: section.root))
        let controllerExample = try String(contentsOfFile: Self.repository + "/config/controller.example.yaml", encoding: .utf8)
        let etcdBlock = controllerExample.split(separator: "\n", omittingEmptySubsequences: false)
            .drop { $0 != "etcd:" }.prefix { $0 == "etcd:" || $0.hasPrefix(" ") || $0.isEmpty }
        let copied = try CLIConfigurationFile.parse(etcdBlock.joined(separator: "\n"), path: "copied.yaml")
        #expect(copied.etcd?.endpoints == ["https://etcd1001.example.org:2379", "https://etcd1002.example.org:2379"])
        #expect(copied.etcd?.certFile == "/etc/marina/controller.pem")
    }

    @Test("config/marina.example.yaml is a valid configuration that names an etcd")
    func example() throws {
        let text = try String(contentsOfFile: Self.repository + "/config/marina.example.yaml", encoding: .utf8)
        let settings = try resolve([CLIConfigurationLayer(kind: .named(by: "--config"), path: "marina.example.yaml", text: text)])
        #expect(settings.endpoints.value.count == 2 && settings.caFile != nil && settings.root.value == "/marina/v1")
        #expect(settings.output.value == .text)
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}
