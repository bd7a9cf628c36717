import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Testing

@Suite("The sandbox runs real servers")
struct SandboxTests {
    @Test("up gives a section whose replicas really replicate a row written on the primary")
    func replicasReplicate() async throws {
        let sandbox = try await TestServers.shared()
        #expect(sandbox.sections == ["s1"])
        #expect(sandbox.instances.map(\.name) == ["db1001", "db1002", "db1003"])
        let primary = try await sandbox.root("db1001")
        let table = "sandbox_check_\(UInt32.random(in: 0...UInt32.max))"
        let token = "row-\(UInt64.random(in: 0...UInt64.max))"
        try await primary.execute("CREATE DATABASE IF NOT EXISTS sandbox_check")
        try await primary.execute("CREATE TABLE sandbox_check.\(table) (v VARCHAR(40))")
        try await primary.execute("INSERT INTO sandbox_check.\(table) VALUES (?)", .string(token))
        let position = try #require(try await primary.query("SELECT @@gtid_binlog_pos AS p").first?["p"])
        for name in ["db1002", "db1003"] {
            let replica = try await sandbox.root(name)
            #expect(try await replica.query("SELECT MASTER_GTID_WAIT(?, 20) AS w", .string(position)).first?.int("w") == 0)
            #expect(try await replica.query("SELECT v FROM sandbox_check.\(table)").first?["v"] == token)
            let settings = try #require(
                try await replica.query(
                    "SELECT @@read_only AS ro, @@gtid_strict_mode AS strict, @@log_slave_updates AS lsu, @@log_bin AS lb"
                ).first)
            #expect(settings["ro"] == "1" && settings["strict"] == "1" && settings["lsu"] == "1" && settings["lb"] == "1")
            let status = try #require(try await replica.query("SHOW SLAVE STATUS").first)
            #expect(status["Using_Gtid"] == "Slave_Pos")
            #expect(status.int("Master_Port") == sandbox.instance(named: "db1001")?.port)
            await replica.close()
        }
        #expect(try await primary.query("SELECT @@read_only AS ro").first?["ro"] == "0")
        await primary.close()
    }

    @Test("replicas ask their primary for a heartbeat every second; every server gives up on a silent source after 4 s")
    func replicationHeartbeat() async throws {
        let sandbox = try await TestServers.shared()
        for name in ["db1001", "db1002", "db1003"] {
            let server = try await sandbox.root(name)
            #expect(try await server.query("SELECT @@slave_net_timeout AS t").first?.int("t") == 4, "\(name)")
            if name != "db1001" {
                let period = try await server.query("SHOW GLOBAL STATUS LIKE 'Slave_heartbeat_period'").first
                #expect(period?["Value"] == "1.000", "\(name): \(String(describing: period))")
            }
            await server.close()
        }
    }

    @Test("the heartbeat writer fills the Wikimedia table shape on the primary, and replicas see it")
    func heartbeat() async throws {
        let sandbox = try await TestServers.shared()
        let replica = try await sandbox.root("db1003")
        var row: Row?
        for _ in 0..<100 where row == nil {
            row = try await replica.query("SELECT server_id, shard, datacenter, ts FROM heartbeat.heartbeat").first
            if row == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let found = try #require(row)
        #expect(found.int("server_id") == 1001)
        #expect(found["shard"] == "s1")
        #expect(found["datacenter"] == "dc1")
        let first = try #require(found["ts"])
        // pt-heartbeat keeps writing: a later row is newer.
        var later = first
        for _ in 0..<100 where later == first {
            try await Task.sleep(for: .milliseconds(50))
            later = try await replica.query("SELECT ts FROM heartbeat.heartbeat WHERE server_id = 1001").first?["ts"] ?? first
        }
        #expect(later > first)
        await replica.close()
    }

    @Test("status reads the topology back from the servers")
    func statusReport() async throws {
        let sandbox = try await TestServers.shared()
        let report = await SandboxReport.inspect(sandbox)
        #expect(report.etcd.running && report.etcd.version?.hasPrefix("3.") == true)
        let byName = Dictionary(uniqueKeysWithValues: report.instances.map { ($0.name, $0) })
        #expect(byName["db1001"]?.readOnly == false)
        #expect(byName["db1001"]?.replicatesFrom == nil)
        for name in ["db1002", "db1003"] {
            #expect(byName[name]?.readOnly == true)
            #expect(byName[name]?.replicatesFrom == "db1001")
            #expect(byName[name]?.ioThread == "Yes" && byName[name]?.sqlThread == "Yes")
            #expect(byName[name]?.heartbeatLag != nil)
        }
        // With an agent, the agent writes the heartbeat (it follows the primary); pt-heartbeat runs without one.
        #expect(report.heartbeats.isEmpty)
        #expect(report.agent?.running == true)
    }

    @Test("two sections are two separate replication trees, each with its own heartbeat shard")
    func twoSections() async throws {
        let sandbox = try await TestServers.privateSandbox("two-sections", sections: 2, replicas: 1)
        defer { TestServers.stop(sandbox) }
        #expect(sandbox.sections == ["s1", "s2"])
        let report = await SandboxReport.inspect(sandbox)
        let sources = Dictionary(uniqueKeysWithValues: report.instances.map { ($0.name, $0.replicatesFrom ?? "-") })
        #expect(sources == ["db1001": "-", "db1002": "db1001", "db2001": "-", "db2002": "db2001"])

        let s2Primary = try await sandbox.root("db2001")
        try await s2Primary.execute("CREATE DATABASE only_in_s2")
        let position = try #require(try await s2Primary.query("SELECT @@gtid_binlog_pos AS p").first?["p"])
        let s2Replica = try await sandbox.root("db2002")
        #expect(try await s2Replica.query("SELECT MASTER_GTID_WAIT(?, 20) AS w", .string(position)).first?.int("w") == 0)
        #expect(try await s2Replica.query("SHOW DATABASES LIKE 'only_in_s2'").rows.count == 1)
        let s1Replica = try await sandbox.root("db1002")
        #expect(try await s1Replica.query("SHOW DATABASES LIKE 'only_in_s2'").rows.isEmpty)
        let shards = try await s2Replica.query("SELECT DISTINCT shard FROM heartbeat.heartbeat").rows.compactMap { $0["shard"] }
        #expect(shards == ["s2"])
        for client in [s2Primary, s2Replica, s1Replica] { await client.close() }
    }

    @Test("a second up reports the running sandbox; down stops exactly its processes")
    func idempotentUpAndDown() async throws {
        let sandbox = try await TestServers.privateSandbox("lifecycle", sections: 1, replicas: 1)
        let marker = sandbox.directory + "/"
        #expect(processes(containing: marker).count == 4)  // etcd, 2 mariadbd, pt-heartbeat

        let again = try await Sandbox.up(.init(directory: sandbox.directory, sections: 1, replicas: 1))
        #expect(again.alreadyRunning)
        #expect(again.state == sandbox)
        #expect(processes(containing: marker).count == 4)

        let stopped = try await Sandbox.stop(directory: sandbox.directory)
        #expect(stopped.count == 4)
        #expect(processes(containing: marker).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: sandbox.directory + "/sandbox.json"))
        #expect(try await Sandbox.stop(directory: sandbox.directory).isEmpty)
        TestServers.stop(sandbox)
    }

    @Test("a port in use is refused before anything starts")
    func portInUse() async throws {
        let base = try Ports.findFreeBlock(count: 6)
        let blocker = try ListeningSocket(port: base + 3)  // the first replica's port
        defer { blocker.close() }
        let directory = TestServers.root + "/port-in-use"
        let error = await #expect(throws: SandboxError.self) {
            try await Sandbox.up(.init(directory: directory, sections: 1, replicas: 2, basePort: base))
        }
        #expect(error == .portInUse(base + 3, purpose: "mariadbd db1002"))
        #expect(error?.description.contains("port \(base + 3)") == true)
        #expect(processes(containing: directory + "/").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: directory + "/sandbox.json"))
    }

    @Test("a directory that cannot be written is refused")
    func unwritableDirectory() async throws {
        let file = TestServers.root + "/a-regular-file"
        #expect(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        let error = await #expect(throws: SandboxError.self) {
            try await Sandbox.up(.init(directory: file + "/sandbox"))
        }
        guard case .directoryNotWritable(let path, _)? = error else {
            Issue.record("expected directoryNotWritable, got \(String(describing: error))")
            return
        }
        #expect(path == file + "/sandbox")
    }

    @Test("a missing server binary names the Debian package to install")
    func missingBinary() throws {
        let empty = TestServers.root + "/empty-bin"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        #expect(throws: SandboxError.missingBinary(name: "mariadbd", package: "mariadb-server")) {
            try Toolchain.locate(searchPath: [empty])
        }
        #expect(SandboxError.missingBinary(name: "etcd", package: "etcd-server").description.contains("apt-get install etcd-server"))
    }

    @Test("a failure after servers started stops every one of them again")
    func rollbackOnFailure() async throws {
        var toolchain = try Toolchain.locate()
        toolchain.ptHeartbeat = "/bin/false"  // the heartbeat writer dies at once
        let directory = TestServers.root + "/rollback"
        let error = await #expect(throws: SandboxError.self) {
            try await Sandbox.up(.init(directory: directory, sections: 1, replicas: 1, toolchain: toolchain))
        }
        guard case .notReady(let what, _, _)? = error else {
            Issue.record("expected notReady, got \(String(describing: error))")
            return
        }
        #expect(what == "pt-heartbeat")
        #expect(processes(containing: directory + "/").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: directory + "/sandbox.json"))
    }
}

