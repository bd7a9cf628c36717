import Testing
import Topology

@Suite("Edits and what-if checks")
struct EditTests {
    @Test("depooling the primary is an introduced issue; depooling a replica is not")
    func whatIf() throws {
        let topology = smallTopology()
        let depoolPrimary = try topology.applying(.depool(instance: "db1001", section: "s1", group: nil))
        #expect(topology.issuesIntroduced(by: depoolPrimary) == [.init("sections.s1.primary", "the primary db1001 must stay pooled")])
        let depoolReplica = try topology.applying(.depool(instance: "db1002", section: "s1", group: nil))
        #expect(topology.issuesIntroduced(by: depoolReplica).isEmpty)
        #expect(depoolReplica.instances["db1002"]?.sections["s1"]?.pooled == false)
        // Going below the minimum (1) by depooling the second one as well.
        let both = try depoolReplica.applying(.depool(instance: "db1003", section: "s1", group: nil))
        #expect(depoolReplica.issuesIntroduced(by: both) == [.init("sections.s1", "has 0 pooled replicas, fewer than its minimum of 1")])
    }

    @Test("a topology that is already broken can still be repaired step by step")
    func repair() throws {
        var broken = smallTopology()
        broken.instances["db1002"]!.sections["s1"]!.percentage = 150
        broken.instances["db1003"]!.sections["s1"]!.weight = -1
        let fixedOne = try broken.applying(.setPercentage(instance: "db1002", section: "s1", percentage: 100))
        #expect(broken.issuesIntroduced(by: fixedOne).isEmpty)
        #expect(fixedOne.validate().count == 1)
    }

    @Test("edits on things that do not exist are refused with the name")
    func missing() {
        let topology = smallTopology()
        #expect(throws: EditError("unknown instance db9")) { try topology.applying(.setCandidate(instance: "db9", candidate: true)) }
        #expect(throws: EditError("unknown section s9")) {
            try topology.applying(.pool(instance: "db1002", section: "s9", group: nil, percentage: nil))
        }
        #expect(throws: EditError("db1001 is the primary of s1: switch it over first")) { try topology.applying(.removeInstance("db1001")) }
        #expect(throws: EditError("instance db1002 already exists")) {
            try topology.applying(.addInstance(Instance(name: "db1002", host: "10.0.0.9", datacenter: "dc1")))
        }
        #expect(throws: EditError("db1002 has no group api in section s1")) {
            try topology.applying(.pool(instance: "db1002", section: "s1", group: "api", percentage: nil))
        }
    }

    @Test("pool with a percentage, set weights of a section and of a group")
    func weights() throws {
        var topology = try smallTopology().applying(.depool(instance: "db1002", section: "s1", group: nil))
        topology = try topology.applying(.pool(instance: "db1002", section: "s1", group: nil, percentage: 25))
        topology = try topology.applying(.setWeight(instance: "db1002", section: "s1", group: "api", weight: 40))
        topology = try topology.applying(.setWeight(instance: "db1003", section: "s1", group: nil, weight: 300))
        let config = topology.generatedConfig(for: "dc1")
        #expect(config.sectionLoads["s1"] == [["db1001": 0], ["db1002": 25, "db1003": 300]])
        #expect(config.groupLoadsBySection["s1"]?["api"] == ["db1002": 10])
    }
}
