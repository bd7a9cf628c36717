import MariaDBClient
import Observation

/// One binary log event: a transaction with its GTID, when it was first written (fleet time),
/// and the heartbeat row it carries, if it is a heartbeat write.
struct BinlogEvent: Sendable {
    var gtid: GTID
    var writtenAt: Duration
    var heartbeat: HeartbeatRow?
}

/// One row of the heartbeat table (primary key `server_id`).
public struct HeartbeatRow: Sendable, Equatable {
    public var serverID: UInt32
    /// Fleet time of the write.
    public var ts: Duration
    public var shard: String?
    public var datacenter: String?

    public init(serverID: UInt32, ts: Duration, shard: String? = nil, datacenter: String? = nil) {
        self.serverID = serverID
        self.ts = ts
        self.shard = shard
        self.datacenter = datacenter
    }
}

/// The default replication channel (`Connection_name` ""), as `CHANGE MASTER` and the
/// replication threads leave it.
struct ChannelState: Sendable {
    var masterHost = ""
    var masterPort = 3306
    var masterUser = ""
    var masterPassword = ""
    /// `Slave_Pos`, `Current_Pos` or `No`.
    var usingGtid = "Slave_Pos"
    var ssl = false
    var sslCA = "", sslCAPath = "", sslCert = "", sslKey = "", sslCipher = "", sslCRL = "", sslCRLPath = ""
    var sslVerifyServerCert = false
    var connectRetry = 60
    var retryCount = 86400
    var heartbeatPeriod = 30.0
    /// The threads as `START`/`STOP SLAVE` left them (an IO thread that cannot connect runs, "Connecting").
    var ioRunning = false
    var sqlRunning = false
    /// The source the IO thread is connected to (fleet index), nil while connecting or stopped.
    var connectedTo: Int?
    /// `Master_Server_Id`: the server id of the last source the IO thread connected to; 0 before any.
    var masterServerID: UInt32 = 0
    /// Received, not applied yet.
    var relay = [BinlogEvent]()
    /// `Gtid_IO_Pos`.
    var receivedPosition = GTIDPosition()
    var lastIOErrno = 0, lastIOError = ""
    var lastSQLErrno = 0, lastSQLError = ""
    /// Test control: the SQL thread runs but applies nothing (lag).
    var applyHeld = false
}

/// A statement-matching rule that makes statements hang (see `MemoryMariaDB.hang`).
struct HangRule: Sendable {
    var id: Int
    var substring: String
    var remaining: Int?
    var onRelease: MemoryMariaDB.ReleaseOutcome
    var onKill: MemoryMariaDB.KillOutcome
}

/// A statement-matching rule that makes the next matching statement fail once.
struct FailRule: Sendable {
    var substring: String
    var error: UInt32
    var message: String
    var applies: Bool
}

/// Why a suspended statement woke.
enum Wake: Sendable {
    case resumed, released, killed, queryKilled, stopped
}

/// One server-side session (a processlist row).
struct SessionEntry: Sendable {
    var id: UInt
    var user: String
    var host: String
    var command = "Sleep"
    var since: Duration
    var info: String?
    /// When the open transaction began, if any.
    var transactionSince: Duration?
    /// Writes made inside the open transaction, binlogged at `COMMIT`.
    var pendingWrites = 0
    /// A simulated client: no `DatabaseSession` behind it.
    var simulated = false
    /// `KILL CONNECTION` arrived while a statement ran: it ends with 1927 and the session goes.
    var killed = false
    var queryKilled = false
    /// The client closed or gave up on the session: it goes when its statement ends.
    var clientGone = false
    var running = false
    /// The statement is suspended here (paused server, hang rule).
    var waiter: CheckedContinuation<Wake, Never>?
    var hungBy: Int?
}

/// Everything about one server.
struct ServerState: Sendable {
    var name: String
    var host: String
    var port: Int
    var serverID: UInt32
    var version: String
    var readOnly: Bool
    /// Seconds a replica waits for data or a heartbeat before it reconnects (only kept: the
    /// twin's replication does not time out).
    var slaveNetTimeout = 60
    var logBin: Bool
    var logSlaveUpdates: Bool
    var binlogFormat: String
    var gtidStrictMode: Bool
    var gtidDomainID: UInt32

    var up = true
    var paused = false
    var unreachable = false
    /// Incremented by every start: a session of an earlier incarnation is gone.
    var incarnation = 0

    /// The binary log as it was before the twin's events (purged or set up by the test).
    var binlogBase: GTIDState
    var binlog = [BinlogEvent]()
    var binlogState: GTIDState
    var binlogPosition: GTIDPosition
    var slavePosition: GTIDPosition
    var channel: ChannelState?