/// A TCP listener on 127.0.0.1 that holds a port for a test.
final class ListeningSocket {
    private let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard Ports.bindLoopback(descriptor, port: port), listen(descriptor, 1) == 0 else {
            throw SandboxError.portInUse(port, purpose: "test")
        }
    }

    func close() { _ = Glibc.close(descriptor) }
}

@Suite("Stopping processes by pid")
struct ChildProcessTests {
    @Test("stop signals only a process whose command line names the sandbox")
    func stopChecksIdentity() async throws {
        let marker = TestServers.root + "/identity-\(UInt32.random(in: 0...UInt32.max))/"
        let log = TestServers.root + "/identity.log"
        // tail keeps following /dev/null; the missing second file only puts the marker in its argv.
        let pid = try ChildProcess.spawn("/usr/bin/tail", ["-f", "/dev/null", marker + "x"], logFile: log)
        #expect(try await eventually(10) { processes(containing: marker).contains(pid) }, "tail did not start")
        #expect(!ChildProcess.stop(pid, marker: TestServers.root + "/someone-else/", grace: 1))
        // A signal sent by mistake is pending, or has acted, by the time the sender's kill(2) returned.
        #expect(ChildProcess.isRunning(pid, marker: marker))
        #expect(pendingSignals(pid) == 0, "a signal is on its way to the process")
        #expect(ChildProcess.stop(pid, marker: marker, grace: 1))
        #expect(!ChildProcess.isRunning(pid, marker: marker))
        #expect(processes(containing: marker).isEmpty)
    }

