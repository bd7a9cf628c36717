import MariaDBClient
import MarinaTwins
import Observation
import Testing

/// The semantics of the MariaDB twin that the controller's decision tests rely on.
@Suite struct MemoryMariaDBTests {
    /// A primary (server id 1) with two replicas: `candidate` (2) and `replica` (3).
    func fleet(clock: ManualClock? = nil) -> (MemoryFleet, primary: MemoryMariaDB, candidate: MemoryMariaDB, replica: MemoryMariaDB) {
        let fleet = MemoryFleet(clock: clock)
        let primary = fleet.addServer(name: "db1", host: "10.0.0.1", port: 3306, serverID: 1)
        let candidate = fleet.addServer(name: "db2", host: "10.0.0.2", port: 3306, serverID: 2, readOnly: true)
        let replica = fleet.addServer(name: "db3", host: "10.0.0.3", port: 3306, serverID: 3, readOnly: true)
        candidate.replicate(from: primary)
        replica.replicate(from: primary)
        return (fleet, primary, candidate, replica)
    }

    func value(_ session: any DatabaseSession, _ sql: String, _ column: String) async throws -> String? {
        try await session.query(sql).first?[column]
    }

    func mariaDBError(_ body: () async throws -> Void) async -> MariaDBError? {
        do {
            try await body()
            return nil
        } catch let error as MariaDBError {
            return error
        } catch {
            Issue.record("not a MariaDBError: \(error)")
            return nil
        }
    }

    @Test func replicationPropagatesThroughAChainWithOriginalServerIDs() async throws {
        let (fleet, primary, candidate, _) = fleet()
        let leaf = fleet.addServer(name: "db4", host: "10.0.0.4", port: 3306, serverID: 4, readOnly: true)
        leaf.replicate(from: candidate)
        try primary.write(count: 3)
        #expect(candidate.slavePosition.description == "0-1-3")
        #expect(candidate.binlogState.description == "0-1-3")
        #expect(leaf.slavePosition.description == "0-1-3")
        #expect(leaf.transactions == 3)

        let session = try await leaf.connect()
        let row = try await session.query(
            """
            SELECT @@server_id AS server_id, @@version AS version, @@read_only AS read_only, @@gtid_current_pos AS current_pos,
                   @@gtid_binlog_pos AS binlog_pos, @@gtid_slave_pos AS slave_pos, @@gtid_strict_mode AS strict_mode,
                   @@log_bin AS log_bin, @@GLOBAL.binlog_format AS binlog_format, @@GLOBAL.gtid_binlog_state AS binlog_state,
                   @@GLOBAL.log_slave_updates AS log_slave_updates
            """
        ).first
        #expect(row?["server_id"] == "4")
        #expect(row?["read_only"] == "1")
        #expect(row?["binlog_state"] == "0-1-3")
        #expect(row?["current_pos"] == "0-1-3")
        #expect(row?["log_slave_updates"] == "1")
        let channel = try await session.query("SHOW ALL SLAVES STATUS").first
        #expect(channel?["Connection_name"] == "")
        #expect(channel?["Master_Server_Id"] == "2")
        #expect(channel?["Slave_IO_Running"] == "Yes")
        #expect(channel?["Gtid_IO_Pos"] == "0-1-3")
        #expect(channel?["Seconds_Behind_Master"] == "0")
        #expect(try await value(session, "SELECT 1", "1") == "1")
    }

    @Test func readOnlyRefusesWritesExceptFromAccountsThatWriteThroughIt() async throws {
        let (_, primary, _, _) = fleet()
        primary.setAccount("admin", writesThroughReadOnly: true)
        let session = try await primary.connect(user: "app")
        try await session.execute("INSERT INTO app.t (a) VALUES (1)")
        try await session.execute("SET GLOBAL read_only = ON")
        #expect(try await value(session, "SELECT @@GLOBAL.read_only AS ro", "ro") == "1")
        let refused = await mariaDBError { try await session.execute("UPDATE app.t SET a = 2") }
        #expect(refused?.isReadOnly == true)
        #expect(refused?.code == 1290)
        #expect(throws: MariaDBError.self) { try primary.write() }
        #expect(throws: MariaDBError.self) { try primary.writeHeartbeat() }
        #expect(try primary.write(count: 1, as: "admin").map(\.description) == ["0-1-2"])
        let admin = try await primary.connect(user: "admin")
        try await admin.execute("DELETE FROM app.t")
        #expect(primary.binlogPosition.description == "0-1-3")
        let names = try await admin.query(
            """
            WITH RECURSIVE privileged(name) AS (
              SELECT g.User FROM mysql.global_priv g WHERE CAST(JSON_VALUE(g.Priv, '$.access') AS UNSIGNED) & (32768 | 8589934592) <> 0
              UNION
              SELECT r.User FROM mysql.roles_mapping r JOIN privileged p ON r.Role = p.name)
            SELECT DISTINCT name FROM privileged WHERE name <> ''
            """
        ).rows.compactMap { $0["name"] }
        #expect(names == ["admin"])
    }

