import EtcdClient
import Foundation
import Observation
import Policy
import Topology
import TopologyStore

/// `marina status` and `GET /api/v1/status`: each section as committed and as the agents observe it.
public enum StatusView {
    /// The sections (all, or `section` alone) from one snapshot. Throws `ViewProblem` for a
    /// section that is unknown, or staged and not committed yet.
    public static func sections(_ site: SiteSnapshot, section: String?, now: Date) throws -> [StatusReport.SectionStatus] {
        let topology = site.committedTopology ?? Topology()
        let automatic = try decodePolicyState(site.policyState)
        let sections = topology.sections.values.filter { section == nil || $0.name == section }.sorted { $0.name < $1.name }
        if let section, sections.isEmpty {
            throw site.staged.topology.sections[section] == nil
                ? ViewProblem.unknownSection(section)
                : ViewProblem(
                    .notFound, code: "section_not_committed", "section \(section) is staged but not committed yet: `marina config diff`")
        }
        return sections.map {
            StatusReport.SectionStatus(
                $0, topology: topology, observations: site.observations, now: now, automatic: automatic,
                operation: site.locks[$0.name], uncommitted: site.uncommitted)
        }
    }
}

public enum StatusReport {
    public struct Member: Encodable, Sendable {
        public var name: String
        public var configuredRole: String
        public var observedRole: String
        public var reachable: Bool?
        public var error: String?
        public var readOnly: Bool?
        public var source: String?
        public var ioThread: String?
        public var sqlThread: String?
        public var replicationError: String?
        public var heartbeatLag: Double?
        public var gtidCurrentPos: String?
        public var observedAt: Date?
        public var ageSeconds: Double?
        public var lastGoodProbeAt: Date?
        /// Pooling as configured, and the automatic policy's hold on it (distinct from a human's depool).
        public var pooled: Bool?
        public var percentage: Int?
        public var automatic: String?
        /// A failover replaced it as the primary: `needs rejoin since failover ...`.
        public var needsRejoin: String?
        /// The agent keeps it read-only: `since ...: reason`.
        public var selfFenced: String?
        /// Managed variables written to its option file that only a restart applies.
        public var pendingRestart: [String]? = nil
        /// Why its agent cannot write its option file.
        public var optionFileError: String? = nil
    }

    public struct SectionStatus: Encodable, Sendable {
        public var name: String
        public var datacenter: String
        /// As committed.
        public var primary: String
        public var readOnly: Bool
        public var members: [Member]
        /// The operation holding the section's lock, if one runs.
        public var operation: String?
        /// Staged changes of this section not committed yet (`datacenter key: before → after`).
        public var uncommitted: [String]?

        public init(
            _ section: Section, topology: Topology, observations: [String: Observation], now: Date, automatic: PolicyState,
            operation: String? = nil, uncommitted: [ConfigChange] = []
        ) {
            name = section.name
            datacenter = section.datacenter
            primary = section.primary
            readOnly = section.readOnly
            self.operation = operation
            let own = uncommitted.filter { $0.key != "hostsByName" && $0.entry == GeneratedConfig.mediaWikiName(section.name) }
                .map { "\($0.datacenter) \($0.key): \($0.before ?? "absent") → \($0.after ?? "absent")" }
            self.uncommitted = own.isEmpty ? nil : own
            let addresses = Dictionary(topology.instances.values.map { ("\($0.host):\($0.port)", $0.name) }, uniquingKeysWith: { a, _ in a })
            members = topology.members(of: section.name).map { instance, membership in
                let configured = section.primary == instance.name ? "primary" : "replica"
                let held =
                    automatic.managed[instance.name]?.section == section.name
                    ? automatic.describe(instance.name)
                    : automatic.refusals[instance.name].map { "automatic \($0.action) refused: \($0.reason)" }
                let rejoin = membership.needsRejoin?.description
                guard let observation = observations[instance.name] else {
                    return Member(
                        name: instance.name, configuredRole: configured, observedRole: "no observation (agent gone?)",
                        pooled: membership.pooled, percentage: membership.percentage, automatic: held, needsRejoin: rejoin)
                }
                let channel = observation.replication.first
                let source = channel.map { addresses["\($0.sourceHost):\($0.sourcePort)"] ?? "\($0.sourceHost):\($0.sourcePort)" }
                let observed =
                    !observation.reachable
                    ? "unreachable"
                    : channel != nil
                        ? "replica"
                        : observation.readOnly == false ? "primary" : "read-only, no source"
                let errors = [channel?.lastIOError, channel?.lastSQLError].compactMap { $0 }.filter { !$0.isEmpty }
                return Member(
                    name: instance.name, configuredRole: configured, observedRole: observed, reachable: observation.reachable,
                    error: observation.error, readOnly: observation.readOnly, source: source, ioThread: channel?.ioThread,
                    sqlThread: channel?.sqlThread, replicationError: errors.isEmpty ? nil : errors.joined(separator: "; "),
                    heartbeatLag: observation.heartbeatLag, gtidCurrentPos: observation.gtidCurrentPos?.description,
                    observedAt: observation.observedAt, ageSeconds: now.timeIntervalSince(observation.observedAt),
                    lastGoodProbeAt: observation.lastGoodProbeAt, pooled: membership.pooled, percentage: membership.percentage,
                    automatic: held, needsRejoin: rejoin,
                    selfFenced: observation.selfFence.map { "since \($0.since.formatted(.iso8601)): \($0.reason)" },
                    pendingRestart: observation.pendingRestart?.isEmpty == false ? observation.pendingRestart : nil,
                    optionFileError: observation.optionFileError)
            }
        }

