import ArgumentParser
import Controller
import EtcdClient
import Foundation
import Logging
import MarinaHTTP
import Metrics
import Prometheus
import ServiceLifecycle
import TopologyStore

struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller",
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
            // One registry for the process: what the controller and its etcd client count, emitted by /metrics.
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(ControllerMetrics.metricsFactory(registry: registry))
            let controller = try Controller(configuration: configuration, playbooks: playbooks, logger: logger)
            var services: [any Service] = [controller]
            if let http = configuration.http {
                let etcd = EtcdClient(try configuration.etcd.clientConfiguration())
                let store = TopologyStore(etcd: etcd, keys: StoreKeys(root: configuration.etcd.keyRoot))
                let context = ControllerHTTP.Context(
                    store: store, etcd: etcd, keys: StoreKeys(root: configuration.etcd.keyRoot), controllerID: controller.id,
                    token: try http.tokenFile.map(AccessToken.init(file:)),
                    metrics: ControllerMetrics(registry: registry, store: store, controllerID: controller.id))
                var httpLogger = commandLogger("marina.http")
                httpLogger.logLevel = logger.logLevel
                services.append(try ControllerHTTP.application(http, context: context, logger: httpLogger))
                logger.info("serving HTTP on \(http.certificateFile == nil ? "http" : "https")://\(http.listen)")
            }
            let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()
        }
    }
}
