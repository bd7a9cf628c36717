import MariaDBClient
import Observation

/// Simulated replication and the statements that steer it, with MariaDB's refusals.
///
/// The IO thread of a running replica connects to the server at its `MASTER_HOST`:`MASTER_PORT`
/// when that server is up, not paused and (for a new connection) reachable; it then receives
/// every event of the source's binary log after its position. The SQL thread applies what was
/// received, in order: `gtid_slave_pos` follows, and with `log_bin` and `log_slave_updates` the
/// events go into the replica's own binary log with their original server ids. Starting the IO
/// thread discards what was received but not applied (GTID mode restarts from `gtid_slave_pos`).
enum Replication {
    /// Runs every replica until nothing moves (chains need several rounds).
    static func run(_ fleet: inout FleetState, now: Duration) {
        for _ in 0..<max(fleet.servers.count, 1) {
            var moved = false
            for index in fleet.servers.indices where fleet.servers[index].channel != nil {
                moved = step(&fleet, replica: index) || moved
            }
            if !moved { return }
        }
    }

    /// One round for one replica: receive, then apply. Whether anything changed.
    private static func step(_ fleet: inout FleetState, replica index: Int) -> Bool {
        guard fleet.servers[index].up, !fleet.servers[index].paused, var channel = fleet.servers[index].channel else { return false }
        var moved = false
        if channel.ioRunning {
            let source = fleet.index(host: channel.masterHost, port: channel.masterPort)
            // An established connection survives a paused or unreachable source (nothing arrives
            // from a paused one); a new one needs it up, running and reachable.
            if let source, source != index, fleet.servers[source].up,
                channel.connectedTo == source || (!fleet.servers[source].unreachable && !fleet.servers[source].paused)
            {
                if channel.connectedTo != source {
                    if let problem = divergence(start: channel.receivedPosition, source: fleet.servers[source]) {
                        channel.lastIOErrno = 1236
                        channel.lastIOError = "Got fatal error 1236 from master when reading data from binary log: '\(problem)'"
                        channel.ioRunning = false
                        channel.connectedTo = nil
                        fleet.servers[index].channel = channel
                        return true
                    }
                    channel.connectedTo = source
                    channel.masterServerID = fleet.servers[source].serverID
                    channel.lastIOErrno = 0
                    channel.lastIOError = ""
                    moved = true
                }
                for event in fleet.servers[source].binlog
                where !fleet.servers[source].paused
                    && event.gtid.sequence > (channel.receivedPosition[event.gtid.domain]?.sequence ?? 0)
                {
                    channel.relay.append(event)
                    var entries = channel.receivedPosition.entries
                    entries[event.gtid.domain] = event.gtid
                    channel.receivedPosition = GTIDPosition(Array(entries.values))
                    moved = true
                }
            } else if channel.connectedTo != nil || channel.lastIOErrno == 0 {
                channel.connectedTo = nil
                channel.lastIOErrno = 2003
                channel.lastIOError =
                    "error connecting to master '\(channel.masterUser)@\(channel.masterHost):\(channel.masterPort)' - "
                    + "retry-time: \(channel.connectRetry)  maximum-retries: \(channel.retryCount)  message: Can't connect to server on '\(channel.masterHost)' (111)"
                moved = true
            }
        }
        fleet.servers[index].channel = channel
        if channel.sqlRunning && !channel.applyHeld && !channel.relay.isEmpty {
            apply(&fleet.servers[index])
            moved = true
        }
        return moved
    }