    @Test func aHungStatementKilledFromAnotherSessionEndsLostAndNeverApplies() async throws {
        let (_, primary, _, _) = fleet()
        primary.hang(matching: "read_only = ON")
        let hung = try await primary.connect()
        let call = Task { try await hung.execute("SET GLOBAL read_only = ON") }
        #expect(await primary.waitUntilHung())
        #expect(primary.processes.first { $0.id == hung.threadID }?.command == "Query")
        let killer = try await primary.connect()
        try await killer.execute("KILL CONNECTION \(hung.threadID)")
        let error = await mariaDBError { _ = try await call.value }
        #expect(error?.code == 1927)
        #expect(error?.isConnectionLost == true)
        #expect(primary.readOnly == false)
        // The session stays broken; the statement is not sent again.
        let after = await mariaDBError { try await hung.execute("SELECT 1") }
        #expect(after?.statementNotSent == true)
        #expect(!primary.processes.contains { $0.id == hung.threadID })
        let unknown = await mariaDBError { try await killer.execute("KILL CONNECTION \(hung.threadID)") }
        #expect(unknown?.code == 1094)
    }

    @Test func aReleasedStatementAppliesLate() async throws {
        let (_, primary, _, _) = fleet()
        let rule = primary.hang(matching: "read_only")
        let session = try await primary.connect()
        let call = Task { try await session.execute("SET GLOBAL read_only = ON") }
        #expect(await primary.waitUntilHung())
        #expect(primary.readOnly == false)
        rule.release()
        _ = try await call.value
        #expect(primary.readOnly == true)
        #expect(primary.hungThreads.isEmpty)
    }

    @Test func aStatementThatAppliesEvenIfKilledLosesOnlyItsAnswer() async throws {
        let (_, primary, _, _) = fleet()
        primary.hang(matching: "read_only", onKill: .applies)
        let session = try await primary.connect()
        let call = Task { try await session.execute("SET GLOBAL read_only = ON") }
        #expect(await primary.waitUntilHung())
        let killer = try await primary.connect()
        try await killer.execute("KILL CONNECTION \(session.threadID)")
        #expect(await mariaDBError { _ = try await call.value }?.isConnectionLost == true)
        #expect(primary.readOnly == true)
    }

    @Test func killConnectionUserEndsEverySessionOfThatUser() async throws {
        // The processlist's ages are read on a clock that does not move by itself: exact on a loaded machine too.
        let (_, primary, _, _) = fleet(clock: ManualClock())
        let first = try await primary.connect(user: "app")
        let second = try await primary.connect(user: "app")
        let controller = try await primary.connect(user: "marina")
        let other = primary.addClient(user: "app", command: "Query", info: "UPDATE t SET a = 1", runningFor: 12, transactionFor: 30)
        let listSQL = """
            SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.COMMAND AS command, p.TIME AS seconds, LEFT(p.INFO, 60) AS info,
                   TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS trx_seconds
            FROM information_schema.PROCESSLIST p LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
            WHERE p.ID <> CONNECTION_ID() AND p.USER NOT IN ('system user', 'event_scheduler')
              AND p.COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID', 'Slave_IO', 'Slave_SQL', 'Slave_worker', 'Killed')
            """
        let before = try await controller.query(listSQL)
        #expect(before.rows.count == 3)
        let simulated = before.rows.first { $0["id"] == "\(other)" }
        #expect(simulated?["command"] == "Query")
        #expect(simulated?.int("seconds") == 12)
        #expect(simulated?.int("trx_seconds") == 30)
        #expect(before.rows.first { $0["id"] == "\(first.threadID)" }?["trx_seconds"] == nil)

        try await controller.execute("KILL CONNECTION USER 'app'")
        #expect(try await controller.query(listSQL).rows.isEmpty)
        let lost = await mariaDBError { try await first.execute("SELECT 1") }
        #expect(lost?.code == 2013)
        #expect(await mariaDBError { try await first.execute("SELECT 1") }?.code == 2006)
        #expect(await mariaDBError { try await second.execute("SELECT 1") }?.isConnectionLost == true)
        let count = try await value(
            controller, "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID IN (\(first.threadID), \(other))", "n")
        #expect(count == "0")
        let own = try await controller.query("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = 'marina' AND ID <> CONNECTION_ID()")
        #expect(own.rows.isEmpty)
    }