    /// Accounts that write through `read_only` (`SUPER`, `READ ONLY ADMIN`), by user name.
    var privilegedUsers = Set<String>()
    /// `database.table` of the heartbeat table; nil when it does not exist.
    var heartbeatTable: String? = "heartbeat.heartbeat"
    var heartbeatHasShardColumns = true
    var heartbeat = [UInt32: HeartbeatRow]()
    /// Transactions applied to data (own writes and replicated ones).
    var transactions = 0

    var nextThreadID: UInt = 10
    var sessions = [UInt: SessionEntry]()
    var pauseWaiters = [CheckedContinuation<Wake, Never>]()
    var hangs = [HangRule]()
    var failures = [FailRule]()
    var nextRuleID = 1

    /// `@@gtid_current_pos`: per domain, the later of the binlog and slave positions.
    var currentPosition: GTIDPosition {
        var gtids = slavePosition.entries
        for (domain, gtid) in binlogPosition.entries where gtid.sequence > (gtids[domain]?.sequence ?? 0) { gtids[domain] = gtid }
        return GTIDPosition(Array(gtids.values))
    }

    /// The highest sequence number this server has seen in `domain` (binlog or applied).
    func highestSequence(in domain: UInt32) -> UInt64 {
        max(binlogState.gtids.filter { $0.domain == domain }.map(\.sequence).max() ?? 0, slavePosition[domain]?.sequence ?? 0)
    }

    /// Appends an event to the binary log and its state.
    mutating func binlog(_ event: BinlogEvent) {
        binlog.append(event)
        binlogState = GTIDState(binlogState.gtids.filter { !($0.domain == event.gtid.domain && $0.server == event.gtid.server) } + [event.gtid])
        var entries = binlogPosition.entries
        entries[event.gtid.domain] = event.gtid
        binlogPosition = GTIDPosition(Array(entries.values))
    }

    /// Applies a transaction's effect on data.
    mutating func applyData(_ event: BinlogEvent) {
        transactions += 1
        if let row = event.heartbeat, heartbeatTable != nil { heartbeat[row.serverID] = row }
    }

    /// The value of a system variable as `SELECT @@name` shows it, or nil if unknown.
    func variable(_ name: String) -> String? {
        switch name {
        case "server_id": "\(serverID)"
        case "version": version
        case "read_only": readOnly ? "1" : "0"
        case "log_bin": logBin ? "1" : "0"
        case "log_slave_updates", "log_replica_updates": logSlaveUpdates ? "1" : "0"
        case "binlog_format": binlogFormat
        case "gtid_strict_mode": gtidStrictMode ? "1" : "0"
        case "gtid_domain_id": "\(gtidDomainID)"
        case "slave_net_timeout": "\(slaveNetTimeout)"
        case "gtid_binlog_state": binlogState.description
        case "gtid_binlog_pos": binlogPosition.description
        case "gtid_slave_pos": slavePosition.description
        case "gtid_current_pos": currentPosition.description
        case "hostname": host
        case "port": "\(port)"
        default: nil
        }
    }
}

/// The fleet's whole state, behind one lock: replication reads several servers at once.
struct FleetState: Sendable {
    var servers = [ServerState]()

    func index(host: String, port: Int) -> Int? {
        servers.firstIndex { $0.host == host && $0.port == port }
    }

    func index(named name: String) -> Int? {
        servers.firstIndex { $0.name == name }
    }
}

/// The errors the twin gives, with MariaDB's codes.
enum TwinError {
    static func server(_ code: UInt32, _ message: String, state: String = "HY000", endpoint: String?) -> MariaDBError {
        MariaDBError(code: code, sqlState: state, message: message, operation: .query, endpoint: endpoint)
    }

    static func lost(_ endpoint: String?) -> MariaDBError {
        MariaDBError(code: 2013, sqlState: "HY000", message: "Lost connection to server during query", operation: .query, endpoint: endpoint)
    }

    static func gone(_ endpoint: String?) -> MariaDBError {
        MariaDBError(code: 2006, sqlState: "HY000", message: "Server has gone away", operation: .query, endpoint: endpoint)
    }

    static func killed(_ endpoint: String?) -> MariaDBError {
        server(1927, "Connection was killed", state: "70100", endpoint: endpoint)
    }

    static func interrupted(_ endpoint: String?) -> MariaDBError {
        server(1317, "Query execution was interrupted", state: "70100", endpoint: endpoint)
    }

    static func readOnly(_ endpoint: String?) -> MariaDBError {
        server(1290, "The MariaDB server is running with the --read-only option so it cannot execute this statement", endpoint: endpoint)
    }

    static func notUnderstood(_ sql: String, _ detail: String, endpoint: String?) -> MariaDBError {
        server(1064, "the twin does not understand: \(sql) (\(detail))", state: "42000", endpoint: endpoint)
    }
}
