import ArgumentParser
import ConfigurationFiles
import EtcdClient
import Foundation
import Synchronization
import TopologyStore

/// How the CLI reaches the source of truth: the one place that resolves the command line's
/// configuration (`CLIConfiguration`, `CLISettings`): `/etc/marina/marina.yaml`, then
/// `~/.config/marina/marina.yaml`, then the file named by `--config` or `MARINA_CONFIG`, then
/// the environment, then these flags, each overriding single settings of the ones before.
/// Secrets come from the environment or files, never from the command line or a configuration
/// file: `MARINA_ETCD_PASSWORD` or a password file.
///
/// A sandbox's etcd is used only when asked for (`--sandbox DIR`, `MARINA_SANDBOX_DIR`,
/// `sandbox_dir:`), read from the `etcd.yaml` the sandbox writes there (`SandboxEtcd`), never
/// found by looking around.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("etcd"), help: "etcd endpoints, comma-separated (default: $MARINA_ETCD, etcd.endpoints in the configuration).")
    var endpoints: String?

    @Option(
        name: .customLong("sandbox"),
        help: ArgumentHelp(
            "Use the etcd of the sandbox in this directory, with its TLS files (default: $MARINA_SANDBOX_DIR).", valueName: "dir"))
    var sandbox: String?

    @Option(name: .customLong("etcd-ca"), help: "CA file to verify etcd's certificate (default: $MARINA_ETCD_CA, etcd.ca_file).")
    var caFile: String?

    @Option(name: .customLong("etcd-cert"), help: "Client certificate for etcd (default: $MARINA_ETCD_CERT, etcd.cert_file).")
    var certificateFile: String?

    @Option(name: .customLong("etcd-key"), help: "Client key for etcd (default: $MARINA_ETCD_KEY, etcd.key_file).")
    var keyFile: String?

    @Option(
        name: .customLong("etcd-user"),
        help: "etcd user (default: $MARINA_ETCD_USER, etcd.user; password from a password file or $MARINA_ETCD_PASSWORD).")
    var user: String?

    @Option(
        name: .customLong("etcd-password-file"),
        help: "File holding the etcd password (default: $MARINA_ETCD_PASSWORD_FILE, etcd.password_file).")
    var passwordFile: String?

    @Option(help: "Key prefix of the source of truth in etcd (default: $MARINA_ROOT, etcd.root, /marina/v1).")
    var root: String?

    @Option(
        name: .customLong("config"),
        help: ArgumentHelp(
            "A configuration file read after /etc/marina/marina.yaml and ~/.config/marina/marina.yaml (default: $MARINA_CONFIG).",
            valueName: "file"))
    var configFile: String?

    @Option(
        help:
            "Who is making the change (default: $MARINA_AUTHOR, author: in the configuration, else $SUDO_USER, $USER or the login name, with the host name)."
    )
    var author: String?

    @Flag(name: .customLong("json"), help: "Print JSON for scripts (default: $MARINA_OUTPUT, output: in the configuration).")
    var jsonFlag = false

    /// The flags that take part in the layering.
    var flags: CLIFlags {
        CLIFlags(
            endpoints: endpoints, sandboxDir: sandbox, caFile: caFile, certFile: certificateFile, keyFile: keyFile, user: user,
            passwordFile: passwordFile, root: root, author: author, json: jsonFlag)
    }

    /// The resolved settings, each with where it came from. Resolved once per process (the
    /// files read once): the store, the keys, the output and the author all come from the same
    /// reading, even if a file is edited while the command runs.
    func settings() throws -> CLISettings {
        let key = ResolvedSettings.Key(flags: flags, configFile: configFile)
        if let settings = ResolvedSettings.memo.withLock({ $0?.key == key ? $0?.settings : nil }) { return settings }
        let settings = try CLIConfiguration.settings(flags: flags, configFlag: configFile)
        ResolvedSettings.memo.withLock { $0 = (key, settings) }
        return settings
    }

    func store() throws -> TopologyStore {
        let settings = try settings()
        return TopologyStore(etcd: EtcdClient(try CLIConfiguration.etcdConfiguration(settings)), keys: StoreKeys(root: settings.root.value))
    }

    func configuration() throws -> EtcdConfiguration {
        try CLIConfiguration.etcdConfiguration(try settings())
    }

    /// Where the source of truth lives: the resolved `etcd.root` (`--root`, `MARINA_ROOT`).
    var keys: StoreKeys {
        get throws { StoreKeys(root: try settings().root.value) }
    }

    /// Whether to print JSON: `--json`, or `output: json` (`MARINA_OUTPUT`, a configuration file).
    /// A configuration that cannot be resolved fails the command where it builds its store.
    var json: Bool {
        jsonFlag || (try? settings())?.output.value == .json
    }

    var actor: ChangeAuthor {
        // The store was built before any change is made, so the settings resolve here; the
        // flag and the variable are read again only if they do not.
        let environment = ProcessInfo.processInfo.environment
        let name: String?
        if let settings = try? settings() {
            name = settings.author?.value
        } else {
            name = author ?? environment["MARINA_AUTHOR"]
        }
        return ChangeAuthor(author: name ?? CLIConfiguration.defaultAuthor(environment: environment), now: Date())
    }
}

/// Where one `config commit` or `restore` also writes the configuration, besides the site
/// mirror kept in etcd (`marina config mirror`), which every commit writes without any flag.
/// `--mirror-dir` is a file copy on the host running the command. The v2 flags are kept for
/// compatibility: they add a v2 prefix for this command only (the site's prefix is written
/// once), and are no longer needed once the site mirror is set.
struct MirrorOptions: ParsableArguments {
    @Option(help: "Also write <dir>/<datacenter>.json (default: $MARINA_MIRROR_DIR).")
    var mirrorDir: String?

    @Flag(
        help:
            "Also write {\"val\": config} through etcd's v2 API for this command only (default: $MARINA_MIRROR_V2=1). Not needed once the site mirror is set (`marina config mirror`)."
    )
    var mirrorV2 = false

    @Option(help: "The v2 path prefix of --mirror-v2 (default: conftool/v1/mediawiki-config).")
    var mirrorV2Prefix: String?

    func mirror() throws -> ConfigMirror {
        let environment = ProcessInfo.processInfo.environment
        let v2 = mirrorV2 || environment["MARINA_MIRROR_V2"] == "1" || mirrorV2Prefix != nil
        var prefix: String?
        if v2 {
            do {
                prefix = try SiteMirror.normalized(mirrorV2Prefix ?? ConfigMirror.mediaWikiPrefix)
            } catch {
                throw UsageProblem("--mirror-v2-prefix: \(error)")
            }
        }
        return ConfigMirror(v2Prefix: prefix, directory: mirrorDir ?? environment["MARINA_MIRROR_DIR"])
    }
}

extension StoreOptions {
    /// The name of the account running this process (from the password database), for when
    /// the environment names nobody (cron, systemd).
    static func loginName() -> String? {
        guard let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name else { return nil }
        return String(cString: name)
    }
}

/// The one reading of the CLI's settings in this process (`StoreOptions.settings()`).
enum ResolvedSettings {
    struct Key: Equatable, Sendable {
        var flags: CLIFlags
        var configFile: String?
    }

    static let memo = Mutex<(key: Key, settings: CLISettings)?>(nil)
}
