import Foundation
import SQLText
import Topology

/// One client session of a server, as `information_schema.PROCESSLIST` and `INNODB_TRX` show it.
public struct ServerSession: Sendable, Equatable {
    public var id: String
    public var user: String
    public var host: String
    public var command: String
    /// Seconds in the current command (for `Query`, how long the statement has run).
    public var seconds: Int
    /// Seconds since the session's open transaction started; nil without one.
    public var transactionSeconds: Int?
    /// The start of the statement it runs, if any.
    public var info: String?

    public init(id: String, user: String, host: String, command: String, seconds: Int, transactionSeconds: Int? = nil, info: String? = nil) {
        self.id = id
        self.user = user
        self.host = host
        self.command = command
        self.seconds = seconds
        self.transactionSeconds = transactionSeconds
        self.info = info
    }
}

/// What the controller reads of the sessions on the old primary, and what it decides from them.
public enum ServerSessions {
    /// Every client session but the reader's own, the server's and the replication threads',
    /// with the age of its open transaction. Needs `PROCESS`.
    public static let listSQL = """
        SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.COMMAND AS command, p.TIME AS seconds, LEFT(p.INFO, 60) AS info,
               TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS trx_seconds
        FROM information_schema.PROCESSLIST p LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
        WHERE p.ID <> CONNECTION_ID() AND p.USER NOT IN ('system user', 'event_scheduler')
          AND p.COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID', 'Slave_IO', 'Slave_SQL', 'Slave_worker', 'Killed')
        """

    /// The user names of accounts that write through `read_only`: those holding `READ_ONLY
    /// ADMIN` (bit 33 of `mysql.global_priv`'s access mask; `ALL PRIVILEGES` sets every bit),
    /// directly or through roles granted to roles, and `SUPER` (bit 15), which implied it before
    /// MariaDB 10.11. Read before the flip; needs `SELECT` on `mysql.global_priv` and
    /// `mysql.roles_mapping`. Accounts reached through a proxy user or PAM mapping are not seen.
    public static let privilegedUsersSQL = """
        WITH RECURSIVE privileged(name) AS (
          SELECT g.User FROM mysql.global_priv g WHERE CAST(JSON_VALUE(g.Priv, '$.access') AS UNSIGNED) & (32768 | 8589934592) <> 0
          UNION
          SELECT r.User FROM mysql.roles_mapping r JOIN privileged p ON r.Role = p.name)
        SELECT DISTINCT name FROM privileged WHERE name <> ''
        """

    /// Kills every session of one user name, from any host (one statement, however many sessions).
    public static func killUser(_ name: String) -> SQLStatement {
        "KILL CONNECTION USER \(SQL.quote(name))"
    }

    /// Preflight: a refusal for each session running a transaction or a statement for at least
    /// `limit` seconds. Such a session would hold `SET GLOBAL read_only = ON` back inside the
    /// flip, the window in which nobody may write.
    public static func longRunning(_ sessions: [ServerSession], on instance: String, limit: Double) -> [String] {
        sessions.compactMap { session in
            let statement = session.command == "Query" && Double(session.seconds) >= limit ? session.seconds : nil
            let transaction = session.transactionSeconds.flatMap { Double($0) >= limit ? $0 : nil }
            guard statement != nil || transaction != nil else { return nil }
            let what = transaction.map { "a transaction open for \($0) s" } ?? "a statement running for \(statement ?? 0) s"
            // The statement's text is not quoted: it may carry an application's data or secrets,
            // and refusals are stored in the journal.
            return "the primary \(instance) has \(what) in thread \(session.id) (\(session.user)@\(session.host)), "
                + "older than max_transaction_age \(Seconds.format(limit)) s; wait for it or end it, or pass --force-long-transactions"
        }
    }

    /// Reads the rows of `listSQL`.
    public static func sessions(from rows: [[String: String]]) -> [ServerSession] {
        rows.compactMap { row in
            guard let id = row["id"] else { return nil }
            return ServerSession(
                id: id, user: row["user"] ?? "", host: row["host"] ?? "", command: row["command"] ?? "",
                seconds: Int(row["seconds"] ?? "") ?? 0, transactionSeconds: row["trx_seconds"].flatMap { Int($0) },
                info: row["info"].flatMap { $0.isEmpty ? nil : $0 })
        }
    }
}

