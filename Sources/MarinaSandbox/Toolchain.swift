import Foundation

/// The programs a sandbox runs, found on disk before anything starts.
public struct Toolchain: Sendable {
    public var mariadbd: String
    public var installDB: String
    public var etcd: String
    public var ptHeartbeat: String

    /// Finds every program or throws `missingBinary` naming the Debian package to install.
    public static func locate() throws -> Toolchain {
        Toolchain(
            mariadbd: try find("mariadbd", package: "mariadb-server", extra: ["/usr/sbin"]),
            installDB: try find("mariadb-install-db", package: "mariadb-server", extra: ["/usr/bin"]),
            etcd: try find("etcd", package: "etcd-server", extra: ["/usr/bin"]),
            ptHeartbeat: try find("pt-heartbeat", package: "percona-toolkit", extra: ["/usr/bin"])
        )
    }

    static func find(_ name: String, package: String, extra: [String]) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":").map(String.init) + extra {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw SandboxError.missingBinary(name: name, package: package)
    }
}
