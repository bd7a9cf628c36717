import Foundation
import Testing
import Topology

@Suite("Generated MediaWiki configuration")
struct GeneratedConfigTests {
    @Test("reproduces dbctl's generated configuration for the eqiad example")
    func wikimediaExampleConfig() throws {
        let topology = wikimediaExample()
        #expect(topology.validate().isEmpty, "\(topology.validate())")
        let config = topology.generatedConfig(for: "eqiad")
        #expect(config.sectionLoads["DEFAULT"] == [["db1223": 0], ["db1166": 300, "db1189": 500]])
        #expect(config.sectionLoads["s4"] == [["db1160": 0], ["db1248": 300, "db1261": 500, "db1221": 300]])
        #expect(config.sectionLoads["s3"] == nil)
        #expect(config.groupLoadsBySection == ["s4": ["dump": ["db1248": 100, "db1221": 100], "vslow": ["db1248": 100, "db1221": 100]]])
        #expect(
            config.externalLoads == [
                "es6": [["es1038": 0], ["es1036": 100, "es1037": 100]],
                "x1": [["db1237": 0], ["db1220": 100]],
                "pc1": [["pc1011": 1], [:]],
            ])
        #expect(config.readOnlyBySection == ["s1": "Maintenance until 06:15 UTC - T372524"])
        #expect(config.hostsByName["db1151"] == "10.64.0.6")
        #expect(config.hostsByName["dba2:3307"] == "127.0.0.1:3307")
        #expect(config.hostsByName["pc1012"] == nil)  // omitted replicas are not named
        // The other datacenter has no section of its own.
        #expect(topology.generatedConfig(for: "codfw") == GeneratedConfig())
    }

    @Test("the JSON has MediaWiki's keys, the primary first, and is byte-stable")
    func jsonShape() throws {
        let config = smallTopology().generatedConfig(for: "dc1")
        let text = String(decoding: config.json(), as: UTF8.self)
        #expect(
            text
                == #"{"externalLoads":{},"groupLoadsBySection":{"s1":{"vslow":{"db1003":50}}},"hostsByName":{"db1001":"10.0.0.1","db1002":"10.0.0.2","db1003":"10.0.0.3"},"readOnlyBySection":{},"sectionLoads":{"s1":[{"db1001":0},{"db1002":100,"db1003":200}]}}"#
        )
        #expect(config.json() == smallTopology().generatedConfig(for: "dc1").json())
    }

    @Test(
        "effective weight is weight × percentage / 100, rounded down, groups included",
        arguments: [
            (500, 25, 125), (3, 50, 1), (100, 0, 0), (100, 100, 100), (7, 99, 6),
        ])
    func effectiveWeight(weight: Int, percentage: Int, expected: Int) throws {
        var topology = smallTopology()
        topology.instances["db1003"]!.sections["s1"] = Membership(
            pooled: true, weight: weight, percentage: percentage,
            groups: ["vslow": GroupMembership(weight: weight)])
        let config = topology.generatedConfig(for: "dc1")
        #expect(config.sectionLoads["s1"]?[1]["db1003"] == expected)
        #expect(config.groupLoadsBySection["s1"]?["vslow"]?["db1003"] == expected)
    }

    @Test("depooled replicas, depooled groups, uninitialized sections and other datacenters are left out")
    func exclusions() throws {
        var topology = smallTopology()
        topology.instances["db1002"]!.sections["s1"]!.pooled = false
        topology.instances["db1003"]!.sections["s1"]!.groups["vslow"]!.pooled = false
        topology.datacenters.insert("dc2")
        topology.sections["s2"] = Section(name: "s2", datacenter: "dc1")  // no primary yet
        topology.instances["db2001"] = Instance(
            name: "db2001", host: "10.0.1.1", datacenter: "dc2",
            sections: ["s1": Membership(pooled: true, weight: 100)])
        let config = topology.generatedConfig(for: "dc1")
        #expect(config.sectionLoads == ["s1": [["db1001": 0], ["db1003": 200]]])
        #expect(config.groupLoadsBySection.isEmpty)
        #expect(config.hostsByName.keys.sorted() == ["db1001", "db1003"])
    }

    @Test("a diff names each changed entry per datacenter, and nothing when equal")
    func diff() throws {
        let before = smallTopology()
        var after = before
        after.instances["db1002"]!.sections["s1"]!.pooled = false
        after.sections["s1"]!.readOnly = true
        after.sections["s1"]!.readOnlyReason = "maintenance"
        #expect(ConfigDiff.changes(from: before.generatedConfigs(), to: before.generatedConfigs()).isEmpty)
        let changes = ConfigDiff.changes(from: before.generatedConfigs(), to: after.generatedConfigs())
        #expect(
            changes.map { "\($0.datacenter) \($0.key) \($0.entry)" } == [
                "dc1 sectionLoads s1", "dc1 readOnlyBySection s1", "dc1 hostsByName db1002",
            ])
        #expect(changes[0].before == #"[{"db1001":0},{"db1002":100,"db1003":200}]"#)
        #expect(changes[0].after == #"[{"db1001":0},{"db1003":200}]"#)
        #expect(changes[1].before == nil && changes[1].after == #""maintenance""#)
    }
}
