import Foundation
import Testing
import Topology

@Suite("Topology documents (YAML import/export)")
struct DocumentTests {
    @Test("export then import gives the same topology, and exporting again the same bytes")
    func roundTrip() throws {
        let yaml = try TopologyDocument(wikimediaExample()).yaml()
        let parsed = try TopologyDocument.parse(yaml)
        #expect(parsed.topology == wikimediaExample())
        #expect(try parsed.yaml() == yaml)
    }

    @Test(
        "bad documents name the field and the problem",
        arguments: [
            (
                "schema: 1\ninstances:\n  db1002:\n    host: 10.0.0.2\n    datacenter: dc1\n    sections:\n      s1: {pooled: true, wieght: 100}\n",
                "topology.yaml.instances.db1002.sections.s1.wieght: unknown field \"wieght\""
            ),
            (
                "schema: 1\ninstances:\n  db1002:\n    host: 10.0.0.2\n    datacenter: dc1\n    sections:\n      s1: {pooled: true, weight: heavy}\n",
                "topology.yaml.instances.db1002.sections.s1.weight: must be a whole number"
            ),
            (
                "schema: 1\nsections:\n  s1: {datacenter: dc1, primary: [db1001, db1002]}\n",
                "topology.yaml.sections.s1.primary: must be a single value, not a list or a mapping"
            ),
            ("schema: 1\nsections:\n  s1: {primary: db1001}\n", "topology.yaml.sections.s1.datacenter: is required"),
            ("schema: 2\n", "topology.yaml.schema: is 2; this Marina reads schema 1"),
            ("schema: 1\ninstancs: {}\n", "topology.yaml.instancs: unknown field \"instancs\""),
            ("schema: 1\nsections: [\n", "topology.yaml: is not valid YAML"),
        ])
    func badDocuments(text: String, expected: String) {
        #expect {
            try TopologyDocument.parse(text, source: "topology.yaml")
        } throws: { error in
            String(describing: error).hasPrefix(expected)
        }
    }
}
