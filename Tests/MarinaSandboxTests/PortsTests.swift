import Foundation
import MarinaSandbox
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `sandbox up --base-port P` right after a sandbox on the same ports went down: the ports are
/// free although connections of the old servers linger in TIME_WAIT.
@Suite("Free ports")
struct PortsTests {
    @Test("a port whose server just stopped (its connections in TIME_WAIT) is free; a port with a listener is not")
    func timeWait() throws {
        let port = try Ports.findFreeBlock(count: 1)
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var on: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        #expect(Ports.bindLoopback(listener, port: port))
        #expect(listen(listener, 1) == 0)
        #expect(!Ports.isFree(port), "a listening port is taken")

        // A connection that the server's side closes first: that side stays in TIME_WAIT.
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        let accepted = accept(listener, nil, nil)
        #expect(accepted >= 0)
        close(accepted)
        close(client)
        close(listener)

        var lingering = false
        for _ in 0..<100 where !lingering {
            lingering = Self.timeWait(onLocalPort: port)
            if !lingering { usleep(10_000) }
        }
        #expect(lingering, "no TIME_WAIT connection on the port: the test proves nothing")
        #expect(Ports.isFree(port), "a port with only TIME_WAIT connections must count as free")
    }

    /// Whether /proc/net/tcp shows a connection in TIME_WAIT (state 06) from 127.0.0.1:port.
    static func timeWait(onLocalPort port: Int) -> Bool {
        // Read to the end: /proc files report a size of 0.
        let table = FileHandle(forReadingAtPath: "/proc/net/tcp").map { String(decoding: $0.readDataToEndOfFile(), as: UTF8.self) } ?? ""
        let hex = String(port, radix: 16, uppercase: true)
        let local = "0100007F:" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        return table.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[1] == local && fields[3] == "06"
        }
    }
}
