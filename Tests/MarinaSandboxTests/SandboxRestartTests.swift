import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Testing

/// `marina sandbox kill NAME [--signal KILL|STOP|CONT]` and `marina sandbox restart NAME`, on
/// real servers: what a DBA trying failover does instead of `ps` and `kill`.
@Suite("sandbox kill and restart")
struct SandboxRestartTests {
    @Test("a replica killed with SIGKILL restarts on its data and replicates from its primary again; a running one is refused")
    func restartKilledReplica() async throws {
        let sandbox = try await TestServers.privateSandbox("restart", sections: 1, replicas: 1)
        defer { TestServers.stop(sandbox) }
        let dir = ["--dir", sandbox.directory]
        let marker = sandbox.directory + "/"
        let killedPid = try #require(sandbox.instance(named: "db1002")?.pid)

        let kill = try runMarina(["sandbox", "kill", "db1002"] + dir)
        #expect(kill.status == 0, "\(kill.stderr)")
        #expect(kill.stdout == "Killed db1002 (SIGKILL); `marina sandbox restart db1002` starts it again.\n")
        #expect(!ChildProcess.isRunning(killedPid, marker: marker))
        let down = try runMarina(["sandbox", "status"] + dir)
        #expect(down.status == 6, "\(down.stderr)")
        #expect(down.stdout.contains("UNREACHABLE: process \(killedPid) is not running"), "\(down.stdout)")
        #expect(down.stdout.contains("failover     manual: the controller fails over no section on its own"), "\(down.stdout)")
        let killAgain = try runMarina(["sandbox", "kill", "db1002"] + dir)
        #expect(killAgain.status == 1)
        #expect(
            killAgain.stderr
                == "marina: db1002 is not running (pid \(killedPid) has ended): nothing to signal; `marina sandbox restart db1002` starts it\n")

        // Written while the replica is down: it must fetch them once back.
        let primary = try await sandbox.root("db1001")
        try await primary.execute("CREATE DATABASE restart_check")
        try await primary.execute("CREATE TABLE restart_check.t (v INT PRIMARY KEY)")
        try await primary.execute("INSERT INTO restart_check.t VALUES (1), (2), (3)")
        let position = try #require(try await primary.query("SELECT @@gtid_binlog_pos AS p").first?["p"])
        await primary.close()

        let restart = try runMarina(["sandbox", "restart", "db1002"] + dir)
        #expect(restart.status == 0, "\(restart.stderr)")
        #expect(restart.stdout.hasPrefix("Restarted db1002 in "), "\(restart.stdout)")
        let restartedPid = try #require(try Sandbox.state(directory: sandbox.directory).instance(named: "db1002")?.pid)
        #expect(restartedPid != killedPid && ChildProcess.isRunning(restartedPid, marker: marker))

        let replica = try await sandbox.root("db1002", readTimeout: 40)
        #expect(try await replica.query("SELECT MASTER_GTID_WAIT(?, 30) AS w", .string(position)).first?.int("w") == 0)
        #expect(try await replica.query("SELECT COUNT(*) AS n FROM restart_check.t").first?.int("n") == 3)
        var status: Row?
        let replicating = try await eventually(30) {
            status = try await replica.query("SHOW SLAVE STATUS").first
            return status?["Slave_IO_Running"] == "Yes" && status?["Slave_SQL_Running"] == "Yes"
        }
        #expect(replicating, "\(String(describing: status))")
        #expect(status?.int("Master_Server_Id") == 1001)
        #expect(status?.int("Master_Port") == sandbox.instance(named: "db1001")?.port)
        // The heartbeat period is kept in the replica's master.info across the crash.
        #expect(try await replica.query("SHOW GLOBAL STATUS LIKE 'Slave_heartbeat_period'").first?["Value"] == "1.000")
        await replica.close()
        #expect(try runMarina(["sandbox", "status"] + dir).status == 0)

