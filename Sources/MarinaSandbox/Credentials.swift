import Foundation

/// The sandbox's MariaDB passwords, random for each sandbox and kept in an option file that
/// only its owner can read (`chmod 600`). `mariadb --defaults-extra-file=FILE -P PORT` logs in
/// as the admin user with it. Passwords never appear on a command line or in the state file.
public struct Credentials: Sendable {
    public var path: String
    public var adminPassword: String
    public var replicationPassword: String

    static func create(in directory: String) throws -> Credentials {
        let credentials = Credentials(path: directory + "/credentials.cnf", adminPassword: randomPassword(), replicationPassword: randomPassword())
        let text = """
            # Marina sandbox credentials; readable by their owner only.
            [client]
            user=\(Sandbox.adminUser)
            password=\(credentials.adminPassword)
            host=127.0.0.1

            [marina-replication]
            user=\(Sandbox.replicationUser)
            password=\(credentials.replicationPassword)

            """
        guard FileManager.default.createFile(atPath: credentials.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw SandboxError.directoryNotWritable(directory, reason: "cannot create \(credentials.path)")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: credentials.path)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: credentials.path))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
        return credentials
    }

    /// Reads the passwords back from a credentials file written by `create`.
    public static func load(from path: String) throws -> Credentials {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var group = ""
        var admin = "", replication = ""
        for line in text.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line.hasPrefix("[") { group = line; continue }
            guard line.hasPrefix("password=") else { continue }
            let value = String(line.dropFirst("password=".count))
            if group == "[client]" { admin = value } else if group == "[marina-replication]" { replication = value }
        }
        return Credentials(path: path, adminPassword: admin, replicationPassword: replication)
    }

    static func randomPassword() -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<24).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }
}
