@testable import Controller
import Testing

/// The leader's local deadline, on the monotonic clock, without waiting on it: instants are
/// given, not read, except for `isOpen`, which is checked only far from the deadline.
@Suite("Lease fence")
struct LeaseFenceTests {
    @Test("the margin: a fifth of the TTL, at least half a second, at most half the TTL", arguments: [
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

        fence.extend(sentAt: .now, ttl: 60)
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
        fence.extend(sentAt: .now - .seconds(10), ttl: 5)
        #expect(!fence.isOpen)
        #expect(fence.remaining == 0)
    }

    @Test("never moved backwards by an older keep-alive answered late")
    func monotonic() {
        let fence = LeaseFence(margin: 1)
        fence.extend(sentAt: .now, ttl: 60)
        fence.extend(sentAt: .now - .seconds(58), ttl: 60)
        #expect(fence.remaining > 50)
    }
}
