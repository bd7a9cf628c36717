/// One MariaDB GTID: `domain-server-sequence`.
public struct GTID: Sendable, Hashable, Codable, CustomStringConvertible {
    public var domain: UInt32
    public var server: UInt32
    public var sequence: UInt64

    public init(domain: UInt32, server: UInt32, sequence: UInt64) {
        self.domain = domain
        self.server = server
        self.sequence = sequence
    }

    public var description: String { "\(domain)-\(server)-\(sequence)" }

    /// The GTIDs of a non-empty comma-separated list as the server prints it, in its order;
    /// errors name `text` (the whole value) and call it `what`.
    static func list(parsing trimmed: String, in text: String, what: String) throws -> [GTID] {
        try trimmed.split(separator: ",", omittingEmptySubsequences: false).map { part in
            let item = part.trimmingWhitespace()
            let numbers = item.split(separator: "-", omittingEmptySubsequences: false)
            guard numbers.count == 3, let domain = UInt32(numbers[0]), let server = UInt32(numbers[1]), let sequence = UInt64(numbers[2]),
                numbers.allSatisfy({ $0.allSatisfy(\.isNumber) })
            else {
                throw GTIDError(position: text, problem: "\"\(item)\" is not domain-server-sequence", what: what)
            }
            return GTID(domain: domain, server: server, sequence: sequence)
        }
    }
}

/// A MariaDB GTID position (`@@gtid_current_pos`, `@@gtid_binlog_pos`, ...): at most one GTID
/// per replication domain, as in `0-1001-42,1-2001-7`. The empty string is the empty position.
public struct GTIDPosition: Sendable, Hashable, Codable, CustomStringConvertible {
    /// By domain.
    public private(set) var entries: [UInt32: GTID]

    public init(_ gtids: [GTID] = []) {
        entries = Dictionary(gtids.map { ($0.domain, $0) }, uniquingKeysWith: { $0.sequence >= $1.sequence ? $0 : $1 })
    }

    /// Parses a position as the server prints it, or throws naming what is wrong.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingWhitespace()
        var entries = [UInt32: GTID]()
        guard !trimmed.isEmpty else {
            self.entries = [:]
            return
        }
        for gtid in try GTID.list(parsing: trimmed, in: text, what: "GTID position") {
            guard entries[gtid.domain] == nil else {
                throw GTIDError(position: text, problem: "domain \(gtid.domain) appears twice")
            }
            entries[gtid.domain] = gtid
        }
        self.entries = entries
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// Sorted by domain, as the server prints it.
    public var description: String {
        entries.keys.sorted().map { entries[$0]!.description }.joined(separator: ",")
    }

    public subscript(domain: UInt32) -> GTID? { entries[domain] }

    /// Whether this position has applied everything `other` has: in every domain of `other`,
    /// a sequence at least as high. (Sequence numbers are comparable within a domain only.)
    public func contains(_ other: GTIDPosition) -> Bool {
        other.entries.allSatisfy { domain, gtid in (entries[domain]?.sequence ?? 0) >= gtid.sequence }
    }

    /// The domains where this position is ahead of `other` (or that `other` lacks): on a
    /// replica compared with its primary, transactions the primary never had (errant GTIDs).
    public func ahead(of other: GTIDPosition) -> [GTID] {
        entries.values.filter { gtid in gtid.sequence > (other.entries[gtid.domain]?.sequence ?? 0) }
            .sorted { $0.domain < $1.domain }
    }

    /// The domains where this position is behind `other`.
    public func behind(_ other: GTIDPosition) -> [GTID] {
        other.ahead(of: self)
    }

    public init(from decoder: Decoder) throws {
        try self.init(parsing: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A position (or binlog state) that does not parse. Never a crash.
public struct GTIDError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The text as given.
    public var position: String
    public var problem: String
    /// What the text should have been: `GTID position` or `GTID binlog state`.
    public var what: String = "GTID position"
    public var description: String { "malformed \(what) \(position.debugDescription): \(problem)" }
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and line breaks (FoundationEssentials has no
    /// `trimmingCharacters(in:)`).
    public func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
