import ArgumentParser
import ConfigurationFiles
import EtcdClient
import Foundation
import MarinaViews

/// `marina config check [FILE] [--connect]`: whether the command line's configuration can be
/// used, what it would connect to, and which layer gave each setting. Never prints a password.
struct ConfigCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract:
            "Check the command line's configuration: what marina would connect to, and where each setting came from. Exit 0: usable; 1: not.",
        discussion: """
            Without FILE, checks the layered configuration every command uses: /etc/marina/marina.yaml, \
            ~/.config/marina/marina.yaml, the file named by --config or MARINA_CONFIG, the environment, the flags. \
            With FILE, checks that file alone. Files named (TLS, password) must be readable. \
            With --connect, also asks etcd for its status and reads under the key root.
            """)

    @Argument(help: "Check this file alone (not the other files, the environment or the flags).") var file: String?
    @Flag(help: "Also ask etcd for its status and read under the key root; exit 1 if it does not answer.") var connect = false
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await running {
            var flagsWithoutJSON = store.flags
            flagsWithoutJSON.json = false
            if file != nil && (!flagsWithoutJSON.isEmpty || store.configFile != nil) {
                throw UsageProblem("config check FILE checks that file alone: drop FILE to check the layered configuration with these flags")
            }
            let json = store.jsonFlag || (file == nil && store.json)
            guard let settings = try resolve() else { return }
            var report = ConfigCheckReport(settings, environment: ProcessInfo.processInfo.environment)
            if connect { report.connection = await Self.connect(settings) }
            if json { try printJSON(report) } else { print(report.render()) }
            if let problem = report.problems.first ?? report.connection.flatMap({ $0.answered ? nil : "etcd did not answer: \($0.detail)" }) {
                printError(problem)
                throw Exit.failure
            }
        }
    }

    /// The settings to show; nil when FILE sets no etcd (it is meant to be layered), after
    /// saying what it sets.
    private func resolve() throws -> CLISettings? {
        guard let file else { return try store.settings() }
        let layer = try CLIConfiguration.layer(.named(by: "config check"), path: file)
        guard let text = layer.text else { throw UsageProblem("\(file) does not exist") }
        let parsed = try CLIConfigurationFile.parse(text, path: file)
        if parsed.etcd?.endpoints == nil && parsed.sandboxDir == nil {
            print("\(file) is valid and names no etcd: it can only add to other layers (files, environment, flags). It sets:")
            let values: [(String, String?)] = [
                ("etcd.ca_file", parsed.etcd?.caFile), ("etcd.cert_file", parsed.etcd?.certFile), ("etcd.key_file", parsed.etcd?.keyFile),
                ("etcd.user", parsed.etcd?.user), ("etcd.password_file", parsed.etcd?.passwordFile), ("etcd.root", parsed.etcd?.root),
                ("author", parsed.author), ("output", parsed.output?.rawValue),
            ]
            for case (let key, let value?) in values { print("  \(key): \(value)") }
            return nil
        }
        return try CLISettings.resolve(
            files: [layer], environment: [:], flags: CLIFlags(), sandbox: CLIConfiguration.sandboxSection)
    }

    /// Asks etcd for its status, then counts the keys under the root (a read, not a write).
    static func connect(_ settings: CLISettings) async -> ConfigCheckReport.Connection {
        do {
            let etcd = EtcdClient(try CLIConfiguration.etcdConfiguration(settings))
            let status = try await etcd.status()
            let keys = try await etcd.get(settings.root.value + "/", prefix: true, limit: 1, keysOnly: true).count
            return .init(
                answered: true,
                detail:
                    "etcd \(status.version) answered at revision \(status.revision); \(keys) key\(keys == 1 ? "" : "s") under \(settings.root.value)/",
                version: status.version, revision: status.revision, keysUnderRoot: keys)
        } catch {
            return .init(answered: false, detail: "\(error)", version: nil, revision: nil, keysUnderRoot: nil)
        }
    }
}

/// What `config check` prints: each setting with its origin, the files consulted, the problems.
struct ConfigCheckReport: Encodable {
    struct Setting: Encodable {
        var setting: String
        var value: String?
        var from: String?
        /// For a file setting: whether this process can read it.
        var readable: Bool?
    }

    struct File: Encodable {
        var kind: String
        var path: String
        var present: Bool
    }

    struct Connection: Encodable {
        var answered: Bool
        var detail: String
        var version: String?
        var revision: Int64?
        var keysUnderRoot: Int64?
    }

    var files: [File]
    var settings: [Setting]
    var problems: [String]
    var connection: Connection?

    init(_ resolved: CLISettings, environment: [String: String]) {
        files = resolved.files.map { File(kind: "\($0.kind)", path: $0.path, present: $0.present) }
        var problems = [String]()
        func file(_ label: String, _ setting: CLISetting<String>?) -> Setting {
            guard let setting else { return Setting(setting: label, value: nil, from: nil, readable: nil) }
            let readable = FileManager.default.isReadableFile(atPath: setting.value)
            if !readable { problems.append("\(setting.origin) names \(setting.value), which this user cannot read") }
            return Setting(setting: label, value: setting.value, from: setting.origin, readable: readable)
        }
        var rows = [Setting(setting: "etcd endpoints", value: resolved.endpoints.value.joined(separator: ","), from: resolved.endpoints.origin)]
        if let sandbox = resolved.sandboxDir { rows.append(Setting(setting: "sandbox", value: sandbox.value, from: sandbox.origin)) }
        rows += [file("etcd CA", resolved.caFile), file("etcd cert", resolved.certFile), file("etcd key", resolved.keyFile)]
        rows.append(Setting(setting: "etcd user", value: resolved.user?.value, from: resolved.user?.origin))
        switch resolved.password?.value {
        case .file(let path)?:
            let source = resolved.password.map { CLISetting(value: path, source: $0.source, name: $0.name) }
            var row = file("etcd password", source)
            row.value = "read from \(path)"
            rows.append(row)
        case .environment?:
            rows.append(Setting(setting: "etcd password", value: "from the environment", from: "MARINA_ETCD_PASSWORD"))
        case nil:
            rows.append(Setting(setting: "etcd password", value: nil, from: nil))
        }
        rows.append(Setting(setting: "key root", value: resolved.root.value, from: resolved.root.origin))
        rows.append(
            Setting(
                setting: "author", value: resolved.author?.value ?? CLIConfiguration.defaultAuthor(environment: environment),
                from: resolved.author?.origin ?? "default (login and host)"))
        rows.append(Setting(setting: "output", value: resolved.output.value.rawValue, from: resolved.output.origin))
        settings = rows
        self.problems = problems
    }

    func render() -> String {
        var lines = ["Configuration files:"]
        lines += Tables.table(files.map { ["  " + $0.kind, $0.path, $0.present ? "read" : "absent"] }).split(separator: "\n").map(String.init)
        lines.append("")
        var rows = [["SETTING", "VALUE", "FROM"]]
        for setting in settings {
            let readable = setting.readable.map { $0 ? " (readable)" : " (NOT READABLE)" } ?? ""
            rows.append([setting.setting, (setting.value ?? "-") + readable, setting.from ?? "-"])
        }
        lines.append(Tables.table(rows))
        if let connection { lines += ["", connection.answered ? connection.detail : "etcd did not answer: \(connection.detail)"] }
        return lines.joined(separator: "\n")
    }
}
