import ArgumentParser
import Topology
import TopologyStore

struct DatacenterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datacenter", abstract: "Declare the datacenters sections and instances live in.",
        subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a datacenter.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "Its name (lowercase letters, digits, - and _), such as eqiad.") var name: String

        func run() async throws {
            try await running {
                try report(try await store.store().apply(.addDatacenter(name), by: store.actor), done: "Added datacenter \(name)", json: store.json)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the datacenters.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await running {
                let names = try await store.store().read().staged.topology.datacenters.sorted()
                if store.json { try printJSON(names) } else { names.forEach { print($0) } }
            }
        }
    }
}
