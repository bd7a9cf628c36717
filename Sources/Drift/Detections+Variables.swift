import Observation
import Topology

extension Drift {
    /// The managed variables of every reachable member of each section (not one that awaits a
    /// rejoin: it is out of the section), against the committed values for its role (the
    /// committed primary gets `all` and `primary`, the others `all` and `replica`). Judged from
    /// what its agent reports (`variables`, `pending_restart`, `option_file_error`); an older
    /// agent reports none, and nothing is judged. A variable the server does not have is not
    /// reported by the agent (it logs it), so it is not judged here either.
    static func variableCheck(_ code: DriftCode) -> @Sendable (DriftContext) -> [DriftFinding] {
        { context in
            context.sections.flatMap { entry -> [DriftFinding] in
                let managed = context.snapshot.topology.variables[entry.section.name] ?? ManagedVariables()
                return entry.members.flatMap { member -> [DriftFinding] in
                    guard member.membership.needsRejoin == nil, let observation = context.snapshot.observations[member.instance.name],
                        observation.reachable
                    else { return [] }
                    let isPrimary = member.instance.name == entry.primary.name
                    let findings = variableFindings(
                        code, observation: observation, desired: managed.values(isPrimary: isPrimary), role: isPrimary ? "primary" : "replica",
                        section: entry.section.name)
                    return findings.map {
                        DriftFinding(code, section: entry.section.name, instance: member.instance.name, expected: $0, observed: $1)
                    }
                }
            }
        }
    }

    /// The (expected, observed) pairs of one code on one instance.
    static func variableFindings(
        _ code: DriftCode, observation: Observation, desired: [String: String], role: String, section: String
    ) -> [(String, String)] {
        let pending = Set(observation.pendingRestart ?? [])
        let differing = desired.keys.sorted().compactMap { name -> (name: String, desired: String, runtime: String)? in
            guard let runtime = observation.variables?[name.lowercased()], !SystemVariableValue.same(desired[name]!, runtime) else { return nil }
            return (name, desired[name]!, runtime)
        }
        switch code {
        case .variableMismatch:
            let atRuntime = differing.filter { !pending.contains($0.name.lowercased()) }.map {
                (
                    "\($0.name)=\($0.desired) (committed for a \(role))",
                    "\($0.name)=\($0.runtime) at runtime: `marina variable sync \(section)` sets it"
                )
            }
            // Right at runtime, but the option file would bring another value back at the next
            // restart (released by an earlier sync, changed or no longer managed since).
            let file = observation.optionFileValues ?? [:]
            let committed = Dictionary(desired.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { _, last in last })
            let inFile = file.keys.sorted().compactMap { name -> (String, String)? in
                let held = file[name]!
                guard let want = committed[name] else {
                    return (
                        "\(name) not managed in \(section)",
                        "the option file still holds \(name)=\(held): `marina variable sync \(section)` removes it"
                    )
                }
                let differs = differing.contains { $0.name.lowercased() == name }
                guard !differs, !SystemVariableValue.same(held, want) else { return nil }
                return (
                    "\(name)=\(want) (committed for a \(role))",
                    "the option file holds \(name)=\(held), which the next restart would bring back: `marina variable sync \(section)` releases the committed value"
                )
            }
            return atRuntime + inFile
        case .variablePendingRestart:
            return differing.filter { pending.contains($0.name.lowercased()) }.map { variable in
                let runtime = "\(variable.name)=\(variable.runtime) at runtime, not settable while the server runs"
                let observed =
                    observation.optionFile.map { "\(runtime): written to \($0), it takes effect at the next restart" }
                    ?? "\(runtime), and its agent keeps no option file (variables.option_file): set it in the server's configuration, then restart"
                return ("\(variable.name)=\(variable.desired) (committed for a \(role))", observed)
            }
        case .optionFileUnwritable:
            guard let error = observation.optionFileError else { return [] }
            return [
                (
                    "\(observation.optionFile ?? "its option file") holds the managed variables",
                    "not written: \(error); a restart would lose the managed variables set at runtime"
                )
            ]
        default:
            return []
        }
    }
}
