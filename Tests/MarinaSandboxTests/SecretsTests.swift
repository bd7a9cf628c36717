import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Testing
import TopologyStore

/// An auditor's search for the sandbox's passwords after switchovers, one of them failing at a
/// statement that carries the replication password: in etcd (v3 and the v2 mirror), in every
/// log, in every command's output and in every process's command line, plain and hex-encoded.
@Suite("No secret leaves its file", .serialized)
struct SecretsTests {
    @Test("after a switchover, one back, and one failing at the CHANGE MASTER that carries the password: no password anywhere, plain or encoded")
    func noPasswordAnywhere() async throws {
        let sandbox = try await TestServers.privateSandbox("secrets", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "auditor"]
        var outputs = [String]()
        func marina(_ arguments: [String]) throws -> Int32 {
            let result = try runMarina(arguments, environment: environment)
            outputs.append(result.stdout + result.stderr)
            return result.status
        }

        #expect(try marina(["switchover", "s1", "--to", "db1002", "--yes"]) == 0)
        #expect(try marina(["switchover", "s1", "--to", "db1001", "--yes"]) == 0)
        // db1001 may not configure replication: the CHANGE MASTER carrying the password fails after the point of no return.
        // A controller whose replication account name is longer than MariaDB accepts (129
        // characters): the CHANGE MASTER that carries the password fails on db1001, after the
        // point of no return, and its error goes to the journal, the log and the output.
        try await Sandbox.stopController(directory: sandbox.directory)
        let oddCredentials = sandbox.directory + "/odd-credentials.cnf"
        let text = try String(contentsOfFile: sandbox.credentialsFile, encoding: .utf8)
        let longUser = String(repeating: "r", count: 129)
        let odd = text.replacingOccurrences(
            of: "[marina-replication]\nuser=\(Sandbox.replicationUser)", with: "[marina-replication]\nuser=\(longUser)")
        #expect(odd != text)
        #expect(FileManager.default.createFile(atPath: oddCredentials, contents: Data(odd.utf8), attributes: [.posixPermissions: 0o600]))
        let oddConfig = sandbox.directory + "/odd-controller.yaml"
        try Sandbox.controllerConfiguration(for: sandbox, playbooks: try Sandbox.locatePlaybooks(from: marinaExecutable()), id: "odd")
            .replacingOccurrences(of: sandbox.credentialsFile, with: oddCredentials)
            .write(toFile: oddConfig, atomically: true, encoding: .utf8)
        let controller = try ChildProcess.spawn(
            marinaExecutable(), ["controller", "--config", oddConfig], logFile: sandbox.directory + "/odd-controller.log")
        defer { kill(controller, SIGKILL) }
        #expect(try await eventually(15) { try await leaderName(sandbox) == "odd" })
        let failing = try marina(["switchover", "s1", "--to", "db1002", "--yes"])
        #expect(failing == 6, "\(outputs.last ?? "")")
        #expect(
            outputs.last?.contains("[1470/HY000] (the server's message is withheld: the statement carries a secret)") == true
                && outputs.last?.contains("MASTER_PASSWORD = <secret>") == true,
            "the failing statement is shown, without its password: \(outputs.last ?? "")")
        for id in try await sandbox.etcdClient.get(StoreKeys().operations, prefix: true, keysOnly: true).kvs
            .map({ String($0.key.dropFirst(StoreKeys().operations.count)) })
        {
            _ = try marina(["operation", "show", id])
        }
        _ = try marina(["operation", "list"])
        _ = try marina(["status"])
        _ = try marina(["drift"])

