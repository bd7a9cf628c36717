#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What an agent saw on one instance at one probe. Stored under `/marina/v1/observed/<name>`,
/// bound to the agent's lease: when the agent dies, its observations vanish.
///
/// An observation is never silently absent: an instance that does not answer is published
/// with `reachable == false`, the error, and the time of the last good probe.
public struct Observation: Codable, Sendable, Equatable {
    public var schema: Int = 1
    /// The instance's name in the source of truth.
    public var instance: String
    /// The agent that saw it (its host name) and when that agent started.
    public var agent: String
    public var agentStartedAt: Date
    /// When this probe ran (the agent's clock).
    public var observedAt: Date
    public var reachable: Bool
    /// Why the probe failed, when it did.
    public var error: String?
    /// The last probe that succeeded (nil if none yet).
    public var lastGoodProbeAt: Date?
    public var probeMilliseconds: Int?

    public var serverID: Int?
    public var version: String?
    public var readOnly: Bool?
    public var gtidCurrentPos: GTIDPosition?
    public var gtidBinlogPos: GTIDPosition?
    public var gtidSlavePos: GTIDPosition?
    /// `@@GLOBAL.gtid_binlog_state`: the last GTID of every (domain, server id) in the binary
    /// log. Nil when not read (an older agent, or a probe that failed): unknown, not empty.
    public var gtidBinlogState: GTIDState?
    public var gtidStrictMode: Bool?
    public var logBin: Bool?
    /// `@@GLOBAL.log_slave_updates`: whether replicated transactions are written to the
    /// binary log too (nil when not read).
    public var logSlaveUpdates: Bool?
    public var binlogFormat: String?
    /// Every replication connection (`SHOW ALL SLAVES STATUS`); empty on a primary.
    public var replication: [ReplicationChannel]
    /// Seconds since the newest heartbeat row, computed on the server itself.
    public var heartbeatLag: Double?
    /// Which heartbeat rows the lag was measured from (`shard=s1,datacenter=dc1` or `server_id=1001`).
    public var heartbeatSource: String?
    /// Why there is no heartbeat lag (no table, no row, no privilege), when there is none.
    public var heartbeatError: String?
    /// When this agent's heartbeat writer last wrote the heartbeat row on this instance (the
    /// agent's clock, on the instance's host): set while the instance is the writable primary
    /// the agent writes to, nil when it writes nothing here (`heartbeat.write` off, another
    /// writer such as pt-heartbeat, or the instance read-only). Kept on an observation of an
    /// unreachable instance, so that a stalled writer shows as a growing age.
    public var heartbeatWrittenAt: Date?
    /// Set while the agent keeps this instance read-only because its primary lease could not
    /// be renewed (`PrimaryLease`); nil otherwise.
    public var selfFence: SelfFence?
    /// Where this instance's agent answers failsafe requests (`address:port`), when it does.
    public var failsafeEndpoint: String?
    /// The runtime (global) value of each managed variable the server has (the committed
    /// desired variables of the instance's section for its role), as the server reports it.
    /// Nil when not read: an older agent, no committed variables known yet, a failed probe.
    public var variables: [String: String]?
    /// Managed variables whose runtime value differs from the desired one and that cannot be
    /// set at runtime (`information_schema.SYSTEM_VARIABLES.READ_ONLY = 'YES'`): they take
    /// effect at the next restart, from the agent's option file. Sorted; nil when not read.
    public var pendingRestart: [String]?
    /// The option file the agent keeps for this instance (`variables.option_file`), when it
    /// keeps one.
    public var optionFile: String?
    /// Why the agent could not write that option file at its latest attempt, when it could not.
    public var optionFileError: String?
    /// The managed options that file holds (what a restart brings), keyed by lowercase name;
    /// nil when the agent keeps none or could not read it.
    public var optionFileValues: [String: String]?

    public init(
        instance: String, agent: String, agentStartedAt: Date, observedAt: Date, reachable: Bool, error: String? = nil,
        lastGoodProbeAt: Date? = nil, replication: [ReplicationChannel] = []
    ) {
        self.instance = instance
        self.agent = agent
        self.agentStartedAt = agentStartedAt
        self.observedAt = observedAt
        self.reachable = reachable
        self.error = error
        self.lastGoodProbeAt = lastGoodProbeAt
        self.replication = replication
    }

