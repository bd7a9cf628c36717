import BlockingIO
import Glibc

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The failsafe link (`docs/operations/fencing.md`, "etcd down for everyone"): the agent of a
/// primary that cannot renew its lease asks the controller and its section's replica agents,
/// directly over TCP, whether it may stay writable. One request line, one answer line, both
/// JSON, then the connection closes. No secret travels on it, and an answer only ever lets a
/// primary *keep* writes it already takes, never makes anything writable.
public struct FailsafeRequest: Codable, Sendable, Equatable {
    public var section: String
    /// The primary asking, and the agent (host name) it runs under.
    public var primary: String
    public var agent: String

    public init(section: String, primary: String, agent: String) {
        self.section = section
        self.primary = primary
        self.agent = agent
    }
}

public struct FailsafeAnswer: Codable, Sendable, Equatable {
    public var granted: Bool
    /// Who answered: `controller <id>` or `agent <host>`.
    public var by: String
    /// Why not, or what the grant promises.
    public var reason: String

    public init(granted: Bool, by: String, reason: String) {
        self.granted = granted
        self.by = by
        self.reason = reason
    }
}

/// An `address:port` endpoint (IPv4 literal).
public struct FailsafeEndpoint: Sendable, Equatable, Hashable, CustomStringConvertible, Codable {
    public var address: String
    public var port: UInt16

    /// Parses `10.0.0.5:7481`; nil when it is not an IPv4 address and a port from 1 to 65535.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0 else { return nil }
        let address = String(text[..<colon])
        var probe = in_addr()
        guard inet_pton(AF_INET, address, &probe) == 1 else { return nil }
        self.address = address
        self.port = port
    }

    public var description: String { "\(address):\(port)" }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let endpoint = FailsafeEndpoint(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an address:port: \(text)"))
        }
        self = endpoint
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    fileprivate var socketAddress: sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        _ = inet_pton(AF_INET, self.address, &address.sin_addr)
        return address
    }
}

public struct FailsafeLinkError: Error, CustomStringConvertible {
    public var description: String
}

/// Answers failsafe requests on one TCP endpoint, on a thread of its own; `handler` runs there
/// and must not block for long (it answers from what its owner already knows).
public final class FailsafeListener: Sendable {
    public let endpoint: FailsafeEndpoint
    private let socket: Int32
    private static let queue = BlockingQueue(label: "failsafe listener", concurrent: true)

    /// Binds and listens; throws when the endpoint cannot be bound (in use, not an address of this host).
    public init(_ endpoint: FailsafeEndpoint, handler: @escaping @Sendable (FailsafeRequest) -> FailsafeAnswer) throws {
        self.endpoint = endpoint
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FailsafeLinkError(description: "failsafe listener: socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = endpoint.socketAddress
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw FailsafeLinkError(description: "failsafe listener: cannot listen on \(endpoint): \(reason)")
        }
        self.socket = fd
        Self.queue.start { [fd] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    return  // closed by stop()
                }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)  // a hook the agent spawns inherits none of them
                Self.queue.start { Self.serve(client, handler: handler) }
            }
        }
    }

    /// Stops accepting; a request being answered finishes.
    public func stop() {
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
    }

    private static func serve(_ client: Int32, handler: @Sendable (FailsafeRequest) -> FailsafeAnswer) {
        defer { close(client) }
        setTimeouts(client, seconds: 2)
        guard let line = readLine(client) else { return }
        let answer: FailsafeAnswer
        if let request = try? JSONDecoder().decode(FailsafeRequest.self, from: Data(line.utf8)) {
            answer = handler(request)
        } else {
            answer = FailsafeAnswer(granted: false, by: "?", reason: "not a failsafe request")
        }
        guard let data = try? JSONEncoder().encode(answer) else { return }
        writeAll(client, Array(data) + [10])
    }

    /// Asks one endpoint; nil when it does not answer within `timeout` seconds (connect, send and
    /// read together) or answers something else.
    public static func ask(_ endpoint: FailsafeEndpoint, _ request: FailsafeRequest, timeout: Double) async -> FailsafeAnswer? {
        try? await queue.run { () -> FailsafeAnswer? in
            let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            guard connect(fd, to: endpoint, timeout: timeout) else { return nil }
            setTimeouts(fd, seconds: timeout)
            guard let body = try? JSONEncoder().encode(request), writeAll(fd, Array(body) + [10]), let line = readLine(fd) else { return nil }
            return try? JSONDecoder().decode(FailsafeAnswer.self, from: Data(line.utf8))
        }
    }

    /// A non-blocking connect bounded by `timeout`; true when connected.
    private static func connect(_ fd: Int32, to endpoint: FailsafeEndpoint, timeout: Double) -> Bool {
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        var address = endpoint.socketAddress
        let started = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if started != 0 {
            guard errno == EINPROGRESS else { return false }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else { return false }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 else { return false }
        }
        _ = fcntl(fd, F_SETFL, flags)
        return true
    }

    private static func setTimeouts(_ fd: Int32, seconds: Double) {
        var time = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
    }

    /// One line of at most 4 KiB, without its newline.
    private static func readLine(_ fd: Int32) -> String? {
        var bytes = [UInt8]()
        var byte: UInt8 = 0
        while bytes.count < 4096 {
            let count = read(fd, &byte, 1)
            guard count == 1 else { return nil }
            if byte == 10 { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
        return nil
    }

    @discardableResult
    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }
}
