import ArgumentParser
import Topology
import TopologyStore

/// `--section` and the optional `--group` of the pooling commands.
struct PoolingTarget: ParsableArguments {
    @Option(help: "The section.") var section: String
    @Option(help: "A query group of the section (vslow, dump, api, ...).") var group: String?
}

/// One instance edit: apply it and report.
protocol InstanceEdit: AsyncParsableCommand {
    var store: StoreOptions { get }
    var edit: TopologyEdit { get }
    var done: String { get }
}

extension InstanceEdit {
    func run() async throws {
        try await running {
            try report(try await store.store().apply(edit, by: store.actor), done: done, json: store.json)
        }
    }
}

struct InstanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "instance", abstract: "Instances: their address, candidacy, and pooling per section (staged until `config commit`).",
        subcommands: [
            Add.self, Show.self, List.self, Pool.self, Depool.self, SetWeight.self, SetPercentage.self, SetCandidate.self,
            AddSection.self, RemoveSection.self, Remove.self, InstanceRejoinCommand.self, InstanceMoveCommand.self,
        ])

    struct Add: InstanceEdit {
        static let configuration = CommandConfiguration(abstract: "Add an instance, optionally configured (depooled) in sections.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "Its name: db1085, or db1101:3317 for one of several on a host.") var name: String
        @Option(help: "Its IP address.") var host: String
        @Option(help: "Its port.") var port: Int?
        @Option var datacenter: String
        @Flag(help: "Allowed to become primary.") var candidate = false
        @Option var note = ""
        @Option(help: "A section to configure it in (repeatable); depooled, at --weight.") var section: [String] = []
        @Option(parsing: .unconditional, help: "Its weight in those sections.") var weight = 0

        var edit: TopologyEdit {
            let memberships = Dictionary(uniqueKeysWithValues: section.map { ($0, Membership(pooled: false, weight: weight)) })
            return .addInstance(
                Instance(
                    name: name, host: host, port: port ?? Names.port(inInstanceName: name) ?? 3306, datacenter: datacenter,
                    candidatePrimary: candidate, note: note, sections: memberships))
        }
        var done: String { "Added instance \(name)" }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one instance.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String

        func run() async throws {
            try await running {
                let topologyStore = try store.store()
                let topology = try await topologyStore.read().staged.topology
                let automatic = try await topologyStore.policyState()
                guard let instance = topology.instances[name] else { throw UsageProblem("unknown instance \(name)") }
                if store.json {
                    try printJSON(instance)
                } else {
                    print(Tables.instances([instance], section: nil, in: topology, automatic: automatic))
                    printRejoinMarks([instance], section: nil)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List instances, all or those of one section.")
        @OptionGroup var store: StoreOptions
        @Option(help: "Only this section's members.") var section: String?

        func run() async throws {
            try await running {
                let topologyStore = try store.store()
                let topology = try await topologyStore.read().staged.topology
                let automatic = try await topologyStore.policyState()
                var instances = topology.instances.values.sorted { $0.name < $1.name }
                if let section {
                    guard topology.sections[section] != nil else { throw UsageProblem("unknown section \(section)") }
                    instances = instances.filter { $0.sections[section] != nil }
                }
                if store.json {
                    try printJSON(instances)
                } else {
                    print(Tables.instances(instances, section: section, in: topology, automatic: automatic))
                    printRejoinMarks(instances, section: section)
                }
            }
        }
    }

    struct Pool: InstanceEdit {
        static let configuration = CommandConfiguration(abstract: "Pool an instance in a section (or one of its groups).")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        @OptionGroup var target: PoolingTarget
        @Option(parsing: .unconditional, help: "Serve this percentage (0-100) of its weight.") var percentage: Int?

        func validate() throws {
            if target.group != nil && percentage != nil { throw ValidationError("--percentage applies to the section, not to a --group") }
        }
        var edit: TopologyEdit { .pool(instance: name, section: target.section, group: target.group, percentage: percentage) }
        var done: String { "Pooled \(name) in \(target.section)\(target.group.map { " group \($0)" } ?? "")\(percentage.map { " at \($0)%" } ?? "")" }
    }

    struct Depool: InstanceEdit {
        static let configuration = CommandConfiguration(abstract: "Depool an instance from a section (or one of its groups).")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        @OptionGroup var target: PoolingTarget

        var edit: TopologyEdit { .depool(instance: name, section: target.section, group: target.group) }
        var done: String { "Depooled \(name) from \(target.section)\(target.group.map { " group \($0)" } ?? "")" }
    }

    struct SetWeight: InstanceEdit {
        static let configuration = CommandConfiguration(commandName: "set-weight", abstract: "Set an instance's weight in a section or group.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        @Option(parsing: .unconditional, help: "The weight (0 or more).") var weight: Int
        @OptionGroup var target: PoolingTarget

        var edit: TopologyEdit { .setWeight(instance: name, section: target.section, group: target.group, weight: weight) }
        var done: String { "Set the weight of \(name) in \(target.section)\(target.group.map { " group \($0)" } ?? "") to \(weight)" }
    }

    struct SetPercentage: InstanceEdit {
        static let configuration = CommandConfiguration(
            commandName: "set-percentage", abstract: "Set the share (0-100) of its weight an instance serves.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        @Option(parsing: .unconditional, help: "0 to 100.") var percentage: Int
        @Option var section: String

        var edit: TopologyEdit { .setPercentage(instance: name, section: section, percentage: percentage) }
        var done: String { "Set \(name) in \(section) to \(percentage)%" }
    }

    struct SetCandidate: InstanceEdit {
        static let configuration = CommandConfiguration(commandName: "set-candidate", abstract: "Allow or forbid an instance to become primary.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        @Argument(help: "true or false.") var candidate: Bool

        var edit: TopologyEdit { .setCandidate(instance: name, candidate: candidate) }
        var done: String { "\(name) is \(candidate ? "now" : "no longer") a candidate primary" }
    }

    struct AddSection: InstanceEdit {
        static let configuration = CommandConfiguration(commandName: "add-section", abstract: "Configure an instance in one more section, depooled.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        @Option var section: String
        @Option(parsing: .unconditional) var weight: Int

        var edit: TopologyEdit { .addToSection(instance: name, section: section, weight: weight) }
        var done: String { "Configured \(name) in \(section) (depooled, weight \(weight))" }
    }

    struct RemoveSection: InstanceEdit {
        static let configuration = CommandConfiguration(commandName: "remove-section", abstract: "Take an instance out of a section.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        @Option var section: String

        var edit: TopologyEdit { .removeFromSection(instance: name, section: section) }
        var done: String { "Removed \(name) from \(section)" }
    }

    struct Remove: InstanceEdit {
        static let configuration = CommandConfiguration(abstract: "Remove an instance (not a primary).")
        @OptionGroup var store: StoreOptions
        @Argument var name: String

        var edit: TopologyEdit { .removeInstance(name) }
        var done: String { "Removed instance \(name)" }
    }
}

/// One line under the table per member marked as needing a rejoin (of `section` only, when
/// given): the table shows it depooled, this says why it must stay so.
private func printRejoinMarks(_ instances: [Instance], section only: String?) {
    for instance in instances {
        for (section, membership) in instance.sections.sorted(by: { $0.key < $1.key }) where only == nil || section == only {
            if let mark = membership.needsRejoin { print("\(instance.name) in \(section): \(mark)") }
        }
    }
}