    enum CodingKeys: String, CodingKey {
        case schema, instance, agent
        case agentStartedAt = "agent_started_at"
        case observedAt = "observed_at"
        case reachable, error
        case lastGoodProbeAt = "last_good_probe_at"
        case probeMilliseconds = "probe_ms"
        case serverID = "server_id"
        case version
        case readOnly = "read_only"
        case gtidCurrentPos = "gtid_current_pos"
        case gtidBinlogPos = "gtid_binlog_pos"
        case gtidSlavePos = "gtid_slave_pos"
        case gtidStrictMode = "gtid_strict_mode"
        case logBin = "log_bin"
        case binlogFormat = "binlog_format"
        case gtidBinlogState = "gtid_binlog_state"
        case logSlaveUpdates = "log_slave_updates"
        case replication
        case heartbeatLag = "heartbeat_lag"
        case heartbeatSource = "heartbeat_source"
        case heartbeatError = "heartbeat_error"
        case heartbeatWrittenAt = "heartbeat_written_at"
        case selfFence = "self_fence"
        case failsafeEndpoint = "failsafe_endpoint"
        case variables
        case pendingRestart = "pending_restart"
        case optionFile = "option_file"
        case optionFileError = "option_file_error"
        case optionFileValues = "option_file_values"
    }
}

/// One replication connection of a replica, from `SHOW ALL SLAVES STATUS`.
public struct ReplicationChannel: Codable, Sendable, Equatable {
    /// `Connection_name` (empty for the default connection).
    public var name: String
    public var sourceHost: String
    public var sourcePort: Int
    public var sourceServerID: Int?
    /// `Yes`, `No` or `Connecting`.
    public var ioThread: String
    public var sqlThread: String
    /// `No`, `Slave_Pos` or `Current_Pos`.
    public var usingGTID: String
    public var lastIOError: String
    public var lastSQLError: String
    public var secondsBehindMaster: Int?
    public var gtidIOPos: GTIDPosition?

    public init(
        name: String = "", sourceHost: String, sourcePort: Int, sourceServerID: Int? = nil, ioThread: String, sqlThread: String,
        usingGTID: String, lastIOError: String = "", lastSQLError: String = "", secondsBehindMaster: Int? = nil,
        gtidIOPos: GTIDPosition? = nil
    ) {
        self.name = name
        self.sourceHost = sourceHost
        self.sourcePort = sourcePort
        self.sourceServerID = sourceServerID
        self.ioThread = ioThread
        self.sqlThread = sqlThread
        self.usingGTID = usingGTID
        self.lastIOError = lastIOError
        self.lastSQLError = lastSQLError
        self.secondsBehindMaster = secondsBehindMaster
        self.gtidIOPos = gtidIOPos
    }

    public var isRunning: Bool { ioThread == "Yes" && sqlThread == "Yes" }

    enum CodingKeys: String, CodingKey {
        case name
        case sourceHost = "source_host"
        case sourcePort = "source_port"
        case sourceServerID = "source_server_id"
        case ioThread = "io_thread"
        case sqlThread = "sql_thread"
        case usingGTID = "using_gtid"
        case lastIOError = "last_io_error"
        case lastSQLError = "last_sql_error"
        case secondsBehindMaster = "seconds_behind_master"
        case gtidIOPos = "gtid_io_pos"
    }
}

extension Observation {
    /// Transactions this instance wrote itself while it should only replicate (errant GTIDs),
    /// as far as positions show them: GTIDs carrying its own server id in its binary log beyond
    /// what it replicated (strict mode then breaks replication, and the primary's sequence soon
    /// passes the errant one), or ahead of the primary's position. Replicated events carry
    /// another server id. Positions keep only the last GTID per domain, so an errant
    /// transaction followed by replicated ones is invisible here; `errantTransactions` compares
    /// binlog states and sees it.
    public func errantGTIDs(primaryPosition: GTIDPosition?) -> [GTID] {
        guard let own = serverID else { return [] }
        let slave = gtidSlavePos ?? GTIDPosition()
        var errant = Set((gtidBinlogPos ?? GTIDPosition()).ahead(of: slave).filter { Int($0.server) == own })
        if let primaryPosition, let current = gtidCurrentPos {
            errant.formUnion(current.ahead(of: primaryPosition).filter { Int($0.server) == own })
        }
        return errant.sorted { $0.domain < $1.domain }
    }

    /// This replica's errant transactions compared with its primary's observation, from both
    /// `gtid_binlog_state`s (see `GTIDState.errant`); nil when either state is unknown.
    public func errantTransactions(comparedWith primary: Observation) -> [GTID]? {
        guard let own = gtidBinlogState, let theirs = primary.gtidBinlogState else { return nil }
        return own.errant(comparedWith: theirs, primaryServerID: primary.serverID.flatMap(UInt32.init(exactly:)))
    }
}

extension Observation {
    /// When the newest heartbeat of this instance was written, on its own host's clock: what
    /// the agent's writer last wrote, else (another writer) the newest row as the probe
    /// measured it, `observedAt` minus the lag. Nil when neither is known. Meant for a
    /// primary: on a replica, `observedAt` minus the lag is the newest heartbeat it applied.
    public var newestHeartbeatAt: Date? {
        if let heartbeatWrittenAt { return heartbeatWrittenAt }
        return heartbeatLag.map { observedAt.addingTimeInterval(-$0) }
    }
}
