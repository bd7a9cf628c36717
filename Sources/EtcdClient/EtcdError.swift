/// An etcd request that failed. A transaction whose compare did not hold is *not* an error:
/// it is a `TransactionResult` with `succeeded == false`.
public struct EtcdError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No endpoint could be reached; `attempts` says what each one answered.
        case unavailable(attempts: [String])
        /// The request may or may not have been applied: the connection broke after it was sent.
        case outcomeUnknown(endpoint: String, reason: String)
        /// etcd answered with an error: the gRPC status code and etcd's message are kept.
        case server(grpcCode: Int, httpStatus: Int)
        /// A watch asked for history etcd has already compacted away. Re-read, then watch from
        /// the revision of that read.
        case compacted(compactRevision: Int64)
        /// The answer could not be understood.
        case malformedResponse
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// gRPC status code, for server errors.
    public var grpcCode: Int? {
        if case .server(let code, _) = kind { return code }
        return nil
    }

    /// etcd is out of reach (every endpoint), as opposed to answering with an error.
    public var isUnavailable: Bool {
        switch kind {
        case .unavailable, .outcomeUnknown: return true
        case .server(let code, _): return code == GRPCCode.unavailable
        default: return false
        }
    }

    public var description: String {
        switch kind {
        case .unavailable(let attempts):
            return "etcd unavailable: \(message) (\(attempts.joined(separator: "; ")))"
        case .outcomeUnknown(let endpoint, let reason):
            return "etcd request to \(endpoint) broke off after it was sent, outcome unknown: \(reason)"
        case .server(let code, let status):
            return "etcd error (gRPC code \(code), HTTP \(status)): \(message)"
        case .compacted(let revision):
            return "etcd history compacted up to revision \(revision): \(message)"
        case .malformedResponse:
            return "etcd answered something unreadable: \(message)"
        }
    }
}

/// The gRPC status codes etcd uses.
public enum GRPCCode {
    public static let invalidArgument = 3
    public static let notFound = 5
    public static let failedPrecondition = 9
    public static let outOfRange = 11
    public static let unavailable = 14
    public static let unauthenticated = 16
}
