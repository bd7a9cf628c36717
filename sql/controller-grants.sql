-- The marina controller's MariaDB account: the least that runs a switchover, no SUPER.
-- Run on each section's primary (it replicates), with the password of your choice; the
-- controller connects over TCP from its own host (replace 127.0.0.1 with that host).
--
--   READ_ONLY ADMIN           SET GLOBAL read_only (MariaDB 10.5.2+). It also lets this account
--                             write while read_only is ON; the controller writes no data.
--   REPLICATION SLAVE ADMIN   STOP/START SLAVE, CHANGE MASTER, SET GLOBAL gtid_slave_pos
--   SLAVE MONITOR             SHOW SLAVE STATUS, SHOW ALL SLAVES STATUS
--   RELOAD                    RESET SLAVE ALL on the new primary (it deletes relay logs)
--   SELECT ON heartbeat.*     preflight measures the candidate's lag as the agent does
--
-- @@gtid_binlog_pos, @@gtid_slave_pos, @@read_only and MASTER_GTID_WAIT() need no privilege.
-- The replication account named in CHANGE MASTER (REPLICATION SLAVE) is separate: its
-- password is read from the controller's credentials file, group [marina-replication].
CREATE USER IF NOT EXISTS 'marina_controller'@'127.0.0.1' IDENTIFIED BY 'CHANGE-ME';
GRANT READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, SLAVE MONITOR, RELOAD ON *.* TO 'marina_controller'@'127.0.0.1';
GRANT SELECT ON heartbeat.* TO 'marina_controller'@'127.0.0.1';
