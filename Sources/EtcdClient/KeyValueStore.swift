/// What Marina needs from its coordination store, and what every implementation promises.
/// `EtcdClient` implements it against etcd; `MemoryStore` (module `MarinaTwins`) is the
/// in-memory twin that the controller's decision tests run on.
///
/// The contract:
/// - **Revisions.** The store has one revision counter. Every transaction that writes moves it
///   by exactly one, and every key it writes gets that revision as `modRevision`. A read gives
///   the revision it saw; nothing written after it is in the answer.
/// - **Transactions are atomic compare-and-swap.** Either every compare holds and every
///   `success` operation applies, or the `failure` operations run instead, at one revision. A
///   compare that does not hold is a value (`succeeded == false`), never an error: a lost race
///   is an ordinary outcome.
/// - **Leases.** A key written with a lease disappears when the lease expires (its TTL passes
///   without a keep-alive *received* by the store) or is revoked, in one revision, as a delete.
///   `keepAlive` gives the new TTL or `nil` once the lease is gone; a holder that cannot renew
///   must assume the lease ends one TTL after the last keep-alive it *sent* that succeeded.
/// - **Watches** deliver every change under a key or prefix from a start revision, in revision
///   order, none skipped or repeated, and end with an error when that revision is compacted.
/// - **Timeouts.** Every request has a deadline of its own (`EtcdConfiguration.requestTimeout`
///   for the real client): past it the request fails like any other, as described next.
/// - **Failures.** An error thrown by a read means nothing was read. An error thrown by a write
///   means it *may* have applied (`EtcdError.Kind.outcomeUnknown` when the request was sent):
///   the caller re-reads before deciding. "Unreachable" is a thrown error whose kind is
///   `.unavailable`; "refused" is one the store answered (`.server`).
public protocol KeyValueStore: Sendable {
    /// One key, or with `prefix` every key that starts with `key`, at the latest revision or at `revision`.
    func range(_ key: String, prefix: Bool, revision: Int64?, limit: Int64?, keysOnly: Bool) async throws -> RangeResult
    /// Runs the transaction atomically; a compare that does not hold is `succeeded == false`.
    func transaction(_ transaction: Transaction) async throws -> TransactionResult
    /// A lease of `ttl` seconds.
    func grantLease(ttl: Int64) async throws -> Lease
    /// Renews a lease once: its new TTL, or `nil` once it no longer exists.
    func keepAlive(_ leaseID: Int64) async throws -> Int64?
    /// Revokes a lease and deletes its keys; false if it did not exist.
    @discardableResult
    func revokeLease(_ leaseID: Int64) async throws -> Bool
    /// Every change under `key` (or the prefix) from `startRevision`, or from now.
    func watchChanges(_ key: String, prefix: Bool, startRevision: Int64?) -> AsyncThrowingStream<WatchResponse, Error>
}

/// etcd's v2 keys, which MediaWiki's `EtcdConfig` reads: written only by the configuration
/// mirror, apart from the v3 keys and outside their transactions.
public protocol V2Store: Sendable {
    func v2Put(_ path: String, _ value: String) async throws
    func v2Get(_ path: String, recursive: Bool) async throws -> V2Node?
}

/// The store the controller and the source-of-truth code run on: v3 keys and the v2 mirror.
public typealias CoordinationStore = KeyValueStore & V2Store

extension KeyValueStore {
    public func get(
        _ key: String, prefix: Bool = false, revision: Int64? = nil, limit: Int64? = nil,
        keysOnly: Bool = false
    ) async throws -> RangeResult {
        try await range(key, prefix: prefix, revision: revision, limit: limit, keysOnly: keysOnly)
    }

    /// The value of one key, or `nil` when it does not exist.
    public func value(_ key: String) async throws -> KeyValue? {
        try await range(key, prefix: false, revision: nil, limit: nil, keysOnly: false).kvs.first
    }

    /// Writes one key unconditionally; gives the revision of the write.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) async throws -> Int64 {
        try await transaction(Transaction(compares: [], success: [.put(key, value, lease: lease)])).revision
    }

    @discardableResult
    public func put(_ key: String, _ value: String, lease: Int64 = 0) async throws -> Int64 {
        try await put(key, Array(value.utf8), lease: lease)
    }

    /// Deletes one key, or every key under a prefix; gives how many were deleted.
    @discardableResult
    public func delete(_ key: String, prefix: Bool = false) async throws -> Int64 {
        let result = try await transaction(Transaction(compares: [], success: [.delete(key, prefix: prefix)]))
        if case .delete(let deleted) = result.results.first { return deleted }
        return 0
    }
}

extension EtcdClient: KeyValueStore, V2Store {
    public func range(_ key: String, prefix: Bool, revision: Int64?, limit: Int64?, keysOnly: Bool) async throws -> RangeResult {
        try await get(key, prefix: prefix, revision: revision, limit: limit, keysOnly: keysOnly)
    }

    public func watchChanges(_ key: String, prefix: Bool, startRevision: Int64?) -> AsyncThrowingStream<WatchResponse, Error> {
        watch(key, prefix: prefix, startRevision: startRevision)
    }
}
