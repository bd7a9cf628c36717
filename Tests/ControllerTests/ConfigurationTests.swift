import Controller
import Foundation
import Operations
import Policy
import Testing

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("Controller configuration")
struct ConfigurationTests {
    @Test("config/controller.example.yaml decodes, with every documented key")
    func example() throws {
        let path = repository.appendingPathComponent("config/controller.example.yaml").path
        let configuration = try ControllerConfiguration.parse(try String(contentsOfFile: path, encoding: .utf8), file: path)
        #expect(configuration.id == "dbctl1001")
        #expect(configuration.leaseTTL == 5)
        #expect(configuration.etcd.endpoints.count == 2)
        #expect(configuration.mariadb.credentialsGroup == "marina-controller")
        #expect(configuration.mariadb.replicationGroup == "marina-replication")
        #expect(configuration.mirror?.v2Prefix == "conftool/v1/mediawiki-config")
        #expect(configuration.pauseBefore == nil)
        #expect(configuration.depool.defaults == DepoolPolicy())
        #expect(configuration.depool.interval == 0.25)
        #expect(configuration.depool.sections["s1"]?.depoolAfter == 5)
        #expect(configuration.depool.sections["s1"]?.depoolLag == 5)
        #expect(configuration.depool.sections["es4"]?.enabled == false)
        #expect(configuration.failover.primaryLeaseTTL == 10 && configuration.failover.primaryLeaseMargin == 3)
        #expect(configuration.failover.failsafeListen == nil)
    }

