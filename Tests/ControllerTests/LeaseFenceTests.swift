import MariaDBClient
import Testing

@testable import Controller

/// The leader's local deadline, on the monotonic clock, without waiting on it: instants are
/// given, not read, except for `isOpen`, which is checked only far from the deadline.
@Suite("Lease fence")
struct LeaseFenceTests {
    @Test(
        "the margin: a fifth of the TTL, at least half a second, at most half the TTL",
        arguments: [
            (2.0, 0.5), (5.0, 1.0), (10.0, 2.0), (1.0, 0.5), (0.6, 0.3),
        ])
    func margin(_ ttl: Double, _ expected: Double) {
        #expect(LeaseFence.margin(ttl: ttl) == expected)
    }

    @Test("closed until a lease is granted; open for TTL minus the margin after the keep-alive was sent; closed again after close()")
    func deadline() {
        let fence = LeaseFence(margin: 1)
        #expect(!fence.isOpen)
        #expect(throws: ControllerError.notLeader) { try fence.check() }

        fence.extend(sentAt: fence.clock.now(), ttl: 60)
        #expect(fence.isOpen)
        #expect(fence.remaining > 50 && fence.remaining <= 59)
        #expect(throws: Never.self) { try fence.check() }

        fence.close()
        #expect(!fence.isOpen)
        #expect(throws: ControllerError.notLeader) { try fence.check() }
    }

    @Test("a keep-alive sent long ago opens nothing: the deadline counts from the send, not the answer")
    func lateAnswer() {
        let fence = LeaseFence(margin: 1)
        fence.extend(sentAt: fence.clock.now() - .seconds(10), ttl: 5)
        #expect(!fence.isOpen)
        #expect(fence.remaining == 0)
    }

    @Test("never moved backwards by an older keep-alive answered late")
    func monotonic() {
        let fence = LeaseFence(margin: 1)
        fence.extend(sentAt: fence.clock.now(), ttl: 60)
        fence.extend(sentAt: fence.clock.now() - .seconds(58), ttl: 60)
        #expect(fence.remaining > 50)
    }
}

/// Errors of statements that carry a secret never repeat the server's message, which may quote it.
@Suite("Host errors")
struct HostErrorTests {
    @Test("a refused statement with a secret shows its code and the redacted statement only")
    func withheld() {
        let server = MariaDBError(
            code: 1470, sqlState: "HY000", message: "String 'hunter2hunter2' is too long for MASTER_PASSWORD", operation: .query)
        let secret = HostError(
            host: "db1001", statement: "CHANGE MASTER TO MASTER_PASSWORD = <secret>", failure: .refused(server), carriesSecret: true)
        #expect(!secret.description.contains("hunter2"))
        #expect(secret.description.contains("[1470/HY000]") && secret.description.contains("MASTER_PASSWORD = <secret>"))
        let plain = HostError(host: "db1001", statement: "STOP SLAVE", failure: .refused(server))
        #expect(plain.description.contains("is too long"))
    }
}
