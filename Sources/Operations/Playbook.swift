import Foundation
import Topology
import Yams

/// What one step of a switchover does. The action fixes the hosts it acts on (by role), its
/// SQL, its check and its undo; a playbook chooses the order, the timeouts and the hooks.
public enum StepAction: String, Codable, Sendable, CaseIterable {
    /// Phase 1: every other replica moves under the candidate with GTID (one planned step per replica).
    case moveReplicas = "move-replicas"
    /// The section is marked read-only in the generated configuration, with the reason.
    case sectionReadOnly = "section-read-only"
    /// Waits the propagation time, for applications to read the read-only configuration.
    case waitPropagation = "wait-propagation"
    /// Phase 2, the flip: the old primary stops taking writes.
    case oldPrimaryReadOnly = "old-primary-read-only"
    /// Reads the old primary's final `gtid_binlog_pos`.
    case readFinalPosition = "read-final-position"
    /// The candidate applies everything up to the final position (`MASTER_GTID_WAIT`).
    case waitCatchUp = "wait-catch-up"
    /// The candidate stops replicating from the old primary.
    case detachCandidate = "detach-candidate"
    /// The new primary is committed to the source of truth, one compare-and-swap transaction.
    case commitPrimary = "commit-primary"
    /// The candidate takes writes: the point of no return.
    case candidateWritable = "candidate-writable"
    /// Phase 3: the old primary replicates from the new one with GTID.
    case oldPrimaryReplicates = "old-primary-replicates"
    /// The new primary forgets its replication configuration.
    case resetCandidateReplication = "reset-candidate-replication"
    /// The section takes writes again in the generated configuration.
    case sectionReadWrite = "section-read-write"
    /// A site's own command (for example `systemctl stop pt-heartbeat-wikimedia`), run by the controller.
    case exec
    /// Failover: a replica of the dead primary applies everything its IO thread received
    /// (`MASTER_GTID_WAIT` on its own `Gtid_IO_Pos`), threads untouched: in GTID mode a
    /// stopped IO thread throws the unapplied relay log away.
    case applyReceived = "apply-received"
    /// Failover, two phases: the candidate replicates from the replica that received the most
    /// until it has everything that one has.
    case catchUp = "catch-up"
    /// Failover: every other live replica replicates from the new primary, from its own
    /// applied position, once it applied what it received.
    case repointReplicas = "repoint-replicas"
    /// Grant sync: one instance's managed accounts made as desired (one planned step per
    /// instance, in a session that writes no binary log); undone by restoring what was read first.
    case applyGrants = "apply-grants"
    /// Variable sync: one instance's managed global variables set (one planned step per
    /// instance); undone by setting the values read first.
    case applyVariables = "apply-variables"

    /// Actions every switchover playbook must contain exactly once.
    public static let required: [StepAction] = [
        .moveReplicas, .sectionReadOnly, .waitPropagation, .oldPrimaryReadOnly, .readFinalPosition, .waitCatchUp, .detachCandidate,
        .commitPrimary, .candidateWritable, .oldPrimaryReplicates, .resetCandidateReplication, .sectionReadWrite,
    ]

    /// Actions every failover playbook must contain exactly once.
    public static let requiredInFailover: [StepAction] = [
        .applyReceived, .catchUp, .detachCandidate, .commitPrimary, .candidateWritable, .repointReplicas,
    ]

    /// The actions a playbook of `operation` must contain, each once.
    public static func required(in operation: String) -> [StepAction] {
        switch operation {
        case "failover": requiredInFailover
        case "grant-sync": [.applyGrants]
        case "variable-sync": [.applyVariables]
        default: required
        }
    }

    /// The operations a playbook may describe.
    public static let operations = ["switchover", "failover", "grant-sync", "variable-sync"]

    /// The step that makes the candidate writable: after it, failures are not undone.
    public var isPointOfNoReturn: Bool { self == .candidateWritable }
}

/// A playbook: the ordered steps of an operation, their timeouts and options.
/// `playbooks/switchover.yaml` is the one the controller loads by default.
public struct Playbook: Sendable, Equatable {
    public var operation: String
    public var description: String
    public var options: Options
    public var steps: [Step]

