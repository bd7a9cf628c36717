import ArgumentParser
import Topology
import TopologyStore

extension Flavor: ExpressibleByArgument {}

struct SectionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "section", abstract: "Sections: their primary, read-only state and pooling rules (staged until `config commit`).",
        subcommands: [Add.self, Show.self, List.self, SetPrimary.self, ReadOnly.self, ReadWrite.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a section. Without --primary it stays uninitialized (left out of the generated configuration).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "Its name, such as s1, es4, x1.") var name: String
        @Option(help: "The datacenter of its primary.") var datacenter: String
        @Option(help: "Its primary (must already be configured in the section).") var primary: String?
        @Option(help: "Pooled replicas it may never go below.") var minReplicas = 0
        @Option(help: "regular (sectionLoads) or external (externalLoads).") var flavor = Flavor.regular
        @Flag(help: "List only the primary in the generated configuration.") var omitReplicas = false
        @Flag(help: "Accept having no pooled replica.") var allowEmpty = false

        func run() async throws {
            try await running {
                let section = Section(
                    name: name, primary: primary ?? "", datacenter: datacenter, minReplicas: minReplicas,
                    flavor: flavor, omitReplicas: omitReplicas, allowEmpty: allowEmpty)
                try report(try await store.store().apply(.addSection(section), by: store.actor), done: "Added section \(name)", json: store.json)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one section and its members.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String

        func run() async throws {
            try await running {
                let topology = try await store.store().read().staged.topology
                guard let section = topology.sections[name] else { throw UsageProblem("unknown section \(name)") }
                if store.json {
                    try printJSON(section)
                    return
                }
                print(Tables.sections([section], in: topology))
                print("")
                print(Tables.instances(topology.members(of: name).map(\.instance), section: name, in: topology))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the sections.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await running {
                let topology = try await store.store().read().staged.topology
                let sections = topology.sections.values.sorted { $0.name < $1.name }
                if store.json { try printJSON(sections) } else { print(Tables.sections(sections, in: topology)) }
            }
        }
    }

    struct SetPrimary: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-primary",
            abstract: "Record which instance is the section's primary (the source of truth only; `switchover` moves a live primary).")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        @Argument var instance: String

        func run() async throws {
            try await running {
                let topology = try await store.store().read().staged.topology
                if let candidate = topology.instances[instance], !candidate.candidatePrimary {
                    printError("warning: \(instance) is not a candidate primary")
                }
                try report(
                    try await store.store().apply(.setPrimary(section: name, instance: instance), by: store.actor),
                    done: "\(instance) is now the primary of \(name)", json: store.json)
            }
        }
    }

    struct ReadOnly: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "readonly", abstract: "Make a section read-only for applications.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        @Option(help: "Why, shown to users (required).") var reason: String

        func run() async throws {
            try await running {
                guard !reason.isEmpty else { throw UsageProblem("--reason must not be empty") }
                try report(
                    try await store.store().apply(.setReadOnly(section: name, reason: reason), by: store.actor),
                    done: "\(name) is read-only: \(reason)", json: store.json)
            }
        }
    }

    struct ReadWrite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "readwrite", abstract: "Make a section writable again.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String

        func run() async throws {
            try await running {
                try report(
                    try await store.store().apply(.setReadOnly(section: name, reason: nil), by: store.actor),
                    done: "\(name) is read-write", json: store.json)
            }
        }
    }
}
