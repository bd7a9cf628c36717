import ArgumentParser
import EtcdClient
import Foundation
import MarinaViews
import Observation
import Policy
import Topology
import TopologyStore

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "The topology per section as committed and as the agents observe it, with what is staged but not committed (reads etcd only).")

    @OptionGroup var store: StoreOptions
    @Argument(help: "Only this section.") var section: String?

    func run() async throws {
        try await running {
            let topologyStore = try store.store()
            // One read: the committed topology, the observations, the locks and the policy state at one revision.
            let site = try await topologyStore.snapshot()
            let topology = site.committedTopology ?? Topology()
            let observations = site.observations
            let report = try StatusView.sections(site, section: section, now: Date())
            if store.json {
                try printJSON(report)
            } else {
                if site.committedTopology == nil { print("Nothing is committed yet: `marina config diff` shows what is staged.") }
                print(report.map { $0.render() }.joined(separator: "\n\n"))
                let unknown = observations.keys.filter { topology.instances[$0] == nil }.sorted()
                if !unknown.isEmpty && section == nil {
                    print("\nobserved but not in the committed source of truth: \(unknown.joined(separator: ", "))")
                }
                if !site.uncommitted.isEmpty && section == nil {
                    print(
                        "\n\(site.uncommitted.count) staged change\(site.uncommitted.count == 1 ? "" : "s") not committed (shown above as the committed state): `marina config diff`"
                    )
                }
            }
        }
    }
}
