import ArgumentParser
import EtcdClient
import Foundation
import Operations
import Topology
import TopologyStore

/// `marina instance rejoin NAME`: an old primary back as a read-only replica of the primary.
struct InstanceRejoinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rejoin",
        abstract: "Bring an old primary that a failover replaced back as a read-only replica of the primary (it stays depooled).",
        discussion: """
            Writes a request into etcd; the leading controller takes the section's lock, reads the instance and the primary, \
            and refuses unless the instance is marked needs_rejoin, is not the primary, answers, and holds no transaction the \
            primary never received (those are listed: a human decides whether to rebuild it or undo them). Then it makes the \
            instance read-only, has it replicate from the primary from its own last GTID, and clears the mark; any step that \
            fails is undone. The instance stays depooled: `marina instance pool NAME --section S` and `marina config commit` \
            repool it. Exit status: 0 done; 2 refused (nothing changed); 4 failed and rolled back; 5 could not roll back, a \
            human must look (the section goes on taking writes); 6 done, but a host needs attention (`marina help exit-codes`).
            """)

    @Argument(help: "The old primary, marked needs_rejoin by the failover that replaced it.") var name: String
    @Option(help: "The section (default: the one where it is marked needs_rejoin).") var section: String?
    @Flag(help: "Print the plan (every step, host and statement, and its undo) and change nothing.") var dryRun = false
    @Flag(help: "Do not ask for confirmation.") var yes = false
    @Option(help: "Seconds to wait for a controller to take the request.") var timeout: Double = 30
    @OptionGroup var store: StoreOptions

    func validate() throws {
        if name.isEmpty { throw ValidationError("the instance must not be empty") }
        if section?.isEmpty == true { throw ValidationError("--section must name a section") }
        try OperationClient.validate(timeout: timeout)
    }

    func run() async throws {
        try await running {
            let etcd = EtcdClient(try store.configuration())
            let topology = try await TopologyStore(etcd: etcd, keys: try store.keys).committedTopology() ?? Topology()
            let sectionName = try section ?? Self.markedSection(of: name, in: topology)
            let client = OperationClient(etcd: etcd, keys: try store.keys, json: store.json)
            try await client.run(dryRun: dryRun, yes: yes, timeout: timeout, question: "Rejoin \(name) to \(sectionName)?") { dryRun in
                let actor = store.actor
                return OperationRecord(
                    id: OperationClient.newID(section: sectionName), kind: "rejoin", section: sectionName, candidate: name, reason: "",
                    dryRun: dryRun, requestedBy: actor.author, requestedAt: actor.now)
            }
        }
    }

    /// The section where `name` is marked needs_rejoin; with no mark, its only section (or the
    /// first by name), for the controller to refuse with the reason.
    static func markedSection(of name: String, in topology: Topology) throws -> String {
        guard let instance = topology.instances[name] else { throw UsageProblem("unknown instance \(name) in the committed topology") }
        let marked = instance.sections.filter { $0.value.needsRejoin != nil }.keys.sorted()
        if marked.count > 1 { throw UsageProblem("\(name) needs a rejoin in \(marked.joined(separator: ", ")): pass --section") }
        guard let section = marked.first ?? instance.sections.keys.sorted().first else {
            throw UsageProblem("\(name) is not a member of any section")
        }
        return section
    }
}

/// `marina instance move NAME --under OTHER`: a replica replicates from another member.
struct InstanceMoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "move",
        abstract: "Make a replica replicate from another member of its section (the primary, or a replica that logs what it replicates).",
        discussion: """
            Writes a request into etcd; the leading controller takes the section's lock, reads the members, and refuses a move \
            under itself, under a member of another section, under a replica with log_slave_updates OFF or whose replication \
            does not run, under an instance with no binary log or that purged binary logs the replica needs, under an instance \
            needing a rejoin, or that would make a cycle. Then the replica stops, the new source applies what the replica \
            applied, and the replica replicates from it with GTID; on failure it is pointed back at its original source. \
            Exit status: 0 done; 2 refused (nothing changed); 4 failed and rolled back; 5 could not roll back, a human must \
            look; 6 done, but a host needs attention (`marina help exit-codes`).
            """)

    @Argument(help: "The replica to move.") var name: String
    @Option(help: "The member it replicates from afterwards.") var under: String
    @Option(help: "The section (default: the only one it is a member of).") var section: String?
    @Flag(help: "Print the plan (every step, host and statement, and its undo) and change nothing.") var dryRun = false
    @Flag(help: "Do not ask for confirmation.") var yes = false
    @Option(help: "Seconds to wait for a controller to take the request.") var timeout: Double = 30
    @OptionGroup var store: StoreOptions

    func validate() throws {
        if name.isEmpty { throw ValidationError("the instance must not be empty") }
        if under.isEmpty || under.contains(where: \.isWhitespace) { throw ValidationError("--under must name an instance") }
        if section?.isEmpty == true { throw ValidationError("--section must name a section") }
        try OperationClient.validate(timeout: timeout)
    }

    func run() async throws {
        try await running {
            let etcd = EtcdClient(try store.configuration())
            let topology = try await TopologyStore(etcd: etcd, keys: try store.keys).committedTopology() ?? Topology()
            let sectionName = try section ?? Self.onlySection(of: name, in: topology)
            let client = OperationClient(etcd: etcd, keys: try store.keys, json: store.json)
            try await client.run(dryRun: dryRun, yes: yes, timeout: timeout, question: "Move \(name) under \(under)?") { dryRun in
                let actor = store.actor
                var record = OperationRecord(
                    id: OperationClient.newID(section: sectionName), kind: "move", section: sectionName, candidate: name,
                    reason: RejoinPlan.moveReason(mover: name, newSource: under), dryRun: dryRun, requestedBy: actor.author,
                    requestedAt: actor.now)
                record.newSource = under
                return record
            }
        }
    }

    static func onlySection(of name: String, in topology: Topology) throws -> String {
        guard let instance = topology.instances[name] else { throw UsageProblem("unknown instance \(name) in the committed topology") }
        let sections = instance.sections.keys.sorted()
        guard let section = sections.first else { throw UsageProblem("\(name) is not a member of any section") }
        guard sections.count == 1 else { throw UsageProblem("\(name) is a member of \(sections.joined(separator: ", ")): pass --section") }
        return section
    }
}

