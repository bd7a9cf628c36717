import ConfigurationFiles
import Logging

extension Logger {
    /// This logger writing in `format` to standard error: itself for `text` (whatever handler
    /// it has), else a logger of the same label, level, metadata and metadata provider with a
    /// `JSONLogHandler`.
    public func formatted(_ format: LogFormat) -> Logger {
        switch format {
        case .text:
            return self
        case .json:
            var logger = Logger(label: label) { JSONLogHandler(label: $0, metadataProvider: handler.metadataProvider) }
            logger.logLevel = logLevel
            logger.handler.metadata = handler.metadata
            return logger
        }
    }
}