    @Test func restartingTheIOThreadDiscardsTheUnappliedRelayLog() async throws {
        let (_, primary, _, replica) = fleet()
        replica.holdApplying(true)
        try primary.write(count: 3)
        #expect(replica.receivedPosition?.description == "0-1-3")
        #expect(replica.slavePosition.isEmpty)
        primary.stop()
        let session = try await replica.connect()
        try await session.execute("STOP SLAVE")
        try await session.execute("START SLAVE")
        replica.holdApplying(false)
        #expect(replica.receivedPosition?.isEmpty == true)
        #expect(replica.slavePosition.isEmpty)
        let channel = try await session.query("SHOW SLAVE STATUS").first
        #expect(channel?["Slave_IO_Running"] == "Connecting")
        #expect(channel?["Last_IO_Error"]?.contains("error connecting to master") == true)
        #expect(channel?["Seconds_Behind_Master"] == nil)
        primary.start()
        #expect(replica.slavePosition.description == "0-1-3")
        #expect(try await session.query("SHOW SLAVE STATUS").first?["Slave_IO_Running"] == "Yes")
    }

    @Test func replicationStatementsAreRefusedWhereMariaDBRefusesThem() async throws {
        let (_, primary, candidate, _) = fleet()
        let session = try await candidate.connect()
        let change = "CHANGE MASTER TO MASTER_HOST = '10.0.0.3', MASTER_PORT = 3306, MASTER_USE_GTID = slave_pos"
        #expect(await mariaDBError { try await session.execute(change) }?.code == 1198)
        #expect(await mariaDBError { try await session.execute("RESET SLAVE ALL") }?.code == 1198)
        #expect(await mariaDBError { try await session.execute("SET GLOBAL gtid_slave_pos = '0-1-5'") }?.code == 1198)
        try await session.execute("STOP SLAVE")
        try await session.execute("RESET SLAVE ALL")
        #expect(try await session.query("SHOW SLAVE STATUS").rows.isEmpty)
        #expect(await mariaDBError { try await session.execute("START SLAVE") }?.code == 1200)
        try await session.execute(
            """
            CHANGE MASTER TO MASTER_HOST = '10.0.0.1', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = _utf8mb4 X'73C3A963726574', \
            MASTER_USE_GTID = slave_pos, MASTER_SSL = 1, MASTER_SSL_CA = '/etc/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT = 1, \
            MASTER_CONNECT_RETRY = 5, MASTER_HEARTBEAT_PERIOD = 2.500
            """)
        try await session.execute("START SLAVE")
        try primary.write()
        let channel = try await session.query("SHOW SLAVE STATUS").first
        #expect(channel?["Master_SSL_Allowed"] == "Yes")
        #expect(channel?["Master_SSL_CA_File"] == "/etc/ca.pem")
        #expect(channel?["Master_SSL_Verify_Server_Cert"] == "Yes")
        #expect(channel?["Connect_Retry"] == "5")
        #expect(channel?["Using_Gtid"] == "Slave_Pos")
        #expect(channel?["Master_Server_Id"] == "1")
        #expect(try await value(session, "SHOW GLOBAL STATUS LIKE 'Slave_heartbeat_period'", "Value") == "2.500")
        #expect(candidate.slavePosition.description == "0-1-1")
    }

