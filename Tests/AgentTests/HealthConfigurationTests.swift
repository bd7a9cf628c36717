import ConfigurationFiles
import Testing

@testable import Agent

/// `health_listen` and `metrics_listen`: IPv4 `address:port`, each used once, refused by key.
@Suite("Agent configuration: health and metrics listeners")
struct HealthConfigurationTests {
    static func text(_ first: String = "", _ second: String = "", top: String = "") -> String {
        """
        etcd:
          endpoints: [http://127.0.0.1:2379]
        \(top)
        instances:
          - {name: db1001, socket: /a.sock, credentials_file: /c.cnf, shard: s1\(first)}
          - {name: db1002, socket: /b.sock, credentials_file: /c.cnf, shard: s1\(second)}
        """
    }

    @Test("both listeners load")
    func loads() throws {
        let configuration = try AgentConfiguration.parse(
            Self.text(", health_listen: 127.0.0.1:9200", ", health_listen: 127.0.0.1:9201", top: "metrics_listen: 127.0.0.1:9104"),
            file: "agent.yaml")
        #expect(configuration.instances.map(\.healthListen) == ["127.0.0.1:9200", "127.0.0.1:9201"])
        #expect(configuration.metricsListen == "127.0.0.1:9104")
        #expect(try AgentConfiguration.parse(Self.text(), file: "agent.yaml").metricsListen == nil)
    }

    @Test(
        "a bad or repeated endpoint is one error naming the key",
        arguments: [
            (
                Self.text(", health_listen: localhost:9200"),
                "agent.yaml: instances[0].health_listen must be an IPv4 address and a port, such as 127.0.0.1:9104 (got localhost:9200)"
            ),
            (
                Self.text(", health_listen: 127.0.0.1:0"),
                "agent.yaml: instances[0].health_listen must be an IPv4 address and a port, such as 127.0.0.1:9104 (got 127.0.0.1:0)"
            ),
            (
                Self.text(top: "metrics_listen: \"\""),
                "agent.yaml: metrics_listen must be an IPv4 address and a port, such as 127.0.0.1:9104 (got an empty string)"
            ),
            (
                Self.text(", health_listen: 127.0.0.1:9200", ", health_listen: 127.0.0.1:9200"),
                "agent.yaml: instances[1].health_listen 127.0.0.1:9200 is also instances[0].health_listen: each listener needs its own address and port"
            ),
            (
                Self.text(", health_listen: 127.0.0.1:9200", top: "metrics_listen: 127.0.0.1:9200"),
                "agent.yaml: metrics_listen 127.0.0.1:9200 is also instances[0].health_listen: each listener needs its own address and port"
            ),
        ])
    func refused(text: String, message: String) {
        #expect(throws: ConfigurationError(message: message)) { try AgentConfiguration.parse(text, file: "agent.yaml") }
    }

    @Test("a misspelt key is refused with its path")
    func misspelt() {
        #expect {
            try AgentConfiguration.parse(Self.text(", health_listn: 127.0.0.1:9200"), file: "agent.yaml")
        } throws: { error in
            "\(error)".hasPrefix("agent.yaml: instances[0].health_listn: unknown key")
        }
    }
}
