import Dispatch

/// A serial dispatch queue that runs blocking C calls (libmariadb, libcurl) away from
/// Swift's cooperative thread pool, and hands the result back to an `async` caller.
///
/// Every libmariadb and libcurl call blocks its thread until the network answers. Run on the
/// cooperative pool, a handful of slow servers would starve every other task of the process;
/// run here, they occupy threads of their own that Dispatch adds as needed.
///
/// Work submitted to a serial `BlockingQueue` runs in submission order, one item at a time,
/// which is what a connection handle that is not thread-safe needs.
public final class BlockingQueue: Sendable {
    fileprivate let queue: DispatchQueue

    /// A `concurrent` queue runs independent calls side by side (each on its own thread); a
    /// serial one runs them one at a time.
    public init(label: String, concurrent: Bool = false) {
        self.queue = DispatchQueue(label: label, attributes: concurrent ? [.concurrent] : [])
    }

    /// Runs `body` on the queue and returns its result or rethrows its error.
    public func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Swift.Result { try body() })
            }
        }
    }
}

extension BlockingQueue {
    /// Starts `body` on the queue without waiting for it: for loops that block for a long
    /// time (a watch stream) and report through their own channel.
    public func start(_ body: @escaping @Sendable () -> Void) {
        queue.async(execute: body)
    }
}
