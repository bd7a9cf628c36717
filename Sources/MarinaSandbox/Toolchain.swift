import Foundation

/// The programs a sandbox runs, found on disk before anything starts.
public struct Toolchain: Sendable {
    public var mariadbd: String
    public var installDB: String
    public var etcd: String
    public var ptHeartbeat: String

    public init(mariadbd: String, installDB: String, etcd: String, ptHeartbeat: String) {
        self.mariadbd = mariadbd
        self.installDB = installDB
        self.etcd = etcd
        self.ptHeartbeat = ptHeartbeat
    }

    /// The directories searched by default: `PATH`, then `/usr/sbin` and `/usr/bin`, where
    /// Debian installs the servers (`/usr/sbin` is often missing from a user's `PATH`).
    public static var defaultSearchPath: [String] {
        (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin"]
    }

    /// Finds every program or throws `missingBinary` naming the Debian package to install.
    public static func locate(searchPath: [String] = defaultSearchPath) throws -> Toolchain {
        Toolchain(
            mariadbd: try find("mariadbd", package: "mariadb-server", in: searchPath),
            installDB: try find("mariadb-install-db", package: "mariadb-server", in: searchPath),
            etcd: try find("etcd", package: "etcd-server", in: searchPath),
            ptHeartbeat: try find("pt-heartbeat", package: "percona-toolkit", in: searchPath)
        )
    }

    public static func find(_ name: String, package: String, in searchPath: [String]) throws -> String {
        for directory in searchPath {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw SandboxError.missingBinary(name: name, package: package)
    }
}
