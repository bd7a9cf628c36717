import MariaDBClient
import Observation

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Probes one instance. Owns at most one connection: opened on the next probe after any
/// connection-level failure (never a hidden reconnect inside a probe), closed on such a
/// failure so that a restarted server is reached afresh.
public actor Prober {
    public nonisolated let instance: ProbeTarget
    /// How to reach the instance (its account included).
    public nonisolated let configuration: MariaDBConfiguration
    let heartbeat: HeartbeatTable
    let agent: String
    let agentStartedAt: Date
    let connector: any DatabaseConnector
    private var client: (any DatabaseSession)?
    /// Whether the heartbeat table has Wikimedia's `shard` and `datacenter` columns (per connection).
    private var hasShardColumns: Bool?
    private var lastGoodProbeAt: Date?
    /// When `writeHeartbeat` last succeeded, published with every observation.
    private var heartbeatWrittenAt: Date?

    public init(
        instance: ProbeTarget, configuration: MariaDBConfiguration, heartbeat: HeartbeatTable,
        agent: String, agentStartedAt: Date, connector: any DatabaseConnector = MariaDBConnector()
    ) {
        self.instance = instance
        self.connector = connector
        self.configuration = configuration
        self.heartbeat = heartbeat
        self.agent = agent
        self.agentStartedAt = agentStartedAt
    }

    /// One probe. Never throws: whatever went wrong is in the observation.
    public func probe(now: Date) async -> Observation {
        let started = ContinuousClock.now
        var observation = Observation(
            instance: instance.name, agent: agent, agentStartedAt: agentStartedAt, observedAt: now,
            reachable: false, lastGoodProbeAt: lastGoodProbeAt)
        observation.heartbeatWrittenAt = heartbeatWrittenAt
        do {
            let client = try await connected()
            try await read(into: &observation, from: client)
            observation.reachable = true
            lastGoodProbeAt = now
            observation.lastGoodProbeAt = now
        } catch let error as MariaDBError where error.isConnectionLost || error.isTimeout || error.operation == .connect {
            await disconnect()
            observation.reachable = false
            observation.error = error.isTimeout ? "no answer within the timeout: \(error)" : "\(error)"
        } catch {
            // The server answered, but something could not be read (a privilege, a malformed GTID).
            observation.reachable = true
            observation.error = "\(error)"
            lastGoodProbeAt = now
            observation.lastGoodProbeAt = now
        }
        let elapsed = ContinuousClock.now - started
        observation.probeMilliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        return observation
    }

    /// Writes one heartbeat row in Wikimedia's shape (`shard`, `datacenter`), timestamped by the
    /// server's UTC clock. The agent's account has no SUPER or READ ONLY ADMIN, so a read-only
    /// server refuses the write: the heartbeat stops with the application's writes.
    public func writeHeartbeat(shard: String, datacenter: String) async throws {
        let table = try heartbeat.quotedName()
        let client = try await connected()
        do {
            try await client.execute(
                """
                INSERT INTO \(table) (ts, server_id, shard, datacenter)
                VALUES (DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%f'), @@server_id, ?, ?)
                ON DUPLICATE KEY UPDATE ts = VALUES(ts), shard = VALUES(shard), datacenter = VALUES(datacenter)
                """, .string(shard), .string(datacenter))
            heartbeatWrittenAt = Date()
        } catch let error as MariaDBError where error.isConnectionLost || error.isTimeout {
            await disconnect()
            throw error
        }
    }

    /// The instance is read-only: the writer writes nothing here, so no written heartbeat is
    /// published (a demoted primary must not show its old heartbeat when promoted again).
    public func forgetHeartbeatWritten() {
        heartbeatWrittenAt = nil
    }

    public func disconnect() async {
        await client?.close()
        client = nil
        hasShardColumns = nil
    }

    func connected() async throws -> any DatabaseSession {
        if let client { return client }
        let fresh = try await connector.connect(configuration)
        client = fresh
        return fresh
    }

    private func read(into observation: inout Observation, from client: any DatabaseSession) async throws {
        let variables = try await client.query(
            """
            SELECT @@server_id AS server_id, @@version AS version, @@read_only AS read_only, @@gtid_current_pos AS current_pos,
                   @@gtid_binlog_pos AS binlog_pos, @@gtid_slave_pos AS slave_pos, @@gtid_strict_mode AS strict_mode,
                   @@log_bin AS log_bin, @@GLOBAL.binlog_format AS binlog_format, @@GLOBAL.gtid_binlog_state AS binlog_state,
                   @@GLOBAL.log_slave_updates AS log_slave_updates
            """
        ).first
        observation.serverID = variables?.int("server_id")
        observation.version = variables?["version"]
        observation.readOnly = variables?["read_only"] == "1"
        observation.gtidStrictMode = variables?["strict_mode"] == "1"
        observation.logBin = variables?["log_bin"] == "1"
        observation.logSlaveUpdates = variables?["log_slave_updates"].map { $0 == "1" }
        observation.binlogFormat = variables?["binlog_format"]
        observation.gtidCurrentPos = try GTIDPosition(parsing: variables?["current_pos"] ?? "")
        observation.gtidBinlogPos = try GTIDPosition(parsing: variables?["binlog_pos"] ?? "")
        observation.gtidSlavePos = try GTIDPosition(parsing: variables?["slave_pos"] ?? "")
        observation.gtidBinlogState = try variables?["binlog_state"].map(GTIDState.init(parsing:))

        observation.replication = try await client.query("SHOW ALL SLAVES STATUS").rows.map { row in
            ReplicationChannel(
                name: row["Connection_name"] ?? "", sourceHost: row["Master_Host"] ?? "", sourcePort: row.int("Master_Port") ?? 0,
                sourceServerID: row.int("Master_Server_Id").flatMap { $0 == 0 ? nil : $0 },
                ioThread: row["Slave_IO_Running"] ?? "", sqlThread: row["Slave_SQL_Running"] ?? "", usingGTID: row["Using_Gtid"] ?? "",
                lastIOError: row["Last_IO_Error"] ?? "", lastSQLError: row["Last_SQL_Error"] ?? "",
                secondsBehindMaster: row.int("Seconds_Behind_Master"), gtidIOPos: try GTIDPosition(parsing: row["Gtid_IO_Pos"] ?? ""))
        }

        do {
            try await measureLag(into: &observation, from: client)
        } catch let error as MariaDBError where error.isConnectionLost || error.isTimeout {
            throw error
        } catch {
            observation.heartbeatError = "\(error)"
        }
    }

    /// Lag as MediaWiki computes it: the newest row for the shard and primary datacenter when
    /// the table has those columns, else for the source's `server_id` (the instance's own on a
    /// primary: the age of its own heartbeat); `ts` against `UTC_TIMESTAMP(6)` on this server,
    /// so host clocks do not matter.
    private func measureLag(into observation: inout Observation, from client: any DatabaseSession) async throws {
        let parts = try heartbeat.parts()
        let table = try heartbeat.quotedName()
        if hasShardColumns == nil {
            let columns = try await client.query(
                "SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME IN ('shard', 'datacenter')",
                .string(parts.database), .string(parts.table))
            hasShardColumns = columns.rows.count == 2
        }
        let condition: String
        if hasShardColumns == true, let shard = instance.shard, let datacenter = heartbeat.datacenter {
            condition = try SQL.format("shard = ? AND datacenter = ?", [.string(shard), .string(datacenter)])
            observation.heartbeatSource = "shard=\(shard),datacenter=\(datacenter)"
        } else if let source = observation.replication.first?.sourceServerID ?? observation.serverID {
            condition = "server_id = \(source)"
            observation.heartbeatSource = "server_id=\(source)"
        } else {
            return
        }
        let row = try await client.query(
            "SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) AS us FROM \(table) WHERE \(condition) ORDER BY ts DESC LIMIT 1"
        ).first
        guard let microseconds = row?.double("us") else {
            observation.heartbeatError = "no heartbeat row for \(observation.heartbeatSource ?? "")"
            return
        }
        observation.heartbeatLag = max(microseconds / 1e6, 0)
    }
}
