import ArgumentParser
import Drift
import Foundation
import MarinaViews
import Operations
import StoredRecords
import Topology
import TopologyStore

struct DriftCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
        abstract:
            "Every difference between the committed source of truth and what the agents see. Exit 0: none (informational lines only); 6: drift; 1: could not be computed."
    )

    @OptionGroup var store: StoreOptions
    @Argument(help: "Only this section.") var section: String?
    // Parsed unconditionally, so that a negative value reaches validation rather than being read as a flag.
    @Option(parsing: .unconditional, help: "Seconds of heartbeat lag above which a pooled replica is drift.") var maxLag = 5.0
    @Option(parsing: .unconditional, help: "Seconds after which a primary's own heartbeat is stale.") var heartbeatStale = 10.0
    @Option(parsing: .unconditional, help: "Seconds after which an observation is stale (its agent stopped publishing, or a clock is wrong).")
    var staleAfter = 60.0

    func validate() throws {
        do {
            try DriftView.Thresholds(maxLag: maxLag, heartbeatStale: heartbeatStale, staleAfter: staleAfter)
                .validate(names: ("--max-lag", "--heartbeat-stale", "--stale-after"))
        } catch let problem as ViewProblem {
            throw ValidationError(problem.description)
        }
    }

    func run() async throws {
        let findings: [DriftFinding]
        do {
            let topologyStore = try store.store()
            let site = try await topologyStore.snapshot()
            findings = try await DriftView.findings(
                site, store: topologyStore, section: section,
                thresholds: .init(maxLag: maxLag, heartbeatStale: heartbeatStale, staleAfter: staleAfter), now: Date())
        } catch {
            printError("drift could not be computed: \(error)")
            throw Exit.failure
        }
        let drift = findings.filter(\.severity.isDrift)
        if store.json {
            try printJSON(findings)
        } else {
            if drift.isEmpty {
                print("No drift\(section.map { " in \($0)" } ?? ""): every instance is as the committed source of truth says.")
            }
            if !findings.isEmpty {
                var rows = [["SEVERITY", "SECTION", "INSTANCE", "CODE", "EXPECTED", "OBSERVED"]]
                for finding in findings {
                    rows.append([
                        finding.severity.rawValue, finding.section ?? "-", finding.instance ?? "-", finding.code.rawValue,
                        finding.expected, finding.observed,
                    ])
                }
                print(Tables.table(rows))
            }
        }
        if !drift.isEmpty { throw Exit.attention }
    }
}