    @Test("a spawned server inherits no descriptor but its standard ones: a pipe open here does not stay open in it")
    func noInheritedDescriptors() async throws {
        let marker = TestServers.root + "/fds-\(UInt32.random(in: 0...UInt32.max))/"
        let pipe = Pipe()  // as a test reading another command's output would hold
        let pid = try ChildProcess.spawn("/usr/bin/tail", ["-f", "/dev/null", marker + "x"], logFile: TestServers.root + "/fds.log")
        // Exec'd (its command line names the marker): the descriptors are tail's own from then on.
        #expect(try await eventually(10) { processes(containing: marker).contains(pid) }, "tail did not start")
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap(Int.init).sorted()
        // tail's own: 0-2, and whatever it opened itself (/dev/null, inotify): nothing that is our pipe.
        let targets = descriptors.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }
        #expect(!targets.contains { $0.hasPrefix("pipe:") }, "\(targets)")
        #expect(ChildProcess.stop(pid, marker: marker, grace: 1))
        try pipe.fileHandleForWriting.close()
    }
}

/// The signals pending for a process, for the whole process and its main thread (`ShdPnd` and `SigPnd` in /proc), as one mask.
func pendingSignals(_ pid: Int32) -> UInt64 {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    return status.split(separator: "\n").filter { $0.hasPrefix("ShdPnd:") || $0.hasPrefix("SigPnd:") }
        .reduce(0) { $0 | (UInt64($1.split(separator: "\t").last ?? "", radix: 16) ?? 0) }
}
