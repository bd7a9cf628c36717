import BlockingIO
import Dispatch
import FailsafeLink
import Glibc
import Synchronization

/// A minimal HTTP/1.1 listener on one TCP endpoint, for the agent's health checks and metrics:
/// GET and HEAD, one request per connection (`Connection: close`), a head of at most
/// `HTTPRequestHead.limit` bytes read within `readTimeout` seconds, no body.
///
/// Sockets are plain POSIX calls on threads of a `BlockingQueue`, never on the cooperative
/// pool: one thread accepts, each connection is read and written on a thread of its own. At most
/// `maxConnections` requests are in flight; past that a connection is answered 503 at once.
/// Garbage, a head too large, a client that sends nothing: each gets its 4xx (or is closed) and
/// costs nothing more.
final class HealthListener: Sendable {
    let endpoint: FailsafeEndpoint
    let readTimeout: Double
    let maxConnections: Int
    private let socket: Int32
    private let inFlight = Atomic<Int>(0)
    /// Each blocking wait runs on a serial queue of its own: Dispatch gives every serial queue
    /// a thread when it needs one, while a concurrent queue on Linux shares as many threads as
    /// there are cores, which an accept loop and a few silent clients would all hold.
    private static func newQueue(_ label: String) -> BlockingQueue { BlockingQueue(label: label) }

    /// Binds and listens; throws when the endpoint cannot be bound (in use, not an address of
    /// this host).
    init(_ endpoint: FailsafeEndpoint, readTimeout: Double = 2, maxConnections: Int = 64) throws {
        self.endpoint = endpoint
        self.readTimeout = readTimeout
        self.maxConnections = maxConnections
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HealthListenerError(description: "\(endpoint): socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = endpoint.port.bigEndian
        _ = inet_pton(AF_INET, endpoint.address, &address.sin_addr)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw HealthListenerError(description: "cannot listen on \(endpoint): \(reason)")
        }
        self.socket = fd
    }

