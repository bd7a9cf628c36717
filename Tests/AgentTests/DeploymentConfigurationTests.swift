import ConfigurationFiles
import Foundation
import MariaDBClient
import MarinaLogging
import Testing

@testable import Agent

/// `log_format`, `allow_root` and `tls`: the settings a deployment under systemd needs.
@Suite("Agent configuration: log_format, allow_root, tls")
struct DeploymentConfigurationTests {
    static let etcd = "etcd:\n  endpoints: [http://127.0.0.1:2379]\n"

    func parse(_ text: String) throws -> AgentConfiguration {
        try AgentConfiguration.parse(Self.etcd + text, file: "agent.yaml")
    }

    static let socketInstance = "instances:\n  - {name: db1001, socket: /run/mysqld/mysqld.sock, credentials_file: /etc/marina/agent.cnf}\n"
    static let tcpInstances = """
        instances:
          - {name: db1001, host: 10.64.0.15, port: 3306, credentials_file: /etc/marina/agent.cnf}
          - {name: "db1002:3307", host: 10.64.0.15, port: 3307, credentials_file: /etc/marina/agent.cnf}
          - {name: "db1003:3308", socket: /run/mysqld/mysqld.s8.sock, credentials_file: /etc/marina/agent.cnf}

        """

    @Test("log_format: text unless json is said; any other value is one error naming the key")
    func logFormat() throws {
        #expect(try parse(Self.socketInstance).logFormat == .text)
        #expect(try parse("log_format: json\n" + Self.socketInstance).logFormat == .json)
        #expect(throws: ConfigurationError(message: "agent.yaml: log_format must be text or json (got JSON)")) {
            try parse("log_format: JSON\n" + Self.socketInstance)
        }
        #expect(throws: ConfigurationError(message: "agent.yaml: log_format must be a string")) {
            try parse("log_format: [json]\n" + Self.socketInstance)
        }
    }

    @Test("allow_root: false unless said; root is refused without it, any other user is not")
    func allowRoot() throws {
        let plain = try parse(Self.socketInstance)
        #expect(plain.allowRoot == false)
        #expect(throws: AgentRunsAsRoot(file: "/etc/marina/agent.yaml")) { try plain.checkUser(effectiveUserID: 0, file: "/etc/marina/agent.yaml") }
        try plain.checkUser(effectiveUserID: 998, file: "/etc/marina/agent.yaml")
        let allowed = try parse("allow_root: true\n" + Self.socketInstance)
        try allowed.checkUser(effectiveUserID: 0, file: "/etc/marina/agent.yaml")
        #expect(throws: ConfigurationError(message: "agent.yaml: allow_root must be true or false")) {
            try parse("allow_root: yes please\n" + Self.socketInstance)
        }
        #expect(
            "\(AgentRunsAsRoot(file: "/etc/marina/agent.yaml"))"
                == "refusing to run as root: the agent needs no privilege beyond reading its configuration, its credentials files and the MariaDB socket. Run it as its own user (the marina user of marina-agent.service, in the mysql group; docs/deployment.md), or set allow_root: true in /etc/marina/agent.yaml"
        )
    }

    @Test("tls: the agent's for every TCP instance, an instance's own instead, never over a socket")
    func tlsChoice() throws {
        let configuration = try parse(
            """
            tls: {ca_file: /etc/marina/mariadb-ca.pem}
            instances:
              - {name: db1001, host: 10.64.0.15, port: 3306, credentials_file: /etc/marina/agent.cnf}
              - name: "db1002:3307"
                host: 10.64.0.15
                port: 3307
                credentials_file: /etc/marina/agent.cnf
                tls:
                  ca_file: /etc/marina/other-ca.pem
                  certificate_file: /etc/marina/agent.pem
                  key_file: /etc/marina/agent.key
                  verify_server_certificate: false
              - {name: "db1003:3308", socket: /run/mysqld/mysqld.s8.sock, credentials_file: /etc/marina/agent.cnf}

            """)
        #expect(configuration.tls(forInstance: 0) == AgentConfiguration.TLS(caFile: "/etc/marina/mariadb-ca.pem"))
        #expect(
            configuration.tls(forInstance: 1)
                == AgentConfiguration.TLS(
                    caFile: "/etc/marina/other-ca.pem", certificateFile: "/etc/marina/agent.pem", keyFile: "/etc/marina/agent.key",
                    verifyServerCertificate: false))
        #expect(configuration.tls(forInstance: 2) == nil)
        let client = try #require(configuration.tls(forInstance: 1)?.client)
        #expect(client.caFile == "/etc/marina/other-ca.pem" && client.keyFile == "/etc/marina/agent.key" && !client.verifyServerCertificate)
        #expect(try parse(Self.tcpInstances).tls(forInstance: 0) == nil)
    }

    @Test(
        "a bad tls block is one error naming the key",
        arguments: [
            ("tls: {certificate_file: /a.pem, key_file: /a.key}\n", "agent.yaml: tls.ca_file is required"),
            ("tls: {ca_file: ca.pem}\n", "agent.yaml: tls.ca_file must be an absolute path (got ca.pem)"),
            ("tls: {ca_file: /ca.pem, key_file: /a.key}\n", "agent.yaml: tls.certificate_file and tls.key_file go together: give both or neither"),
            (
                "tls: {ca_file: /ca.pem, verify: false}\n",
                "agent.yaml: tls.verify: unknown key (known: ca_file, certificate_file, key_file, verify_server_certificate)"
            ),
            ("tls: {ca_file: /ca.pem, verify_server_certificate: no}\n", "agent.yaml: tls.verify_server_certificate must be true or false"),
        ])
    func badTLS(block: String, message: String) {
        #expect(throws: ConfigurationError(message: message)) { try parse(block + Self.tcpInstances) }
    }

    @Test("an instance's tls is refused on an instance reached over its socket")
    func tlsOverSocket() {
        #expect(
            throws: ConfigurationError(
                message: "agent.yaml: instances[0].tls is for an instance reached over TCP; db1001 is reached over its socket")
        ) {
            try parse(
                "instances:\n  - name: db1001\n    socket: /run/mysqld/mysqld.sock\n    credentials_file: /etc/marina/agent.cnf\n    tls: {ca_file: /ca.pem}\n"
            )
        }
    }

    @Test("at start, an unreadable or empty TLS file is one error naming the key and the file")
    func tlsFilesChecked() throws {
        let directory = NSTemporaryDirectory() + "marina-agent-tls-files-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let credentials = directory + "/agent.cnf"
        try "[client]\nuser=marina_agent\npassword=x\n".write(toFile: credentials, atomically: true, encoding: .utf8)
        let notPEM = directory + "/empty.pem"
        try "nothing\n".write(toFile: notPEM, atomically: true, encoding: .utf8)
        func agentConfiguration(_ tls: String) throws -> AgentConfiguration {
            try parse("tls: \(tls)\ninstances:\n  - {name: db1001, host: 127.0.0.1, port: 3306, credentials_file: \(credentials)}\n")
        }
        #expect(throws: ConfigurationError(message: "tls.ca_file: cannot read \(directory)/missing.pem (No such file or directory)")) {
            try Agent.mariaDBConfiguration(try agentConfiguration("{ca_file: \(directory)/missing.pem}"), instance: 0)
        }
        #expect(throws: ConfigurationError(message: "tls.ca_file: \(notPEM) holds no PEM block (-----BEGIN ...)")) {
            try Agent.mariaDBConfiguration(try agentConfiguration("{ca_file: \(notPEM)}"), instance: 0)
        }
    }
}
