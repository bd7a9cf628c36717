import ArgumentParser
import Foundation
import Topology
import TopologyStore

/// `marina variable`: desired global system variables of each section, staged like the
/// topology; `variable sync` applies them with `SET GLOBAL`, and each agent keeps them in its
/// managed option file so that they survive a restart.
struct VariableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "variable",
        abstract: "Desired global variables of each section, for every instance or by role (staged until `config commit`).",
        subcommands: [Set.self, Unset.self, Show.self, VariableSyncCommand.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a desired variable of a section.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The section.") var section: String
        @Argument(help: "The variable, such as long_query_time.") var name: String
        @Argument(help: "Its value, as SET GLOBAL takes it (2, 0.5, ON).") var value: String
        @Option(help: "Only on the primary, or only on the replicas (default: every instance).") var role: VariableRole?

        func run() async throws {
            try await running {
                let outcome = try await store.store().apply(.setVariable(section: section, role: role, name: name, value: value), by: store.actor)
                try report(
                    outcome, done: "Staged \(name) = \(value) for \(role.map { "the \($0.rawValue)" } ?? "every instance") of \(section)",
                    json: store.json)
            }
        }
    }

    struct Unset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop managing a variable of a section (instances keep their value; it leaves the managed option file).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The section.") var section: String
        @Argument(help: "The variable.") var name: String
        @Option(help: "The role-specific value to remove (default: the value for every instance).") var role: VariableRole?

        func run() async throws {
            try await running {
                let store = try store.store()
                let snapshot = try await store.read().staged
                let variables = snapshot.topology.variables[section] ?? ManagedVariables()
                let current = role == nil ? variables.all : role == .primary ? variables.primary : variables.replica
                guard current[name] != nil else {
                    throw UsageProblem("\(name) is not a managed variable of \(section)\(role.map { " for the \($0.rawValue)" } ?? "")")
                }
                let outcome = try await store.apply(
                    .setVariable(section: section, role: role, name: name, value: nil), over: snapshot, by: self.store.actor)
                try report(outcome, done: "Staged: \(name) no longer managed in \(section)", json: self.store.json)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a section's desired variables (staged, or --committed).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The section.") var section: String
        @Flag(help: "Show what is committed instead of what is staged.") var committed = false

        func run() async throws {
            try await running {
                let topology = committed ? try await store.store().committedTopology() ?? Topology() : try await store.store().read().staged.topology
                guard topology.sections[section] != nil else { throw UsageProblem("unknown section \(section)") }
                let variables = topology.variables[section] ?? ManagedVariables()
                if store.json {
                    try printJSON(variables)
                    return
                }
                guard !variables.isEmpty else {
                    print("Section \(section) has no managed variable.")
                    return
                }
                for (scope, values) in [("every instance", variables.all), ("primary", variables.primary), ("replicas", variables.replica)] {
                    for (name, value) in values.sorted(by: { $0.key < $1.key }) { print("\(name) = \(value)  (\(scope))") }
                }
            }
        }
    }
}
