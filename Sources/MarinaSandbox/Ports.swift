import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Loopback TCP ports for a sandbox.
public enum Ports {
    /// Whether nothing listens on (and nothing holds) `127.0.0.1:port`.
    public static func isFree(_ port: Int) -> Bool {
        guard port > 0 && port < 65536 else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return bindLoopback(fd, port: port)
    }

    /// Binds a TCP socket to `127.0.0.1:port`; false when the port is taken.
    public static func bindLoopback(_ descriptor: Int32, port: Int) -> Bool {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return bound == 0
    }

    /// Checks that every port of a block is free, naming the first one that is not.
    public static func requireFree(_ ports: [(port: Int, purpose: String)]) throws {
        for (port, purpose) in ports where !isFree(port) {
            throw SandboxError.portInUse(port, purpose: purpose)
        }
    }

    /// A base port such that `base ..< base + count` are all free, starting from a random
    /// point so that test processes running side by side rarely race for the same block.
    public static func findFreeBlock(count: Int) throws -> Int {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let base = Int.random(in: 20_000..<(60_000 - count), using: &generator)
            if (base..<(base + count)).allSatisfy(isFree) { return base }
        }
        throw SandboxError.noFreePorts(count: count)
    }
}
