import ConfigurationFiles
import EtcdClient
import Foundation

/// The command line's configuration as read from this host: the files and the environment
/// around the pure resolution (`CLISettings`), and the client configuration it gives.
enum CLIConfiguration {
    /// Replaces `/etc/marina/marina.yaml`, for tests only: so that a test of the `marina`
    /// binary never depends on the host's system file.
    static let systemFileVariable = "MARINA_SYSTEM_CONFIG"

    /// The settings of the files, the environment and `flags`.
    static func settings(
        flags: CLIFlags, configFlag: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> CLISettings {
        let system = environment[systemFileVariable] ?? CLISettings.systemPath
        let files = try CLISettings.files(environment: environment, configFlag: configFlag, systemPath: system).map {
            (file) throws(ConfigurationError) in try layer(file.kind, path: file.path)
        }
        return try CLISettings.resolve(files: files, environment: environment, flags: flags, sandbox: sandboxSection)
    }

    /// One file's text; nil when nothing is at `path`. Anything else that stops it being read
    /// (permissions, a directory, a dangling link, not UTF-8) is an error: never skipped.
    static func layer(_ kind: CLIConfigurationLayer.Kind, path: String) throws(ConfigurationError) -> CLIConfigurationLayer {
        var status = stat()
        if lstat(path, &status) != 0 {
            let code = errno
            if code == ENOENT || code == ENOTDIR { return CLIConfigurationLayer(kind: kind, path: path, text: nil) }
            throw ConfigurationError(message: "cannot read \(path) (the \(kind)): \(String(cString: strerror(code)))")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigurationError(message: "cannot read \(path) (the \(kind)): a symbolic link to nothing")
        }
        guard !isDirectory.boolValue else { throw ConfigurationError(message: "cannot read \(path) (the \(kind)): a directory") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(message: "cannot read \(path) (the \(kind)): permission denied or unreadable")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(message: "cannot read \(path) (the \(kind)): not UTF-8 text")
        }
        return CLIConfigurationLayer(kind: kind, path: path, text: text)
    }

    /// The `etcd:` section a running sandbox wrote in `directory`.
    static func sandboxSection(_ directory: String) throws(ConfigurationError) -> EtcdSection {
        do {
            return try SandboxEtcd.section(in: directory)
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(message: "\(error)")
        }
    }

    /// The client configuration of `settings`, the password read from its file or from
    /// `MARINA_ETCD_PASSWORD` (never from a configuration file).
    static func etcdConfiguration(
        _ settings: CLISettings, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> EtcdConfiguration {
        var tls: EtcdConfiguration.TLS?
        if settings.caFile != nil || settings.certFile != nil || settings.keyFile != nil {
            tls = .init(caFile: settings.caFile?.value, certificateFile: settings.certFile?.value, keyFile: settings.keyFile?.value)
        }
        var credentials: EtcdConfiguration.Credentials?
        if let user = settings.user, let password = settings.password {
            switch password.value {
            case .file(let path):
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw ConfigurationError(message: "cannot read the etcd password file \(path) (\(password.origin))")
                }
                credentials = .init(username: user.value, password: text.trimmingCharacters(in: .newlines))
            case .environment:
                credentials = .init(username: user.value, password: environment["MARINA_ETCD_PASSWORD"] ?? "")
            }
        }
        return EtcdConfiguration(endpoints: settings.endpoints.value, tls: tls, credentials: credentials)
    }

    /// Who makes a change when nobody named one: the login (`$SUDO_USER`, `$USER` or the
    /// account's name) at this host.
    static func defaultAuthor(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let login = environment["SUDO_USER"] ?? environment["USER"] ?? StoreOptions.loginName() ?? "unknown"
        return "\(login)@\(ProcessInfo.processInfo.hostName)"
    }
}
