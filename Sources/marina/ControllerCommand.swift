import ArgumentParser
import Controller
import EtcdClient
import Foundation
import Logging
import MarinaHTTP
import MarinaLogging
import Metrics
import Prometheus
import ServiceLifecycle
import TopologyStore

struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a controller: one of several leads (an etcd lease) and runs the operations DBAs request (runs until SIGTERM).",
        discussion: """
            With an `http:` block in its configuration, it also serves the JSON API, Prometheus metrics and the topology \
            page (docs/http-api.md), leader or not.
            """)

    @Option(help: "The controller's YAML configuration (see config/controller.example.yaml).") var config: String

    func run() async throws {
        try await running {
            let (configuration, playbooks) = try ControllerConfiguration.load(config)
            var logger = commandLogger("marina.controller")
            if ProcessInfo.processInfo.environment["MARINA_LOG_LEVEL"] == nil { logger.logLevel = .info }
            logger = logger.formatted(configuration.logFormat)
            // One registry for the process: what the controller and its etcd client count, emitted by /metrics.
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(ControllerMetrics.metricsFactory(registry: registry))
            if let http = configuration.http { try ControllerHTTP.checkListen(http) }
            let controller = try Controller(configuration: configuration, playbooks: playbooks, logger: logger, version: Marina.version)
            var services = [ServiceGroupConfiguration.ServiceConfiguration(service: controller)]
            if let http = configuration.http {
                let etcd = EtcdClient(try configuration.etcd.clientConfiguration())
                let store = TopologyStore(etcd: etcd, keys: StoreKeys(root: configuration.etcd.keyRoot))
                let context = ControllerHTTP.Context(
                    store: store, etcd: etcd, keys: StoreKeys(root: configuration.etcd.keyRoot), controllerID: controller.id,
                    token: try http.tokenFile.map(AccessToken.init(file:)),
                    metrics: ControllerMetrics(registry: registry, store: store, controllerID: controller.id))
                var httpLogger = commandLogger("marina.http").formatted(configuration.logFormat)
                httpLogger.logLevel = logger.logLevel
                // If the listener fails, the controller shuts down gracefully (it resigns and
                // lets the next leader finish what it runs), never cancelled in the middle of a step.
                services.append(
                    .init(
                        service: try ControllerHTTP.application(http, context: context, logger: httpLogger),
                        failureTerminationBehavior: .gracefullyShutdownGroup))
                logger.info("serving HTTP on \(http.certificateFile == nil ? "http" : "https")://\(http.listen)")
            }
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }
}
