import Foundation
import Testing
import Topology

/// Values a topology refuses, which must still never trap where they are only displayed or
/// checked: a stored value is decoded before it is validated.
@Suite("Topology: values out of range")
struct TopologyBadInputTests {
    @Test("a load is computed without overflow from any weight and percentage")
    func effectiveWeight() {
        #expect(Membership(pooled: true, weight: Int.max, percentage: 100).effectiveWeight == Int.max)
        #expect(Membership(pooled: true, weight: Int.min, percentage: 100).effectiveWeight == Int.min)
        #expect(Membership(pooled: true, weight: 300, percentage: 50).effectiveWeight == 150)
        var topology = smallTopology()
        topology.instances["db1002"]!.sections["s1"]!.weight = Int.max
        topology.instances["db1003"]!.sections["s1"]!.groups["vslow"]!.weight = Int.max
        topology.instances["db1003"]!.sections["s1"]!.percentage = Int.max
        #expect(topology.generatedConfig(for: "dc1").sectionLoads["s1"]?[1]["db1002"] == Int.max)
        #expect(!topology.validate().isEmpty)
    }

    @Test("a digit with a combining mark is not a digit of an IP address")
    func combiningDigit() {
        #expect(!Names.isIPAddress("1\u{301}.0.0.1"))
        #expect(!Names.isInstance("db1\u{301}"))
        #expect(Names.isIPAddress("10.0.0.1"))
    }

    @Test(
        "a weight that is not a whole number, or not finite, is refused naming its path",
        arguments: [
            ".nan", ".inf", "1.5", "1e400", "99999999999999999999",
        ])
    func nonFiniteWeight(value: String) {
        let text = """
            schema: 1
            datacenters: [dc1]
            instances:
              db1001: {host: 10.0.0.1, datacenter: dc1, sections: {s1: {pooled: true, weight: \(value)}}}
            """
        #expect(throws: SchemaError.self) { try TopologyDocument.parse(text, source: "t.yaml") }
        do {
            _ = try TopologyDocument.parse(text, source: "t.yaml")
        } catch {
            #expect("\(error)".hasPrefix("t.yaml.instances.db1001.sections.s1.weight: "), "\(error)")
        }
    }
}
