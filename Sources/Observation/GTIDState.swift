/// A MariaDB binary log state (`@@gtid_binlog_state`): the last GTID binlogged for every
/// (domain, server id) pair, as in `0-1001-42,0-1002-7,1-2001-3`. The empty string is the
/// empty state.
///
/// `gtid_binlog_pos` keeps one GTID per domain, the last one binlogged: with
/// `gtid_strict_mode` OFF, a transaction a replica wrote itself disappears from it as soon as
/// the replica applies a newer one from its primary. The binlog state keeps it, under the
/// replica's own server id, which is why errant transactions are found here.
public struct GTIDState: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Who wrote a GTID: a server id within a replication domain.
    public struct Origin: Sendable, Hashable, Comparable, CustomStringConvertible {
        public var domain: UInt32
        public var server: UInt32

        public init(domain: UInt32, server: UInt32) {
            self.domain = domain
            self.server = server
        }

        public static func < (a: Origin, b: Origin) -> Bool { (a.domain, a.server) < (b.domain, b.server) }
        public var description: String { "\(domain)-\(server)" }
    }

    /// The last GTID of every origin.
    public private(set) var entries: [Origin: GTID]

    /// At most one GTID per origin; the highest sequence wins.
    public init(_ gtids: [GTID] = []) {
        entries = Dictionary(
            gtids.map { (Origin(domain: $0.domain, server: $0.server), $0) },
            uniquingKeysWith: { $0.sequence >= $1.sequence ? $0 : $1 })
    }

    /// Parses a state as the server prints it, or throws naming what is wrong.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingWhitespace()
        var entries = [Origin: GTID]()
        if !trimmed.isEmpty {
            for gtid in try GTID.list(parsing: trimmed, in: text, what: "GTID binlog state") {
                let origin = Origin(domain: gtid.domain, server: gtid.server)
                guard entries[origin] == nil else {
                    throw GTIDError(position: text, problem: "domain \(gtid.domain) server \(gtid.server) appears twice", what: "GTID binlog state")
                }
                entries[origin] = gtid
            }
        }
        self.entries = entries
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// Every GTID, sorted by domain then server id.
    public var gtids: [GTID] { entries.keys.sorted().map { entries[$0]! } }

    /// Sorted by domain then server id.
    public var description: String { gtids.map(\.description).joined(separator: ",") }

    public subscript(domain domain: UInt32, server server: UInt32) -> GTID? { entries[Origin(domain: domain, server: server)] }

    /// The transactions of this state (a replica's) that the primary never had (errant
    /// transactions), compared with the primary's state: an origin the primary lacks, or one
    /// where this state's sequence is higher than the primary's. Sorted by domain, server id.
    ///
    /// Not errant: origins the primary has and this state lacks or has lower (not replicated
    /// yet, or from before this binary log began); origins on both at the same sequence (a
    /// former primary's transactions, replicated everywhere); and any GTID with the primary's
    /// own server id (`primaryServerID`), which only the primary writes: a replica read a
    /// moment after its primary may already hold the primary's next transactions.
    public func errant(comparedWith primary: GTIDState, primaryServerID: UInt32?) -> [GTID] {
        gtids.filter { gtid in
            if let primaryServerID, gtid.server == primaryServerID { return false }
            guard let theirs = primary.entries[Origin(domain: gtid.domain, server: gtid.server)] else { return true }
            return gtid.sequence > theirs.sequence
        }
    }

    public init(from decoder: Decoder) throws {
        try self.init(parsing: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