    /// Why a source refuses to serve a replica starting at `start` (error 1236), if it does: the
    /// replica is ahead of the source in a domain, or has a GTID the source has under another
    /// server id (diverged). A domain the source never wrote to is served.
    static func divergence(start: GTIDPosition, source: ServerState) -> String? {
        for gtid in start.entries.values.sorted(by: { $0.domain < $1.domain }) {
            let highest = source.highestSequence(in: gtid.domain)
            let events = source.binlog.filter { $0.gtid.domain == gtid.domain }
            if highest == 0 && events.isEmpty { continue }
            if gtid.sequence > highest {
                return "Error: connecting slave requested to start from GTID \(gtid), which is not in the master's binlog"
            }
            if let same = events.first(where: { $0.gtid.sequence == gtid.sequence }), same.gtid.server != gtid.server {
                return "Error: connecting slave requested to start from GTID \(gtid), which is not in the master's binlog. Since the master's "
                    + "binlog contains GTIDs with higher sequence numbers, it probably means that the slave has diverged due to executing "
                    + "extra erroneous transactions"
            }
        }
        return nil
    }

    /// The SQL thread applies the relay log in order; with `gtid_strict_mode`, an event whose
    /// sequence is not above the replica's own binary log in its domain stops it (error 1950).
    private static func apply(_ replica: inout ServerState) {
        guard var channel = replica.channel else { return }
        while !channel.relay.isEmpty {
            let event = channel.relay[0]
            if event.gtid.sequence <= (replica.slavePosition[event.gtid.domain]?.sequence ?? 0) {
                channel.relay.removeFirst()
                continue
            }
            let binlogs = replica.logBin && replica.logSlaveUpdates && event.gtid.server != replica.serverID
            if binlogs, replica.gtidStrictMode, let mine = replica.binlogPosition[event.gtid.domain], mine.sequence >= event.gtid.sequence {
                channel.sqlRunning = false
                channel.lastSQLErrno = 1950
                channel.lastSQLError =
                    "An attempt was made to binlog GTID \(event.gtid) which would create an out-of-order sequence number "
                    + "with existing GTID \(mine), and gtid strict mode is enabled"
                break
            }
            channel.relay.removeFirst()
            var entries = replica.slavePosition.entries
            entries[event.gtid.domain] = event.gtid
            replica.slavePosition = GTIDPosition(Array(entries.values))
            // Events with the replica's own server id are skipped (replicate_same_server_id=0).
            guard event.gtid.server != replica.serverID else { continue }
            replica.applyData(event)
            if binlogs { replica.binlog(event) }
        }
        replica.channel = channel
    }

    // MARK: Statements

    static func stop(_ replica: inout ServerState, io: Bool, sql: Bool) {
        guard var channel = replica.channel else { return }
        if io {
            channel.ioRunning = false
            channel.connectedTo = nil
        }
        if sql { channel.sqlRunning = false }
        replica.channel = channel
    }

    static func start(_ replica: inout ServerState, io: Bool, sql: Bool, endpoint: String) throws {
        guard var channel = replica.channel, !channel.masterHost.isEmpty else {
            throw TwinError.server(
                1200, "Misconfigured slave: MASTER_HOST was not set; Fix in config file or with CHANGE MASTER TO", endpoint: endpoint)
        }
        if io && !channel.ioRunning {
            // GTID mode: the relay log not applied yet is discarded, the IO thread asks from gtid_slave_pos.
            channel.ioRunning = true
            channel.connectedTo = nil
            channel.relay = []
            channel.receivedPosition = replica.slavePosition
            channel.lastIOErrno = 0
            channel.lastIOError = ""
        }
        if sql && !channel.sqlRunning {
            channel.sqlRunning = true
            channel.lastSQLErrno = 0
            channel.lastSQLError = ""
        }
        replica.channel = channel
    }

    static func reset(_ replica: inout ServerState, all: Bool, endpoint: String) throws {
        guard var channel = replica.channel else { return }
        if channel.ioRunning || channel.sqlRunning {
            throw TwinError.server(
                1198, "This operation cannot be performed as you have a running slave ''; run STOP SLAVE '' first", endpoint: endpoint)
        }
        if all {
            replica.channel = nil
            return
        }
        channel.relay = []
        channel.receivedPosition = GTIDPosition()
        channel.masterServerID = 0
        channel.lastIOErrno = 0
        channel.lastIOError = ""
        channel.lastSQLErrno = 0
        channel.lastSQLError = ""
        replica.channel = channel
    }

