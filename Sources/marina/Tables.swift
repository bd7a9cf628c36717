import ArgumentParser
import Policy
import Topology

/// Human tables of staged objects.
enum Tables {
    static func sections(_ sections: [Section], in topology: Topology) -> String {
        var rows = [["SECTION", "DC", "PRIMARY", "FLAVOR", "POOLED", "MIN", "STATE"]]
        for section in sections {
            let pooled = section.isInitialized ? String(topology.pooledReplicas(of: section).count) : "-"
            let state = !section.isInitialized ? "uninitialized" : section.readOnly ? "read-only: \(section.readOnlyReason)" : "read-write"
            rows.append([
                section.name, section.datacenter, section.primary.isEmpty ? "-" : section.primary,
                section.flavor.rawValue + (section.omitReplicas ? " (primary only)" : ""), pooled,
                String(section.minReplicas) + (section.allowEmpty ? " (may be empty)" : ""), state,
            ])
        }
        return table(rows)
    }

    /// `automatic`: what the depool policy holds, shown apart from what a human set.
    static func instances(_ instances: [Instance], section only: String?, in topology: Topology, automatic: PolicyState = PolicyState()) -> String {
        var rows = [["INSTANCE", "ADDRESS", "DC", "CANDIDATE", "SECTION", "ROLE", "POOLED", "WEIGHT", "%", "GROUPS", "AUTOMATIC"]]
        for instance in instances {
            let address = instance.port == 3306 ? instance.host : "\(instance.host):\(instance.port)"
            let memberships = instance.sections.sorted { $0.key < $1.key }.filter { only == nil || $0.key == only }
            if memberships.isEmpty {
                rows.append([instance.name, address, instance.datacenter, instance.candidatePrimary ? "yes" : "no", "-", "", "", "", "", "", ""])
            }
            for (index, (section, membership)) in memberships.enumerated() {
                let role = topology.sections[section]?.primary == instance.name ? "primary" : "replica"
                let groups = membership.groups.sorted { $0.key < $1.key }
                    .map { "\($0.key):\($0.value.pooled ? "" : "depooled,")\($0.value.weight)" }.joined(separator: " ")
                rows.append([
                    index == 0 ? instance.name : "", index == 0 ? address : "", index == 0 ? instance.datacenter : "",
                    index == 0 ? (instance.candidatePrimary ? "yes" : "no") : "", section, role,
                    membership.pooled ? "yes" : "NO", String(membership.weight), String(membership.percentage), groups,
                    automatic.managed[instance.name]?.section == section
                        ? (automatic.describe(instance.name) ?? "")
                        : automatic.refusals[instance.name].map { "\($0.action) refused: \($0.reason)" } ?? "",
                ])
            }
        }
        return table(rows)
    }

    static func table(_ rows: [[String]]) -> String {
        let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingTrailingSpaces()
        }.joined(separator: "\n")
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var result = self
        while result.last == " " { result.removeLast() }
        return result
    }
}

/// `--limit N` of the lists that show the latest entries first (`operation list`, `audit list`).
struct LatestOption: ParsableArguments {
    @Option(help: "How many (1 or more).") var limit = 20

    func validate() throws {
        if limit < 1 { throw ValidationError("--limit must be 1 or more (got \(limit))") }
    }
}
