import MariaDBClient
import Observation

/// Runs one parsed statement against the fleet's state, under its lock. Throws the
/// `MariaDBError` a real server would answer; collects the suspended statements to wake.
struct StatementContext {
    var fleet: FleetState
    let server: Int
    let thread: UInt
    let endpoint: String
    let now: Duration
    let sql: String
    var wakes = [(CheckedContinuation<Wake, Never>, Wake)]()

    var me: ServerState { fleet.servers[server] }

    func error(_ code: UInt32, _ message: String, state: String = "HY000") -> MariaDBError {
        TwinError.server(code, message, state: state, endpoint: endpoint)
    }

    static let ok = QueryResult(columns: [], rows: [], affectedRows: 0)

    mutating func run(_ statement: Statement) throws -> QueryResult {
        switch statement {
        case .select(let select): return try self.select(select)
        case .waitForPosition: throw error(1064, "MASTER_GTID_WAIT runs elsewhere")
        case .privilegedUsers:
            let names = fleet.servers[server].privilegedUsers.filter { !$0.isEmpty }.sorted()
            return Self.table(["name"], names.map { [$0] })
        case .showSlaveStatus(let all): return Replication.status(of: fleet, server: server, all: all, now: now)
        case .showStatus(let pattern):
            let channel = fleet.servers[server].channel
            let status: [(String, String)] = [
                ("Slave_heartbeat_period", String(format3: channel?.heartbeatPeriod ?? 0)),
                ("Slave_running", channel.map { $0.ioRunning && $0.connectedTo != nil && $0.sqlRunning } == true ? "ON" : "OFF"),
                ("Slaves_running", channel.map { $0.ioRunning && $0.sqlRunning } == true ? "1" : "0"),
                ("Threads_connected", "\(fleet.servers[server].sessions.count)"),
            ]
            return Self.table(["Variable_name", "Value"], status.filter { Self.like($0.0, pattern) }.map { [$0.0, $0.1] })
        case .showVariables(let pattern):
            let names = [
                "binlog_format", "gtid_binlog_pos", "gtid_binlog_state", "gtid_current_pos", "gtid_domain_id", "gtid_slave_pos",
                "gtid_strict_mode", "hostname", "log_bin", "log_slave_updates", "port", "read_only", "server_id", "version",
            ]
            let rows = names.filter { Self.like($0, pattern) }.map { name -> [String?] in
                let value = fleet.servers[server].variable(name) ?? ""
                let onOff = ["read_only", "log_bin", "log_slave_updates", "gtid_strict_mode"].contains(name)
                return [name, onOff ? (value == "1" ? "ON" : "OFF") : value]
            }
            return Self.table(["Variable_name", "Value"], rows)
        case .setGlobal(let assignments):
            for (name, value) in assignments { try setGlobal(name, value) }
            return Self.ok
        case .stopSlave(let io, let sql):
            Replication.stop(&fleet.servers[server], io: io, sql: sql)
            return Self.ok
        case .startSlave(let io, let sql):
            try Replication.start(&fleet.servers[server], io: io, sql: sql, endpoint: endpoint)
            return Self.ok
        case .resetSlave(let all):
            try Replication.reset(&fleet.servers[server], all: all, endpoint: endpoint)
            return Self.ok
        case .changeMaster(let options):
            try Replication.changeMaster(&fleet.servers[server], options, endpoint: endpoint)
            return Self.ok
        case .kill(let connection, let id):
            guard fleet.servers[server].sessions[id] != nil else { throw error(1094, "Unknown thread id: \(id)") }
            if connection && id == thread { throw TwinError.killed(endpoint) }
            kill(id, connection: connection)
            return Self.ok
        case .killUser(let user):
            for id in fleet.servers[server].sessions.values.filter({ $0.user == user }).map(\.id).sorted() where id != thread {
                kill(id, connection: true)
            }
            if fleet.servers[server].sessions[thread]?.user == user { throw TwinError.killed(endpoint) }
            return Self.ok
        case .begin:
            try commitOpen()
            fleet.servers[server].sessions[thread]?.transactionSince = now
            return Self.ok
        case .commit:
            try commitOpen()
            return Self.ok
        case .rollback:
            fleet.servers[server].sessions[thread]?.transactionSince = nil
            fleet.servers[server].sessions[thread]?.pendingWrites = 0
            return Self.ok
        case .write(let table, let values):
            try writable()
            if table == fleet.servers[server].heartbeatTable?.lowercased() {
                let row = HeartbeatRow(serverID: fleet.servers[server].serverID, ts: now, shard: values["shard"], datacenter: values["datacenter"])
                try MemoryMariaDB.commit(&fleet.servers[server], count: 1, heartbeat: row, now: now)
                return QueryResult(columns: [], rows: [], affectedRows: 1)
            }
            if fleet.servers[server].sessions[thread]?.transactionSince != nil {
                fleet.servers[server].sessions[thread]?.pendingWrites += 1
            } else {
                try MemoryMariaDB.commit(&fleet.servers[server], count: 1, heartbeat: nil, now: now)
            }
            return QueryResult(columns: [], rows: [], affectedRows: 1)
        }
    }

