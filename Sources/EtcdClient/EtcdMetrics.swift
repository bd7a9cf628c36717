import CoreMetrics

/// What the client reports through swift-metrics: the duration of every request and the
/// requests that failed, per kind of request. A process that bootstraps no metrics backend
/// (the CLI) reports to nothing.
///
/// - `marina_etcd_request_duration_seconds{operation}`: a timer (a histogram in Prometheus),
///   from the request sent to its answer decoded, endpoint failover included. Streaming watches
///   have no duration: they last as long as their caller.
/// - `marina_etcd_request_errors_total{operation}`: requests that threw (no endpoint answered,
///   an error answer, an answer that does not decode, a write whose outcome is unknown) and
///   watch streams that broke (each reconnection counts once). A lost compare is an answer,
///   not an error.
///
/// The `operation` label is one of `Operation`'s few values, never a key or an error text.
public enum EtcdMetrics {
    public static let requestDuration = "marina_etcd_request_duration_seconds"
    public static let requestErrors = "marina_etcd_request_errors_total"

    /// Buckets for `requestDuration`: a loopback request takes about a millisecond, a slow
    /// cluster or a failover between endpoints seconds.
    public static let durationBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10),
    ]

    /// The kinds of request, the `operation` label.
    public enum Operation: String, CaseIterable, Sendable {
        case range, put, delete, txn, compact
        case leaseGrant = "lease_grant"
        case leaseKeepAlive = "lease_keepalive"
        case leaseRevoke = "lease_revoke"
        case leaseTimeToLive = "lease_timetolive"
        case status, watch
        case v2Get = "v2_get"
        case v2Put = "v2_put"
        case other

        /// The operation of a v3 gateway path (`/v3/kv/range`, ...).
        public init(path: String) {
            switch path {
            case "/v3/kv/range": self = .range
            case "/v3/kv/put": self = .put
            case "/v3/kv/deleterange": self = .delete
            case "/v3/kv/txn": self = .txn
            case "/v3/kv/compaction": self = .compact
            case "/v3/lease/grant": self = .leaseGrant
            case "/v3/lease/keepalive": self = .leaseKeepAlive
            case "/v3/lease/revoke": self = .leaseRevoke
            case "/v3/lease/timetolive": self = .leaseTimeToLive
            case "/v3/maintenance/status": self = .status
            case "/v3/watch": self = .watch
            default: self = .other
            }
        }
    }

    /// Creates every error counter at zero, so that a rate over them exists before the first error.
    public static func registerCounters() {
        for operation in Operation.allCases { _ = Counter(label: requestErrors, dimensions: [("operation", operation.rawValue)]) }
    }

    /// Runs one request, timing it, and counting it as an error if it throws.
    static func measure<T>(_ operation: Operation, _ request: () async throws -> T) async throws -> T {
        let started = ContinuousClock.now
        defer {
            let elapsed = ContinuousClock.now - started
            CoreMetrics.Timer(label: requestDuration, dimensions: [("operation", operation.rawValue)])
                .recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        }
        do {
            return try await request()
        } catch {
            failed(operation)
            throw error
        }
    }

    /// Counts one failed request (or broken watch stream).
    static func failed(_ operation: Operation) {
        Counter(label: requestErrors, dimensions: [("operation", operation.rawValue)]).increment()
    }
}
