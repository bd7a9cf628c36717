import EtcdClient
import Observation
import StoredRecords
import Topology

/// Everything `marina drift` and `marina status` judge, read at one etcd revision.
public struct SiteSnapshot: Sendable {
    /// The etcd revision every value was read at.
    public var revision: Int64
    public var staged: StagedSnapshot
    public var committed: CommittedState
    /// The committed topology (the head's history entry); nil before the first commit.
    public var committedTopology: Topology?
    public var observations: [String: Observation]
    /// Section → id of the operation holding its lock.
    public var locks: [String: String]
    /// The raw automatic depool state (`policy/state`), for the caller to decode; nil when never written.
    public var policyState: KeyValue?
    /// What a commit would change now: the staged objects' configuration versus the committed one.
    public var uncommitted: [ConfigChange]
    /// Section → the raw `failover/unreachable/<section>` value the leader wrote, for the caller to decode.
    public var unreachablePrimaries: [String: [UInt8]] = [:]
    /// Instance → what the leader's grant watch last found of its managed accounts.
    public var observedGrants: [String: ObservedGrants] = [:]
}

extension TopologyStore {
    /// The staged objects, the committed configuration and head, the site mirror setting, every
    /// observation, the section locks and the automatic depool state in one transaction, then
    /// the committed topology (the history entry the head names) read at that same revision:
    /// one consistent view, whatever writes happen meanwhile.
    public func snapshot() async throws -> SiteSnapshot {
        let result = try await etcd.transaction(
            Transaction(
                compares: [],
                success: readOperations + [
                    .get(keys.observed, prefix: true), .get(keys.locks, prefix: true), .get(keys.policyState),
                    .get(keys.unreachablePrimaries, prefix: true), .get(keys.observedGrants, prefix: true),
                ]))
        let ranges = Self.ranges(of: result)
        let read = readOperations.count
        guard ranges.count == read + 5 else { throw EtcdError(.malformedResponse, "the snapshot transaction returned \(ranges.count) ranges") }
        let (staged, committed) = try parseRead(Array(ranges[0..<read]), revision: result.revision)
        let observations = try decodeObservations(ranges[read])
        var locks = [String: String]()
        for kv in ranges[read + 1].kvs { locks[String(kv.key.dropFirst(keys.locks.count))] = String(decoding: kv.value, as: UTF8.self) }
        let topology = try await committedTopology(committed, atRevision: result.revision)
        var unreachable = [String: [UInt8]]()
        for kv in ranges[read + 3].kvs { unreachable[String(kv.key.dropFirst(keys.unreachablePrimaries.count))] = kv.value }
        var grants = [String: ObservedGrants]()
        for kv in ranges[read + 4].kvs {
            grants[String(kv.key.dropFirst(keys.observedGrants.count))] = try StoredJSON.decode(
                ObservedGrants.self, from: kv.value, key: kv.key, schema: 1)
        }
        return SiteSnapshot(
            revision: result.revision, staged: staged, committed: committed, committedTopology: topology,
            observations: observations, locks: locks, policyState: ranges[read + 2].kvs.first,
            uncommitted: changes(from: committed, base: topology ?? Topology(), to: staged.topology), unreachablePrimaries: unreachable,
            observedGrants: grants)
    }

    /// The topology of the head's history entry as of `revision`. History entries never change
    /// once written, so if etcd compacted that revision away meanwhile the current value is
    /// the same entry.
    func committedTopology(_ committed: CommittedState, atRevision revision: Int64) async throws -> Topology? {
        guard committed.sequence > 0 else { return nil }
        let key = keys.history(committed.sequence)
        let range: RangeResult
        do {
            range = try await etcd.get(key, revision: revision)
        } catch let error as EtcdError where error.grpcCode == GRPCCode.outOfRange {
            range = try await etcd.get(key)
        }
        guard let kv = range.kvs.first else {
            throw StoreError.corrupt(key: key, problem: "the committed head names this history entry, which does not exist")
        }
        return try StoredJSON.decode(HistoryEntry.self, from: kv.value, key: kv.key).topology.topology
    }
}
