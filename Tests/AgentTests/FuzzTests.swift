import ConfigurationFiles
import Foundation
import FuzzSupport
import Testing

@testable import Agent

@Suite("Agent configuration: fuzz")
struct AgentConfigurationFuzzTests {
    static let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("config/agent.example.yaml").path

    @Test("random bytes and mutated samples give a configuration or one error naming the file, never a crash")
    func configuration() throws {
        let sample = try String(contentsOfFile: Self.sample, encoding: .utf8)
        _ = try AgentConfiguration.parse(sample, file: "fuzz.yaml")
        Fuzz.run(seed: 0xA6E17, sample: sample, { _ = try AgentConfiguration.parse($0, file: "fuzz.yaml") }) { error, input in
            #expect(error is ConfigurationError, "\(type(of: error)) \(input)")
            #expect("\(error)".hasPrefix("fuzz.yaml: ") && "\(error)".count > "fuzz.yaml: ".count, "\(error) \(input)")
        }
    }
}
