import Foundation
import MarinaSandbox

/// The human view of a `SandboxReport`: one tree per section, drawn from what the servers say.
enum SandboxRendering {
    static func render(_ report: SandboxReport) -> String {
        var lines = [String]()
        let etcdState = report.etcd.running ? (report.etcd.version.map { "running, etcd \($0)" } ?? "running, not answering") : "NOT RUNNING"
        lines.append("etcd         \(report.etcd.url)  (pid \(report.etcd.pid), \(etcdState))")
        lines.append("credentials  \(report.credentialsFile)")
        let hostFlag = report.network == nil ? "" : "-h ADDRESS "
        lines.append(
            "             mariadb --defaults-extra-file=\(report.credentialsFile) \(hostFlag)-P PORT    (or root over a socket, no password)")
        if let network = report.network {
            lines.append(
                "hosts        one network namespace per host on bridge \(network.bridge) (\(network.subnet), \(network.bridgeAddress) in this namespace); "
                    + "controller \(network.controllerAddress) in \(network.controllerNamespace)")
        }
        if let tls = report.certificates {
            lines.append("tls          CA \(tls.caFile); client certificate \(tls.clientCertificate), key \(tls.clientKey)")
        }
        lines.append("datacenter   \(report.datacenter)")
        switch report.failover {
        case .manual: lines.append("failover     manual: the controller fails over no section on its own")
        case .automatic:
            lines.append(
                "failover     automatic: the controller fails over every section whose primary is dead (master_failure_timeout \(SandboxFailoverMode.masterFailureTimeout) s)"
            )
        }
        for (name, service) in [("agent", report.agent), ("controller", report.controller)] {
            guard let service else { continue }
            let probes = name == "agent" ? report.agentInterval.map { ", probing every \(seconds($0))" } ?? "" : ""
            lines.append(
                "\(name.padding(toLength: 12, withPad: " ", startingAt: 0)) marina \(name), pid \(service.pid), \(service.running ? "running" : "NOT RUNNING")\(probes); log \(service.logFile)"
            )
        }
        for agent in report.hostAgents ?? [] {
            let probes = report.agentInterval.map { ", probing every \(seconds($0))" } ?? ""
            lines.append(
                "agent        marina agent of \(agent.instance), pid \(agent.pid), \(agent.running ? "running" : "NOT RUNNING")\(probes); log \(agent.logFile)"
            )
        }
        if let http = report.controllerHTTP {
            lines.append("web page     \(http.url)/  (the controller's topology page; actions need the token in \(http.tokenFile))")
            lines.append("api          \(http.url)/api/v1/status  (docs/http-api.md)   metrics \(http.url)/metrics")
        }
        for url in report.agentURLs ?? [] { lines.append("agent http   \(url)") }
        let sections = report.instances.reduce(into: [String]()) { if !$0.contains($1.section) { $0.append($1.section) } }
        for section in sections {
            let members = report.instances.filter { $0.section == section }
            let heartbeat = report.heartbeats.first { $0.section == section }
            let writer =
                heartbeat.map { "pt-heartbeat on \($0.instance) \($0.running ? "running" : "NOT RUNNING")" }
                ?? (report.agent != nil || report.hostAgents != nil ? "heartbeat written by the marina agent on the primary" : "no heartbeat writer")
            lines.append("")
            lines.append("section \(section)  (\(writer))")
            let names = Set(members.map(\.name))
            let roots = members.filter { $0.replicatesFrom == nil || !names.contains($0.replicatesFrom!) }
            for root in roots {
                append(root, members: members, depth: 0, to: &lines)
            }
        }
        lines.append("")
        lines.append("instances (role as started; the trees above are what the servers say now)")
        let width = report.instances.map(\.name.count).max() ?? 6
        for instance in report.instances {
            let name = instance.name.padding(toLength: width, withPad: " ", startingAt: 0)
            let role = instance.role.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)
            let host = instance.namespace.map { "  address \(instance.host)  namespace \($0)" } ?? ""
            lines.append("  \(name)  \(instance.section)  \(role)  port \(instance.port)  socket \(instance.socket)\(host)")
        }
        return lines.joined(separator: "\n")
    }

    /// `1 s`, `0.2 s`: seconds without a trailing `.0`.
    private static func seconds(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? "\(Int(value)) s" : "\(value) s"
    }

    private static func append(_ instance: SandboxReport.Instance, members: [SandboxReport.Instance], depth: Int, to lines: inout [String]) {
        let indent = depth == 0 ? "  " : String(repeating: "   ", count: depth) + "└─ "
        lines.append(indent + describe(instance))
        for child in members where child.replicatesFrom == instance.name && child.name != instance.name {
            append(child, members: members, depth: depth + 1, to: &lines)
        }
    }

    private static func describe(_ instance: SandboxReport.Instance) -> String {
        var parts = ["\(instance.name)", "\(instance.host):\(instance.port)"]
        if let partitions = instance.partitions {
            parts.append(
                "PARTITIONED from \(partitions.map(\.rawValue).joined(separator: " and ")): `marina sandbox heal \(instance.name)` undoes it")
        }
        if instance.frozen {
            parts.append("FROZEN (SIGSTOP): `marina sandbox kill \(instance.name) --signal CONT` thaws it")
            return parts.joined(separator: "  ")
        }
        guard instance.error == nil, let readOnly = instance.readOnly else {
            parts.append("UNREACHABLE: \(instance.error ?? "no answer")")
            return parts.joined(separator: "  ")
        }
        parts.append(readOnly ? "read_only=ON " : "read_only=OFF")
        if let source = instance.replicatesFrom {
            parts.append("replica of \(source) io=\(instance.ioThread ?? "?") sql=\(instance.sqlThread ?? "?")")
            if let lag = instance.heartbeatLag { parts.append(String(format: "lag %.2fs", lag)) }
        } else {
            parts.append(readOnly ? "no source, read-only" : "writable primary")
        }
        parts.append("gtid \(instance.gtidCurrentPos.flatMap { $0.isEmpty ? nil : $0 } ?? "(empty)")")
        if let error = instance.replicationError { parts.append("ERROR: \(error)") }
        return parts.joined(separator: "  ")
    }
}