    public struct Options: Sendable, Equatable, Codable {
        /// Preflight: the most replication lag (seconds) the candidate may have.
        public var maxLag: Double
        /// Seconds between the section going read-only in the generated configuration and the flip.
        public var propagationWait: Double
        /// Preflight: the oldest transaction or statement (seconds) the old primary may be running.
        /// An older one would hold `SET GLOBAL read_only = ON` back inside the flip.
        public var maxTransactionAge: Double

        public init(maxLag: Double = 5, propagationWait: Double = 0, maxTransactionAge: Double = 3) {
            self.maxLag = maxLag
            self.propagationWait = propagationWait
            self.maxTransactionAge = maxTransactionAge
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case maxLag = "max_lag"
            case propagationWait = "propagation_wait"
            case maxTransactionAge = "max_transaction_age"
        }
    }

    public struct Step: Sendable, Equatable, Codable {
        public var action: StepAction
        /// Seconds the step may take; a step that takes longer has failed.
        public var timeout: Double
        /// For `exec`: the program and its arguments. `{section}`, `{old_primary}`,
        /// `{candidate}` and their `_host`/`_port` forms are replaced.
        public var command: [String]?
        /// For `exec`: what undoes it, if anything.
        public var undo: [String]?
        /// For `exec`: a name for the journal.
        public var name: String?

        public init(action: StepAction, timeout: Double = 5, command: [String]? = nil, undo: [String]? = nil, name: String? = nil) {
            self.action = action
            self.timeout = timeout
            self.command = command
            self.undo = undo
            self.name = name
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case action, timeout, command, undo, name }
    }

    public init(operation: String, description: String = "", options: Options = Options(), steps: [Step]) {
        self.operation = operation
        self.description = description
        self.options = options
        self.steps = steps
    }
}

