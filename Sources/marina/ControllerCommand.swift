import ArgumentParser
import Controller
import Foundation
import Logging
import ServiceLifecycle

struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller",
        abstract: "Run a controller: one of several leads (an etcd lease) and runs the operations DBAs request (runs until SIGTERM).")

    @Option(help: "The controller's YAML configuration (see config/controller.example.yaml).") var config: String

    func run() async throws {
        try await running {
            let (configuration, playbooks) = try ControllerConfiguration.load(config)
            var logger = commandLogger("marina.controller")
            if ProcessInfo.processInfo.environment["MARINA_LOG_LEVEL"] == nil { logger.logLevel = .info }
            let controller = try Controller(configuration: configuration, playbooks: playbooks, logger: logger)
            let group = ServiceGroup(services: [controller], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()
        }
    }
}
