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

/// One condition of a transaction on one key, or on every key of a range with `rangeEnd`
/// (etcd's `range_end`: the keys in `[key, rangeEnd)`).
///
/// Over a range, etcd requires the condition of every key in it; an empty range holds for
/// every target but `value`, compared as a key that does not exist (version, create and mod
/// revision 0). So `version(0)` over a range says "no key in the range", and
/// `less, modRevision(r + 1)` says "no key in the range was created or written after
/// revision `r`" (a deleted key is not seen).
public struct Compare: Sendable {
    public enum Target: Sendable {
        case value([UInt8])
        /// Writes since creation; `version(0)` means "the key does not exist".
        case version(Int64)
        case createRevision(Int64)
        case modRevision(Int64)
    }

    public enum Result: String, Sendable {
        case equal = "EQUAL"
        case notEqual = "NOT_EQUAL"
        case greater = "GREATER"
        case less = "LESS"
    }

    public var key: String
    /// The end of the range, exclusive; nil compares `key` alone.
    public var rangeEnd: [UInt8]?
    public var target: Target
    public var result: Result

    public init(key: String, rangeEnd: [UInt8]? = nil, _ result: Result = .equal, _ target: Target) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.target = target
        self.result = result
    }

    /// The condition over every key that starts with `prefix`.
    public static func prefix(_ prefix: String, _ result: Result = .equal, _ target: Target) -> Compare {
        Compare(key: prefix, rangeEnd: Wire.prefixEnd(prefix), result, target)
    }

    /// No key starts with `prefix`.
    public static func noKey(withPrefix prefix: String) -> Compare { .prefix(prefix, .equal, .version(0)) }

    /// No key that starts with `prefix` was created or written after `revision` (a read's
    /// revision): the keys there are as that read saw them, but for deletions.
    public static func unchanged(prefix: String, since revision: Int64) -> Compare {
        .prefix(prefix, .less, .modRevision(revision + 1))
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

    public init(succeeded: Bool, revision: Int64, results: [KVResult]) {
        self.succeeded = succeeded
        self.revision = revision
        self.results = results
    }
}
