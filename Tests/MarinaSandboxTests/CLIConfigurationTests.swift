import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Testing
import TopologyStore

/// The `marina` binary configured by files, the environment and flags, against a real TLS
/// sandbox etcd. Every run has its own home, XDG directory and system file
/// (`MARINA_SYSTEM_CONFIG`), so that the host's configuration never takes part.
@Suite("marina's configuration file, environment and flags")
struct CLIConfigurationTests {
    static let variables = [
        "MARINA_ETCD", "MARINA_ETCD_CA", "MARINA_ETCD_CERT", "MARINA_ETCD_KEY", "MARINA_ETCD_USER", "MARINA_ETCD_PASSWORD",
        "MARINA_ETCD_PASSWORD_FILE", "MARINA_ROOT", "MARINA_AUTHOR", "MARINA_OUTPUT", "MARINA_SANDBOX_DIR", "MARINA_CONFIG",
    ]

    /// A home of its own: `user` is `$XDG_CONFIG_HOME/marina/marina.yaml`, `system` stands for
    /// `/etc/marina/marina.yaml`.
    struct Home {
        let directory: String
        var user: String { directory + "/xdg/marina/marina.yaml" }
        var system: String { directory + "/etc/marina.yaml" }

        init(_ name: String) throws {
            directory = TestServers.root + "/cli-config-\(name)-\(UInt32.random(in: 0...UInt32.max))"
            try FileManager.default.createDirectory(atPath: directory + "/xdg/marina", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: directory + "/etc", withIntermediateDirectories: true)
        }

        func write(_ text: String, to path: String) throws {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }

        /// Runs `marina` with only `environment` of the MARINA_ variables set.
        func marina(_ arguments: [String], _ environment: [String: String] = [:], in directory: String? = nil) throws -> (
            status: Int32, stdout: String, stderr: String
        ) {
            let isolated = ["HOME": self.directory + "/home", "XDG_CONFIG_HOME": self.directory + "/xdg", "MARINA_SYSTEM_CONFIG": system]
            return try runMarina(
                arguments, environment: isolated.merging(environment) { $1 },
                removing: CLIConfigurationTests.variables.filter { environment[$0] == nil }, in: directory)
        }
    }

    func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    /// The `etcd.yaml` a TLS sandbox writes: an `etcd:` section, copied as is into a configuration.
    func etcdBlock(_ sandbox: SandboxState) throws -> String {
        try String(contentsOfFile: sandbox.directory + "/etcd.yaml", encoding: .utf8)
    }

    @Test(
        "the sandbox's etcd block in ~/.config/marina/marina.yaml is enough; the environment overrides the file, a flag the environment, --sandbox a file's etcd"
    )
    func layers() async throws {
        let sandbox = try await TestServers.privateSandbox("cli-config", sections: 0, tls: true)
        defer { TestServers.stop(sandbox) }
        let home = try Home("layers")
        let block = try etcdBlock(sandbox)
        #expect(block.contains("ca_file:") && sandbox.etcd.url.hasPrefix("https://"))

        // A file alone, no flag, no variable. (The sandbox stages datacenters of its own.)
        try home.write(block + "author: \"file-author\"\n", to: home.user)
        let before = try home.marina(["datacenter", "list"])
        #expect(before.status == 0, "\(before.stderr)")
        let withEqiad = lines(before.stdout + "eqiad\n").sorted()
        let add = try home.marina(["datacenter", "add", "eqiad"])
        #expect(add.status == 0, "\(add.stderr)")
        let staged = try #require(try await sandbox.etcdClient.value(StoreKeys().staged))
        #expect(String(decoding: staged.value, as: UTF8.self).contains("\"author\":\"file-author\""))
        #expect(lines(try home.marina(["datacenter", "list"]).stdout) == withEqiad)
        let json = try home.marina(["datacenter", "list"], ["MARINA_OUTPUT": "json"]).stdout
        #expect(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String] == withEqiad, "\(json)")

        // The file names an etcd nobody listens on and another root; the environment overrides both, keeping the file's TLS files.
        let unreachable = block.replacingOccurrences(of: sandbox.etcd.url, with: "https://127.0.0.1:9") + "  root: /marina/elsewhere\n"
        try home.write(unreachable, to: home.user)
        #expect(try home.marina(["datacenter", "list"]).status == 1)
        let byEnvironment = try home.marina(["datacenter", "list"], ["MARINA_ETCD": sandbox.etcd.url, "MARINA_ROOT": "/marina/v1"])
        #expect(byEnvironment.status == 0 && lines(byEnvironment.stdout) == withEqiad, "\(byEnvironment.stderr)")

        // A flag overrides the environment.
        let wrong = ["MARINA_ETCD": "https://127.0.0.1:9", "MARINA_ROOT": "/marina/elsewhere"]
        let byFlag = try home.marina(["datacenter", "list", "--etcd", sandbox.etcd.url, "--root", "/marina/v1"], wrong)
        #expect(byFlag.status == 0 && lines(byFlag.stdout) == withEqiad, "\(byFlag.stderr)")
        // --author beats the file's author.
        #expect(
            try home.marina(
                ["datacenter", "add", "codfw", "--author", "flag-author"], ["MARINA_ETCD": sandbox.etcd.url, "MARINA_ROOT": "/marina/v1"]
            ).status == 0)
        let flagged = try #require(try await sandbox.etcdClient.value(StoreKeys().staged))
        #expect(String(decoding: flagged.value, as: UTF8.self).contains("\"author\":\"flag-author\""))

