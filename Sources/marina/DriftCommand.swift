import ArgumentParser
import Drift
import Foundation
import Operations
import StoredRecords
import Topology
import TopologyStore

struct DriftCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
        abstract:
            "Every difference between the committed source of truth and what the agents see. Exit 0: none (informational lines only); 1: drift; 2: could not be computed."
    )

    @OptionGroup var store: StoreOptions
    @Argument(help: "Only this section.") var section: String?
    // Parsed unconditionally, so that a negative value reaches validation rather than being read as a flag.
    @Option(parsing: .unconditional, help: "Seconds of heartbeat lag above which a pooled replica is drift.") var maxLag = 5.0
    @Option(parsing: .unconditional, help: "Seconds after which a primary's own heartbeat is stale.") var heartbeatStale = 10.0
    @Option(parsing: .unconditional, help: "Seconds after which an observation is stale (its agent stopped publishing, or a clock is wrong).")
    var staleAfter = 60.0

    func validate() throws {
        for (flag, value) in [("--max-lag", maxLag), ("--heartbeat-stale", heartbeatStale), ("--stale-after", staleAfter)]
        where !value.isFinite || value <= 0 {
            throw ValidationError("\(flag) must be a finite number of seconds above 0 (is \(value))")
        }
    }

    func run() async throws {
        let findings: [DriftFinding]
        do {
            let topologyStore = try store.store()
            let site = try await topologyStore.snapshot()
            let topology = site.committedTopology ?? Topology()
            if let section, topology.sections[section] == nil, site.staged.topology.sections[section] == nil {
                throw UsageProblem("unknown section \(section)")
            }
            var snapshot = DriftSnapshot(
                topology: topology, observations: site.observations, uncommitted: site.uncommitted,
                now: Date(), maxLag: maxLag, heartbeatStaleAfter: heartbeatStale, observationStaleAfter: staleAfter)
            snapshot.refusals = try decodePolicyState(site.policyState).refusals.map { name, refusal in
                AutomaticRefusal(instance: name, section: refusal.section, action: refusal.action, reason: refusal.reason, since: refusal.since)
            }
            snapshot.locks = site.locks
            snapshot.grants = site.observedGrants
            for (name, bytes) in site.unreachablePrimaries {
                // Written by the leader under its lease; one that does not decode is reported as such.
                guard let view = try? StoredJSON.decode(PrimaryUnreachable.self, from: bytes) else {
                    throw UsageProblem("\(StoreKeys().unreachablePrimary(name)) is not a controller's view of a primary")
                }
                snapshot.controllerCannotReach[name] = ControllerView(
                    primary: view.primary, reason: view.reason, since: view.since, controller: view.controller)
            }
            if let mirror = site.committed.siteMirror {
                snapshot.mirror = mirrorReading(await topologyStore.readMirror(mirror), committed: site.committed.configs)
            }
            findings = Drift.findings(snapshot, section: section)
        } catch {
            printError("drift could not be computed: \(error)")
            throw ExitCode(2)
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
        if !drift.isEmpty { throw ExitCode(1) }
    }

    /// The site mirror as the drift engine takes it: each datacenter's v2 value decoded.
    func mirrorReading(_ content: MirrorContent, committed: [String: GeneratedConfig]) -> MirrorReading {
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
