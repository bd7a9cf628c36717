import Foundation
import Testing
import Topology

/// The mark a failover leaves on the primary it replaced: stored with the membership, kept
/// depooled and away from the primary's role by validation, set and cleared by edits, shown
/// by the diff, invisible to applications.
@Suite("Rejoin marks")
struct RejoinMarkTests {
    static let mark = RejoinMark(operation: "op-7", newPrimary: "db1002", forkPoint: "0-1002-500", lastKnownPosition: "0-1001-480")

    /// The small topology after a failover of s1 from db1001 to db1002, applied as a controller would.
    static func afterFailover() throws -> Topology {
        try smallTopology().applying(.setPrimary(section: "s1", instance: "db1002"))
            .applying(.markNeedsRejoin(instance: "db1001", section: "s1", mark: mark))
    }

    static func parse(membership: String) throws -> TopologyDocument {
        try TopologyDocument.parse(
            """
            schema: 1
            datacenters: [dc1]
            instances:
              db1001: {host: 10.0.0.1, datacenter: dc1, sections: {s1: \(membership)}}
            """, source: "t.yaml")
    }

    // MARK: Stored form

    @Test("a YAML document with a mark round-trips, and exporting again gives the same bytes")
    func yamlRoundTrip() throws {
        var topology = try Self.afterFailover()
        topology.instances["db1003"]!.sections["s1"]!.needsRejoin = RejoinMark(operation: "op-8", newPrimary: "db1002", forkPoint: "0-1002-9")
        let yaml = try TopologyDocument(topology).yaml()
        #expect(yaml.contains("needs_rejoin:") && yaml.contains("fork_point: 0-1002-500") && yaml.contains("new_primary: db1002"))
        #expect(yaml.contains("last_known_position: 0-1001-480"))
        let parsed = try TopologyDocument.parse(yaml)
        #expect(parsed.topology == topology)
        #expect(try parsed.yaml() == yaml)
        #expect(parsed.topology.instances["db1003"]?.sections["s1"]?.needsRejoin?.lastKnownPosition == nil)
    }