    @Test func masterGTIDWaitReturnsZeroOnceAppliedAndMinusOneAtItsTimeout() async throws {
        let (_, primary, candidate, _) = fleet()
        try primary.write(count: 2)
        let session = try await candidate.connect()
        #expect(try await value(session, "SELECT MASTER_GTID_WAIT('0-1-2', 0.05) AS waited", "waited") == "0")
        candidate.holdApplying(true)
        try primary.write()
        #expect(try await value(session, "SELECT MASTER_GTID_WAIT('0-1-3', 0.02) AS waited", "waited") == "-1")
        let waiting = Task { try await value(session, "SELECT MASTER_GTID_WAIT('0-1-3', 5) AS waited", "waited") }
        try await Task.sleep(for: .milliseconds(10))
        candidate.holdApplying(false)
        #expect(try await waiting.value == "0")
    }

    @Test func aStoppedServerBreaksItsSessionsAndRefusesConnects() async throws {
        let (fleet, primary, _, _) = fleet()
        let idle = try await primary.connect()
        primary.hang(matching: "SELECT 2")
        let busy = try await primary.connect()
        let call = Task { try await busy.query("SELECT 2") }
        #expect(await primary.waitUntilHung())
        primary.stop()
        #expect(await mariaDBError { _ = try await call.value }?.code == 2013)
        let first = await mariaDBError { try await idle.execute("SELECT 1") }
        #expect(first?.code == 2013)
        #expect(first?.operation == .query)
        #expect(await mariaDBError { try await idle.execute("SELECT 1") }?.statementNotSent == true)
        let refused = await mariaDBError { _ = try await fleet.connect(primary.configuration()) }
        #expect(refused?.code == 2003)
        #expect(refused?.operation == .connect)
        primary.start()
        primary.releaseAll()
        let fresh = try await primary.connect()
        #expect(try await value(fresh, "SELECT @@GLOBAL.server_id AS id", "id") == "1")
        // A server can also refuse connects only: sessions it has go on working.
        primary.setUnreachable(true)
        #expect(await mariaDBError { _ = try await primary.connect() }?.code == 2003)
        #expect(try await value(fresh, "SELECT 1", "1") == "1")
    }

    @Test func aPausedServerHoldsStatementsUntilResumed() async throws {
        let (_, primary, _, _) = fleet()
        let session = try await primary.connect()
        primary.pause()
        let call = Task { try await value(session, "SELECT @@read_only AS ro", "ro") }
        let connect = Task { try await primary.connect() }
        try await Task.sleep(for: .milliseconds(20))
        primary.resume()
        #expect(try await call.value == "0")
        #expect(try await connect.value.threadID > session.threadID)
    }

    @Test func aFailingCheckSendsNothingAndAFailureCanBeInjectedOnce() async throws {
        struct Fenced: Error {}
        let (_, primary, _, _) = fleet()
        let session = try await primary.connect()
        await #expect(throws: Fenced.self) { try await session.query("SET GLOBAL read_only = ON", checkedBy: { throw Fenced() }) }
        #expect(primary.readOnly == false)
        primary.failNext(matching: "read_only", code: 1205, message: "Lock wait timeout exceeded")
        #expect(await mariaDBError { try await session.execute("SET GLOBAL read_only = ON") }?.code == 1205)
        #expect(primary.readOnly == false)
        try await session.execute("SET GLOBAL read_only = ON")
        #expect(primary.readOnly == true)
    }

    @Test func statementsTheTwinDoesNotUnderstandSayWhat() async throws {
        let (_, primary, _, _) = fleet()
        let session = try await primary.connect()
        for sql in ["SELECT * FROM mysql.user", "FLUSH LOGS", "CHANGE MASTER TO MASTER_DELAY = 5", "SELECT 1 +"] {
            let error = await mariaDBError { try await session.execute(sql) }
            #expect(error?.code == 1064)
            #expect(error?.message.hasPrefix("the twin does not understand:") == true)
        }
        #expect(await mariaDBError { try await session.execute("SELECT @@no_such_variable") }?.code == 1193)
        #expect(try await value(session, "SELECT 1", "1") == "1")
    }

