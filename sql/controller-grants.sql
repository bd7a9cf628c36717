-- The marina controller's MariaDB account: the least that runs a switchover, no SUPER.
-- Run on each section's primary (it replicates), with the password of your choice; the
-- controller connects over TCP from its own host (replace 127.0.0.1 with that host).
--
--   READ_ONLY ADMIN           SET GLOBAL read_only (MariaDB 10.5.2+). It also lets this account
--                             write while read_only is ON; the controller writes no data.
--   REPLICATION SLAVE ADMIN   STOP/START SLAVE, CHANGE MASTER, SET GLOBAL gtid_slave_pos
--   SLAVE MONITOR             SHOW SLAVE STATUS, SHOW ALL SLAVES STATUS
--   BINLOG MONITOR            SHOW BINARY LOGS, SHOW BINLOG EVENTS: whether the new source of a
--                             rejoin or a move still has the binary logs the replica needs
--   RELOAD                    RESET SLAVE ALL on the new primary (it deletes relay logs)
--   PROCESS                   every session in information_schema.PROCESSLIST and INNODB_TRX:
--                             preflight refuses an old primary running a long transaction, and
--                             the flip finds the sessions of accounts that write through read_only
--   CONNECTION ADMIN          KILL other accounts' sessions: a statement abandoned at its timeout
--                             is killed, as are the old primary's sessions of accounts that write
--                             through read_only, and a previous leader's sessions before recovery
--   SELECT ON heartbeat.*     preflight measures the candidate's lag as the agent does
--   SELECT ON mysql.global_priv, mysql.roles_mapping
--                             which accounts (directly or by a role) hold READ_ONLY ADMIN or
--                             SUPER. Note that global_priv also holds password hashes: keep this
--                             account's host and password as tight as the root account's.
--
-- @@gtid_binlog_pos, @@gtid_slave_pos, @@read_only and MASTER_GTID_WAIT() need no privilege.
-- The replication account named in CHANGE MASTER (REPLICATION SLAVE) is separate: its
-- password is read from the controller's credentials file, group [marina-replication].
CREATE USER IF NOT EXISTS 'marina_controller'@'127.0.0.1' IDENTIFIED BY 'CHANGE-ME';
GRANT READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, SLAVE MONITOR, BINLOG MONITOR, RELOAD, PROCESS, CONNECTION ADMIN ON *.* TO 'marina_controller'@'127.0.0.1';
GRANT SELECT ON heartbeat.* TO 'marina_controller'@'127.0.0.1';
GRANT SELECT ON mysql.global_priv TO 'marina_controller'@'127.0.0.1';
GRANT SELECT ON mysql.roles_mapping TO 'marina_controller'@'127.0.0.1';