/// `rejoin of db1001 in s1`, `move of db1003 under db1002 in s1`.
func describeInstanceOperation(_ record: OperationRecord) -> String {
    switch record.kind {
    case "move":
        let source = record.newSource ?? "?"
        return "move of \(record.candidate) under \(source) in \(record.section)"
    default:
        return "\(record.kind) of \(record.candidate) in \(record.section)"
    }
}

func renderInstancePlan(_ record: OperationRecord) -> String {
    var lines = ["Plan: \(describeInstanceOperation(record))"]
    if record.kind == "rejoin", let start = record.finalPosition {
        lines.append("  \(record.candidate) starts replicating after its own last GTIDs: \(start.isEmpty ? "(none)" : start)")
    }
    for (index, step) in record.steps.enumerated() {
        lines.append(String(format: "%2d. ", index + 1) + step.name + "  (timeout \(Seconds.format(step.timeout)) s)")
        lines += step.statements.map { "      " + $0 }
        if !step.check.isEmpty { lines.append("      check: " + step.check) }
        let undo = step.undo.isEmpty ? "nothing: \(record.candidate) stays read-only, which is safe" : step.undo.joined(separator: "; ")
        lines.append("      undo: " + undo)
    }
    lines.append("No point of no return: a step that fails is undone with every step before it.")
    return lines.joined(separator: "\n")
}

func renderInstanceOutcome(_ record: OperationRecord) -> String {
    let name = record.candidate
    var lines = [String]()
    switch record.state {
    case .planned: lines.append("Dry run: nothing changed.")
    case .refused: lines.append("Refused, nothing changed:\n" + record.refusals.map { "  - " + $0 }.joined(separator: "\n"))
    case .done, .doneNeedsAttention:
        if record.kind == "move" {
            let source = record.newSource ?? "its new source"
            lines.append("Done: \(name) replicates from \(source).")
        } else {
            let source = record.steps.first { $0.action == .oldPrimaryReplicates }?.hosts.last ?? "the primary"
            lines.append(
                "Done: \(name) is read-only and replicates from \(source); its needs_rejoin mark is cleared. It stays depooled: "
                    + "`marina instance pool \(name) --section \(record.section)` then `marina config commit -m WHY` repools it.")
        }
        if record.state == .doneNeedsAttention {
            lines.append("A host needs attention:")
            lines += record.attention.map { "  - " + $0 }
        }
    case .rolledBack:
        if let failure = record.failure { lines.append("Failed at \(failure.step) on \(failure.host): \(failure.error)") }
        if record.kind == "move" {
            let original = record.steps.first.flatMap { RejoinPlan.moveRoles(in: $0)?.originalSource } ?? "its original source"
            lines.append("Rolled back and verified: \(name) replicates from \(original) again.")
        } else {
            lines.append("Rolled back and verified: \(name) is read-only, does not replicate, and is still marked needs-rejoin.")
        }
        lines += record.attention.map { "  - " + $0 }
    case .needsHuman:
        if let failure = record.failure { lines.append("Failed at \(failure.step) on \(failure.host): \(failure.error)") }
        lines.append("COULD NOT ROLL BACK: \(name) is left read-only for a human (section \(record.section) goes on taking writes):")
        lines += record.attention.map { "  - " + $0 }
    case .requested, .running, .rollingBack:
        lines.append("Operation \(record.id) is \(record.state.rawValue).")
    }
    return lines.joined(separator: "\n")
}
