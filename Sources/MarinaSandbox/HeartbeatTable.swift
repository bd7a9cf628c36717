import MariaDBClient

/// The heartbeat table in Wikimedia's shape: Percona's columns plus `shard` and
/// `datacenter`, which MediaWiki filters on to measure lag from the true primary.
///
/// Debian's `pt-heartbeat` 3.2 writes Percona's columns only. The sandbox gives `shard` and
/// `datacenter` the section's values as column defaults, so every row pt-heartbeat's
/// `REPLACE` writes carries them: the table is replicated, and every instance of a section
/// shares the same shard and, in a one-datacenter sandbox, the same datacenter.
public enum HeartbeatTable {
    public static func createStatement(shard: String, datacenter: String) -> String {
        """
        CREATE TABLE IF NOT EXISTS heartbeat.heartbeat (
          ts varchar(26) NOT NULL,
          server_id int unsigned NOT NULL,
          file varchar(255) DEFAULT NULL,
          position bigint unsigned DEFAULT NULL,
          relay_master_log_file varchar(255) DEFAULT NULL,
          exec_master_log_pos bigint unsigned DEFAULT NULL,
          shard varchar(10) DEFAULT \(SQL.quote(shard)),
          datacenter char(5) DEFAULT \(SQL.quote(datacenter)),
          PRIMARY KEY (server_id)
        ) ENGINE=InnoDB
        """
    }

}