/// A playbook that cannot be used: the file, and every problem with it.
public struct PlaybookError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var problems: [String]
    public var description: String {
        problems.count == 1 ? "\(file): \(problems[0])" : "\(file):\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

extension Playbook {
    /// The longest duration, in seconds, an option or a step's timeout may be.
    public static let longestSeconds: Double = 86_400

    /// Reads a playbook and checks it against the safety rules; nothing is usable until both
    /// pass. `operation`, when given, is the operation the file must describe.
    public static func load(_ path: String, operation: String? = nil) throws -> Playbook {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw PlaybookError(file: path, problems: ["cannot read the file"])
        }
        let playbook = try parse(text, file: path)
        if let operation, playbook.operation != operation {
            throw PlaybookError(file: path, problems: ["describes a \(playbook.operation), not a \(operation)"])
        }
        return playbook
    }

    public static func parse(_ text: String, file: String) throws -> Playbook {
        let playbook: Playbook
        do {
            playbook = try YAMLDecoder().decode(Playbook.self, from: text)
        } catch {
            throw PlaybookError(file: file, problems: ["\(SchemaError.from(error, root: "playbook"))"])
        }
        let problems = playbook.safetyProblems()
        guard problems.isEmpty else { throw PlaybookError(file: file, problems: problems) }
        return playbook
    }

    /// Every way the step order breaks a safety rule; empty when the playbook may run.
    ///
    /// The rules (docs/safety-rules.md, rules 1, 2 and 5):
    /// - every switchover action appears exactly once;
    /// - the candidate becomes writable only after the old primary is read-only, its final
    ///   position was read, the candidate applied it, stopped replicating and was committed as
    ///   the primary (never two writers, no lost write, the source of truth first);
    /// - the position is read after the old primary is read-only, and waited for after it is read;
    /// - replicas move, and the section goes read-only in the configuration, before the flip
    ///   starts, so that the window without a writer holds only the flip;
    /// - after the point of no return come only steps that finish the switch forward;
    /// - every timeout is a positive, finite number of seconds, at most `longestSeconds`;
    ///   `exec` steps name a command.
    ///
    /// A failover playbook has the same checks on timeouts and `exec`, its own actions (each
    /// once), and its own order (`failoverOrderProblems`).
    public func safetyProblems() -> [String] {
        var problems = [String]()
        guard StepAction.operations.contains(operation) else {
            return ["operation \"\(operation)\" is not known (known: \(StepAction.operations.joined(separator: ", ")))"]
        }
        let required = StepAction.required(in: operation)
        var position = [StepAction: Int]()
        for (index, step) in steps.enumerated() {
            let label = "step \(index + 1) (\(step.action.rawValue))"
            if !step.timeout.isFinite || step.timeout <= 0 || step.timeout > Playbook.longestSeconds {
                problems.append(
                    "\(label): timeout must be positive and finite, at most \(Int(Playbook.longestSeconds)) seconds (got \(step.timeout))")
            }
            if step.action == .exec {
                if (step.command ?? []).isEmpty { problems.append("\(label): an exec step needs a command") }
                continue
            }
            if step.command != nil || step.undo != nil { problems.append("\(label): only exec steps take a command or an undo") }
            if !required.contains(step.action) {
                problems.append("\(label): \(step.action.rawValue) is not a step of a \(operation)")
                continue
            }
            if position[step.action] != nil {
                problems.append("\(label): \(step.action.rawValue) appears twice")
            } else {
                position[step.action] = index
            }
        }
        for action in required where position[action] == nil {
            problems.append("the step \(action.rawValue) is missing")
        }
        guard problems.isEmpty else { return problems }
        switch operation {
        case "failover": return failoverOrderProblems(position)
        case "switchover": return switchoverOrderProblems(position)
        default: return []  // a sync has one action, repeated per instance; any order of hooks around it is safe
        }
    }

    /// The failover's rules: the candidate takes writes only after every replica the promotion
    /// reads from applied what it received, the candidate caught up, stopped replicating, and
    /// was committed as the primary; the other replicas move only under a writable primary.
    private func failoverOrderProblems(_ position: [StepAction: Int]) -> [String] {
        var problems = [String]()
        func require(_ first: StepAction, before second: StepAction, _ why: String) {
            if position[first]! > position[second]! {
                problems.append(
                    "\(second.rawValue) (step \(position[second]! + 1)) comes before \(first.rawValue) (step \(position[first]! + 1)): \(why)")
            }
        }
        let writable = StepAction.candidateWritable
        require(.applyReceived, before: .catchUp, "a replica would serve a catch-up before applying what it received")
        require(.catchUp, before: .detachCandidate, "the candidate would stop replicating before it has what the most advanced replica has")
        require(.detachCandidate, before: .commitPrimary, "the source of truth would name a primary that still replicates")
        require(.commitPrimary, before: writable, "the candidate would take writes before the source of truth names it the primary")
        require(writable, before: .repointReplicas, "replicas would replicate from an instance that is not yet the primary")
        return problems
    }

    private func switchoverOrderProblems(_ position: [StepAction: Int]) -> [String] {
        var problems = [String]()

        func require(_ first: StepAction, before second: StepAction, _ why: String) {
            if position[first]! > position[second]! {
                problems.append(
                    "\(second.rawValue) (step \(position[second]! + 1)) comes before \(first.rawValue) (step \(position[first]! + 1)): \(why)")
            }
        }
        let writable = StepAction.candidateWritable
        require(.oldPrimaryReadOnly, before: writable, "two instances would be writable at once")
        require(.readFinalPosition, before: writable, "the candidate would take writes before the old primary's final position is known")
        require(.waitCatchUp, before: writable, "the candidate would take writes before applying everything the old primary committed")
        require(.detachCandidate, before: writable, "the candidate would take writes while still replicating from the old primary")
        require(.commitPrimary, before: writable, "the candidate would take writes before the source of truth names it the primary")
        require(.oldPrimaryReadOnly, before: .commitPrimary, "the source of truth would name a new primary while the old one takes writes")
        require(.oldPrimaryReadOnly, before: .readFinalPosition, "the position read before read_only is not final")
        require(.readFinalPosition, before: .waitCatchUp, "the candidate cannot wait for a position not yet read")
        require(.waitCatchUp, before: .detachCandidate, "the candidate would stop replicating before catching up")
        require(.moveReplicas, before: .oldPrimaryReadOnly, "moving replicas inside the write window lengthens it")
        require(.sectionReadOnly, before: .oldPrimaryReadOnly, "applications must see the section read-only before writes fail")
        require(.sectionReadOnly, before: .waitPropagation, "the propagation wait must follow the read-only commit")
        require(.waitPropagation, before: .oldPrimaryReadOnly, "the propagation wait must end before the flip")
        require(writable, before: .oldPrimaryReplicates, "the old primary must not replicate from a candidate that is not yet the primary")
        require(writable, before: .resetCandidateReplication, "the candidate's replication can only be forgotten once it is the primary")
        require(writable, before: .sectionReadWrite, "the section must stay read-only until the new primary takes writes")
        return problems
    }
}