/// The settings of a replication channel that a switchover carries from the candidate's
/// channel (which replicated from the old primary) to the old primary's new one.
public struct ReplicationChannelSettings: Codable, Sendable, Equatable {
    public var ssl: Bool
    public var sslCA: String?
    public var sslCAPath: String?
    public var sslCert: String?
    public var sslKey: String?
    public var sslCipher: String?
    public var sslCRL: String?
    public var sslCRLPath: String?
    public var sslVerifyServerCert: Bool
    public var connectRetry: Int?
    public var retryCount: Int?
    public var heartbeatPeriod: Double?

    public init(
        ssl: Bool = false, sslCA: String? = nil, sslCAPath: String? = nil, sslCert: String? = nil, sslKey: String? = nil,
        sslCipher: String? = nil, sslCRL: String? = nil, sslCRLPath: String? = nil, sslVerifyServerCert: Bool = false,
        connectRetry: Int? = nil, retryCount: Int? = nil, heartbeatPeriod: Double? = nil
    ) {
        self.ssl = ssl
        self.sslCA = sslCA
        self.sslCAPath = sslCAPath
        self.sslCert = sslCert
        self.sslKey = sslKey
        self.sslCipher = sslCipher
        self.sslCRL = sslCRL
        self.sslCRLPath = sslCRLPath
        self.sslVerifyServerCert = sslVerifyServerCert
        self.connectRetry = connectRetry
        self.retryCount = retryCount
        self.heartbeatPeriod = heartbeatPeriod
    }

    /// The columns of `SHOW SLAVE STATUS` these settings come from.
    public static let columns = [
        "Master_SSL_Allowed", "Master_SSL_CA_File", "Master_SSL_CA_Path", "Master_SSL_Cert", "Master_SSL_Key",
        "Master_SSL_Cipher", "Master_SSL_Crl", "Master_SSL_Crlpath", "Master_SSL_Verify_Server_Cert",
        "Connect_Retry", "Master_Retry_Count",
    ]

    /// From one row of `SHOW SLAVE STATUS` and the server's `Slave_heartbeat_period` status.
    public init(channel row: [String: String], heartbeatPeriod: String?) {
        func text(_ column: String) -> String? { row[column].flatMap { $0.isEmpty ? nil : $0 } }
        self.init(
            ssl: row["Master_SSL_Allowed"] == "Yes", sslCA: text("Master_SSL_CA_File"), sslCAPath: text("Master_SSL_CA_Path"),
            sslCert: text("Master_SSL_Cert"), sslKey: text("Master_SSL_Key"), sslCipher: text("Master_SSL_Cipher"),
            sslCRL: text("Master_SSL_Crl"), sslCRLPath: text("Master_SSL_Crlpath"),
            sslVerifyServerCert: row["Master_SSL_Verify_Server_Cert"] == "Yes",
            connectRetry: row["Connect_Retry"].flatMap { Int($0) }, retryCount: row["Master_Retry_Count"].flatMap { Int($0) },
            heartbeatPeriod: heartbeatPeriod.flatMap { Double($0) })
    }

    /// The `CHANGE MASTER` options that give a channel these settings.
    public var changeMasterOptions: String {
        var options = ["MASTER_SSL = \(ssl ? 1 : 0)"]
        for (name, value) in [
            ("MASTER_SSL_CA", sslCA), ("MASTER_SSL_CAPATH", sslCAPath), ("MASTER_SSL_CERT", sslCert),
            ("MASTER_SSL_KEY", sslKey), ("MASTER_SSL_CIPHER", sslCipher), ("MASTER_SSL_CRL", sslCRL),
            ("MASTER_SSL_CRLPATH", sslCRLPath),
        ] {
            if let value { options.append("\(name) = \(SQL.quote(value))") }
        }
        options.append("MASTER_SSL_VERIFY_SERVER_CERT = \(sslVerifyServerCert ? 1 : 0)")
        if let connectRetry { options.append("MASTER_CONNECT_RETRY = \(connectRetry)") }
        if let heartbeatPeriod, heartbeatPeriod.isFinite, heartbeatPeriod >= 0 {
            options.append("MASTER_HEARTBEAT_PERIOD = \(String(format: "%.3f", heartbeatPeriod))")
        }
        return options.joined(separator: ", ")
    }
}
