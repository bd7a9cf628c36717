import EtcdClient
import Logging
import StoredRecords

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The committed managed variables of every section and each section's committed primary, as
/// one agent's instances need them. Its own loop (`run`) reads `committed` every `interval`,
/// and when it moved, `committed-variables/` and `generated/` again, in one transaction (one
/// revision: the variables and the primary of the same commit). The probe loops only read
/// what it holds: an etcd that does not answer never delays a probe.
actor VariableDirectory {
    let etcd: EtcdClient
    let root: String
    let interval: Double
    let logger: Logger
    private var committedRevision: Int64 = -1
    /// Whether a commit was read at least once (before that, nothing is known).
    private var known = false
    private var sections = [String: StoredCommittedVariables.Values]()
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

    /// What the latest commit read wants on `instance`, a member of `section`: its variables
    /// for the instance's role, keyed by lowercase name; empty when the section has none. Nil
    /// before any commit was read. Throws when the section's value cannot be read.
    func desired(instance: String, section: String) throws -> [String: String]? {
        guard known else { return nil }
        if let problem = unreadable[section] { throw UnreadableVariables(problem: problem) }
        return sections[section]?.values(isPrimary: primaries[section] == instance) ?? [:]
    }

    private func refresh() async throws {
        guard let committed = try await etcd.value(root + "/committed") else {
            (committedRevision, known) = (0, true)
            (sections, primaries, unreadable) = ([:], [:], [:])
            return
        }
        guard committed.modRevision != committedRevision else { return }
        let result = try await etcd.transaction(
            Transaction(
                compares: [],
                success: [.get(root + "/committed"), .get(root + "/committed-variables/", prefix: true), .get(root + "/generated/", prefix: true)]
            ))
        guard case .get(let head) = result.results[0], case .get(let stored) = result.results[1], case .get(let generated) = result.results[2]
        else { return }
        var found = [String: StoredCommittedVariables.Values]()
        var problems = [String: String]()
        let prefix = root + "/committed-variables/"
        for kv in stored.kvs {
            let section = String(kv.key.dropFirst(prefix.count))
            do {
                found[section] = try StoredJSON.decode(StoredCommittedVariables.self, from: kv.value, key: kv.key, schema: 1).variables
            } catch {
                problems[section] = "\(error)"
            }
        }
        primaries = try PrimaryDirectory.primaries(generated.kvs)
        sections = found
        unreadable = problems
        committedRevision = head.kvs.first?.modRevision ?? 0
        known = true
    }
}

/// The part of `committed-variables/<section>` the agent reads (the store's
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
