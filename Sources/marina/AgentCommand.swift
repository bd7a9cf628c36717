import Agent
import ArgumentParser
import Foundation
import Logging
import MarinaLogging
import ServiceLifecycle

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Probe this host's MariaDB instances and publish what they report to etcd (runs until SIGTERM).")

    @Option(help: "The agent's YAML configuration (see config/agent.example.yaml).") var config: String

    func run() async throws {
        try await running {
            let configuration = try AgentConfiguration.load(config)
            try configuration.checkProcessUser(file: config)
            var logger = commandLogger("marina.agent")
            if ProcessInfo.processInfo.environment["MARINA_LOG_LEVEL"] == nil { logger.logLevel = .info }
            logger = logger.formatted(configuration.logFormat)
            // One registry for the process: the agent's own metrics and every swift-metrics metric
            // (the etcd client's), served at /metrics.
            let agent = try Agent(configuration: configuration, logger: logger, metrics: AgentMetrics.bootstrapped())
            let group = ServiceGroup(services: [agent], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()
        }
    }
}
