import BlockingIO
import Logging
import Observation
import Probing

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The managed variables of one instance, after each probe: reads their runtime values, puts
/// them in the observation, and keeps the instance's option file (`VariableSync`). Lives in
/// the instance's probe loop (one task: no actor needed).
struct VariableKeeper {
    let instance: String
    let section: String
    /// The option file kept; nil: the variables are only observed.
    let optionFile: String?
    let directory: VariableDirectory
    let logger: Logger
    /// The latest committed values read (what drift judges), and the ones the last variable
    /// sync released (what the option file may hold): kept while they cannot be read.
    private var desired: [String: String]?
    private var released: [String: String]?
    /// What was last logged, so that a lasting condition is logged once.
    private var logged = [String: String]()

    init(instance: String, section: String, optionFile: String?, directory: VariableDirectory, logger: Logger) {
        self.instance = instance
        self.section = section
        self.optionFile = optionFile
        self.directory = directory
        self.logger = logger
    }

    /// After a probe of a reachable instance: fills the observation's managed variables and
    /// writes the option file if its content must change. Never throws: a failure is logged, and
    /// one writing the file is in the observation (`option_file_error`).
    mutating func update(_ observation: inout Observation, prober: Prober) async {
        observation.optionFile = optionFile
        do {
            desired = try await directory.desired(instance: instance, section: section) ?? desired
            released = try await directory.desired(instance: instance, section: section, released: true) ?? released
            logOnce("desired", nil)
        } catch {
            logOnce("desired", "managed variables of \(instance): \(error); the last ones read are kept")
        }
        guard let desired, let released, observation.reachable else { return }
        let names = Set(desired.keys).union(released.keys)
        let runtime: [String: RuntimeVariable]
        do {
            runtime = try await prober.systemVariables(Array(names)).mapValues {
                RuntimeVariable(value: $0.value, settable: !$0.readOnly)
            }
        } catch {
            logOnce("runtime", "managed variables of \(instance) cannot be read: \(error)")
            return
        }
        logOnce("runtime", nil)
        // The file follows what a sync released, never a commit alone: a value not synced yet, or
        // rolled back, never reaches a restart.
        var outcome = VariableSync.outcome(desired: released, runtime: runtime, file: ManagedOptionFile())
        logOnce(
            "unknown",
            outcome.unknown.isEmpty
                ? nil
                : "managed variables of \(instance): the server has no global variable \(outcome.unknown.joined(separator: ", ")): never written to its option file"
        )
        if let optionFile {
            do {
                outcome = try await keep(optionFile, desired: released, runtime: runtime)
                observation.optionFileValues = outcome.file.options
                logOnce("file", nil)
            } catch {
                observation.optionFileError = "\(error)"
                logOnce("file", "option file of \(instance) not written: \(error)", level: .error)
            }
        }
        observation.variables = runtime.filter { names.contains($0.key) }.mapValues(\.value)
        // Pending a restart only what the file holds at the committed value: a released value a
        // newer commit changed is not what the restart should bring, and drift shows it as a mismatch.
        observation.pendingRestart = outcome.pendingRestart.filter { name in
            desired[name].map { SystemVariableValue.same($0, released[name] ?? "") } ?? false
        }
    }

    /// Reads the file, applies the rule, writes it when its text changes.
    private func keep(_ path: String, desired: [String: String], runtime: [String: RuntimeVariable]) async throws -> VariableSync.Outcome {
        let instance = instance
        let (outcome, written) = try await Self.files.run { () throws -> (VariableSync.Outcome, String?) in
            let text = try AtomicFile.read(path)
            let current = try text.map { try ManagedOptionFile(parsing: $0, path: path) } ?? ManagedOptionFile()
            let outcome = VariableSync.outcome(desired: desired, runtime: runtime, file: current)
            let rendered = outcome.file.rendered(instance: instance)
            // No file and nothing to keep: none is created.
            guard rendered != text, text != nil || !outcome.file.options.isEmpty else { return (outcome, nil) }
            try AtomicFile.write(rendered, to: path)
            return (outcome, rendered)
        }
        if written != nil {
            let options = outcome.file.options.keys.sorted().map { "\($0)=\(outcome.file.options[$0]!)" }
            let pending = outcome.pendingRestart.isEmpty ? "" : "; pending restart: \(outcome.pendingRestart.joined(separator: ", "))"
            logger.notice(
                "option file \(path) of \(instance) written: \(options.isEmpty ? "no managed variable" : options.joined(separator: " "))\(pending)")
        }
        return outcome
    }

    private mutating func logOnce(_ kind: String, _ message: String?, level: Logger.Level = .warning) {
        guard logged[kind] != message else { return }
        if let message { logger.log(level: level, "\(message)") }
        logged[kind] = message
    }

    /// Where the option files are read and written (blocking calls, off the cooperative pool).
    private static let files = BlockingQueue(label: "option files")
}
