import FailsafeLink
import Foundation
import FuzzSupport
import Glibc
import Testing

@testable import Agent

/// The health listener's HTTP: the head parser on its own, and a real listener on loopback fed
/// garbage, a head too large, a POST, a client that sends nothing, and a crowd.
@Suite("Health checks: HTTP")
struct HealthListenerTests {
    @Test("a request head parses into method, path, query and headers; CRLF or LF; incomplete until the empty line")
    func parse() {
        let text = "GET /replica?lag=5&x HTTP/1.1\r\nHost: db1001:9104\r\nUser-Agent:  haproxy \r\n\r\n"
        guard case .complete(let head) = HTTPRequestHead.parse(Array(text.utf8)) else {
            Issue.record("not parsed")
            return
        }
        #expect(head.method == "GET" && head.path == "/replica")
        #expect(head.query == [.init(name: "lag", value: "5"), .init(name: "x", value: nil)])
        #expect(head.headers == [.init(name: "Host", value: "db1001:9104"), .init(name: "User-Agent", value: "haproxy")])
        #expect(HTTPRequestHead.parse(Array("GET /health HTTP/1.0\n\n".utf8)) != .incomplete)
        #expect(HTTPRequestHead.parse(Array("GET /health HTTP/1.1\r\nHost: x\r\n".utf8)) == .incomplete)
    }

    @Test(
        "malformed heads are refused with a 4xx (or 505) and a reason",
        arguments: [
            ("GARBAGE\r\n\r\n", 400), ("GET /x\r\n\r\n", 400), ("GET  /x HTTP/1.1\r\n\r\n", 400), ("GET x HTTP/1.1\r\n\r\n", 400),
            ("GET /x HTTP/2.0\r\n\r\n", 505), ("G(T /x HTTP/1.1\r\n\r\n", 400), ("GET /x HTTP/1.1\r\nno colon\r\n\r\n", 400),
            ("GET /x HTTP/1.1\r\n: empty\r\n\r\n", 400), ("GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n", 400), ("\r\n\r\n", 400),
            ("GET /\u{7f} HTTP/1.1\r\n\r\n", 400), ("\u{0}\u{1}\u{2}", 400),
        ])
    func refused(text: String, status: Int) {
        guard case .refused(let answer, let reason) = HTTPRequestHead.parse(Array(text.utf8)) else {
            Issue.record("\(text.debugDescription) was not refused")
            return
        }
        #expect(answer.code == status && !reason.isEmpty, "\(text.debugDescription): \(answer) \(reason)")
    }

    @Test("a head over the limit is 431, with or without its end")
    func tooLarge() {
        let long = "GET /health HTTP/1.1\r\nX-Pad: " + String(repeating: "a", count: HTTPRequestHead.limit) + "\r\n\r\n"
        #expect(HTTPRequestHead.parse(Array(long.utf8)) == .refused(.headerFieldsTooLarge, "the request line and headers exceed 8192 bytes"))
        #expect(HTTPRequestHead.parse(Array(long.utf8.prefix(HTTPRequestHead.limit))).isRefused)
    }

    @Test("random bytes and mutated requests parse or are refused, never crash")
    func fuzz() {
        let sample = "GET /replica?lag=5 HTTP/1.1\r\nHost: db1001:9104\r\nAccept: */*\r\n\r\n"
        Fuzz.run(seed: 0x4EA17, rounds: 2000, sample: sample, { _ = HTTPRequestHead.parse(Array($0.utf8)) }) { _, _ in }
        var generator = SeededGenerator(seed: 0x4EA18)
        for _ in 0..<2000 {
            let parsed = HTTPRequestHead.parse(Fuzz.bytes(&generator))
            if case .complete(let head) = parsed { _ = HealthCheck.route(head) }
        }
    }

