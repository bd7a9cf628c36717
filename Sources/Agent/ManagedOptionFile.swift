import ConfigurationFiles
import Observation

/// The option file the agent keeps for one instance (`variables.option_file`): a `[mariadbd]`
/// group of managed global variables, under a header saying the agent manages it. Values as
/// the committed desired values are written (`2`, `ON`, `64M`); one variable a line, sorted.
///
/// MariaDB 10.11 has no `SET PERSIST`: a value the controller sets with `SET GLOBAL` is lost
/// at the next restart unless an option file holds it. This one holds what is applied at
/// runtime and what waits for a restart (`VariableSync`), nothing else.
public struct ManagedOptionFile: Sendable, Equatable {
    /// Variable name (`long_query_time`) → the value text written.
    public var options: [String: String]

    public init(options: [String: String] = [:]) { self.options = options }

    /// The group the server reads (`mariadbd`, MariaDB 10.4 and later).
    public static let group = "mariadbd"

    /// The file's options from its text; those of other groups are ignored. A file that is not
    /// an option file (`OptionFile`'s rules) throws, naming the line.
    public init(parsing text: String, path: String) throws {
        let file = try OptionFile(parsing: text, path: path)
        options = Dictionary(file.options(in: Self.group).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// The whole file: the header, the group, the options sorted by name.
    public func rendered(instance: String) -> String {
        var lines = [
            "# Managed by the marina agent for \(instance): do not edit, the agent rewrites this file.",
            "# The committed managed variables of its section (marina, docs/agent.md) that the server",
            "# applies at runtime, and those that take effect at its next restart.",
            "[\(Self.group)]",
        ]
        for name in options.keys.sorted() { lines.append("\(name) = \(Self.quoted(options[name]!))") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A value as an option file reads it back: bare when it is made of plain characters, else
    /// in double quotes with `\` and `"` escaped (and line breaks as `\n`).
    static func quoted(_ value: String) -> String {
        let text = SystemVariableValue.unquoted(value)
        let plain = !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.,+-/:@%*".contains($0)) }
        if plain { return text }
        var escaped = ""
        for character in text {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            default: escaped.append(character)
            }
        }
        return "\"\(escaped)\""
    }
}

/// A global system variable as the server reports it (`information_schema.SYSTEM_VARIABLES`).
public struct RuntimeVariable: Sendable, Equatable {
    /// `GLOBAL_VALUE`.
    public var value: String
    /// `READ_ONLY = 'NO'`: `SET GLOBAL` can change it; else only a restart can.
    public var settable: Bool

    public init(value: String, settable: Bool) {
        self.value = value
        self.settable = settable
    }
}

/// The rule that keeps an instance's option file, pure: desired values, the server's runtime
/// values and the file as it is in; the file as it must be and what to report out.
///
/// A desired variable goes in the file when the server's runtime value already equals it
/// (`SystemVariableValue.same`), or when it cannot be set at runtime (it then waits for the
/// next restart: `pendingRestart` while runtime differs). Otherwise the file keeps what it had
/// for that variable: a `SET GLOBAL` the controller has not run yet, or rolled back, leaves the
/// file as before. So the file always holds what is applied at runtime plus what waits for a
/// restart. A variable the server does not have is never written (the server would refuse to
/// start on it) and is reported `unknown`; variables no longer desired leave the file.
public enum VariableSync {
    public struct Outcome: Sendable, Equatable {
        public var file: ManagedOptionFile
        /// The runtime value of every desired variable the server has.
        public var runtime: [String: String]
        /// Desired variables differing at runtime that cannot be set at runtime, sorted.
        public var pendingRestart: [String]
        /// Desired variables the server does not have, sorted.
        public var unknown: [String]
    }

    /// `desired` and `runtime` are keyed by lowercase variable name.
    public static func outcome(desired: [String: String], runtime: [String: RuntimeVariable], file: ManagedOptionFile) -> Outcome {
        var options = [String: String]()
        var pending = [String]()
        var unknown = [String]()
        for (name, value) in desired {
            guard let actual = runtime[name] else {
                unknown.append(name)
                continue
            }
            let same = SystemVariableValue.same(value, actual.value)
            if same || !actual.settable {
                options[name] = value
                if !same { pending.append(name) }
            } else if let kept = file.options[name] {
                options[name] = kept
            }
        }
        return Outcome(
            file: ManagedOptionFile(options: options), runtime: runtime.filter { desired[$0.key] != nil }.mapValues(\.value),
            pendingRestart: pending.sorted(), unknown: unknown.sorted())
    }
}
