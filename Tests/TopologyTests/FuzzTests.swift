import Foundation
import FuzzSupport
import Testing
import Topology

@Suite("Topology documents and objects: fuzz")
struct TopologyFuzzTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("random bytes and mutated documents give a topology or one error naming the path, never a crash")
    func document() throws {
        let sample = try String(contentsOf: Self.repository.appendingPathComponent("config/topology.example.yaml"), encoding: .utf8)
        _ = try TopologyDocument.parse(sample, source: "fuzz.yaml")
        Fuzz.run(
            seed: 0x7090, sample: sample,
            { text in
                let topology = try TopologyDocument.parse(text, source: "fuzz.yaml").topology
                // Whatever parses is checked and rendered without trapping, valid or not.
                _ = topology.validate()
                _ = topology.generatedConfigs()
            }
        ) { error, input in
            #expect(error is SchemaError, "\(type(of: error)) \(input)")
            #expect("\(error)".hasPrefix("fuzz.yaml") && !(error as? SchemaError)!.problem.isEmpty, "\(error) \(input)")
        }
    }

    @Test("random bytes and mutated JSON objects give an instance or section, or an error with a description, never a crash")
    func objects() throws {
        let document = try TopologyDocument.parse(
            try String(
                contentsOf: Self.repository.appendingPathComponent("config/topology.example.yaml"),
                encoding: .utf8))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let instance = String(decoding: try encoder.encode(document.instances["db1002"]), as: UTF8.self)
        let section = String(decoding: try encoder.encode(document.sections["s1"]), as: UTF8.self)
        for (seed, sample) in [(UInt64(0x1257), instance), (0x5EC7, section)] {
            Fuzz.run(
                seed: seed, rounds: 200, sample: sample,
                { text in
                    let data = Data(text.utf8)
                    if sample == instance {
                        let decoded = try JSONDecoder().decode(Instance.self, from: data)
                        _ = decoded.sections.values.map(\.effectiveWeight)
                    } else {
                        _ = try JSONDecoder().decode(Section.self, from: data)
                    }
                }
            ) { error, input in
                #expect(!SchemaError.from(error, root: "value").description.isEmpty, "\(input)")
            }
        }
    }
}