    @Test("a response has its status, Content-Length, Connection: close; HEAD has no body")
    func response() {
        let response = HTTPResponse.error(.methodNotAllowed, "no \"POST\"", headers: [.init(name: "Allow", value: "GET, HEAD")])
        let text = String(decoding: response.serialized(), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n") && text.contains("\r\nAllow: GET, HEAD\r\n"))
        #expect(text.contains("\r\nContent-Length: \(response.body.count)\r\n") && text.contains("\r\nConnection: close\r\n"))
        #expect(text.hasSuffix("\r\n\r\n{\"error\":\"no \\\"POST\\\"\"}\n"), "\(text)")
        #expect(String(decoding: response.serialized(head: true), as: UTF8.self).hasSuffix("\r\n\r\n"))
    }

    // MARK: A real listener

    /// Sends `bytes` (then half-closes when `close`) to the listener and reads the answer until
    /// the server closes; nil status when it closed without one.
    static func exchange(_ port: UInt16, _ bytes: [UInt8], close halfClose: Bool = true) -> (status: Int?, text: String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return (nil, "connect failed") }
        var time = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if halfClose { shutdown(fd, Int32(SHUT_WR)) }
        var answer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            answer += chunk[..<count]
        }
        let text = String(decoding: answer, as: UTF8.self)
        let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) }
        return (text.hasPrefix("HTTP/1.1 ") ? status : nil, text)
    }

    /// A listener on a free loopback port answering `/health` 200, served while `body` runs.
    static func withListener(readTimeout: Double = 3, _ body: @Sendable (UInt16) async throws -> Void) async throws {
        var listener: HealthListener?
        for _ in 0..<20 where listener == nil {
            listener = try? HealthListener(FailsafeEndpoint("127.0.0.1:\(UInt16.random(in: 30000...60000))")!, readTimeout: readTimeout)
        }
        let bound = try #require(listener)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await bound.serve { head, exchange in
                    switch HealthCheck.route(head) {
                    case .failure(let refusal): await exchange.send(refusal.response)
                    case .success: await exchange.send(HTTPResponse(status: .ok, body: Array("{}\n".utf8)))
                    }
                }
            }
            try await body(bound.endpoint.port)
            group.cancelAll()
        }
    }

    @Test("garbage, a huge head, POST, a silent client and a crowd each get their answer, and the listener keeps serving")
    func malformedOnTheWire() async throws {
        try await Self.withListener { port in
            let blocking = { @Sendable (bytes: [UInt8], halfClose: Bool) async -> (status: Int?, text: String) in
                await withCheckedContinuation { continuation in
                    // A thread of its own per client: Dispatch's global queue runs only as many
                    // blocked clients at once as there are cores, and the crowd would wait its turn.
                    Thread { continuation.resume(returning: Self.exchange(port, bytes, close: halfClose)) }.start()
                }
            }
            #expect(await blocking(Array("GET /health HTTP/1.1\r\n\r\n".utf8), true).status == 200)
            #expect(await blocking(Array("\u{0}\u{ff}garbage\r\n\r\n".utf8), true).status == 400)
            #expect(await blocking(Array(("GET /health HTTP/1.1\r\nX: " + String(repeating: "b", count: 100_000)).utf8), false).status == 431)
            let post = await blocking(Array("POST /primary HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".utf8), true)
            #expect(post.status == 405 && post.text.contains("\r\nAllow: GET, HEAD\r\n"), "\(post.text)")
            let head = await blocking(Array("HEAD /health HTTP/1.1\r\n\r\n".utf8), true)
            #expect(head.status == 200 && head.text.hasSuffix("\r\n\r\n"), "\(head.text)")
            // A client that sends half a request and waits: 408 after the read timeout.
            #expect(await blocking(Array("GET /health HT".utf8), false).status == 408)
            // A client that goes away at once: nothing to answer.
            #expect(await blocking([], true).status == nil)
            // A crowd at once, then the listener still answers.
            await withTaskGroup(of: Int?.self) { group in
                for index in 0..<40 {
                    group.addTask { await blocking(Array((index % 2 == 0 ? "GET /health HTTP/1.1\r\n\r\n" : "BAD\r\n\r\n").utf8), true).status }
                }
                for await status in group { #expect(status == 200 || status == 400, "\(String(describing: status))") }
            }
            #expect(await blocking(Array("GET /health HTTP/1.1\r\n\r\n".utf8), true).status == 200)
        }
    }
}

extension HTTPRequestHead.Parse {
    var isRefused: Bool {
        if case .refused = self { return true }
        return false
    }
}
