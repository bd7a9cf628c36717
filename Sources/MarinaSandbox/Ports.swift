import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Loopback TCP ports for a sandbox.
public enum Ports {
    /// Whether nothing listens on (and nothing is bound to) `127.0.0.1:port`. Connections in
    /// `TIME_WAIT` left by a server that just stopped do not count: the check binds with
    /// `SO_REUSEADDR`, as mariadbd and etcd do, so a port they can take again is free.
    public static func isFree(_ port: Int) -> Bool {
        guard port > 0 && port < 65536 else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var on: Int32 = 1
        guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size)) == 0 else { return false }
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
    /// a port between the check and the server's bind.
    ///
    /// The block is also reserved for the life of this process: one lock file per port in
    /// `$TMPDIR/marina-ports/`, held with `flock`. Another process (or another call in this
    /// one) skips a reserved port even while nothing listens on it, as while a test restarts a
    /// server on its old port. The kernel drops the locks when the process ends, so no
    /// reservation outlives its owner.
    public static func findFreeBlock(count: Int) throws -> Int {
        let upper = min(ephemeralRange().lowerBound, 65536) - count
        let lower = 10_000
        guard upper > lower else { throw SandboxError.noFreePorts(count: count) }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let base = Int.random(in: lower..<upper, using: &generator)
            let block = Array(base..<(base + count))
            guard block.allSatisfy(isFree), let locks = reserve(block) else { continue }
            // Held until the process exits.
            heldReservations.withLock { $0 += locks }
            if block.allSatisfy(isFree) { return base }
        }
        throw SandboxError.noFreePorts(count: count)
    }

    private static let heldReservations = Mutex<[Int32]>([])

    /// Takes the lock of every port of `block`, or none of them.
    private static func reserve(_ block: [Int]) -> [Int32]? {
        let directory = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/marina-ports"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var locks = [Int32]()
        for port in block {
            let descriptor = open("\(directory)/\(port).lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o666)
            guard descriptor >= 0, flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
                if descriptor >= 0 { close(descriptor) }
                locks.forEach { close($0) }
                return nil
            }
            locks.append(descriptor)
        }
        return locks
    }

    /// The ports the kernel picks local ports of outgoing connections from.
    public static func ephemeralRange() -> ClosedRange<Int> {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let bounds = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
        guard bounds.count == 2, bounds[0] <= bounds[1] else { return 32768...60999 }
        return bounds[0]...bounds[1]
    }
}