        public func render() -> String {
            var lines = [
                "section \(name)  (\(datacenter), primary \(primary.isEmpty ? "none" : primary), \(readOnly ? "READ-ONLY" : "read-write"))"
                    + (operation.map { "  operation \($0) running" } ?? "")
            ]
            for change in uncommitted ?? [] { lines.append("  staged, not committed: \(change)") }
            let names = Set(members.map(\.name))
            func add(_ member: Member, depth: Int) {
                lines.append((depth == 0 ? "  " : String(repeating: "   ", count: depth) + "└─ ") + describe(member))
                for child in members where child.source == member.name && child.name != member.name && depth < 8 {
                    add(child, depth: depth + 1)
                }
            }
            for root in members where root.source == nil || !names.contains(root.source!) { add(root, depth: 0) }
            return lines.joined(separator: "\n")
        }

        private func describe(_ member: Member) -> String {
            var parts = [member.name, "configured \(member.configuredRole)"]
            let mismatch = member.observedRole != member.configuredRole && member.reachable == true
            parts.append("observed \(member.observedRole)\(mismatch ? " (!)" : "")")
            if member.reachable == false {
                parts.append("ERROR: \(member.error ?? "?")")
                if let last = member.lastGoodProbeAt { parts.append("last good probe \(Int(Date().timeIntervalSince(last))) s ago") }
            } else if member.reachable == true {
                parts.append(member.readOnly == true ? "read_only=ON" : "read_only=OFF")
                if let source = member.source {
                    parts.append("from \(source) io=\(member.ioThread ?? "?") sql=\(member.sqlThread ?? "?")")
                }
                if let lag = member.heartbeatLag { parts.append(String(format: "lag %.2fs", lag)) }
                if let gtid = member.gtidCurrentPos { parts.append("gtid \(gtid.isEmpty ? "(empty)" : gtid)") }
                if let error = member.replicationError { parts.append("REPLICATION ERROR: \(error)") }
                if let error = member.error { parts.append("PROBE ERROR: \(error)") }
            }
            if let age = member.ageSeconds { parts.append(String(format: "age %.1fs", age)) }
            if member.configuredRole == "replica", let pooled = member.pooled {
                parts.append(pooled ? "pooled\(member.percentage.map { $0 == 100 ? "" : " \($0)%" } ?? "")" : "DEPOOLED")
            }
            if let automatic = member.automatic { parts.append("[\(automatic)]") }
            if let rejoin = member.needsRejoin { parts.append("NEEDS REJOIN: \(rejoin)") }
            if let fence = member.selfFenced { parts.append("SELF-FENCED \(fence)") }
            if let pending = member.pendingRestart { parts.append("pending restart: \(pending.joined(separator: ", "))") }
            if let error = member.optionFileError { parts.append("option file: \(error)") }
            return parts.joined(separator: "  ")
        }
    }
}

/// The automatic depool state from its raw value (empty when it never acted).
public func decodePolicyState(_ kv: KeyValue?) throws -> PolicyState {
    guard let kv else { return PolicyState() }
    do {
        return try PolicyJSON.decode(kv.value)
    } catch {
        throw StoreError.corrupt(key: kv.key, problem: "is not the policy state: \(error)")
    }
}
