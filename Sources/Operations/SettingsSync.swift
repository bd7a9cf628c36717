import Observation
import SQLText
import Topology

/// Grant sync and variable sync as data: which instances get a step, in which order, and the
/// `SET GLOBAL` statements of a variable sync. The controller runs the steps
/// (`OperationRun+Sync`); everything here is pure.
public enum SettingsSync {
    /// The instances a sync acts on: the section's replicas first, by name, the primary last,
    /// so that a statement the servers refuse shows on a replica before the primary is touched.
    public static func order(members: [String], primary: String) -> [String] {
        members.filter { $0 != primary }.sorted() + (members.contains(primary) ? [primary] : [])
    }

    /// The steps of a sync: for the playbook's sync action, one step per instance in
    /// `statements` (in `order`), with those statements (already redacted) and `undo`; `exec`
    /// hooks where the playbook puts them. Nothing in a sync is a point of no return: every
    /// step can be undone, so a failure anywhere restores every instance.
    public static func plan(
        _ playbook: Playbook, order: [String], statements: [String: [String]], undo: [String: [String]], section: String
    ) -> [StepRecord] {
        var steps = [StepRecord]()
        for step in playbook.steps {
            switch step.action {
            case .applyGrants, .applyVariables:
                for instance in order where !(statements[instance] ?? []).isEmpty {
                    let what = step.action == .applyGrants ? "accounts" : "variables"
                    steps.append(
                        StepRecord(
                            name: "\(step.action.rawValue) \(instance)", action: step.action, subject: instance, hosts: [instance],
                            statements: statements[instance] ?? [],
                            check: "the \(what) read back from \(instance) are as desired"
                                + (step.action == .applyGrants ? ", and \(instance) wrote no transaction of its own to its binary log" : ""),
                            undo: undo[instance] ?? [], timeout: step.timeout))
                }
            case .exec:
                let command = (step.command ?? []).map { $0.replacingOccurrences(of: "{section}", with: section) }
                let undoCommand = step.undo?.map { $0.replacingOccurrences(of: "{section}", with: section) }
                steps.append(
                    StepRecord(
                        name: step.name ?? "exec \(command.first ?? "")", action: .exec, hosts: ["controller"],
                        statements: [command.joined(separator: " ")], check: "exits 0", undo: undoCommand.map { [$0.joined(separator: " ")] } ?? [],
                        timeout: step.timeout, command: command, undoCommand: undoCommand))
            default:
                continue
            }
        }
        return steps
    }
}

/// One variable as an instance has it: its global value and whether it can change at runtime.
public struct LiveVariable: Codable, Sendable, Equatable {
    public var value: String
    /// `information_schema.SYSTEM_VARIABLES.READ_ONLY`: set only at startup (the agent's option file).
    public var readOnly: Bool

    public init(value: String, readOnly: Bool) {
        self.value = value
        self.readOnly = readOnly
    }

    enum CodingKeys: String, CodingKey {
        case value
        case readOnly = "read_only"
    }
}

/// The `SET GLOBAL` statements of a variable sync.
public enum VariableStatements {
    /// Variables that a replica's SQL thread must be stopped to change.
    public static func needsSQLThreadStopped(_ name: String) -> Bool {
        name.hasPrefix("replicate_")
            || ["slave_parallel_threads", "slave_domain_parallel_threads", "slave_parallel_mode", "slave_parallel_workers"].contains(name)
    }

    /// The query that reads `names` off an instance: value and whether it is read-only.
    public static func readSQL(_ names: [String]) -> String {
        "SELECT LOWER(VARIABLE_NAME) AS name, GLOBAL_VALUE AS value, READ_ONLY AS read_only FROM information_schema.SYSTEM_VARIABLES "
            + "WHERE VARIABLE_NAME IN (\(names.sorted().map { SQL.quote($0.uppercased()) }.joined(separator: ", ")))"
    }

    /// What differs between `desired` and `live` and can be set at runtime, in name order:
    /// `SET GLOBAL` statements, those of replication-thread variables between `STOP SLAVE
    /// SQL_THREAD` and `START SLAVE SQL_THREAD` when `replicating` (the thread was running).
    /// Read-only variables are left to the agent's option file (pending a restart).
    public static func statements(desired: [String: String], live: [String: LiveVariable], replicating: Bool) -> [String] {
        let changes = desired.sorted { $0.key < $1.key }.filter { name, value in
            guard let current = live[name], !current.readOnly else { return false }
            return !SystemVariableValue.same(current.value, value)
        }
        return statements(setting: changes.map { ($0.key, $0.value) }, replicating: replicating)
    }

    /// `SET GLOBAL` for each pair, replication-thread ones wrapped as `statements(desired:...)` does.
    public static func statements(setting values: [(String, String)], replicating: Bool) -> [String] {
        let plain = values.filter { !needsSQLThreadStopped($0.0) }
        let threaded = values.filter { needsSQLThreadStopped($0.0) }
        var statements = plain.map { "SET GLOBAL \($0.0) = \(literal($0.1))" }
        if !threaded.isEmpty {
            if replicating { statements.append("STOP SLAVE SQL_THREAD") }
            statements += threaded.map { "SET GLOBAL \($0.0) = \(literal($0.1))" }
            if replicating { statements.append("START SLAVE SQL_THREAD") }
        }
        return statements
    }

    /// A value as `SET GLOBAL` takes it: a number as it is (a `K`/`M`/`G` suffix, which only
    /// option files read, multiplied out), anything else as a quoted string.
    public static func literal(_ value: String) -> String {
        let text = SystemVariableValue.unquoted(value)
        if Double(text) != nil, text.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" }) { return text }
        let multipliers: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        if let last = text.uppercased().last, let multiplier = multipliers[last], let whole = Int64(text.dropLast()) {
            let (product, overflow) = whole.multipliedReportingOverflow(by: multiplier)
            if !overflow { return String(product) }
        }
        return SQL.quote(text)
    }
}
