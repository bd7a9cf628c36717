import ArgumentParser
import Foundation
import Logging

@main
struct Marina: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "marina",
        abstract: "A MariaDB topology orchestrator: source of truth in etcd, agents, drift, transactional operations.",
        version: version,
        subcommands: [
            StatusCommand.self, DriftCommand.self, SectionCommand.self, InstanceCommand.self, ConfigCommand.self, DatacenterCommand.self,
            AgentCommand.self, ControllerGroupCommand.self, SwitchoverCommand.self, FailoverCommand.self, OperationCommand.self, GrantCommand.self,
            VariableCommand.self, LockCommand.self, AuditCommand.self,
            SandboxCommand.self,
            VersionCommand.self, ExitCodesCommand.self,
        ]
    )
}

/// The CLI's logger: standard error, at `$MARINA_LOG_LEVEL` (default `warning`), so that a
/// failing command prints one message, its error, unless more is asked for.
func commandLogger(_ label: String) -> Logger {
    var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = ProcessInfo.processInfo.environment["MARINA_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
    return logger
}