        let running = try runMarina(["sandbox", "restart", "db1002"] + dir)
        #expect(running.status == 1)
        #expect(
            running.stderr
                == "marina: db1002 is already running (pid \(restartedPid)): nothing to restart (`marina sandbox kill db1002` crashes it first)\n")
        #expect(try Sandbox.state(directory: sandbox.directory).instance(named: "db1002")?.pid == restartedPid)
        #expect(ChildProcess.isRunning(restartedPid, marker: marker))
        for command in ["restart", "kill"] {
            let unknown = try runMarina(["sandbox", command, "db9999"] + dir)
            #expect(unknown.status == 1)
            #expect(unknown.stderr == "marina: no instance db9999 in the sandbox (its instances: db1001, db1002)\n", "\(command)")
        }
    }

    @Test("kill --signal STOP freezes the primary: its replica notices within seconds; CONT thaws it and replication resumes")
    func freezeAndThaw() async throws {
        let sandbox = try await TestServers.privateSandbox("freeze", sections: 1, replicas: 1)
        defer { TestServers.stop(sandbox) }
        let dir = ["--dir", sandbox.directory]
        let pid = try #require(sandbox.instance(named: "db1001")?.pid)
        let replica = try await sandbox.root("db1002", readTimeout: 40)
        #expect(try await replica.query("SHOW SLAVE STATUS").first?["Slave_IO_Running"] == "Yes")

        let stop = try runMarina(["sandbox", "kill", "db1001", "--signal", "STOP"] + dir)
        let frozenAt = ContinuousClock.now
        #expect(stop.status == 0, "\(stop.stderr)")
        #expect(stop.stdout == "Froze db1001 (SIGSTOP); `marina sandbox kill db1001 --signal CONT` thaws it.\n")
        #expect(ChildProcess.isStopped(pid, allThreads: true))

        let status = try runMarina(["sandbox", "status", "--json"] + dir)
        #expect(status.status == 6, "\(status.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        let primary = try #require((report["instances"] as? [[String: Any]])?.first)
        #expect(primary["name"] as? String == "db1001" && primary["frozen"] as? Bool == true && primary["running"] as? Bool == true)
        #expect(report["failover"] as? String == "manual")
        let text = try runMarina(["sandbox", "status"] + dir)
        #expect(text.stdout.contains("FROZEN (SIGSTOP): `marina sandbox kill db1001 --signal CONT` thaws it"), "\(text.stdout)")

        for (arguments, message) in [
            (["restart", "db1001"], "db1001 is frozen (pid \(pid), SIGSTOP), not stopped: `marina sandbox kill db1001 --signal CONT` thaws it"),
            (["kill", "db1001", "--signal", "STOP"], "db1001 is already frozen (pid \(pid)): `marina sandbox kill db1001 --signal CONT` thaws it"),
            (["kill", "db1002", "--signal", "CONT"], "db1002 is not frozen (pid \(sandbox.instance(named: "db1002")?.pid ?? 0)): nothing to thaw"),
        ] {
            let refused = try runMarina(["sandbox"] + arguments + dir)
            #expect(refused.status == 1 && refused.stderr == "marina: \(message)\n", "\(arguments): \(refused.stderr)")
        }
        #expect(ChildProcess.isStopped(pid, allThreads: true))

        // The replica hears no heartbeat and gives up on the silent primary after slave_net_timeout (4 s).
        var io: Row?
        let noticed = try await eventually(20) {
            io = try await replica.query("SHOW SLAVE STATUS").first
            return io?["Slave_IO_Running"] != "Yes"
        }
        let delay = ContinuousClock.now - frozenAt
        #expect(noticed, "\(String(describing: io))")
        #expect(delay < .seconds(15), "the replica noticed after \(delay)")
        print("SandboxRestartTests: the replica noticed the frozen primary after \(delay): \(io?["Slave_IO_State"] ?? "")")
        // Frozen, it accepts no session: the handshake never comes.
        await #expect(throws: MariaDBError.self) { try await sandbox.root("db1001", readTimeout: 1) }

        let cont = try runMarina(["sandbox", "kill", "db1001", "--signal", "cont"] + dir)
        #expect(cont.status == 0, "\(cont.stderr)")
        #expect(cont.stdout == "Thawed db1001 (SIGCONT).\n")
        #expect(!ChildProcess.isStopped(pid))

        let thawed = try await sandbox.root("db1001")
        try await thawed.execute("CREATE DATABASE thaw_check")
        let position = try #require(try await thawed.query("SELECT @@gtid_binlog_pos AS p").first?["p"])
        await thawed.close()
        #expect(try await replica.query("SELECT MASTER_GTID_WAIT(?, 30) AS w", .string(position)).first?.int("w") == 0)
        let resumed = try await eventually(30) {
            io = try await replica.query("SHOW SLAVE STATUS").first
            return io?["Slave_IO_Running"] == "Yes" && io?["Slave_SQL_Running"] == "Yes"
        }
        #expect(resumed, "\(String(describing: io))")
        #expect(io?.int("Master_Server_Id") == 1001)
        await replica.close()
        let healthy = try await eventually(10) { try runMarina(["sandbox", "status"] + dir).status == 0 }
        #expect(healthy)
    }
}
