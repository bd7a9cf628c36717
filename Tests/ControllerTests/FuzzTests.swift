import Controller
import Foundation
import FuzzSupport
import Testing

@Suite("Controller configuration: fuzz")
struct ControllerConfigurationFuzzTests {
    @Test("random bytes and mutated samples give a configuration or one error naming the file, never a crash")
    func configuration() throws {
        let path = repository.appendingPathComponent("config/controller.example.yaml").path
        let sample = try String(contentsOfFile: path, encoding: .utf8)
        _ = try ControllerConfiguration.parse(sample, file: "fuzz.yaml")
        Fuzz.run(seed: 0xC0417, sample: sample, { _ = try ControllerConfiguration.parse($0, file: "fuzz.yaml") }) { error, input in
            guard case .configuration(let message) = error as? ControllerError else {
                Issue.record("not a configuration error: \(error) \(input)")
                return
            }
            #expect(message.hasPrefix("fuzz.yaml: ") && message.count > "fuzz.yaml: ".count, "\(message) \(input)")
        }
    }
}
