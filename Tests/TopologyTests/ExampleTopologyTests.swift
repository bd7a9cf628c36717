import Foundation
import Testing
import Topology

/// `config/topology.example.yaml`, from the repository.
func exampleTopologyText() throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return try String(contentsOf: root.appendingPathComponent("config/topology.example.yaml"), encoding: .utf8)
}

@Suite("config/topology.example.yaml")
struct ExampleTopologyTests {
    @Test("loads, is valid, and exports to exactly the same text")
    func example() throws {
        let text = try exampleTopologyText()
        let document = try TopologyDocument.parse(text, source: "topology.example.yaml")
        let topology = document.topology
        #expect(topology.validate().isEmpty, "\(topology.validate())")
        #expect(topology.sections.count == 6 && topology.instances.count == 15 && topology.datacenters == ["eqiad", "codfw"])
        #expect(try TopologyDocument(topology).yaml() == text)
        let eqiad = topology.generatedConfig(for: "eqiad")
        #expect(eqiad.sectionLoads["s1"] == [["db1001": 0], ["db1002": 200, "db1003": 150, "db1101:3317": 100]])
        #expect(eqiad.sectionLoads["DEFAULT"] == [["db1010": 0], ["db1011": 500]])
        #expect(eqiad.externalLoads["pc1"] == [["pc1011": 1], [:]])
        #expect(eqiad.readOnlyBySection.isEmpty)  // x1 is external: MediaWiki takes no read-only flag for it
        #expect(eqiad.hostsByName["db1101:3317"] == "10.64.0.5:3317")
        #expect(topology.generatedConfig(for: "codfw").sectionLoads == ["s2": [["db2001": 0], ["db2002": 100]]])
    }
}
