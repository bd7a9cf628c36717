import Drift
import Foundation
import Operations
import StoredRecords
import Topology
import TopologyStore

/// `marina drift` and `GET /api/v1/drift`: every difference between the committed source of
/// truth and what the agents (and the leader's views) report, from one snapshot.
public enum DriftView {
    /// The thresholds a caller may change (seconds).
    public struct Thresholds: Sendable, Equatable {
        /// Heartbeat lag above which a pooled replica is drift.
        public var maxLag: Double = 5
        /// Age after which a primary's own heartbeat is stale.
        public var heartbeatStale: Double = 10
        /// Age after which an observation is stale.
        public var staleAfter: Double = 60

        public init(maxLag: Double = 5, heartbeatStale: Double = 10, staleAfter: Double = 60) {
            self.maxLag = maxLag
            self.heartbeatStale = heartbeatStale
            self.staleAfter = staleAfter
        }

        /// Each must be a finite number of seconds above 0; `names` are how the caller spells them.
        public func validate(names: (maxLag: String, heartbeatStale: String, staleAfter: String)) throws {
            for (name, value) in [(names.maxLag, maxLag), (names.heartbeatStale, heartbeatStale), (names.staleAfter, staleAfter)]
            where !value.isFinite || value <= 0 {
                throw ViewProblem(.badRequest, code: "invalid_threshold", "\(name) must be a finite number of seconds above 0 (is \(value))")
            }
        }
    }

    /// The findings (all severities), of `section` alone when given.
    public static func findings(
        _ site: SiteSnapshot, store: TopologyStore, section: String?, thresholds: Thresholds, now: Date
    ) async throws -> [DriftFinding] {
        let topology = site.committedTopology ?? Topology()
        if let section, topology.sections[section] == nil, site.staged.topology.sections[section] == nil {
            throw ViewProblem.unknownSection(section)
        }
        var snapshot = DriftSnapshot(
            topology: topology, observations: site.observations, uncommitted: site.uncommitted,
            now: now, maxLag: thresholds.maxLag, heartbeatStaleAfter: thresholds.heartbeatStale,
            observationStaleAfter: thresholds.staleAfter)
        snapshot.refusals = try decodePolicyState(site.policyState).refusals.map { name, refusal in
            AutomaticRefusal(instance: name, section: refusal.section, action: refusal.action, reason: refusal.reason, since: refusal.since)
        }
        snapshot.locks = site.locks
        snapshot.grants = site.observedGrants
        for (name, bytes) in site.unreachablePrimaries {
            // Written by the leader under its lease; one that does not decode is reported as such.
            guard let view = try? StoredJSON.decode(PrimaryUnreachable.self, from: bytes) else {
                throw StoreError.corrupt(key: store.keys.unreachablePrimary(name), problem: "is not a controller's view of a primary")
            }
            snapshot.controllerCannotReach[name] = ControllerView(
                primary: view.primary, reason: view.reason, since: view.since, controller: view.controller)
        }
        if let mirror = site.committed.siteMirror {
            snapshot.mirror = mirrorReading(await store.readMirror(mirror), committed: site.committed.configs)
        }
        return Drift.findings(snapshot, section: section)
    }

    /// The site mirror as the drift engine takes it: each datacenter's v2 value decoded.
    static func mirrorReading(_ content: MirrorContent, committed: [String: GeneratedConfig]) -> MirrorReading {
        var mirrored = [String: MirroredValue]()
        for (datacenter, value) in content.values {
            do {
                mirrored[datacenter] = .config(try ConfigMirror.decodeV2Value(value))
            } catch {
                mirrored[datacenter] = .unreadable(SchemaError.from(error, root: "value").description)
            }
        }
        return MirrorReading(location: "/v2/keys/\(content.site.v2Prefix)", committed: committed, mirrored: mirrored, readError: content.readError)
    }
}