    static func changeMaster(_ replica: inout ServerState, _ options: [(option: String, value: String)], endpoint: String) throws {
        var channel = replica.channel ?? ChannelState()
        if channel.ioRunning || channel.sqlRunning {
            throw TwinError.server(
                1198, "This operation cannot be performed as you have a running slave ''; run STOP SLAVE '' first", endpoint: endpoint)
        }
        func number(_ option: String, _ value: String) throws -> Double {
            guard let number = Double(value) else {
                throw TwinError.server(1064, "\(option) needs a number, not \(value)", state: "42000", endpoint: endpoint)
            }
            return number
        }
        var moved = false
        for (option, value) in options {
            switch option {
            case "MASTER_HOST":
                channel.masterHost = value
                moved = true
            case "MASTER_PORT":
                channel.masterPort = Int(try number(option, value))
                moved = true
            case "MASTER_USER": channel.masterUser = value
            case "MASTER_PASSWORD": channel.masterPassword = value
            case "MASTER_USE_GTID":
                switch value.lowercased() {
                case "slave_pos": channel.usingGtid = "Slave_Pos"
                case "current_pos": channel.usingGtid = "Current_Pos"
                case "no": channel.usingGtid = "No"
                default: throw TwinError.notUnderstood("MASTER_USE_GTID = \(value)", "slave_pos, current_pos or no", endpoint: endpoint)
                }
            case "MASTER_SSL": channel.ssl = try number(option, value) != 0
            case "MASTER_SSL_CA": channel.sslCA = value
            case "MASTER_SSL_CAPATH": channel.sslCAPath = value
            case "MASTER_SSL_CERT": channel.sslCert = value
            case "MASTER_SSL_KEY": channel.sslKey = value
            case "MASTER_SSL_CIPHER": channel.sslCipher = value
            case "MASTER_SSL_CRL": channel.sslCRL = value
            case "MASTER_SSL_CRLPATH": channel.sslCRLPath = value
            case "MASTER_SSL_VERIFY_SERVER_CERT": channel.sslVerifyServerCert = try number(option, value) != 0
            case "MASTER_CONNECT_RETRY": channel.connectRetry = Int(try number(option, value))
            case "MASTER_HEARTBEAT_PERIOD": channel.heartbeatPeriod = try number(option, value)
            default: throw TwinError.notUnderstood("CHANGE MASTER TO \(option)", "unknown option", endpoint: endpoint)
            }
        }
        // A new source: what was received from the old one is of no use.
        if moved {
            channel.relay = []
            channel.receivedPosition = replica.slavePosition
        }
        replica.channel = channel
    }

    // MARK: SHOW SLAVE STATUS

