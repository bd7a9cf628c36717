import MariaDBClient

/// What a `Prober` reports about: an instance's name in the source of truth, and its
/// heartbeat shard (its section), if any.
public struct ProbeTarget: Sendable, Equatable {
    /// `db1001`, `db1101:3317`.
    public var name: String
    /// Without one, or without the Wikimedia columns, lag is measured from the rows of the
    /// instance's source's `server_id`.
    public var shard: String?

    public init(name: String, shard: String? = nil) {
        self.name = name
        self.shard = shard
    }
}

/// Where lag is measured, as MediaWiki does: pt-heartbeat's table, and the primary datacenter
/// whose rows count when the table has Wikimedia's `shard` and `datacenter` columns.
public struct HeartbeatTable: Sendable, Equatable {
    /// `database.table`. Default `heartbeat.heartbeat`.
    public var table: String
    public var datacenter: String?

    public init(table: String = "heartbeat.heartbeat", datacenter: String? = nil) {
        self.table = table
        self.datacenter = datacenter
    }

    /// The database and the table; `InvalidHeartbeatTable` unless `table` is `database.table`.
    func parts() throws -> (database: String, table: String) {
        let parts = table.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw InvalidHeartbeatTable() }
        return (parts[0], parts[1])
    }

    /// `database`.`table`, quoted for SQL.
    func quotedName() throws -> String {
        let (database, table) = try parts()
        return try SQL.quoteIdentifier(database) + "." + SQL.quoteIdentifier(table)
    }
}

/// `heartbeat.table` does not name `database.table`.
public struct InvalidHeartbeatTable: Error, CustomStringConvertible {
    public var description: String { "heartbeat.table must be database.table" }
}
