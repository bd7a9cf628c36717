import Drift
import Foundation
import Observation
import Testing
import Topology

/// The grant codes, from what the leader's grant watch wrote (`observed-grants/<instance>`):
/// each difference kind gives its own code, on its instance, with the account and both sides.
@Suite("Drift detection: managed accounts (pure)")
struct GrantDriftTests {
    static let codes: [(DriftCode, String)] = [
        (.grantAccountMissing, "missing"), (.grantAccountUnexpected, "unexpected"), (.grantAuthenticationDiffers, "authentication"),
        (.grantTLSDiffers, "tls"), (.grantLimitsDiffer, "limits"), (.grantPrivilegesDiffer, "privileges"), (.grantRolesDiffer, "roles"),
        (.grantDefaultRoleDiffers, "default-role"), (.grantsUnreadable, ""),
    ]

    static func snapshot(kind: String) -> DriftSnapshot {
        var topology = cleanTopology()
        topology.grants["s1"] = ["app": ManagedAccount(name: "app", hosts: ["10.%"], privileges: ["`wiki`.*": ["SELECT"]])]
        var snapshot = DriftSnapshot(topology: topology, observations: cleanObservations(), now: now)
        for instance in ["db1001", "db1002", "db1003"] {
            snapshot.grants[instance] = ObservedGrants(instance: instance, section: "s1", readAt: now, sequence: 3, differences: [])
        }
        if kind.isEmpty {
            snapshot.grants["db1002"]!.error = "Access denied for user 'marina_settings'@'10.0.0.1'"
        } else {
            snapshot.grants["db1002"]!.differences = [
                AccountDrift(account: "'app'@'10.%'", kind: kind, expected: "SELECT on `wiki`.*", observed: "DELETE, SELECT on `wiki`.*")
            ]
        }
        return snapshot
    }

    @Test("each difference kind yields its code for its instance, naming the account and the action", arguments: codes.indices)
    func code(_ index: Int) {
        let (code, kind) = Self.codes[index]
        let findings = Drift.findings(Self.snapshot(kind: kind))
        #expect(findings.map(\.code) == [code], "\(findings)")
        #expect(findings.first?.instance == "db1002")
        if !kind.isEmpty {
            #expect(findings.first?.expected.hasPrefix("'app'@'10.%'") == true)
            #expect(findings.first?.observed.contains("marina grant sync s1") == true)
        }
    }

    @Test("no managed account in the section: a leftover reading is not judged")
    func unmanaged() {
        var snapshot = Self.snapshot(kind: "privileges")
        snapshot.topology.grants = [:]
        #expect(Drift.findings(snapshot).isEmpty)
    }
}
