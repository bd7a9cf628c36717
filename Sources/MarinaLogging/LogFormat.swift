import ConfigurationFiles

/// `log_format:` in the agent's and the controller's configurations: how the process writes its
/// log lines on standard error (journald keeps them under systemd). Any other value is refused
/// naming the key, never read as the default.
public enum LogFormat: String, Sendable, Equatable, CaseIterable, Decodable {
    /// swift-log's text lines (`2025-05-01T12:00:00+0000 info marina.agent: [Agent] agent started`). The default.
    case text
    /// One JSON object a line, for a log pipeline: `time` (UTC, ISO 8601 with milliseconds),
    /// `level`, `label`, `message`, `metadata` and `source` (`JSONLogHandler`).
    case json

    public init(from decoder: Decoder) throws {
        let value = try decoder.singleValueContainer().decode(String.self)
        guard let format = LogFormat(rawValue: value) else {
            let key = configurationPath(decoder.codingPath)
            throw ConfigurationError(message: "\(key.isEmpty ? "log_format" : key) must be text or json (got \(value))")
        }
        self = format
    }
}