        // What an auditor reads.
        var places = [(String, String)]()
        for kv in try await sandbox.etcdClient.get("/", prefix: true).kvs {
            places.append(("etcd v3 \(kv.key)", String(decoding: kv.key.utf8 + kv.value, as: UTF8.self)))
        }
        if sandbox.etcd.url.hasPrefix("http://") {
            places.append(("etcd v2", try curl(sandbox.etcd.url + "/v2/keys/?recursive=true")))
        }
        for (index, output) in outputs.enumerated() { places.append(("output of command \(index)", output)) }
        for file in try logFiles(under: sandbox.directory) {
            places.append(
                (
                    file,
                    (try? String(contentsOfFile: file, encoding: .utf8))
                        ?? String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data(), as: UTF8.self)
                ))
        }
        for pid in try FileManager.default.contentsOfDirectory(atPath: "/proc").filter({ Int($0) != nil }) {
            // Read to the end: /proc files report a size of 0.
            guard let data = FileHandle(forReadingAtPath: "/proc/\(pid)/cmdline")?.readDataToEndOfFile(), !data.isEmpty else { continue }
            places.append(("command line of pid \(pid)", String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)))
        }
        #expect(places.filter { $0.0.hasPrefix("command line") && $0.1.contains("mariadbd") }.count >= 3, "the servers' command lines were not read")
        #expect(places.count > 20)

        let credentials = try Credentials.load(from: sandbox.credentialsFile)
        for password in [
            credentials.adminPassword, credentials.replicationPassword, credentials.agentPassword, credentials.controllerPassword,
            credentials.applicationPassword,
        ] {
            let forms = [password, hex(password, uppercase: true), hex(password, uppercase: false), Data(password.utf8).base64EncodedString()]
            for (place, text) in places {
                for form in forms where text.contains(form) {
                    Issue.record("a password (\(form == password ? "plain" : "encoded")) is in \(place)")
                }
            }
        }
    }

    private func hex(_ text: String, uppercase: Bool) -> String {
        text.utf8.map { String(format: uppercase ? "%02X" : "%02x", $0) }.joined()
    }

    private func logFiles(under directory: String) throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        return walker.compactMap { $0 as? String }
            .filter { $0.hasSuffix(".log") || $0.hasSuffix(".err") || $0.hasSuffix(".yaml") || $0.hasSuffix(".json") }
            .map { directory + "/" + $0 }
    }

    private func curl(_ url: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s", url]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

/// A replication password with quotes and non-ASCII letters reaches CHANGE MASTER intact.
@Suite("Replication passwords", .serialized)
struct ReplicationPasswordTests {
    @Test("a replication password with quotes and non-ASCII letters: the old primary replicates from the new one after a switchover")
    func oddPassword() async throws {
        let sandbox = try await TestServers.privateSandbox("odd-password", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let password = "pa'ss\"wörd-\(UInt16.random(in: 0...UInt16.max))"
        // A plain literal, quotes doubled (IDENTIFIED BY, like MASTER_PASSWORD, takes no hexadecimal literal).
        let literal = "'" + password.replacingOccurrences(of: "'", with: "''") + "'"
        try await execute(sandbox, "db1001", "ALTER USER \(Sandbox.replicationUser)@'127.0.0.1' IDENTIFIED BY \(literal)")
        for replica in ["db1002", "db1003"] {  // rotated on the replicas' channels too, as a site would
            try await execute(sandbox, replica, "STOP SLAVE", "CHANGE MASTER TO MASTER_PASSWORD = \(literal)", "START SLAVE")
        }
        // The controller reads the new password from a credentials file of its own.
        try await Sandbox.stopController(directory: sandbox.directory)
        let credentials = sandbox.directory + "/odd-credentials.cnf"
        var text = try String(contentsOfFile: sandbox.credentialsFile, encoding: .utf8)
        let old = try Credentials.load(from: sandbox.credentialsFile).replicationPassword
        text = text.replacingOccurrences(of: "password=\(old)", with: "password=\(password)")
        #expect(FileManager.default.createFile(atPath: credentials, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]))
        let config = sandbox.directory + "/odd-controller.yaml"
        try Sandbox.controllerConfiguration(for: sandbox, playbooks: try Sandbox.locatePlaybooks(from: marinaExecutable()), id: "odd")
            .replacingOccurrences(of: sandbox.credentialsFile, with: credentials)
            .write(toFile: config, atomically: true, encoding: .utf8)
        let controller = try ChildProcess.spawn(
            marinaExecutable(), ["controller", "--config", config], logFile: sandbox.directory + "/odd-controller.log")
        defer { kill(controller, SIGKILL) }
        #expect(try await eventually(15) { try await leaderName(sandbox) == "odd" })
        // Replication restarted for the rotation; on a busy machine the automatic depool may
        // have taken a replica out meanwhile: wait until both replicate and are pooled again.
        let store = TopologyStore(etcd: sandbox.etcdClient)
        #expect(
            try await eventually(60) {
                let pooled = try await store.committedTopology()?.instances.values.filter { $0.sections["s1"]?.pooled == true }.count
                return try await serverTopology(sandbox).values.filter(\.running).count == 2 && pooled == 3
            })

        let result = try switchover(sandbox, ["s1", "--to", "db1002", "--yes"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        try await expectPrimary("db1002", sandbox)
    }
}