        // --sandbox beats the file's etcd, with the sandbox's own TLS files and root.
        let bySandbox = try home.marina(["datacenter", "list", "--sandbox", sandbox.directory])
        #expect(bySandbox.status == 0 && lines(bySandbox.stdout) == (withEqiad + ["codfw"]).sorted(), "\(bySandbox.stderr)")
        let both = try home.marina(["datacenter", "list", "--sandbox", sandbox.directory, "--etcd", sandbox.etcd.url])
        #expect(both.status == 1 && both.stderr == "marina: --etcd and --sandbox name two etcds: give one\n")
    }

    @Test("--root reaches another site in the same etcd: empty at first, written under its own prefix only, for every command")
    func otherRoot() async throws {
        let sandbox = try await TestServers.privateSandbox("cli-config-root", sections: 0, tls: true)
        defer { TestServers.stop(sandbox) }
        let home = try Home("root")
        try home.write(try etcdBlock(sandbox), to: home.user)
        let withEqiad = lines(try home.marina(["datacenter", "list"]).stdout + "eqiad\n").sorted()
        #expect(try home.marina(["datacenter", "add", "eqiad"]).status == 0)

        let other = ["--root", "/marina/other"]
        let empty = try home.marina(["datacenter", "list"] + other)
        #expect(empty.status == 0 && empty.stdout.isEmpty, "\(empty.stdout)\(empty.stderr)")
        #expect(try home.marina(["status"] + other).stdout.contains("Nothing is committed yet"))
        #expect(try home.marina(["datacenter", "add", "codfw"] + other).status == 0)
        #expect(try home.marina(["datacenter", "list"] + other).stdout == "codfw\n")
        #expect(lines(try home.marina(["datacenter", "list"]).stdout) == withEqiad)
        #expect(try await sandbox.etcdClient.value("/marina/other/datacenters/codfw") != nil)
        #expect(try await sandbox.etcdClient.value("/marina/v1/datacenters/codfw") == nil)

        // The root of a configuration file, of the environment, and for the commands that read operations.
        try home.write(try etcdBlock(sandbox) + "  root: /marina/other\n", to: home.user)
        #expect(try home.marina(["datacenter", "list"]).stdout == "codfw\n")
        #expect(lines(try home.marina(["datacenter", "list"], ["MARINA_ROOT": "/marina/v1"]).stdout) == withEqiad)
        let operations = try home.marina(["operation", "list", "--json"])
        #expect(operations.status == 0, "\(operations.stderr)")
        let ack = try home.marina(["failover", "ack", "s1"])
        #expect(ack.status == 0 && ack.stdout.contains("not blocked"), "\(ack.stderr)")
        let badRoot = try home.marina(["datacenter", "list", "--root", "marina"])
        #expect(badRoot.status == 1 && badRoot.stderr == "marina: --root must start with / and not end with / (got marina, default /marina/v1)\n")
    }

    @Test("no etcd anywhere: exit 1 naming every way to configure one, and no sandbox is looked for, even in ./.sandbox")
    func noEtcd() throws {
        let home = try Home("none")
        try FileManager.default.createDirectory(atPath: home.directory + "/work/.sandbox", withIntermediateDirectories: true)
        try home.write("etcd:\n  endpoints: [http://127.0.0.1:1]\n", to: home.directory + "/work/.sandbox/etcd.yaml")
        let result = try home.marina(["datacenter", "list"], in: home.directory + "/work")
        #expect(result.status == 1)
        #expect(
            result.stderr
                == "marina: no etcd given: pass --etcd URL or set MARINA_ETCD (for a sandbox: --sandbox DIR or MARINA_SANDBOX_DIR), "
                + "or set etcd.endpoints in \(home.system) or \(home.user) or a file named by MARINA_CONFIG or --config\n")
        #expect(result.stdout.isEmpty)
        // Without XDG_CONFIG_HOME, the user's file is under $HOME/.config.
        let withoutXDG = try runMarina(
            ["datacenter", "list"], environment: ["HOME": "/nonexistent-home", "MARINA_SYSTEM_CONFIG": home.system],
            removing: Self.variables + ["XDG_CONFIG_HOME"])
        #expect(withoutXDG.stderr.contains("or /nonexistent-home/.config/marina/marina.yaml or"), "\(withoutXDG.stderr)")
    }

    @Test("a file that cannot be used stops every command with one message naming the file and the key, the default files included")
    func refusedFiles() throws {
        let home = try Home("refused")
        let flags = ["--etcd", "http://127.0.0.1:9"]
        try home.write("etcd:\n  endpoints: [\"https://127.0.0.1:9\"]\n  password: hunter2\n", to: home.user)
        let password = try home.marina(["datacenter", "list"] + flags)
        #expect(password.status == 1)
        #expect(password.stderr.hasPrefix("marina: \(home.user): etcd.password: a password is never written in a configuration file"))
        #expect(!password.stderr.contains("hunter2"))

        try FileManager.default.removeItem(atPath: home.user)
        try home.write("etcd:\n  endpoints: [\"https://127.0.0.1:9\"]\n\tca_file: x\n", to: home.system)
        let malformed = try home.marina(["datacenter", "list"] + flags)
        #expect(malformed.status == 1 && malformed.stderr == "marina: \(home.system): line 3: tabs cannot indent YAML\n", "\(malformed.stderr)")

        try FileManager.default.removeItem(atPath: home.system)
        let named = home.directory + "/named.yaml"
        try home.write("etcd:\n  root: /marina/v1\n  timeout: 5\n", to: named)
        let unknown = try home.marina(["status"] + flags, ["MARINA_CONFIG": named])
        #expect(
            unknown.status == 1
                && unknown.stderr
                    == "marina: \(named): etcd.timeout: unknown key (known: ca_file, cert_file, endpoints, key_file, password_file, root, user)\n",
            "\(unknown.stderr)")
        let missing = try home.marina(["status", "--config", home.directory + "/missing.yaml"] + flags, ["MARINA_CONFIG": named])
        #expect(missing.status == 1 && missing.stderr == "marina: --config names \(home.directory)/missing.yaml, which does not exist\n")
        try FileManager.default.createDirectory(atPath: home.system, withIntermediateDirectories: true)
        let directory = try home.marina(["status"] + flags)
        #expect(directory.status == 1 && directory.stderr == "marina: cannot read \(home.system) (the system file): a directory\n")
    }

    @Test("config check: every setting with the layer it came from and whether its file is readable; --connect asks etcd")
    func check() async throws {
        let sandbox = try await TestServers.privateSandbox("cli-config-check", sections: 0, tls: true)
        defer { TestServers.stop(sandbox) }
        let home = try Home("check")
        let certificates = try #require(sandbox.certificates)
        try home.write("etcd:\n  endpoints: [\"https://127.0.0.1:9\"]\n  root: /marina/system\noutput: text\n", to: home.system)
        try home.write(try etcdBlock(sandbox), to: home.user)
        let result = try home.marina(["config", "check", "--root", "/marina/v1", "--connect"], ["MARINA_AUTHOR": "checker"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(lines.contains("system file \(home.system) read"), "\(result.stdout)")
        #expect(lines.contains("user file \(home.user) read"), "\(result.stdout)")
        #expect(lines.contains("etcd endpoints \(sandbox.etcd.url) etcd.endpoints in \(home.user)"), "\(result.stdout)")
        #expect(lines.contains("etcd CA \(certificates.caFile) (readable) etcd.ca_file in \(home.user)"), "\(result.stdout)")
        #expect(lines.contains("etcd key \(certificates.clientKey) (readable) etcd.key_file in \(home.user)"), "\(result.stdout)")
        #expect(lines.contains("etcd user - -") && lines.contains("etcd password - -"), "\(result.stdout)")
        #expect(lines.contains("key root /marina/v1 --root"), "\(result.stdout)")
        #expect(lines.contains("author checker MARINA_AUTHOR"), "\(result.stdout)")
        #expect(lines.contains("output text output in \(home.system)"), "\(result.stdout)")
        #expect(
            lines.contains { $0.hasPrefix("etcd 3.") && $0.contains(" answered at revision ") && $0.hasSuffix(" under /marina/v1/") },
            "\(result.stdout)")

        let json = try home.marina(["config", "check", "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let settings = try #require(object["settings"] as? [[String: Any]])
        let root = try #require(settings.first { $0["setting"] as? String == "key root" })
        // Without --root, the system file's root: the user's file does not set one.
        #expect(root["value"] as? String == "/marina/system" && root["from"] as? String == "etcd.root in \(home.system)")

        // An etcd that does not answer, a file that cannot be read: exit 1, with the reason.
        let silent = try home.marina(["config", "check", "--etcd", "https://127.0.0.1:9", "--connect"])
        #expect(silent.status == 1 && silent.stderr.hasPrefix("marina: etcd did not answer: "), "\(silent.stderr)")
        let unreadable = try home.marina(["config", "check", "--etcd-ca", home.directory + "/no-ca.pem"])
        #expect(unreadable.status == 1, "\(unreadable.stdout)")
        #expect(unreadable.stderr == "marina: --etcd-ca names \(home.directory)/no-ca.pem, which this user cannot read\n")
        #expect(unreadable.stdout.contains("\(home.directory)/no-ca.pem (NOT READABLE)"))
    }

    @Test("config/marina.example.yaml passes config check once its etcd and files are this sandbox's, and reaches it with --connect")
    func example() async throws {
        let sandbox = try await TestServers.privateSandbox("cli-config-example", sections: 0, tls: true)
        defer { TestServers.stop(sandbox) }
        let home = try Home("example")
        let certificates = try #require(sandbox.certificates)
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config/marina.example.yaml").path
        let text = try String(contentsOfFile: example, encoding: .utf8)
        // As shipped it is valid, but names files this host does not have.
        let asShipped = try home.marina(["config", "check", example])
        #expect(
            asShipped.status == 1
                && asShipped.stderr.contains("etcd.ca_file in \(example) names /etc/marina/etcd-ca.pem, which this user cannot read"))
        let shipped = asShipped.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(
            shipped.contains("etcd endpoints https://etcd1001.example.org:2379,https://etcd1002.example.org:2379 etcd.endpoints in \(example)"),
            "\(asShipped.stdout)")

        let replacements = [
            ("https://etcd1001.example.org:2379\", \"https://etcd1002.example.org:2379", sandbox.etcd.url),
            ("/etc/marina/etcd-ca.pem", certificates.caFile), ("/etc/marina/dba.pem", certificates.clientCertificate),
            ("/etc/marina/dba.key", certificates.clientKey),
        ]
        var local = text
        for (from, to) in replacements {
            #expect(local.contains(from), "the example no longer names \(from)")
            local = local.replacingOccurrences(of: from, with: to)
        }
        let file = home.directory + "/marina.yaml"
        try home.write(local, to: file)
        let checked = try home.marina(["config", "check", file, "--connect"])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        #expect(checked.stdout.contains(" answered at revision ") && checked.stdout.contains(" under /marina/v1/"), "\(checked.stdout)")
        // And used by a command through MARINA_CONFIG.
        let used = try home.marina(["datacenter", "add", "eqiad"], ["MARINA_CONFIG": file])
        #expect(used.status == 0, "\(used.stderr)")
    }
}
