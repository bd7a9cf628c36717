import Testing
import Topology

/// One broken topology per rule, with the issue it must produce.
let validationCases: [(String, @Sendable (inout Topology) -> Void, TopologyIssue)] = [
    (
        "unknown datacenter on a section", { $0.sections["s1"]!.datacenter = "nowhere" },
        .init("sections.s1.datacenter", "names unknown datacenter \"nowhere\"")
    ),
    (
        "unknown primary", { $0.sections["s1"]!.primary = "db9999" },
        .init("sections.s1.primary", "names unknown instance \"db9999\"")
    ),
    (
        "primary not configured in the section", { $0.instances["db1001"]!.sections = [:] },
        .init("sections.s1.primary", "db1001 is not configured in section s1")
    ),
    (
        "primary depooled", { $0.instances["db1001"]!.sections["s1"]!.pooled = false },
        .init("sections.s1.primary", "the primary db1001 must stay pooled")
    ),
    (
        "below the minimum of pooled replicas", { $0.sections["s1"]!.minReplicas = 3 },
        .init("sections.s1", "has 2 pooled replicas, fewer than its minimum of 3")
    ),
    (
        "no pooled replica, not flagged",
        {
            $0.sections["s1"]!.minReplicas = 0
            $0.instances["db1002"]!.sections["s1"]!.pooled = false
            $0.instances["db1003"]!.sections["s1"]!.pooled = false
        }, .init("sections.s1", "has no pooled replica (set allow_empty if that is intended)")
    ),
    (
        "read-only without a reason", { $0.sections["s1"]!.readOnly = true },
        .init("sections.s1.ro_reason", "a read-only section needs a reason")
    ),
    (
        "percentage over 100", { $0.instances["db1002"]!.sections["s1"]!.percentage = 150 },
        .init("instances.db1002.sections.s1.percentage", "must be within 0-100 (is 150)")
    ),
    (
        "negative percentage", { $0.instances["db1002"]!.sections["s1"]!.percentage = -1 },
        .init("instances.db1002.sections.s1.percentage", "must be within 0-100 (is -1)")
    ),
    (
        "negative weight", { $0.instances["db1002"]!.sections["s1"]!.weight = -5 },
        .init("instances.db1002.sections.s1.weight", "must not be negative (is -5)")
    ),
    (
        "negative group weight", { $0.instances["db1003"]!.sections["s1"]!.groups["vslow"]!.weight = -1 },
        .init("instances.db1003.sections.s1.groups.vslow.weight", "must not be negative (is -1)")
    ),
    (
        "weight too large to compute a load with", { $0.instances["db1002"]!.sections["s1"]!.weight = Int.max },
        .init("instances.db1002.sections.s1.weight", "must be at most 1000000 (is \(Int.max))")
    ),
    (
        "group weight too large", { $0.instances["db1003"]!.sections["s1"]!.groups["vslow"]!.weight = 1_000_001 },
        .init("instances.db1003.sections.s1.groups.vslow.weight", "must be at most 1000000 (is 1000001)")
    ),
    (
        "unknown section in a membership", { $0.instances["db1002"]!.sections["s9"] = Membership(pooled: true, weight: 1) },
        .init("instances.db1002.sections.s9", "names unknown section \"s9\"")
    ),
    (
        "unknown datacenter on an instance", { $0.instances["db1003"]!.datacenter = "dc9" },
        .init("instances.db1003.datacenter", "names unknown datacenter \"dc9\"")
    ),
    (
        "host that is not an IP", { $0.instances["db1003"]!.host = "db1003.example" },
        .init("instances.db1003.host", "\"db1003.example\" is not an IP address")
    ),
    (
        "port out of range", { $0.instances["db1003"]!.port = 70000 },
        .init("instances.db1003.port", "must be within 1-65535 (is 70000)")
    ),
    (
        "bad instance name",
        {
            var instance = $0.instances["db1003"]!
            instance.name = "DB-3"
            $0.instances["DB-3"] = instance
        }, .init("instances.DB-3", "is not a valid instance name (like db1085 or db1101:3317)")
    ),
    (
        "port in the name differs",
        {
            $0.instances["db1004:3317"] = Instance(name: "db1004:3317", host: "10.0.0.4", port: 3318, datacenter: "dc1")
        }, .init("instances.db1004:3317.port", "is 3318 but the name says 3317")
    ),
    (
        "primary in another datacenter",
        {
            $0.datacenters.insert("dc2")
            $0.instances["db1001"]!.datacenter = "dc2"
        }, .init("sections.s1.primary", "db1001 is in datacenter dc2, the section in dc1")
    ),
]

@Suite("Validation")
struct ValidationTests {
    @Test("a valid topology yields nothing")
    func clean() {
        #expect(smallTopology().validate().isEmpty)
    }

    @Test("each rule reports its own issue", arguments: validationCases.indices)
    func rule(_ index: Int) {
        let (name, breakIt, expected) = validationCases[index]
        var topology = smallTopology()
        breakIt(&topology)
        #expect(topology.validate().contains(expected), "\(name): got \(topology.validate())")
    }

    @Test("every error is listed at once")
    func allAtOnce() {
        var topology = smallTopology()
        topology.instances["db1002"]!.sections["s1"]!.weight = -5
        topology.instances["db1003"]!.sections["s1"]!.percentage = 150
        topology.instances["db1001"]!.sections["s1"]!.pooled = false
        #expect(
            topology.validate().map(\.path) == [
                "instances.db1002.sections.s1.weight", "instances.db1003.sections.s1.percentage", "sections.s1.primary",
            ])
    }

    @Test("an allowed empty section, an omitted-replicas section and an uninitialized section are valid")
    func flaggedSections() {
        var topology = smallTopology()
        topology.sections["s1"]!.minReplicas = 0
        topology.sections["s1"]!.allowEmpty = true
        topology.instances["db1002"]!.sections["s1"]!.pooled = false
        topology.instances["db1003"]!.sections["s1"]!.pooled = false
        topology.sections["pc1"] = Section(name: "pc1", primary: "db1002", datacenter: "dc1", flavor: .external, omitReplicas: true)
        topology.instances["db1002"]!.sections["pc1"] = Membership(pooled: true, weight: 1)
        topology.sections["s2"] = Section(name: "s2", datacenter: "dc1")
        #expect(topology.validate().isEmpty, "\(topology.validate())")
    }
}
