import Drift
import Foundation
import Observation
import Testing
import Topology

/// The managed variables in drift, pure: the role decides the desired value, a read-only
/// variable is pending a restart rather than mismatched, an older agent is not judged.
@Suite("Drift: managed variables (pure)")
struct VariableDriftTests {
    /// s1 with `long_query_time` 2 everywhere, 5 on replicas, and the primary's
    /// `thread_stack`; observations as given (runtime values only).
    func findings(_ runtime: [String: [String: String]], pending: [String: [String]] = [:], optionFile: String? = "/srv/99-marina.cnf")
        -> [DriftFinding]
    {
        var topology = cleanTopology()
        topology.variables["s1"] = ManagedVariables(
            all: ["long_query_time": "2"], primary: ["thread_stack": "512K"], replica: ["long_query_time": "5"])
        var observations = cleanObservations()
        for (name, values) in runtime {
            observations[name]!.variables = values
            observations[name]!.pendingRestart = pending[name] ?? []
            observations[name]!.optionFile = optionFile
        }
        return Drift.findings(DriftSnapshot(topology: topology, observations: observations, now: now))
    }

    @Test("each instance is judged against its role's values, compared as MariaDB normalizes them")
    func roles() {
        let applied = [
            "db1001": ["long_query_time": "2.000000", "thread_stack": "524288"],
            "db1002": ["long_query_time": "5.000000"], "db1003": ["long_query_time": "5"],
        ]
        #expect(findings(applied).isEmpty)
        // The primary's value on a replica: a mismatch naming the replica's value and the sync command.
        var wrong = applied
        wrong["db1003"] = ["long_query_time": "2.000000"]
        let found = findings(wrong)
        #expect(found.map(\.code) == [.variableMismatch])
        #expect(found.first?.instance == "db1003")
        #expect(found.first?.expected == "long_query_time=5 (committed for a replica)")
        #expect(found.first?.observed == "long_query_time=2.000000 at runtime: `marina variable sync s1` sets it")
    }

    @Test("a variable only a restart sets is pending, with the option file, not a mismatch; without a file, the advice says so")
    func pendingRestart() {
        let runtime = [
            "db1001": ["long_query_time": "2", "thread_stack": "299008"], "db1002": ["long_query_time": "5"],
            "db1003": ["long_query_time": "5"],
        ]
        let found = findings(runtime, pending: ["db1001": ["thread_stack"]])
        #expect(found.map(\.code) == [.variablePendingRestart])
        #expect(found.first?.expected == "thread_stack=512K (committed for a primary)")
        #expect(found.first?.observed.contains("written to /srv/99-marina.cnf, it takes effect at the next restart") == true)
        let noFile = findings(runtime, pending: ["db1001": ["thread_stack"]], optionFile: nil)
        #expect(noFile.first?.observed.contains("its agent keeps no option file (variables.option_file)") == true, "\(noFile)")
        // Applied after the restart: the agent still lists it until its next probe, drift does not.
        var restarted = runtime
        restarted["db1001"]!["thread_stack"] = "524288"
        #expect(findings(restarted, pending: ["db1001": ["thread_stack"]]).isEmpty)
    }

    @Test(
        "an agent that reports no variables (older, or not read yet) and an unreachable instance are not judged; a variable the server lacks neither")
    func notJudged() {
        #expect(findings([:]).isEmpty)
        #expect(findings(["db1002": [:]]).isEmpty)
        var topology = cleanTopology()
        topology.variables["s1"] = ManagedVariables(all: ["long_query_time": "2"])
        var observations = cleanObservations()
        observations["db1002"] = Observation(
            instance: "db1002", agent: "h", agentStartedAt: now, observedAt: now, reachable: false, error: "refused")
        observations["db1002"]!.variables = ["long_query_time": "10"]
        #expect(
            Drift.findings(DriftSnapshot(topology: topology, observations: observations, now: now)).map(\.code) == [.replicaUnreachable])
    }

    @Test(
        "right at runtime but the option file would bring another value back (an older release, or a variable no longer managed): a mismatch"
    )
    func optionFileBehind() {
        var topology = cleanTopology()
        topology.variables["s1"] = ManagedVariables(all: ["long_query_time": "2"])
        var observations = cleanObservations()
        for name in ["db1001", "db1002", "db1003"] {
            observations[name]!.variables = ["long_query_time": "2.000000"]
            observations[name]!.pendingRestart = []
            observations[name]!.optionFileValues = ["long_query_time": "2"]
        }
        #expect(Drift.findings(DriftSnapshot(topology: topology, observations: observations, now: now)).isEmpty)
        observations["db1002"]!.optionFileValues = ["long_query_time": "7", "back_log": "90"]
        let found = Drift.findings(DriftSnapshot(topology: topology, observations: observations, now: now))
        #expect(found.map(\.code) == [.variableMismatch, .variableMismatch] && found.allSatisfy { $0.instance == "db1002" }, "\(found)")
        #expect(found.contains { $0.observed.hasPrefix("the option file still holds back_log=90") })
        #expect(found.contains { $0.observed.hasPrefix("the option file holds long_query_time=7, which the next restart would bring back") })
    }

    @Test("docs/drift.md documents exactly the codes of DriftCode, each with its severity")
    func documented() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: repository.appendingPathComponent("docs/drift.md"), encoding: .utf8)
        var documented = [String: String]()
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2 else { continue }
            documented[cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))] = cells[1]
        }
        #expect(Set(documented.keys) == Set(DriftCode.allCases.map(\.rawValue)))
        for code in DriftCode.allCases {
            #expect(documented[code.rawValue] == code.severity.rawValue, "\(code.rawValue)")
        }
    }
}
