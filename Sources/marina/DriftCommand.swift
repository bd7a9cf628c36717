import ArgumentParser
import Drift
import Foundation
import Topology
import TopologyStore

struct DriftCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
        abstract: "Every difference between the source of truth and what the agents see. Exit 0: none; 1: drift; 2: could not be computed.")

    @OptionGroup var store: StoreOptions
    @Argument(help: "Only this section.") var section: String?
    @Option(help: "Seconds of heartbeat lag above which a pooled replica is drift.") var maxLag = 5.0
    @Option(help: "Seconds after which a primary's own heartbeat is stale.") var heartbeatStale = 10.0

    func run() async throws {
        let findings: [DriftFinding]
        do {
            let topologyStore = try store.store()
            let prepared = try await topologyStore.prepareCommit()
            let observations = try await topologyStore.observations().observations
            let refusals = try await topologyStore.policyState().refusals.map { name, refusal in
                AutomaticRefusal(instance: name, section: refusal.section, action: refusal.action, reason: refusal.reason, since: refusal.since)
            }
            if let section, prepared.staged.topology.sections[section] == nil { throw UsageProblem("unknown section \(section)") }
            var snapshot = DriftSnapshot(topology: prepared.staged.topology, observations: observations, uncommitted: prepared.changes,
                                         now: Date(), maxLag: maxLag, heartbeatStaleAfter: heartbeatStale)
            snapshot.refusals = refusals
            findings = Drift.findings(snapshot, section: section)
        } catch {
            printError("drift could not be computed: \(error)")
            throw ExitCode(2)
        }
        if store.json {
            try printJSON(findings)
        } else if findings.isEmpty {
            print("No drift\(section.map { " in \($0)" } ?? ""): every instance is as the source of truth says.")
        } else {
            var rows = [["SEVERITY", "SECTION", "INSTANCE", "CODE", "EXPECTED", "OBSERVED"]]
            for finding in findings {
                rows.append([finding.severity.rawValue, finding.section ?? "-", finding.instance ?? "-", finding.code.rawValue,
                             finding.expected, finding.observed])
            }
            print(Tables.table(rows))
        }
        if !findings.isEmpty { throw ExitCode(1) }
    }
}
