import ConfigurationFiles
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A swift-log handler that writes each record as one JSON object on one line of standard
/// error, for journald and log pipelines (`log_format: json`):
///
///     {"time":"2025-05-01T12:00:00.123Z","level":"info","label":"marina.agent","message":"agent started","metadata":{"etcd":"..."},"source":"Agent"}
///
/// Keys always in this order; `time` is UTC with milliseconds; `metadata` is always an object
/// (the handler's, then its provider's, then the statement's, later keys winning, as swift-log's
/// own handlers merge them; nested lists and mappings kept as JSON arrays and objects, with
/// sorted keys); `error` is added when the statement carries one. Every string is escaped
/// (`JSONText`): a message with quotes, newlines or control characters stays one line.
/// Each line is written with one `write(2)`, so lines from several threads never interleave.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String
    /// Where a finished line (with its newline) goes: standard error unless a test says otherwise.
    let output: @Sendable (String) -> Void
    /// The wall clock: seconds since 1970 and milliseconds.
    let now: @Sendable () -> (seconds: Int, milliseconds: Int)

    /// A handler writing to standard error.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.init(label: label, metadataProvider: metadataProvider, output: Self.writeStandardError, now: Self.wallClock)
    }

    /// A handler writing each line to `output`, with times from `now` (tests).
    public init(
        label: String, metadataProvider: Logger.MetadataProvider? = nil, output: @escaping @Sendable (String) -> Void,
        now: @escaping @Sendable () -> (seconds: Int, milliseconds: Int)
    ) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.output = output
        self.now = now
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        let time = now()
        var line = "{\"time\":\"\(Self.timestamp(seconds: time.seconds, milliseconds: time.milliseconds))\""
        line += ",\"level\":\"\(event.level.rawValue)\""
        line += ",\"label\":" + JSONText.quoted(label)
        line += ",\"message\":" + JSONText.quoted(event.message.description)
        line += ",\"metadata\":" + Self.json(.dictionary(merged))
        line += ",\"source\":" + JSONText.quoted(event.source)
        if let error = event.error { line += ",\"error\":" + JSONText.quoted("\(error)") }
        output(line + "}\n")
    }

    /// A metadata value as JSON: strings (and anything printable) quoted, lists as arrays,
    /// mappings as objects with sorted keys.
    static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): JSONText.quoted(text)
        case .stringConvertible(let value): JSONText.quoted(value.description)
        case .array(let values): "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let entries):
            "{" + entries.sorted { $0.key < $1.key }.map { JSONText.quoted($0.key) + ":" + json($0.value) }.joined(separator: ",") + "}"
        }
    }

    /// `2025-05-01T12:00:00.123Z`: UTC, ISO 8601 with milliseconds, computed without the C
    /// library's time zone state (the civil-from-days algorithm of the proleptic Gregorian calendar).
    public static func timestamp(seconds: Int, milliseconds: Int) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2))T\(padded(secondOfDay / 3600, 2)):"
            + "\(padded(secondOfDay / 60 % 60, 2)):\(padded(secondOfDay % 60, 2)).\(padded(milliseconds, 3))Z"
    }

    /// `CLOCK_REALTIME`, in whole seconds and milliseconds.
    @Sendable public static func wallClock() -> (seconds: Int, milliseconds: Int) {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return (Int(time.tv_sec), Int(time.tv_nsec) / 1_000_000)
    }

    /// One `write(2)` of the whole line to standard error (retried for what a signal interrupted
    /// or a short write left), so that concurrent lines never mix.
    @Sendable static func writeStandardError(_ line: String) {
        var bytes = Array(line.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }
}
