/// One key as etcd stores it.
public struct KeyValue: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    public var createRevision: Int64
    public var modRevision: Int64
    /// Number of writes to the key since it was created; 0 means the key does not exist.
    public var version: Int64
    /// The lease the key is bound to, 0 for none.
    public var lease: Int64

    public init(key: String, value: [UInt8], createRevision: Int64 = 0, modRevision: Int64 = 0, version: Int64 = 0, lease: Int64 = 0) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }

    public var stringValue: String { String(decoding: value, as: UTF8.self) }
}

/// The answer to a read: the keys and the store revision the read saw.
public struct RangeResult: Sendable, Equatable {
    public var kvs: [KeyValue]
    /// The store's revision at the time of the read; a later compare-and-swap compares against it.
    public var revision: Int64
    /// Number of keys in the range (may exceed `kvs.count` when a limit was given).
    public var count: Int64

    public init(kvs: [KeyValue], revision: Int64, count: Int64) {
        self.kvs = kvs
        self.revision = revision
        self.count = count
    }
}

/// A change seen by a watch.
public struct WatchEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case put, delete }
    public var kind: Kind
    /// For a delete, only `key` and `modRevision` (the deletion's revision) are meaningful.
    public var kv: KeyValue
    public var previous: KeyValue?

    public init(kind: Kind, kv: KeyValue, previous: KeyValue? = nil) {
        self.kind = kind
        self.kv = kv
        self.previous = previous
    }
}

/// A lease granted by etcd.
public struct Lease: Sendable, Equatable {
    public var id: Int64
    /// Seconds the lease lives without a keep-alive.
    public var ttl: Int64

    public init(id: Int64, ttl: Int64) {
        self.id = id
        self.ttl = ttl
    }
}

/// What etcd knows of a lease.
public struct LeaseStatus: Sendable, Equatable {
    public var id: Int64
    /// Seconds left; `nil` when the lease has expired or was revoked.
    public var remaining: Int64?
    public var granted: Int64
    public var keys: [String]
}
