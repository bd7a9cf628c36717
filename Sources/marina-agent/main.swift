// marina-agent --config FILE: the agent alone (the same code as `marina agent`), built without
// ArgumentParser or Foundation so that it stays small on every database host.
import Agent
import Logging
import MarinaLogging
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Writes one line to standard error (the C `stderr` global is not concurrency-safe in Swift 6).
func printError(_ text: String) {
    let line = text + "\n"
    _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count == 2, arguments[0] == "--config" else {
    printError("usage: marina-agent --config FILE (sample: config/agent.example.yaml)")
    exit(arguments == ["--help"] || arguments == ["-h"] ? 0 : 64)
}
do {
    let configuration = try AgentConfiguration.load(arguments[1])
    // Not as root unless the configuration says so (allow_root): one line, exit 1.
    try configuration.checkProcessUser(file: arguments[1])
    var logger = Logger(label: "marina.agent") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = .info
    logger = logger.formatted(configuration.logFormat)
    // One registry for the process: the agent's own metrics and every swift-metrics metric
    // (the etcd client's), served at /metrics.
    let agent = try Agent(configuration: configuration, logger: logger, metrics: AgentMetrics.bootstrapped())
    try await ServiceGroup(services: [agent], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
} catch {
    printError("marina-agent: \(error)")
    exit(1)
}
