import ArgumentParser

@main
struct Marina: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "marina",
        abstract: "A MariaDB topology orchestrator: source of truth in etcd, agents, drift, transactional operations.",
        version: version,
        subcommands: [SandboxCommand.self, VersionCommand.self]
    )
}
