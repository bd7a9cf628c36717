import ArgumentParser
import ConfigurationFiles
import EtcdClient
import Foundation
import TopologyStore

/// How the CLI reaches the source of truth. Secrets come from the environment or files, never
/// from the command line: `MARINA_ETCD_PASSWORD` or `--etcd-password-file`.
///
/// A sandbox's etcd is used only when asked for (`--sandbox DIR`, `MARINA_SANDBOX_DIR`), read
/// from the `etcd.yaml` the sandbox writes there (`SandboxEtcd`), never found by looking around.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("etcd"), help: "etcd endpoints, comma-separated (default: $MARINA_ETCD).")
    var endpoints: String?

    @Option(
        name: .customLong("sandbox"),
        help: ArgumentHelp(
            "Use the etcd of the sandbox in this directory, with its TLS files (default: $MARINA_SANDBOX_DIR).", valueName: "dir"))
    var sandbox: String?

    @Option(name: .customLong("etcd-ca"), help: "CA file to verify etcd's certificate.")
    var caFile: String?

    @Option(name: .customLong("etcd-cert"), help: "Client certificate for etcd.")
    var certificateFile: String?

    @Option(name: .customLong("etcd-key"), help: "Client key for etcd.")
    var keyFile: String?

    @Option(name: .customLong("etcd-user"), help: "etcd user (password from $MARINA_ETCD_PASSWORD or --etcd-password-file).")
    var user: String?

    @Option(name: .customLong("etcd-password-file"), help: "File holding the etcd password.")
    var passwordFile: String?

    @Option(help: "Who is making the change (default: $MARINA_AUTHOR, else $SUDO_USER, $USER or the login name, with the host name).")
    var author: String?

    @Flag(help: "Print JSON for scripts.")
    var json = false

    func store() throws -> TopologyStore {
        TopologyStore(etcd: EtcdClient(try configuration()))
    }

    func configuration() throws -> EtcdConfiguration {
        let environment = ProcessInfo.processInfo.environment
        if endpoints != nil && sandbox != nil { throw UsageProblem("--etcd and --sandbox name two etcds: give one") }
        // The command line first, then the environment; an endpoint before a sandbox.
        let sandboxDirectory = endpoints != nil ? nil : sandbox ?? (environment["MARINA_ETCD"] != nil ? nil : environment["MARINA_SANDBOX_DIR"])
        var urls: [String]
        var tls: EtcdConfiguration.TLS?
        if let sandboxDirectory {
            let setting = sandbox != nil ? "--sandbox" : "MARINA_SANDBOX_DIR"
            let section: EtcdSection
            do {
                section = try SandboxEtcd.section(in: sandboxDirectory)
            } catch {
                throw UsageProblem("\(setting): \(error)")
            }
            urls = section.endpoints
            tls = try section.clientConfiguration().tls
        } else {
            guard let list = endpoints ?? environment["MARINA_ETCD"] else {
                throw UsageProblem("no etcd given: pass --etcd URL or set MARINA_ETCD (for a sandbox: --sandbox DIR or MARINA_SANDBOX_DIR)")
            }
            urls = try EtcdConfiguration.endpoints(fromList: list, setting: endpoints != nil ? "--etcd" : "MARINA_ETCD")
        }
        if caFile != nil || certificateFile != nil || keyFile != nil {
            tls = .init(caFile: caFile, certificateFile: certificateFile, keyFile: keyFile)
        }
        var credentials: EtcdConfiguration.Credentials?
        if let user {
            let password: String
            if let passwordFile {
                guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                    throw UsageProblem("cannot read the etcd password file \(passwordFile)")
                }
                password = text.trimmingCharacters(in: .newlines)
            } else if let fromEnvironment = environment["MARINA_ETCD_PASSWORD"] {
                password = fromEnvironment
            } else {
                throw UsageProblem("--etcd-user needs a password: set MARINA_ETCD_PASSWORD or pass --etcd-password-file")
            }
            credentials = .init(username: user, password: password)
        }
        return EtcdConfiguration(endpoints: urls, tls: tls, credentials: credentials)
    }

    var actor: ChangeAuthor {
        let environment = ProcessInfo.processInfo.environment
        let login = environment["SUDO_USER"] ?? environment["USER"] ?? Self.loginName() ?? "unknown"
        let name = author ?? environment["MARINA_AUTHOR"] ?? "\(login)@\(ProcessInfo.processInfo.hostName)"
        return ChangeAuthor(author: name, now: Date())
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
