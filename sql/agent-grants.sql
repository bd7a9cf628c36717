-- The marina agent's MariaDB account: the least it needs, no SUPER.
-- Run on every instance's primary (it replicates), with the password of your choice.
--
--   SLAVE MONITOR          SHOW ALL SLAVES STATUS (MariaDB 10.5.9+; REPLICA MONITOR is the same privilege)
--   SELECT ON heartbeat.*  the pt-heartbeat table, and its columns in information_schema
--   INSERT, UPDATE ON heartbeat.heartbeat
--                          the agent's own heartbeat writer (heartbeat.write: true), which writes
--                          only on the committed primary; without SUPER or READ ONLY ADMIN,
--                          read_only stops it, so the heartbeat stops with the application's writes
--
-- Never give this account SUPER, READ_ONLY ADMIN or ALL (every privilege) ON *.*, directly,
-- through a role granted to it, or through PUBLIC: they write through read_only. With
-- heartbeat.write: true the agent reads SHOW GRANTS and refuses to start (or, for an instance
-- it could not reach at start-up, never writes its heartbeat there) when its account holds one.
-- The agent has no default account: each instance's credentials_file must name this user.
--
-- @@server_id, @@version, @@read_only, @@gtid_*_pos, @@gtid_strict_mode, @@log_bin and
-- @@binlog_format need no privilege. The agent connects over the local socket or TCP.
CREATE USER IF NOT EXISTS 'marina_agent'@'localhost' IDENTIFIED BY 'CHANGE-ME';
GRANT SLAVE MONITOR ON *.* TO 'marina_agent'@'localhost';
GRANT SELECT ON heartbeat.* TO 'marina_agent'@'localhost';
GRANT INSERT, UPDATE ON heartbeat.heartbeat TO 'marina_agent'@'localhost';

-- The agent's fence account: makes its primary read-only and kills sessions when it loses its
-- lease; never used by the heartbeat writer. A second account, so that the one above never
-- holds READ_ONLY ADMIN (which writes through read_only). Give its option file ([client] user
-- and password) to the agent as fencing.credentials_file (docs/operations/fencing.md); the
-- sandbox creates it on every instance, with its password in credentials.cnf ([marina-fence])
-- and fence.cnf.
--
--   READ_ONLY ADMIN   SET GLOBAL read_only = ON on its primary
--   CONNECTION ADMIN  KILL the sessions of other accounts (the application's)
--   PROCESS           see every session in the processlist, to find them
--
CREATE USER IF NOT EXISTS 'marina_fence'@'localhost' IDENTIFIED BY 'CHANGE-ME-TOO';
GRANT READ_ONLY ADMIN, CONNECTION ADMIN, PROCESS ON *.* TO 'marina_fence'@'localhost';

-- Heartbeat tables. Percona's pt-heartbeat creates its own with --create-table:
CREATE DATABASE IF NOT EXISTS heartbeat;
-- CREATE TABLE heartbeat.heartbeat (
--   ts                    varchar(26) NOT NULL,
--   server_id             int unsigned NOT NULL PRIMARY KEY,
--   file                  varchar(255) DEFAULT NULL,
--   position              bigint unsigned DEFAULT NULL,
--   relay_master_log_file varchar(255) DEFAULT NULL,
--   exec_master_log_pos   bigint unsigned DEFAULT NULL
-- );
-- Wikimedia's shape adds shard and datacenter, which MediaWiki and the agent filter on to
-- measure lag from the true primary (set heartbeat.datacenter and each instance's shard in
-- the agent's configuration). The sandbox gives them the section and datacenter as defaults,
-- because Debian's pt-heartbeat 3.2 writes Percona's columns only:
CREATE TABLE IF NOT EXISTS heartbeat.heartbeat (
  ts                    varchar(26) NOT NULL,
  server_id             int unsigned NOT NULL,
  file                  varchar(255) DEFAULT NULL,
  position              bigint unsigned DEFAULT NULL,
  relay_master_log_file varchar(255) DEFAULT NULL,
  exec_master_log_pos   bigint unsigned DEFAULT NULL,
  shard                 varchar(10) DEFAULT 'unknown',
  datacenter            char(5) DEFAULT NULL,
  PRIMARY KEY (server_id)
) ENGINE=InnoDB;
