import ConfigurationFiles
import Foundation

/// The sandbox's MariaDB passwords, random for each sandbox and kept in an option file that
/// only its owner can read (`chmod 600`). `mariadb --defaults-extra-file=FILE -P PORT` logs in
/// as the admin user with it. Passwords never appear on a command line or in the state file.
public struct Credentials: Sendable {
    public var path: String
    public var adminPassword: String
    public var replicationPassword: String
    public var agentPassword: String
    public var controllerPassword: String
    public var applicationPassword: String
    /// The password of the agent's fence account (`Sandbox.fenceUser`).
    public var fencePassword: String
    /// `[client]` user and password of the agent's account, for `credentials_file`.
    public var agentFile: String { (path as NSString).deletingLastPathComponent + "/agent.cnf" }
    /// `[client]` user and password of the agent's fence account (`Sandbox.fenceUser`: makes
    /// its primary read-only and kills sessions when the agent loses its lease), beside `agentFile`.
    public var fenceFile: String { (path as NSString).deletingLastPathComponent + "/fence.cnf" }

    static func create(in directory: String) throws -> Credentials {
        let credentials = Credentials(
            path: directory + "/credentials.cnf", adminPassword: randomPassword(), replicationPassword: randomPassword(),
            agentPassword: randomPassword(), controllerPassword: randomPassword(),
            applicationPassword: randomPassword(), fencePassword: randomPassword())
        let text = """
            # Marina sandbox credentials; readable by their owner only.
            [client]
            user=\(Sandbox.adminUser)
            password=\(credentials.adminPassword)
            host=127.0.0.1

            [marina-replication]
            user=\(Sandbox.replicationUser)
            password=\(credentials.replicationPassword)

            [marina-agent]
            user=\(Sandbox.agentUser)
            password=\(credentials.agentPassword)

            [marina-controller]
            user=\(Sandbox.controllerUser)
            password=\(credentials.controllerPassword)

            [marina-app]
            user=\(Sandbox.applicationUser)
            password=\(credentials.applicationPassword)

            [marina-fence]
            user=\(Sandbox.fenceUser)
            password=\(credentials.fencePassword)

            """
        try writePrivately(text, to: credentials.path, directory: directory)
        try writePrivately(
            "[client]\nuser=\(Sandbox.agentUser)\npassword=\(credentials.agentPassword)\n", to: credentials.agentFile,
            directory: directory)
        try writePrivately(
            "[client]\nuser=\(Sandbox.fenceUser)\npassword=\(credentials.fencePassword)\n", to: credentials.fenceFile,
            directory: directory)
        return credentials
    }

    /// Reads the passwords back from a credentials file written by `create` (`OptionFile`: a
    /// group without its password is refused, naming the group, never a password).
    public static func load(from path: String) throws -> Credentials {
        let file = try OptionFile.load(path)
        func password(_ group: String) throws -> String {
            guard let password = file.value("password", in: group) else {
                throw ConfigurationError(message: "\(path): no password in [\(group)]: not a sandbox's credentials file")
            }
            return password
        }
        return Credentials(
            path: path, adminPassword: try password("client"), replicationPassword: try password("marina-replication"),
            agentPassword: try password("marina-agent"), controllerPassword: try password("marina-controller"),
            applicationPassword: try password("marina-app"), fencePassword: try password("marina-fence"))
    }

    /// Creates `path` with mode 600 before writing the secret into it, so it is never readable by others.
    private static func writePrivately(_ text: String, to path: String, directory: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw SandboxError.directoryNotWritable(directory, reason: "cannot create \(path)")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    /// Writes a random access token for the controller's HTTP API to `<directory>/api-token`
    /// (mode 600) and gives its path.
    static func createToken(in directory: String) throws -> String {
        let path = directory + "/api-token"
        try writePrivately(randomPassword() + randomPassword() + "\n", to: path, directory: directory)
        return path
    }

    static func randomPassword() -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<24).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }
}
