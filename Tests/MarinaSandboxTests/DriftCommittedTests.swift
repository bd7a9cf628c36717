import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Observation
import Testing
import TopologyStore

/// `marina drift --json`: the exit status and every finding.
func driftJSON(_ sandbox: SandboxState, _ options: [String] = []) throws -> (status: Int32, findings: [[String: Any]]) {
    let result = try runMarina(["drift", "--json"] + options, environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
    #expect(result.status == 0 || result.status == 6, "\(result.stderr)")
    return (result.status, (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]) ?? [])
}

@Suite("Drift and status judge against what is committed", .serialized)
struct DriftCommittedTests {
    @Test("a staged, uncommitted set-primary raises no critical finding: drift and status show the committed primary, the change as information")
    func stagedSetPrimaryIsNotDrift() async throws {
        let sandbox = try await driftSandbox("drift-committed")
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory]
        #expect(try runMarina(["section", "set-primary", "s1", "db1002"], environment: environment).status == 0)

        let (status, findings) = try driftJSON(sandbox, ["--max-lag", "1000", "--heartbeat-stale", "1000"])
        #expect(
            !findings.isEmpty && findings.allSatisfy { $0["code"] as? String == "UNCOMMITTED_CHANGE" && $0["severity"] as? String == "info" },
            "\(findings)")
        #expect(!findings.contains { $0["severity"] as? String == "critical" })
        #expect(status == 0, "informational findings only")
        let text = try runMarina(["drift", "--max-lag", "1000", "--heartbeat-stale", "1000"], environment: environment)
        #expect(text.status == 0 && text.stdout.hasPrefix("No drift: every instance is as the committed source of truth says."), "\(text.stdout)")
        #expect(text.stdout.contains("UNCOMMITTED_CHANGE"))

        let status1 = try runMarina(["status", "--json"], environment: environment)
        #expect(status1.status == 0, "\(status1.stderr)")
        let sections = try #require(try JSONSerialization.jsonObject(with: Data(status1.stdout.utf8)) as? [[String: Any]])
        #expect(sections.first?["primary"] as? String == "db1001")
        #expect((sections.first?["uncommitted"] as? [String])?.isEmpty == false, "\(sections)")
        let members = sections.first?["members"] as? [[String: Any]] ?? []
        #expect(members.first { $0["name"] as? String == "db1001" }?["configuredRole"] as? String == "primary", "\(members)")
        let statusText = try runMarina(["status"], environment: environment).stdout
        #expect(
            statusText.contains("section s1  (dc1, primary db1001, read-write)") && statusText.contains("staged, not committed: dc1 sectionLoads"),
            "\(statusText)")

        // An operation's lock on the section: information, beside the findings.
        try await sandbox.etcdClient.put(StoreKeys().lock("s1"), "op-test")
        let locked = try driftJSON(sandbox, ["--max-lag", "1000", "--heartbeat-stale", "1000"])
        #expect(locked.findings.contains { $0["code"] as? String == "OPERATION_IN_PROGRESS" && $0["section"] as? String == "s1" })
        #expect(locked.status == 0)
        #expect(try runMarina(["status"], environment: environment).stdout.contains("operation op-test running"))
        _ = try await sandbox.etcdClient.delete(StoreKeys().lock("s1"))
    }

    @Test("an observation older than --stale-after (or dated in the future) is OBSERVATION_STALE; the flag is validated")
    func staleObservation() async throws {
        let sandbox = try await TestServers.privateSandbox("drift-stale", sections: 1, replicas: 2)
        defer { TestServers.stop(sandbox) }
        let now = Date()
        // Written as an agent would, as if db1002's agent had stopped publishing ten minutes ago and db1003's clock ran ahead.
        for (name, offset) in [("db1001", 0.0), ("db1002", -600.0), ("db1003", 900.0)] {
            let at = now.addingTimeInterval(offset)
            let observation = Observation(
                instance: name, agent: "host-\(name)", agentStartedAt: at, observedAt: at, reachable: true, lastGoodProbeAt: at)
            try await sandbox.etcdClient.put(StoreKeys().observed + name, try ObservationJSON.encode(observation))
        }
        func stale(_ options: [String]) throws -> [String: String] {
            let findings = try driftJSON(sandbox, options).findings.filter { $0["code"] as? String == "OBSERVATION_STALE" }
            return Dictionary(uniqueKeysWithValues: findings.map { ($0["instance"] as? String ?? "?", $0["observed"] as? String ?? "") })
        }
        let defaults = try stale([])
        #expect(Set(defaults.keys) == ["db1002", "db1003"], "\(defaults)")
        #expect(defaults["db1002"]?.contains("s ago by agent host-db1002") == true, "\(defaults)")
        #expect(defaults["db1003"]?.contains("in the future") == true, "\(defaults)")
        #expect(Set(try stale(["--stale-after", "700"]).keys) == ["db1003"])
        #expect(try stale(["--stale-after", "3600"]).isEmpty)

        for bad in ["0", "-5", "nan", "inf"] {
            let result = try runMarina(["drift", "--stale-after", bad], environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
            #expect(result.status == 64, "\(bad): \(result.stderr)")
            #expect(result.stderr.contains("--stale-after must be a finite number of seconds above 0"), "\(bad): \(result.stderr)")
        }
    }
}