    /// Refuses a write from a session without a privilege that writes through `read_only`.
    func writable() throws {
        guard fleet.servers[server].readOnly, !fleet.servers[server].privilegedUsers.contains(fleet.servers[server].sessions[thread]?.user ?? "")
        else { return }
        throw TwinError.readOnly(endpoint)
    }

    /// Commits the session's open transaction (implicitly too, as `BEGIN` does).
    private mutating func commitOpen() throws {
        guard let pending = fleet.servers[server].sessions[thread]?.pendingWrites, pending > 0 else {
            fleet.servers[server].sessions[thread]?.transactionSince = nil
            return
        }
        try writable()
        try MemoryMariaDB.commit(&fleet.servers[server], count: 1, heartbeat: nil, now: now)
        fleet.servers[server].sessions[thread]?.transactionSince = nil
        fleet.servers[server].sessions[thread]?.pendingWrites = 0
    }

    /// `KILL [CONNECTION|QUERY] id`: an idle session goes at once (its client finds out at its
    /// next statement); a running statement is woken and ends with 1927 (or 1317 for `QUERY`).
    private mutating func kill(_ id: UInt, connection: Bool) {
        guard let entry = fleet.servers[server].sessions[id] else { return }
        if !entry.running {
            if connection { fleet.servers[server].sessions[id] = nil }
            return
        }
        if connection { fleet.servers[server].sessions[id]?.killed = true } else { fleet.servers[server].sessions[id]?.queryKilled = true }
        if let waiter = entry.waiter {
            fleet.servers[server].sessions[id]?.waiter = nil
            wakes.append((waiter, connection ? .killed : .queryKilled))
        }
    }

    private mutating func setGlobal(_ name: String, _ value: String) throws {
        func flag() throws -> Bool {
            switch value.uppercased() {
            case "ON", "1", "TRUE": return true
            case "OFF", "0", "FALSE": return false
            default: throw error(1231, "Variable '\(name)' can't be set to the value of '\(value)'", state: "42000")
            }
        }
        switch name {
        case "read_only": fleet.servers[server].readOnly = try flag()
        case "gtid_strict_mode": fleet.servers[server].gtidStrictMode = try flag()
        case "gtid_domain_id":
            guard let domain = UInt32(value) else {
                throw error(1231, "Variable 'gtid_domain_id' can't be set to the value of '\(value)'", state: "42000")
            }
            fleet.servers[server].gtidDomainID = domain
        case "binlog_format": fleet.servers[server].binlogFormat = value.uppercased()
        case "slave_net_timeout":
            guard let seconds = Int(value), seconds >= 1 else {
                throw error(1231, "Variable 'slave_net_timeout' can't be set to the value of '\(value)'", state: "42000")
            }
            fleet.servers[server].slaveNetTimeout = seconds
        case "gtid_slave_pos":
            if let channel = fleet.servers[server].channel, channel.ioRunning || channel.sqlRunning {
                throw error(1198, "This operation cannot be performed as you have a running slave ''; run STOP SLAVE '' first")
            }
            guard let position = try? GTIDPosition(parsing: value) else { throw error(1941, "Could not parse GTID list") }
            fleet.servers[server].slavePosition = position
        case "log_slave_updates", "log_bin", "server_id", "version", "gtid_binlog_pos", "gtid_current_pos":
            throw error(1238, "Variable '\(name)' is a read only variable")
        default:
            throw error(1193, "Unknown system variable '\(name)'")
        }
    }

    /// A result of text columns.
    static func table(_ columns: [String], _ rows: [[String?]]) -> QueryResult {
        QueryResult(columns: columns, rows: rows.map { Row(columns: columns, values: $0.map { $0.map { Array($0.utf8) } }) }, affectedRows: 0)
    }

    /// SQL `LIKE` (case-insensitive, `%` and `_`); nil matches everything.
    static func like(_ text: String, _ pattern: String?) -> Bool {
        guard let pattern else { return true }
        func match(_ text: Substring, _ pattern: Substring) -> Bool {
            guard let first = pattern.first else { return text.isEmpty }
            if first == "%" { return text.indices.contains { match(text[$0...], pattern.dropFirst()) } || match("", pattern.dropFirst()) }
            guard let head = text.first, first == "_" || head.lowercased() == first.lowercased() else { return false }
            return match(text.dropFirst(), pattern.dropFirst())
        }
        return match(Substring(text), Substring(pattern))
    }
}

extension String {
    /// A number with three decimals, as MariaDB prints the heartbeat period.
    init(format3 value: Double) {
        let thousandths = Int64((value * 1000).rounded())
        let fraction = String(abs(thousandths) % 1000)
        self = "\(thousandths / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
