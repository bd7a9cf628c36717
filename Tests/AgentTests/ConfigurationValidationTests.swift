import ConfigurationFiles
import Foundation
import Observation
import Testing

@testable import Agent

/// Numbers the agent's configuration must refuse by name: not finite, out of range, or not
/// whole where whole seconds are needed. Each would otherwise trap later (a duration in
/// milliseconds, a libmariadb timeout, a port) or quietly change what the agent does.
@Suite("Agent configuration: bad values")
struct AgentConfigurationValidationTests {
    static let base = """
        etcd:
          endpoints: [http://127.0.0.1:2379]
        instances:
          - {name: db1001, socket: /run/mysqld/mysqld.sock, credentials_file: /etc/marina/agent.cnf}
        """

    /// Loads `text` from a file, as `marina agent --config` does.
    func load(_ text: String) throws -> AgentConfiguration {
        let path = NSTemporaryDirectory() + "marina-agent-config-\(UInt32.random(in: 0...UInt32.max)).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            return try AgentConfiguration.load(path)
        } catch {
            // The file name is the caller's; the rest of the message is what the test compares.
            throw ConfigurationError(message: "\(error)".replacingOccurrences(of: path, with: "agent.yaml"))
        }
    }

    @Test("the sample base loads")
    func base() throws {
        #expect(try load(Self.base).instances.count == 1)
    }

    @Test(
        "each bad value is one error naming the file and the key",
        arguments: [
            ("interval: .nan", "interval must be a finite number (.nan and .inf are not numbers here)"),
            ("interval: -.inf", "interval must be a finite number (.nan and .inf are not numbers here)"),
            ("interval: 1e400", "interval must be a finite number (.nan and .inf are not numbers here)"),
            ("interval: 100000000000000000000000000", "interval must be positive, from 0.01 to 3600 seconds (got 1e+26)"),
            ("interval: 0.0001", "interval must be positive, from 0.01 to 3600 seconds (got 0.0001)"),
            ("refresh: 0", "refresh must be positive, at most 3600 seconds (got 0.0)"),
            ("refresh: 1e9", "refresh must be positive, at most 3600 seconds (got 1000000000.0)"),
            ("lag_bands: [2, .nan]", "lag_bands[1] must be a finite number (.nan and .inf are not numbers here)"),
            ("lag_bands: [-1, 5]", "lag_bands[0] must be positive, at most 3600 seconds (got -1.0)"),
            ("connect_timeout: 99999999999", "connect_timeout must be from 1 to 3600 seconds (got 99999999999): libmariadb counts whole seconds"),
            ("read_timeout: 0", "read_timeout must be from 1 to 3600 seconds (got 0): libmariadb counts whole seconds"),
            ("read_timeout: 1.5", "read_timeout must be a whole number (got 1.5)"),
            ("lease_ttl: 100000000", "lease_ttl must be from 2 to 3600 seconds (got 100000000)"),
            ("lease_ttl: 1e30", "lease_ttl must be a whole number (got 1e+30)"),
        ])
    func refusedTopLevel(line: String, message: String) {
        #expect(throws: ConfigurationError(message: "agent.yaml: \(message)")) { try load(line + "\n" + Self.base) }
    }

    /// A `fencing:` block with the fence account, and `extra` keys.
    static func fencing(_ extra: String) -> String {
        "fencing:\n  credentials_file: /etc/marina/fence.cnf\n" + extra.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
    }

    @Test("a fencing block with its defaults loads: a 10 s lease, fenced 3 s before it can end")
    func fencingDefaults() throws {
        let fencing = try #require(try load(Self.fencing("") + Self.base).fencing)
        #expect(fencing.timing == FencingTiming(ttl: 10, margin: 3, renewInterval: 1, requestTimeout: 1, fenceTimeout: 2))
        #expect(fencing.timing.problems() == [])
        #expect(fencing.timing.fenceAfter == 7)
    }

    @Test(
        "fencing timings that break the argument are refused, naming the keys and the numbers",
        arguments: [
            (
                "margin: 1",
                "fencing.margin (1.0 s) must exceed fence_timeout + lease_ttl × 0.01 = 2.1 s: "
                    + "the primary must be read-only before its lease can expire"
            ),
            (
                "renew_interval: 6",
                "fencing: renew_interval + 2 × request_timeout = 8.0 s must not exceed lease_ttl − margin = 7.0 s: "
                    + "a single failed keep-alive would fence a healthy primary"
            ),
            (
                "lease_ttl: 4\nmargin: 2.5",
                "fencing: renew_interval + 2 × request_timeout = 3.0 s must not exceed lease_ttl − margin = 1.5 s: "
                    + "a single failed keep-alive would fence a healthy primary"
            ),
            ("lease_ttl: 1", "fencing.lease_ttl must be at least 2 seconds (got 1)"),
            ("margin: .nan", "fencing.margin must be a finite number (.nan and .inf are not numbers here)"),
            ("fence_timeout: 0", "fencing.fence_timeout must be a positive number of seconds (got 0.0)"),
            ("hook: drop-port.sh", "fencing.hook must be an absolute path (got drop-port.sh)"),
            ("lease_ttl: 2.5", "fencing.lease_ttl must be a whole number (got 2.5)"),
        ])
    func refusedFencing(lines: String, message: String) {
        #expect(throws: ConfigurationError(message: "agent.yaml: \(message)")) { try load(Self.fencing(lines) + Self.base) }
    }

    @Test("a fencing block without the fence account is refused: the heartbeat writer's account must never fence")
    func fencingNeedsItsAccount() {
        #expect(throws: ConfigurationError(message: "agent.yaml: fencing.credentials_file is required")) {
            try load("fencing:\n  lease_ttl: 10\n" + Self.base)
        }
    }

    @Test(
        "bad etcd endpoints and instance ports are refused naming the key",
        arguments: [
            ("endpoints: [http://127.0.0.1:2379]", "endpoints: []", "etcd.endpoints must list at least one URL (such as http://127.0.0.1:2379)"),
            ("endpoints: [http://127.0.0.1:2379]", "endpoints: [\"\"]", "etcd.endpoints endpoint \"\" must start with http:// or https://"),
            (
                "endpoints: [http://127.0.0.1:2379]", "endpoints: [127.0.0.1:2379]",
                "etcd.endpoints endpoint \"127.0.0.1:2379\" must start with http:// or https://"
            ),
            ("socket: /run/mysqld/mysqld.sock", "host: 10.0.0.1, port: 70000", "instances[0].port must be from 1 to 65535 (got 70000)"),
            ("socket: /run/mysqld/mysqld.sock", "host: 10.0.0.1, port: -1", "instances[0].port must be from 1 to 65535 (got -1)"),
            ("name: db1001", "name: ''", "instances[0].name must not be empty"),
        ])
    func refusedNested(original: String, replacement: String, message: String) {
        #expect(throws: ConfigurationError(message: "agent.yaml: \(message)")) {
            try load(Self.base.replacingOccurrences(of: original, with: replacement))
        }
    }

    @Test("the YAML subset turns only JSON numbers JSON can carry into numbers")
    func numbers() {
        for number in ["0", "-1", "1.5", "10e3", "2E-3", "-0.25", "123456789"] { #expect(ConfigurationYAML.isJSONNumber(number), "\(number)") }
        for text in [".nan", ".inf", "nan", "inf", "infinity", "1e400", "0x10", "+1", "01", "1.", ".5", "1e", "--1", "", "-", "1 2"] {
            #expect(!ConfigurationYAML.isJSONNumber(text), "\(text)")
        }
    }
}
