import ConfigurationFiles
import Controller
import Foundation
import Logging
import MarinaLogging
import Testing

/// The lines a handler wrote, in order.
final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines = [String]()

    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    /// A logger writing JSON lines into `lines`, at 2025-05-01T12:00:00.123Z.
    func logger(_ lines: Lines, label: String = "marina.agent", provider: Logger.MetadataProvider? = nil) -> Logger {
        var logger = Logger(label: label) {
            JSONLogHandler(label: $0, metadataProvider: provider, output: { lines.append($0) }, now: { (1_746_100_800, 123) })
        }
        logger.logLevel = .debug
        return logger
    }

    /// One line as a JSON object, checked to be exactly one line.
    func object(_ line: String) throws -> [String: Any] {
        #expect(line.hasSuffix("}\n") && line.dropLast().firstIndex(of: "\n") == nil, "not one line: \(line)")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test("each record is one JSON object on one line: time, level, label, message, metadata, source, in that order")
    func fields() throws {
        let lines = Lines()
        logger(lines).info("agent started", metadata: ["instances": "[db1001]"])
        let line = try #require(lines.all.first)
        #expect(
            line
                == #"{"time":"2025-05-01T12:00:00.123Z","level":"info","label":"marina.agent","message":"agent started","metadata":{"instances":"[db1001]"},"source":"MarinaLoggingTests"}"#
                + "\n")
        let parsed = try object(line)
        #expect(parsed["level"] as? String == "info" && parsed["message"] as? String == "agent started")
    }

    @Test("quotes, backslashes, newlines and control characters are escaped: the message comes back intact on one line")
    func escaping() throws {
        let lines = Lines()
        let message = "a \"quoted\" path C:\\x\nsecond line\r\ttab \u{1}\u{1F} bell\u{7} é 漢 🐬"
        logger(lines, label: "label \"x\"\n").warning("\(message)", metadata: ["key\n\"": "value\u{0}\\"])
        let line = try #require(lines.all.first)
        let parsed = try object(line)
        #expect(parsed["message"] as? String == message)
        #expect(parsed["label"] as? String == "label \"x\"\n")
        #expect((parsed["metadata"] as? [String: String]) == ["key\n\"": "value\u{0}\\"])
        #expect(line.contains(#"\u0001\u001f bell\u0007"#) && line.contains(#"\"quoted\""#) && line.contains(#"C:\\x\nsecond"#))
    }

    @Test("metadata: the logger's, the provider's and the statement's merged (the statement wins); lists and mappings nested")
    func metadata() throws {
        let lines = Lines()
        var logger = logger(lines, provider: Logger.MetadataProvider { ["request": "r1", "shared": "provider"] })
        logger[metadataKey: "instance"] = "db1001"
        logger[metadataKey: "shared"] = "logger"
        logger.error(
            "probe failed",
            metadata: ["shared": "statement", "gtid": .array(["0-1-5", .dictionary(["b": "2", "a": .stringConvertible(42)])])])
        let line = try #require(lines.all.first)
        #expect(
            line.contains(
                #""metadata":{"gtid":["0-1-5",{"a":"42","b":"2"}],"instance":"db1001","request":"r1","shared":"statement"}"#),
            "\(line)")
        let metadata = try #require(try object(line)["metadata"] as? [String: Any])
        #expect(metadata["shared"] as? String == "statement" && metadata["request"] as? String == "r1")
    }

    @Test("no metadata is an empty object; the level threshold is the logger's")
    func emptyAndLevel() throws {
        let lines = Lines()
        var logger = logger(lines)
        logger.logLevel = .notice
        logger.info("dropped")
        logger.critical("kept")
        #expect(lines.all.count == 1)
        let parsed = try object(lines.all.first ?? "")
        #expect(parsed["level"] as? String == "critical" && (parsed["metadata"] as? [String: Any])?.isEmpty == true)
    }

    @Test("an error passed with the statement is its own field")
    func error() throws {
        struct Refused: Error, CustomStringConvertible { var description: String { "refused \"x\"" } }
        let lines = Lines()
        logger(lines).log(level: .error, "failed", error: Refused())
        let parsed = try object(lines.all.first ?? "")
        #expect(parsed["error"] as? String == "refused \"x\"")
    }

    @Test(
        "times are UTC, ISO 8601 with milliseconds",
        arguments: [
            (0, 0, "1970-01-01T00:00:00.000Z"), (1_746_100_800, 7, "2025-05-01T12:00:00.007Z"),
            (951_782_400, 999, "2000-02-29T00:00:00.999Z"), (4_102_444_799, 10, "2099-12-31T23:59:59.010Z"),
            (-1, 500, "1969-12-31T23:59:59.500Z"),
        ])
    func timestamps(seconds: Int, milliseconds: Int, text: String) {
        #expect(JSONLogHandler.timestamp(seconds: seconds, milliseconds: milliseconds) == text)
    }

    @Test("the wall clock's time matches Foundation's to the second")
    func wallClock() throws {
        let lines = Lines()
        var logger = Logger(label: "x") { JSONLogHandler(label: $0, output: { lines.append($0) }, now: JSONLogHandler.wallClock) }
        logger.logLevel = .info
        let before = Date()
        logger.info("now")
        let after = Date()
        let line = try #require(lines.all.first)
        let time = try #require(try object(line)["time"] as? String)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let date = try #require(formatter.date(from: time))
        #expect(date >= before.addingTimeInterval(-0.001) && date <= after.addingTimeInterval(0.001), "\(time)")
    }

    @Test("formatted(.text) keeps the logger; formatted(.json) keeps its label, level and metadata")
    func formatted() {
        var logger = Logger(label: "marina.controller") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .notice
        logger[metadataKey: "controller"] = "c1"
        #expect(logger.formatted(.text).handler is StreamLogHandler)
        let json = logger.formatted(.json)
        #expect(json.handler is JSONLogHandler && json.label == "marina.controller" && json.logLevel == .notice)
        #expect(json[metadataKey: "controller"] == "c1")
    }
}

@Suite("log_format")
struct LogFormatTests {
    struct Holder: Decodable { var log_format: LogFormat }

    @Test("text and json are read; anything else is refused naming the key and the value")
    func decoding() throws {
        #expect(try JSONDecoder().decode(Holder.self, from: Data(#"{"log_format":"json"}"#.utf8)).log_format == .json)
        #expect(try JSONDecoder().decode(Holder.self, from: Data(#"{"log_format":"text"}"#.utf8)).log_format == .text)
        #expect(throws: ConfigurationError(message: "log_format must be text or json (got JSON)")) {
            try JSONDecoder().decode(Holder.self, from: Data(#"{"log_format":"JSON"}"#.utf8))
        }
    }
}

@Suite("log_format in the controller's configuration")
struct ControllerLogFormatTests {
    static let base = """
        etcd:
          endpoints: [http://127.0.0.1:2379]
        mariadb:
          credentials_file: /etc/marina/controller.cnf
        playbooks: /etc/marina/playbooks
        """

    @Test("absent: text; json read; any other value refused with one message naming the file and the key")
    func controller() throws {
        #expect(try ControllerConfiguration.parse(Self.base, file: "controller.yaml").logFormat == .text)
        #expect(try ControllerConfiguration.parse(Self.base + "\nlog_format: json\n", file: "controller.yaml").logFormat == .json)
        #expect(throws: ControllerError.configuration("controller.yaml: controller: log_format must be text or json (got yaml)")) {
            try ControllerConfiguration.parse(Self.base + "\nlog_format: yaml\n", file: "controller.yaml")
        }
    }
}