    @Test("an instance's JSON carries needs_rejoin only when set, and decodes back")
    func jsonRoundTrip() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let topology = try Self.afterFailover()
        let marked = String(decoding: try encoder.encode(topology.instances["db1001"]), as: UTF8.self)
        #expect(
            marked.contains(
                #""needs_rejoin":{"fork_point":"0-1002-500","last_known_position":"0-1001-480","new_primary":"db1002","operation":"op-7"}"#),
            "\(marked)")
        #expect(try JSONDecoder().decode(Instance.self, from: Data(marked.utf8)) == topology.instances["db1001"])
        let unmarked = String(decoding: try encoder.encode(topology.instances["db1003"]), as: UTF8.self)
        #expect(!unmarked.contains("needs_rejoin"))
        let withoutLast = RejoinMark(operation: "op-7", newPrimary: "db1002", forkPoint: "0-1002-500")
        #expect(
            String(decoding: try encoder.encode(withoutLast), as: UTF8.self)
                == #"{"fork_point":"0-1002-500","new_primary":"db1002","operation":"op-7"}"#)
    }

    @Test(
        "a mark with an unknown, missing or mistyped field is refused naming its path",
        arguments: [
            (
                "{pooled: false, weight: 0, needs_rejoin: {operation: op-7, new_primary: db1002, fork_point: 0-1002-500, forkpoint: x}}",
                "t.yaml.instances.db1001.sections.s1.needs_rejoin.forkpoint: unknown field \"forkpoint\""
            ),
            (
                "{pooled: false, weight: 0, needs_rejoin: {operation: op-7, new_primary: db1002}}",
                "t.yaml.instances.db1001.sections.s1.needs_rejoin.fork_point: is required"
            ),
            (
                "{pooled: false, weight: 0, needs_rejoin: {operation: op-7, new_primary: [db1002], fork_point: 0-1002-500}}",
                "t.yaml.instances.db1001.sections.s1.needs_rejoin.new_primary: must be a single value"
            ),
            ("{pooled: false, weight: 0, needs_rejoin: yes}", "t.yaml.instances.db1001.sections.s1.needs_rejoin"),
            ("{pooled: false, weight: 0, needs_rejoyn: {}}", "t.yaml.instances.db1001.sections.s1.needs_rejoyn: unknown field \"needs_rejoyn\""),
        ])
    func badMark(membership: String, expected: String) {
        #expect {
            try Self.parse(membership: membership)
        } throws: { error in
            String(describing: error).hasPrefix(expected)
        }
    }

    @Test("an unknown field inside needs_rejoin is refused in JSON too")
    func badMarkJSON() {
        let json = #"{"pooled":false,"weight":0,"needs_rejoin":{"operation":"op-7","new_primary":"db1002","fork_point":"0-1002-500","extra":1}}"#
        #expect {
            try JSONDecoder().decode(Membership.self, from: Data(json.utf8))
        } throws: { error in
            SchemaError.from(error, root: "value").description.hasPrefix("value.needs_rejoin.extra: unknown field \"extra\"")
        }
    }

    // MARK: Validation

    @Test("the topology after a failover, old primary marked and depooled, is valid")
    func validAfterFailover() throws {
        let topology = try Self.afterFailover()
        #expect(topology.validate().isEmpty, "\(topology.validate())")
        #expect(smallTopology().issuesIntroduced(by: topology).isEmpty)
    }

    @Test("a marked member pooled in its section, or in one of its groups, is an issue naming it and the section")
    func pooledMarked() throws {
        var topology = smallTopology()
        topology.instances["db1003"]!.sections["s1"]!.needsRejoin = Self.mark
        #expect(
            topology.validate() == [
                .init(
                    "instances.db1003.sections.s1.groups.vslow.pooled",
                    "db1003 needs a rejoin in section s1 since failover op-7 and must stay depooled from group vslow"),
                .init("instances.db1003.sections.s1.pooled", "db1003 needs a rejoin in section s1 since failover op-7 and must stay depooled"),
            ])
        topology.instances["db1003"]!.sections["s1"]!.pooled = false
        topology.instances["db1003"]!.sections["s1"]!.groups["vslow"]!.pooled = false
        #expect(topology.validate().isEmpty, "\(topology.validate())")
    }

    @Test("a marked member may not be the section's primary")
    func primaryMarked() throws {
        var topology = try Self.afterFailover()
        topology.sections["s1"]!.primary = "db1001"
        #expect(
            topology.validate().contains(
                .init("sections.s1.primary", "db1001 needs a rejoin in section s1 since failover op-7 and cannot be its primary")))
        let back = try Self.afterFailover()
        let promoted = try back.applying(.setPrimary(section: "s1", instance: "db1001"))
        #expect(
            back.issuesIntroduced(by: promoted).contains(
                .init("sections.s1.primary", "db1001 needs a rejoin in section s1 since failover op-7 and cannot be its primary")))
    }

    // MARK: Edits

    @Test("marking depools the member in the section and in every group; it stays otherwise as it was")
    func markDepools() throws {
        let topology = try smallTopology().applying(.markNeedsRejoin(instance: "db1003", section: "s1", mark: Self.mark))
        let membership = try #require(topology.instances["db1003"]?.sections["s1"])
        #expect(
            membership
                == Membership(pooled: false, weight: 200, groups: ["vslow": GroupMembership(pooled: false, weight: 50)], needsRejoin: Self.mark))
        #expect(smallTopology().issuesIntroduced(by: topology).isEmpty)
        let again = RejoinMark(operation: "op-9", newPrimary: "db1001", forkPoint: "0-1001-900")
        #expect(
            try topology.applying(.markNeedsRejoin(instance: "db1003", section: "s1", mark: again)).instances["db1003"]?.sections["s1"]?.needsRejoin
                == again)
    }

    @Test("pooling a marked member (section or group) is an introduced issue, so a store refuses it")
    func poolRefused() throws {
        let topology = try Self.afterFailover()
        for edit in [
            TopologyEdit.pool(instance: "db1001", section: "s1", group: nil, percentage: nil),
            .setWeight(instance: "db1001", section: "s1", group: "api", weight: 10),
        ] {
            #expect(!topology.issuesIntroduced(by: try topology.applying(edit)).isEmpty, "\(edit)")
        }
    }

    @Test("clearing removes the mark and leaves the member depooled; clearing an unmarked member changes nothing")
    func clear() throws {
        let topology = try Self.afterFailover()
        let cleared = try topology.applying(.clearNeedsRejoin(instance: "db1001", section: "s1"))
        #expect(cleared.instances["db1001"]?.sections["s1"] == Membership(pooled: false, weight: 0))
        #expect(topology.issuesIntroduced(by: cleared).isEmpty)
        #expect(try cleared.applying(.clearNeedsRejoin(instance: "db1001", section: "s1")) == cleared)
        let repooled = try cleared.applying(.pool(instance: "db1001", section: "s1", group: nil, percentage: 10))
        #expect(cleared.issuesIntroduced(by: repooled).isEmpty)
    }

    @Test("both edits refuse an unknown instance, an unknown section and an instance not in the section")
    func refused() {
        var topology = smallTopology()
        topology.sections["s2"] = Section(name: "s2", datacenter: "dc1")
        for (edit, message) in [
            (TopologyEdit.markNeedsRejoin(instance: "db9", section: "s1", mark: Self.mark), "unknown instance db9"),
            (.clearNeedsRejoin(instance: "db9", section: "s1"), "unknown instance db9"),
            (.markNeedsRejoin(instance: "db1001", section: "s9", mark: Self.mark), "unknown section s9"),
            (.clearNeedsRejoin(instance: "db1001", section: "s9"), "unknown section s9"),
            (.markNeedsRejoin(instance: "db1001", section: "s2", mark: Self.mark), "db1001 is not configured in section s2"),
            (.clearNeedsRejoin(instance: "db1001", section: "s2"), "db1001 is not configured in section s2"),
        ] {
            #expect(throws: EditError(message), "\(edit)") { try topology.applying(edit) }
        }
    }

    // MARK: What applications see, what a reviewer sees

    @Test("the generated configuration is that of the member simply depooled")
    func generatedConfig() throws {
        let marked = try Self.afterFailover()
        var depooled = marked
        depooled.instances["db1001"]!.sections["s1"]!.needsRejoin = nil
        #expect(marked.generatedConfigs() == depooled.generatedConfigs())
        #expect(marked.generatedConfig(for: "dc1").sectionLoads["s1"] == [["db1002": 100], ["db1003": 200]])
        #expect(ConfigDiff.changes(from: depooled.generatedConfigs(), to: marked.generatedConfigs()).isEmpty)
    }

    @Test("the diff shows a mark set, changed and cleared, and nothing when the marks are equal")
    func diff() throws {
        let before = smallTopology()
        let after = try Self.afterFailover()
        #expect(ConfigDiff.rejoinMarkChanges(from: after, to: after).isEmpty)
        #expect(ConfigDiff.rejoinMarkChanges(from: before, to: before).isEmpty)

        let set = ConfigDiff.rejoinMarkChanges(from: before, to: after)
        #expect(
            set.map(\.description) == [
                """
                dc1 needs_rejoin db1001 in s1
                  + {"fork_point":"0-1002-500","last_known_position":"0-1001-480","new_primary":"db1002","operation":"op-7"}

                """
            ])

        let cleared = ConfigDiff.rejoinMarkChanges(from: after, to: try after.applying(.clearNeedsRejoin(instance: "db1001", section: "s1")))
        #expect(cleared.count == 1 && cleared[0].entry == "db1001 in s1" && cleared[0].after == nil)
        #expect(cleared[0].before == #"{"fork_point":"0-1002-500","last_known_position":"0-1001-480","new_primary":"db1002","operation":"op-7"}"#)

        var changed = after
        changed.instances["db1001"]!.sections["s1"]!.needsRejoin!.forkPoint = "0-1002-501"
        changed.datacenters.insert("dc2")
        changed.sections["s2"] = Section(name: "s2", datacenter: "dc2")
        changed.instances["db2001"] = Instance(
            name: "db2001", host: "10.0.1.1", datacenter: "dc2", sections: ["s2": Membership(needsRejoin: Self.mark)])
        #expect(
            ConfigDiff.rejoinMarkChanges(from: after, to: changed).map {
                "\($0.datacenter) \($0.key) \($0.entry) \($0.before != nil) \($0.after != nil)"
            }
                == ["dc1 needs_rejoin db1001 in s1 true true", "dc2 needs_rejoin db2001 in s2 false true"])
    }

    @Test("a mark reads as a sentence, the last known position when there is one")
    func description() {
        #expect(
            Self.mark.description
                == "needs rejoin since failover op-7 (new primary db1002, fork point 0-1002-500, last known position 0-1001-480)")
        #expect(
            RejoinMark(operation: "op-7", newPrimary: "db1002", forkPoint: "0-1002-500").description
                == "needs rejoin since failover op-7 (new primary db1002, fork point 0-1002-500)")
    }
}