    @Test func heartbeatLagFollowsTheClockAndReplicatedRows() async throws {
        let clock = ManualClock()
        let (_, primary, _, replica) = fleet(clock: clock)
        let writer = try await primary.connect(user: "marina_agent")
        try await writer.execute(
            """
            INSERT INTO `heartbeat`.`heartbeat` (ts, server_id, shard, datacenter)
            VALUES (DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%f'), @@server_id, 's1', 'eqiad')
            ON DUPLICATE KEY UPDATE ts = VALUES(ts), shard = VALUES(shard), datacenter = VALUES(datacenter)
            """)
        clock.advance(seconds: 1.5)
        let reader = try await replica.connect(user: "marina_agent")
        let columns = try await reader.query(
            "SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'heartbeat' AND TABLE_NAME = 'heartbeat' AND COLUMN_NAME IN ('shard', 'datacenter')"
        )
        #expect(columns.rows.count == 2)
        let lag =
            "SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) AS us FROM `heartbeat`.`heartbeat` WHERE shard = 's1' AND datacenter = 'eqiad' ORDER BY ts DESC LIMIT 1"
        #expect(try await value(reader, lag, "us") == "1500000")
        let byServer =
            "SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) AS us FROM `heartbeat`.`heartbeat` WHERE server_id = 1 ORDER BY ts DESC LIMIT 1"
        #expect(try await value(reader, byServer, "us") == "1500000")
        #expect(try await reader.query(lag.split(separator: "'s1'").joined(separator: "'s2'")).rows.isEmpty)
        replica.holdApplying(true)
        try primary.write()
        clock.advance(seconds: 4)
        #expect(try await reader.query("SHOW SLAVE STATUS").first?["Seconds_Behind_Master"] == "4")
    }

    @Test func aSwitchoverThroughSQLLeavesTheOldPrimaryReplicatingFromTheNewOne() async throws {
        let (_, primary, candidate, replica) = fleet()
        try primary.write(count: 5)
        let p = try await primary.connect()
        let c = try await candidate.connect()
        let r = try await replica.connect()
        try await r.execute("STOP SLAVE")
        let replicaPosition = try #require(try await value(r, "SELECT @@GLOBAL.gtid_slave_pos AS pos", "pos"))
        #expect(try await value(c, "SELECT MASTER_GTID_WAIT('\(replicaPosition)', 1.0) AS waited", "waited") == "0")
        try await r.execute("CHANGE MASTER TO MASTER_HOST = '10.0.0.2', MASTER_PORT = 3306, MASTER_USE_GTID = slave_pos")
        try await r.execute("START SLAVE")
        try await p.execute("SET GLOBAL read_only = ON")
        let final = try #require(try await p.query("SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.gtid_binlog_pos AS pos").first?["pos"])
        #expect(final == "0-1-5")
        #expect(try await value(c, "SELECT MASTER_GTID_WAIT('\(final)', 1.0) AS waited", "waited") == "0")
        try await c.execute("STOP SLAVE")
        try await c.execute("SET GLOBAL read_only = OFF")
        try await p.execute("SET GLOBAL gtid_slave_pos = '\(final)'")
        try await p.execute(
            """
            CHANGE MASTER TO MASTER_HOST = '10.0.0.2', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = 'secret', \
            MASTER_USE_GTID = slave_pos, MASTER_SSL = 0, MASTER_SSL_VERIFY_SERVER_CERT = 0, MASTER_CONNECT_RETRY = 60
            """)
        try await p.execute("START SLAVE")
        try await c.execute("RESET SLAVE ALL")
        try candidate.write(count: 2)
        #expect(try await p.query("SHOW SLAVE STATUS").first?["Master_Server_Id"] == "2")
        #expect(primary.slavePosition.description == "0-2-7")
        #expect(replica.slavePosition.description == "0-2-7")
        #expect(primary.binlogState.description == "0-1-5,0-2-7")
        #expect(try await c.query("SHOW SLAVE STATUS").rows.isEmpty)
    }

    @Test func aReplicaThatDivergedIsRefusedByItsNewSource() async throws {
        let (_, primary, candidate, replica) = fleet()
        try primary.write(count: 2)
        replica.setAccount("admin", writesThroughReadOnly: true)
        try replica.write(count: 1, as: "admin")  // errant: 0-3-3
        let session = try await candidate.connect()
        try await session.execute("STOP SLAVE")
        let r = try await replica.connect()
        try await r.execute("STOP SLAVE")
        try await r.execute("SET GLOBAL gtid_slave_pos = '0-3-3'")
        try await r.execute("CHANGE MASTER TO MASTER_HOST = '10.0.0.2', MASTER_PORT = 3306, MASTER_USE_GTID = slave_pos")
        try await r.execute("START SLAVE")
        let channel = try await r.query("SHOW SLAVE STATUS").first
        #expect(channel?["Slave_IO_Running"] == "No")
        #expect(channel?["Last_IO_Errno"] == "1236")
        _ = primary
    }
}