    @Test(
        "bad configurations are refused with the file and the key named",
        arguments: [
            (
                "etcd: {endpoints: [http://x]}\nmariadb: {credentials_file: f}\nplaybooks: p\nleese_ttl: 3\n",
                "c.yaml: controller.leese_ttl: unknown field"
            ),
            ("etcd: {endpoints: [http://x]}\nplaybooks: p\n", "c.yaml: controller.mariadb: is required"),
            (
                "etcd: {endpoints: [http://x]}\nmariadb: {credentials_file: f}\nplaybooks: p\nlease_ttl: 1\n",
                "c.yaml: lease_ttl must be at least 2 seconds"
            ),
            ("etcd: {endpoints: []}\nmariadb: {credentials_file: f}\nplaybooks: p\n", "c.yaml: etcd.endpoints must list at least one URL"),
            (
                "etcd: {endpoints: [http://x]}\nmariadb: {credentials_file: f, pasword: x}\nplaybooks: p\n",
                "controller.mariadb.pasword: unknown field"
            ),
            (
                "etcd: {endpoints: [http://x]}\nmariadb: {credentials_file: f}\nplaybooks: p\ndepool: {depool_lag: 5, repool_lag: 6}\n",
                "c.yaml: depool: repool_lag must be at least 0 and below depool_lag (hysteresis)"
            ),
            (
                "etcd: {endpoints: [http://x]}\nmariadb: {credentials_file: f}\nplaybooks: p\ndepool: {sections: {s1: {ladder: [50]}}}\n",
                "c.yaml: depool.sections.s1: ladder must be increasing percentages between 1 and 100, ending at 100"
            ),
            ("etcd: {endpoints: [http://x]}\nmariadb: {credentials_file: f}\nplaybooks: p\ndepool: {depool_lagg: 5}\n", "depool_lagg: unknown field"),
            ("etcd: {endpoints: [http://x], ca: f}\nmariadb: {credentials_file: f}\nplaybooks: p\n", "c.yaml: controller: etcd.ca: unknown key"),
        ])
    func refused(text: String, message: String) {
        do {
            _ = try ControllerConfiguration.parse(text, file: "c.yaml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }

    static let base = "etcd: {endpoints: [http://x]}\nmariadb: {credentials_file: f}\nplaybooks: p\n"

    @Test(
        "a number that is not finite, or out of range, is refused naming the file and the key",
        arguments: [
            ("depool: {min_interval: .nan}", "c.yaml: depool: min_interval must be a finite number of seconds, at most 86400 (got nan)"),
            ("depool: {depool_lag: .inf}", "c.yaml: depool: depool_lag must be a finite number of seconds, at most 86400 (got inf)"),
            (
                "depool: {sections: {s1: {depool_after: .nan}}}",
                "c.yaml: depool.sections.s1: depool_after must be a finite number of seconds, at most 86400 (got nan)"
            ),
            ("depool: {max_depooled_fraction: .nan}", "c.yaml: depool: max_depooled_fraction must be between 0 and 1 (got nan)"),
            ("depool: {step_pause: 1e12}", "c.yaml: depool: step_pause must be a finite number of seconds, at most 86400 (got 1000000000000.0)"),
            ("depool: {interval: .nan}", "c.yaml: depool.interval must be positive, from 0.01 to 3600 seconds (got nan)"),
            ("depool: {interval: 1e300}", "c.yaml: depool.interval must be positive, from 0.01 to 3600 seconds (got 1e+300)"),
            ("poll_interval: .inf", "c.yaml: poll_interval must be positive, from 0.001 to 3600 seconds (got inf)"),
            ("lease_ttl: 100000000", "c.yaml: lease_ttl must be at least 2 seconds and at most 3600 (got 100000000)"),
            ("mariadb: {credentials_file: f, connect_timeout: 0}", "c.yaml: mariadb.connect_timeout must be from 1 to 3600 seconds (got 0)"),
            (
                "mariadb: {credentials_file: f, connect_timeout: 99999999999}",
                "c.yaml: mariadb.connect_timeout must be from 1 to 3600 seconds (got 99999999999)"
            ),
            ("etcd: {endpoints: [\"\"]}", "c.yaml: etcd.endpoints endpoint \"\" must start with http:// or https://"),
            ("etcd: {endpoints: [\"http://\"]}", "c.yaml: etcd.endpoints endpoint \"http://\" must name a host, as in http://127.0.0.1:2379"),
        ])
    func nonFinite(line: String, message: String) {
        // The line replaces the base's key of the same name, or is added.
        let key = String(line.prefix { $0 != ":" })
        let text = Self.base.split(separator: "\n").filter { !$0.hasPrefix(key + ":") }.joined(separator: "\n") + "\n" + line + "\n"
        #expect(throws: ControllerError.configuration(message)) { try ControllerConfiguration.parse(text, file: "c.yaml") }
    }

    @Test("a configuration whose playbook decodes but breaks a safety rule does not load, and the rule is named")
    func unsafePlaybook() throws {
        let directory = NSTemporaryDirectory() + "marina-controller-test-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The repository's playbook with the candidate made writable before the commit of the new primary:
        // every action known and present once, every timeout valid; only the order is wrong.
        let safe = try String(contentsOf: repository.appendingPathComponent("playbooks/switchover.yaml"), encoding: .utf8)
        let commit = "  - action: commit-primary\n    timeout: 2\n"
        let writable = "  - action: candidate-writable\n    timeout: 2\n"
        let unsafe = safe.replacingOccurrences(of: commit, with: "<commit>").replacingOccurrences(of: writable, with: commit)
            .replacingOccurrences(of: "<commit>", with: writable)
        try #require(unsafe != safe)
        let playbookPath = directory + "/switchover.yaml"
        try unsafe.write(toFile: playbookPath, atomically: true, encoding: .utf8)
        try "etcd: {endpoints: [http://x]}\nmariadb: {credentials_file: f}\nplaybooks: \(directory)\n"
            .write(toFile: directory + "/controller.yaml", atomically: true, encoding: .utf8)
        let error = #expect(throws: PlaybookError.self) { try ControllerConfiguration.load(directory + "/controller.yaml") }
        #expect(error?.file == playbookPath)
        #expect(
            error?.problems == [
                "candidate-writable (step 8) comes before commit-primary (step 9): "
                    + "the candidate would take writes before the source of truth names it the primary"
            ])
    }

    @Test("the controller refuses to start with a failover playbook that breaks a safety rule, or without one")
    func unsafeFailoverPlaybookRefused() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = NSTemporaryDirectory() + "marina-controller-failover-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(
            atPath: repository.appendingPathComponent("playbooks/switchover.yaml").path, toPath: directory + "/switchover.yaml")
        try "etcd: {endpoints: [http://x]}\nmariadb: {credentials_file: f}\nplaybooks: \(directory)\n"
            .write(toFile: directory + "/controller.yaml", atomically: true, encoding: .utf8)
        let path = directory + "/failover.yaml"
        let missing = #expect(throws: PlaybookError.self) { try ControllerConfiguration.load(directory + "/controller.yaml") }
        #expect(missing?.file == path && missing?.problems == ["cannot read the file"])

        // The candidate made writable before the source of truth names it.
        let safe = try String(contentsOf: repository.appendingPathComponent("playbooks/failover.yaml"), encoding: .utf8)
        let commit = "  - action: commit-primary\n    timeout: 2\n"
        let writable = "  - action: candidate-writable\n    timeout: 2\n"
        let unsafe = safe.replacingOccurrences(of: commit, with: "<commit>").replacingOccurrences(of: writable, with: commit)
            .replacingOccurrences(of: "<commit>", with: writable)
        try #require(unsafe != safe)
        try unsafe.write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: PlaybookError.self) { try ControllerConfiguration.load(directory + "/controller.yaml") }
        #expect(error?.file == path)
        #expect(
            error?.problems == [
                "candidate-writable (step 4) comes before commit-primary (step 5): "
                    + "the candidate would take writes before the source of truth names it the primary"
            ])
    }
}
