/// The sessions a fence ends: every client session of an instance but the asking connection's
/// own, replication's (the dump threads its replicas read from, its own replication threads)
/// and the server's. The agent's fence and the controller's fence over SQL read the same list;
/// each spares its own accounts by the `user` column.
public enum ClientSessions {
    /// Columns `id` and `user`.
    public static let query = """
        SELECT ID AS id, USER AS user FROM information_schema.PROCESSLIST
        WHERE ID <> CONNECTION_ID()
          AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Slave_IO', 'Slave_SQL', 'Slave_worker', 'Killed')
          AND USER NOT IN ('system user', 'event_scheduler', 'unauthenticated user')
        """

    /// `ER_NO_SUCH_THREAD`: the session ended before its `KILL`.
    public static let alreadyGone = 1094
}