    /// `SHOW SLAVE STATUS` (no row without a channel) or `SHOW ALL SLAVES STATUS`, with
    /// MariaDB's columns (binary log file names and positions are placeholders).
    static func status(of fleet: FleetState, server: Int, all: Bool, now: Duration) -> QueryResult {
        let replica = fleet.servers[server]
        guard let channel = replica.channel else { return StatementContext.table(columns(all: all), []) }
        let io = channel.ioRunning ? (channel.connectedTo != nil ? "Yes" : "Connecting") : "No"
        let sql = channel.sqlRunning ? "Yes" : "No"
        var behind: String?
        if channel.sqlRunning && channel.connectedTo != nil {
            let oldest = channel.relay.first { $0.gtid.sequence > (replica.slavePosition[$0.gtid.domain]?.sequence ?? 0) }
            let seconds = oldest.map { now - $0.writtenAt } ?? .zero
            behind = "\(max(seconds.components.seconds, 0))"
        }
        let yesNo = { (flag: Bool) in flag ? "Yes" : "No" }
        var values: [(String, String?)] = [
            ("Slave_IO_State", channel.connectedTo != nil ? "Waiting for master to send event" : (channel.ioRunning ? "Connecting to master" : "")),
            ("Master_Host", channel.masterHost), ("Master_User", channel.masterUser), ("Master_Port", "\(channel.masterPort)"),
            ("Connect_Retry", "\(channel.connectRetry)"), ("Master_Log_File", ""), ("Read_Master_Log_Pos", "4"),
            ("Relay_Log_File", ""), ("Relay_Log_Pos", "4"), ("Relay_Master_Log_File", ""),
            ("Slave_IO_Running", io), ("Slave_SQL_Running", sql),
            ("Replicate_Rewrite_DB", ""), ("Replicate_Do_DB", ""), ("Replicate_Ignore_DB", ""), ("Replicate_Do_Table", ""),
            ("Replicate_Ignore_Table", ""), ("Replicate_Wild_Do_Table", ""), ("Replicate_Wild_Ignore_Table", ""),
            ("Last_Errno", "\(channel.lastSQLErrno)"), ("Last_Error", channel.lastSQLError), ("Skip_Counter", "0"),
            ("Exec_Master_Log_Pos", "4"), ("Relay_Log_Space", "0"), ("Until_Condition", "None"), ("Until_Log_File", ""), ("Until_Log_Pos", "0"),
            ("Master_SSL_Allowed", yesNo(channel.ssl)), ("Master_SSL_CA_File", channel.sslCA), ("Master_SSL_CA_Path", channel.sslCAPath),
            ("Master_SSL_Cert", channel.sslCert), ("Master_SSL_Cipher", channel.sslCipher), ("Master_SSL_Key", channel.sslKey),
            ("Seconds_Behind_Master", behind), ("Master_SSL_Verify_Server_Cert", yesNo(channel.sslVerifyServerCert)),
            ("Last_IO_Errno", "\(channel.lastIOErrno)"), ("Last_IO_Error", channel.lastIOError),
            ("Last_SQL_Errno", "\(channel.lastSQLErrno)"), ("Last_SQL_Error", channel.lastSQLError),
            ("Replicate_Ignore_Server_Ids", ""), ("Master_Server_Id", "\(channel.masterServerID)"),
            ("Master_SSL_Crl", channel.sslCRL), ("Master_SSL_Crlpath", channel.sslCRLPath),
            ("Using_Gtid", channel.usingGtid), ("Gtid_IO_Pos", channel.receivedPosition.description),
            ("Replicate_Do_Domain_Ids", ""), ("Replicate_Ignore_Domain_Ids", ""), ("Parallel_Mode", "optimistic"),
            ("SQL_Delay", "0"), ("SQL_Remaining_Delay", nil),
            ("Slave_SQL_Running_State", channel.sqlRunning ? "Slave has read all relay log; waiting for more updates" : ""),
            ("Slave_DDL_Groups", "0"), ("Slave_Non_Transactional_Groups", "0"), ("Slave_Transactional_Groups", "0"),
            ("Master_Retry_Count", "\(channel.retryCount)"),
        ]
        if all {
            let sqlState = values.first { $0.0 == "Slave_SQL_Running_State" }?.1 ?? ""
            values.insert(contentsOf: [("Connection_name", ""), ("Slave_SQL_State", sqlState)], at: 0)
            values += [
                ("Retried_transactions", "0"), ("Max_relay_log_size", "1073741824"), ("Executed_log_entries", "0"),
                ("Slave_received_heartbeats", "0"), ("Slave_heartbeat_period", String(format3: channel.heartbeatPeriod)),
                ("Gtid_Slave_Pos", replica.slavePosition.description),
            ]
        }
        return StatementContext.table(values.map(\.0), [values.map(\.1)])
    }

    private static func columns(all: Bool) -> [String] {
        var empty = FleetState()
        empty.servers = [
            ServerState(
                name: "", host: "", port: 0, serverID: 0, version: "", readOnly: false, logBin: false, logSlaveUpdates: false,
                binlogFormat: "", gtidStrictMode: false, gtidDomainID: 0, binlogBase: GTIDState(), binlogState: GTIDState(),
                binlogPosition: GTIDPosition(), slavePosition: GTIDPosition(), channel: ChannelState())
        ]
        return status(of: empty, server: 0, all: all, now: .zero).columns
    }
}
