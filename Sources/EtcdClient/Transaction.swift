/// An etcd transaction: if every compare holds, the `success` operations run, else the
/// `failure` ones; either way atomically, at one revision.
public struct Transaction: Sendable {
    public var compares: [Compare]
    public var success: [KVOperation]
    public var failure: [KVOperation]

    public init(compares: [Compare], success: [KVOperation], failure: [KVOperation] = []) {
        self.compares = compares
        self.success = success
        self.failure = failure
    }
}

/// One condition of a transaction on one key (or a range of keys with `rangeEnd`).
public struct Compare: Sendable {
    public enum Target: Sendable {
        case value([UInt8])
        /// Writes since creation; `version(0)` means "the key does not exist".
        case version(Int64)
        case createRevision(Int64)
        case modRevision(Int64)
    }

    public enum Result: String, Sendable {
        case equal = "EQUAL", notEqual = "NOT_EQUAL", greater = "GREATER", less = "LESS"
    }

    public var key: String
    public var target: Target
    public var result: Result

    public init(key: String, _ result: Result = .equal, _ target: Target) {
        self.key = key
        self.target = target
        self.result = result
    }

    /// The key does not exist.
    public static func absent(_ key: String) -> Compare { Compare(key: key, .equal, .version(0)) }

    /// The key was last written at `revision` (0 for "does not exist").
    public static func unchanged(_ key: String, since revision: Int64) -> Compare {
        Compare(key: key, .equal, .modRevision(revision))
    }
}

/// One operation inside a transaction.
public enum KVOperation: Sendable {
    case get(String, prefix: Bool = false)
    case put(String, [UInt8], lease: Int64 = 0)
    case delete(String, prefix: Bool = false)
    /// Deletes every key in `[from, to)`.
    case deleteRange(from: String, to: String)

    public static func put(_ key: String, _ value: String, lease: Int64 = 0) -> KVOperation {
        .put(key, Array(value.utf8), lease: lease)
    }
}

/// The result of one operation inside a transaction, in the order they were given.
public enum KVResult: Sendable, Equatable {
    case get(RangeResult)
    case put(revision: Int64)
    case delete(deleted: Int64)
}

/// What a transaction did. `succeeded == false` means a compare did not hold and the
/// `failure` branch ran: a lost race, reported as a value.
public struct TransactionResult: Sendable, Equatable {
    public var succeeded: Bool
    /// The store revision after the transaction (the revision of its writes, if any).
    public var revision: Int64
    public var results: [KVResult]
}
