import Synchronization

/// A monotonic clock that moves only when a test says so: the time both twins and the
/// controller's lease fence read in decision tests.
public final class ManualClock: Sendable {
    private let elapsed = Mutex<Duration>(.zero)

    public init() {}

    /// Time since the clock was made.
    public var now: Duration { elapsed.withLock { $0 } }

    public func advance(by duration: Duration) {
        elapsed.withLock { $0 += duration }
    }

    public func advance(seconds: Double) {
        advance(by: .milliseconds(Int64(seconds * 1000)))
    }
}