extension Playbook: Decodable {
    enum CodingKeys: String, CodingKey, CaseIterable { case operation, description, options, steps }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            operation: try c.decode(String.self, forKey: .operation),
            description: try c.decodeIfPresent(String.self, forKey: .description) ?? "",
            options: try c.decodeIfPresent(Options.self, forKey: .options) ?? Options(),
            steps: try c.decode([Step].self, forKey: .steps))
    }
}

extension Playbook.Options {
    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            maxLag: try c.decodeIfPresent(Double.self, forKey: .maxLag) ?? 5,
            propagationWait: try c.decodeIfPresent(Double.self, forKey: .propagationWait) ?? 0,
            maxTransactionAge: try c.decodeIfPresent(Double.self, forKey: .maxTransactionAge) ?? 3)
        for (key, value) in [("max_lag", maxLag), ("propagation_wait", propagationWait), ("max_transaction_age", maxTransactionAge)]
        where !value.isFinite || value < 0 || value > Playbook.longestSeconds {
            throw SchemaError(
                path: (decoder.codingPath.map(\.stringValue) + [key]).joined(separator: "."),
                problem: "must be a finite number of seconds, from 0 to \(Int(Playbook.longestSeconds)) (got \(value))")
        }
    }
}

extension Playbook.Step {
    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .action)
        guard let action = StepAction(rawValue: name) else {
            throw SchemaError(
                path: (decoder.codingPath.map(\.stringValue) + ["action"]).joined(separator: "."),
                problem: "unknown action \"\(name)\" (known: \(StepAction.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self.init(
            action: action, timeout: try c.decodeIfPresent(Double.self, forKey: .timeout) ?? 5,
            command: try c.decodeIfPresent([String].self, forKey: .command), undo: try c.decodeIfPresent([String].self, forKey: .undo),
            name: try c.decodeIfPresent(String.self, forKey: .name))
    }
}

extension Playbook {
    /// The steps of `playbooks/grant-sync.yaml`, for a controller whose playbook directory has none.
    public static let standardGrantSync = Playbook(
        operation: "grant-sync", description: "Make every instance's managed accounts as desired, or restore them all.",
        steps: [Step(action: .applyGrants, timeout: 10)])

    /// The steps of `playbooks/variable-sync.yaml`, for a controller whose playbook directory has none.
    public static let standardVariableSync = Playbook(
        operation: "variable-sync", description: "Set every instance's managed global variables, or restore them all.",
        steps: [Step(action: .applyVariables, timeout: 10)])

    /// The steps of `playbooks/failover.yaml`, for a controller given no file (the twins' tests).
    public static let standardFailover = Playbook(
        operation: "failover", description: "Promote the replica that received the most of a dead primary's binary log.",
        steps: [
            Step(action: .applyReceived, timeout: 30), Step(action: .catchUp, timeout: 30), Step(action: .detachCandidate, timeout: 10),
            Step(action: .commitPrimary, timeout: 2), Step(action: .candidateWritable, timeout: 2),
            Step(action: .repointReplicas, timeout: 30),
        ])
}