    /// Answers requests until the task is cancelled, then stops accepting (requests in flight
    /// finish: each is bounded by the read timeout and its handler). `handler` answers one
    /// request through its `HTTPExchange`; a handler that returns without answering sends 500.
    func serve(_ handler: @escaping @Sendable (HTTPRequestHead, HTTPExchange) async -> Void) async {
        let (connections, continuation) = AsyncStream.makeStream(of: Int32.self)
        let listener = self
        let acceptEnded = DispatchSemaphore(value: 0)
        Self.newQueue("health listener accept").start {
            listener.acceptLoop(continuation)
            acceptEnded.signal()
        }
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                for await client in connections {
                    group.addTask {
                        await listener.handle(client, handler)
                        listener.inFlight.subtract(1, ordering: .relaxed)
                    }
                }
            }
        } onCancel: {
            listener.stop()
        }
        // Cancelled (or the accept loop failed): wake the accept thread, wait for it, and only
        // then close the socket, so that its descriptor is never closed while in use or twice.
        stop()
        _ = try? await Self.newQueue("health listener stop").run { acceptEnded.wait() }
        close(socket)
    }

    /// Wakes the accept thread (`accept` fails on a socket shut down), which ends the stream.
    private func stop() {
        shutdown(socket, Int32(SHUT_RDWR))
    }

    private func acceptLoop(_ continuation: AsyncStream<Int32>.Continuation) {
        defer { continuation.finish() }
        while true {
            let client = accept(socket, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                    if errno != EINTR && errno != ECONNABORTED { usleep(10_000) }  // out of descriptors: breathe
                    continue
                }
                return  // shut down by stop()
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)  // a hook the agent spawns inherits none of them
            Self.setTimeouts(client, seconds: readTimeout)
            if inFlight.add(1, ordering: .relaxed).newValue > maxConnections {
                inFlight.subtract(1, ordering: .relaxed)
                // Answered on this thread: a small response fits in the socket's buffer.
                _ = Self.writeAll(client, HTTPResponse.error(.serviceUnavailable, "too many requests in flight").serialized())
                close(client)
                continue
            }
            if case .terminated = continuation.yield(client) {
                inFlight.subtract(1, ordering: .relaxed)
                close(client)
                return
            }
        }
    }

    private func handle(_ client: Int32, _ handler: @Sendable (HTTPRequestHead, HTTPExchange) async -> Void) async {
        let timeout = readTimeout
        let parsed = (try? await Self.newQueue("health connection").run { Self.readHead(client, timeout: timeout) }) ?? .closed
        let exchange = HTTPExchange(client)
        switch parsed {
        case .closed:
            exchange.abandon()
        case .timedOut:
            await exchange.send(.error(.requestTimeout, "no complete request within \(HealthCheck.seconds(timeout)) s"))
        case .head(.refused(let status, let reason)):
            await exchange.send(.error(status, reason))
        case .head(.incomplete):
            await exchange.send(.error(.badRequest, "incomplete request"))
        case .head(.complete(let head)):
            exchange.isHead = head.method == "HEAD"
            await handler(head, exchange)
            await exchange.send(.error(.internalServerError, "no answer"))  // ignored when the handler answered
        }
    }

    enum Reading: Sendable {
        case head(HTTPRequestHead.Parse)
        case timedOut
        /// The client closed the connection (or it broke) before a complete head.
        case closed
    }

    /// Reads until the head is complete or refused, the client closes, or `timeout` seconds
    /// pass since the connection was accepted (however slowly the bytes trickle in).
    static func readHead(_ fd: Int32, timeout: Double) -> Reading {
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 2048)
        let deadline = monotonicSeconds() + timeout
        while true {
            let left = deadline - monotonicSeconds()
            guard left > 0 else { return .timedOut }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, (left * 1000).rounded(.up))))
            if ready < 0 {
                if errno == EINTR { continue }
                return .closed
            }
            if ready == 0 { return .timedOut }
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR || errno == EAGAIN { continue }
            guard count > 0 else { return .closed }
            bytes += chunk[..<count]
            switch HTTPRequestHead.parse(bytes) {
            case .incomplete: continue
            case let parse: return .head(parse)
            }
        }
    }

    private static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    static func setTimeouts(_ fd: Int32, seconds: Double) {
        var time = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
    }

    @discardableResult
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    fileprivate static func write(_ response: HTTPResponse, head: Bool, to fd: Int32) async {
        let bytes = response.serialized(head: head)
        _ = try? await newQueue("health answer").run {
            writeAll(fd, bytes)
            // Tell the client the answer is whole, then read what it still sends (the rest of a
            // refused request) until it closes, for at most 200 ms: closing with unread bytes
            // would reset the connection and could destroy the answer before the client reads it.
            shutdown(fd, Int32(SHUT_WR))
            drain(fd, milliseconds: 200, limit: 1 << 20)
            close(fd)
        }
    }

    private static func drain(_ fd: Int32, milliseconds: Double, limit: Int) {
        var chunk = [UInt8](repeating: 0, count: 4096)
        var total = 0
        let deadline = monotonicSeconds() + milliseconds / 1000
        while total < limit {
            let left = deadline - monotonicSeconds()
            guard left > 0 else { return }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(max(1, (left * 1000).rounded(.up)))) == 1 else { return }
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { return }
            total += count
        }
    }
}

/// One request's connection: answered once (`send`), then closed. Later answers are ignored,
/// so that a check can answer at its deadline while the work behind it finishes later.
final class HTTPExchange: Sendable {
    private let fd: Int32
    private let answered = Atomic<Bool>(false)
    private let head = Atomic<Bool>(false)

    init(_ fd: Int32) { self.fd = fd }

    /// Whether the request was HEAD (the answer then has no body).
    var isHead: Bool {
        get { head.load(ordering: .relaxed) }
        set { head.store(newValue, ordering: .relaxed) }
    }

    /// Whether an answer was sent already.
    var isAnswered: Bool { answered.load(ordering: .acquiring) }

    /// Sends the answer and closes the connection; nothing when already answered.
    func send(_ response: HTTPResponse) async {
        guard answered.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        await HealthListener.write(response, head: isHead, to: fd)
    }

    /// Closes the connection without an answer (the client went away).
    func abandon() {
        guard answered.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        close(fd)
    }
}

struct HealthListenerError: Error, CustomStringConvertible {
    var description: String
}
