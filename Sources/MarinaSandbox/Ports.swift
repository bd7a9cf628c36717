import Foundation
import Synchronization
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

    /// A base port such that `base ..< base + count` are all free, chosen at random below the
    /// kernel's ephemeral range (`ip_local_port_range`), where outgoing connections never take
    /// a port between the check and the server's bind. Blocks handed out are remembered for
    /// the life of the process, so sandboxes started side by side in one process (the tests)
    /// never get overlapping blocks.
    public static func findFreeBlock(count: Int) throws -> Int {
        let upper = min(ephemeralRange().lowerBound, 65536) - count
        let lower = 10_000
        guard upper > lower else { throw SandboxError.noFreePorts(count: count) }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let base = Int.random(in: lower..<upper, using: &generator)
            let block = base..<(base + count)
            let claimed = reserved.withLock { reserved -> Bool in
                guard !block.contains(where: reserved.contains), block.allSatisfy(isFree) else { return false }
                reserved.formUnion(block)
                return true
            }
            if claimed { return base }
        }
        throw SandboxError.noFreePorts(count: count)
    }

    private static let reserved = Mutex<Set<Int>>([])

    /// The ports the kernel picks local ports of outgoing connections from.
    public static func ephemeralRange() -> ClosedRange<Int> {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let bounds = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
        guard bounds.count == 2, bounds[0] <= bounds[1] else { return 32768...60999 }
        return bounds[0]...bounds[1]
    }
}
