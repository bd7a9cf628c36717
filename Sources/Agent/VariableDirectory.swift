import EtcdClient
import Logging
import StoredRecords

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The managed variables of every section as one agent's instances need them: the committed
/// ones (`committed-variables/`, what drift judges against) and the ones the last successful
/// variable sync released (`synced-variables/`, what goes into option files), with each
/// section's committed primary. Its own loop (`run`) reads `committed` and both prefixes every
/// `interval` in one transaction, and `generated/` again when `committed` moved. The probe
/// loops only read what it holds: an etcd that does not answer never delays a probe.
actor VariableDirectory {
    let etcd: EtcdClient
    let root: String
    let interval: Double
    let logger: Logger
    private var committedRevision: Int64 = -1
    /// Whether a commit was read at least once (before that, nothing is known).
    private var known = false
    private var sections = [String: StoredCommittedVariables.Values]()
    private var synced = [String: StoredCommittedVariables.Values]()
    private var primaries = [String: String]()
    private var unreadable = [String: String]()

    init(etcd: EtcdClient, root: String, interval: Double, logger: Logger) {
        self.etcd = etcd
        self.root = root
        self.interval = interval
        self.logger = logger
    }

    /// Reads every `interval` until cancelled. A failure is logged once until a read succeeds;
    /// what was read before is kept.
    func run() async {
        var failing: String?
        while !Task.isCancelled {
            do {
                try await refresh()
                if failing != nil { logger.notice("managed variables: the committed values are read again") }
                failing = nil
            } catch {
                if failing == nil {
                    logger.warning("managed variables: the committed values cannot be read (\(error)); the last ones read are kept")
                }
                failing = "\(error)"
            }
            try? await Task.sleep(for: .milliseconds(Int(interval * 1000)))
        }
    }

    /// What the latest commit read wants on `instance`, a member of `section` (`released:
    /// false`), or what the last variable sync of the section released (`released: true`): its
    /// variables for the instance's role, keyed by lowercase name; empty when the section has
    /// none. Nil before anything was read. Throws when the section's value cannot be read.
    func desired(instance: String, section: String, released: Bool = false) throws -> [String: String]? {
        guard known else { return nil }
        if let problem = unreadable[section] { throw UnreadableVariables(problem: problem) }
        return (released ? synced : sections)[section]?.values(isPrimary: primaries[section] == instance) ?? [:]
    }

    private func refresh() async throws {
        let committedPrefix = root + "/committed-variables/"
        let syncedPrefix = root + "/synced-variables/"
        let result = try await etcd.transaction(
            Transaction(
                compares: [], success: [.get(root + "/committed"), .get(committedPrefix, prefix: true), .get(syncedPrefix, prefix: true)]))
        guard case .get(let head) = result.results[0], case .get(let stored) = result.results[1], case .get(let released) = result.results[2]
        else { return }
        guard let committed = head.kvs.first else {
            (committedRevision, known) = (0, true)
            (sections, synced, primaries, unreadable) = ([:], [:], [:], [:])
            return
        }
        if committed.modRevision != committedRevision {
            primaries = try PrimaryDirectory.primaries(try await etcd.get(root + "/generated/", prefix: true).kvs)
            committedRevision = committed.modRevision
        }
        var problems = [String: String]()
        func parse(_ range: RangeResult, prefix: String) -> [String: StoredCommittedVariables.Values] {
            var found = [String: StoredCommittedVariables.Values]()
            for kv in range.kvs {
                let section = String(kv.key.dropFirst(prefix.count))
                do {
                    found[section] = try StoredJSON.decode(StoredCommittedVariables.self, from: kv.value, key: kv.key, schema: 1).variables
                } catch {
                    problems[section] = "\(error)"
                }
            }
            return found
        }
        sections = parse(stored, prefix: committedPrefix)
        synced = parse(released, prefix: syncedPrefix)
        unreadable = problems
        known = true
    }
}

/// The part of `committed-variables/<section>` and `synced-variables/<section>` the agent reads (the store's
/// `CommittedVariables`; the agent depends on neither the Topology module nor Yams).
struct StoredCommittedVariables: Decodable {
    struct Values: Decodable, Sendable, Equatable {
        var all: [String: String]
        var primary: [String: String]
        var replica: [String: String]

        enum CodingKeys: String, CodingKey { case all, primary, replica }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            all = try c.decodeIfPresent([String: String].self, forKey: .all) ?? [:]
            primary = try c.decodeIfPresent([String: String].self, forKey: .primary) ?? [:]
            replica = try c.decodeIfPresent([String: String].self, forKey: .replica) ?? [:]
        }

        /// `all`, overridden by the role's values (as `ManagedVariables.values(isPrimary:)`),
        /// keyed by lowercase name.
        func values(isPrimary: Bool) -> [String: String] {
            let merged = all.merging(isPrimary ? primary : replica) { _, role in role }
            return Dictionary(merged.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { _, last in last })
        }
    }

    var section: String
    var sequence: Int
    var variables: Values
}

/// A section's committed variables that the agent cannot read (another schema, not JSON).
struct UnreadableVariables: Error, CustomStringConvertible {
    var problem: String
    var description: String { "the committed variables cannot be read: \(problem)" }
}
