import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Observation
import Operations
import StoredRecords
import Testing
import Topology
import TopologyStore

/// `marina grant import`, `grant sync` and grant drift on real servers: what a DBA checks is
/// `SHOW GRANTS` on every instance, that no replica wrote a transaction of its own to its
/// binary log, and that no hash ever shows in any output or log.
@Suite("Grant sync", .serialized)
struct GrantSyncTests {
    /// The mysql_native_password hashes of the passwords the tests use: none may appear in any output or log.
    static let hashes = ["first-password", "second-password", "third-password"].map {
        Authentication.nativePasswordHash(of: Array($0.utf8))
    }

    @Test(
        """
        import a section's accounts (two hosts, a role with a default role), commit, and a sync has nothing to do; change \
        one privilege and one role, commit, sync: every instance shows exactly the desired grants, and no replica has a \
        GTID of its own server_id; a grant made by hand on one replica with sql_log_bin = 0 shows in drift and the next \
        sync removes it on that replica only; no hash in any output or log
        """)
    func importChangeSyncAndDrift() async throws {
        let sandbox = try await TestServers.privateSandbox("grant-sync", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await createAccounts(sandbox)
        var outputs = [String]()
        func marina(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            let result = try runMarina(arguments, environment: ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"])
            outputs.append(result.stdout + result.stderr)
            return result
        }

        // Import, commit: etcd holds the role and its default role; a sync changes nothing.
        let imported = try marina(["grant", "import", "--from", "db1001", "--account", "wiki%", "--credentials-file", sandbox.credentialsFile])
        #expect(imported.status == 0, "\(imported.stdout)\(imported.stderr)")
        let commit = try marina(["config", "commit", "--yes", "-m", "adopt the grants of s1"])
        #expect(commit.status == 0, "\(commit.stdout)\(commit.stderr)")
        let committed = try #require(try await TopologyStore(etcd: sandbox.etcdClient).committedTopology()?.grants["s1"])
        #expect(committed.keys.sorted() == ["wikireader", "wikiuser"])
        #expect(committed["wikiuser"]?.hosts == ["10.192.%", "10.64.%"])
        #expect(committed["wikiuser"]?.roles == ["wikireader"] && committed["wikiuser"]?.defaultRole == "wikireader")
        #expect(committed["wikireader"]?.kind == .role && committed["wikireader"]?.privileges == ["`wiki`.*": ["SELECT"]])
        let before = try await grants(sandbox)
        let noop = try marina(["grant", "sync", "s1", "--yes"])
        #expect(noop.status == 0, "\(noop.stdout)\(noop.stderr)")
        #expect(noop.stdout.contains("Nothing to do"), "\(noop.stdout)")
        #expect(try await grants(sandbox) == before, "the round trip import → etcd → sync changed the accounts")

        // One privilege and one role: staged, committed, synced.
        for arguments in [
            ["grant", "set", "s1", "wikiuser", "--on", "wiki.*", "UPDATE"], ["grant", "role", "create", "s1", "wikiwriter"],
            ["grant", "set", "s1", "wikiwriter", "--on", "wiki.*", "INSERT"], ["grant", "role", "grant", "s1", "wikiwriter", "--to", "wikiuser"],
            ["config", "commit", "--yes", "-m", "wikiuser may update; role wikiwriter"],
        ] {
            let result = try marina(arguments)
            #expect(result.status == 0, "\(arguments): \(result.stdout)\(result.stderr)")
        }
        let dryRun = try marina(["grant", "sync", "s1", "--dry-run"])
        #expect(dryRun.status == 0, "\(dryRun.stdout)\(dryRun.stderr)")
        #expect(dryRun.stdout.contains("GRANT UPDATE ON `wiki`.* TO `wikiuser`@`10.64.%`"), "\(dryRun.stdout)")
        // Minimal: per instance, the role, one grant per host of wikiuser and of the role, and the role granted to each host.
        #expect(dryRun.stdout.contains("Plan: grant sync of s1, 18 statements"), "\(dryRun.stdout)")
        let sync = try marina(["grant", "sync", "s1", "--yes"])
        #expect(sync.status == 0, "\(sync.stdout)\(sync.stderr)")
        #expect(sync.stdout.contains("✓ apply-grants db1002") && sync.stdout.contains("✓ apply-grants db1001"), "\(sync.stdout)")
        let after = try await grants(sandbox)
        for instance in ["db1001", "db1002", "db1003"] {
            let lines = try #require(after[instance])
            #expect(lines.contains("GRANT `wikireader` TO `wikiuser`@`10.64.%`"), "\(instance): \(lines)")
            #expect(lines.contains("GRANT `wikiwriter` TO `wikiuser`@`10.64.%`"), "\(instance): \(lines)")
            #expect(lines.contains("GRANT INSERT, UPDATE ON `wiki`.* TO `wikiuser`@`10.64.%`"), "\(instance): \(lines)")
            #expect(lines.contains("GRANT INSERT ON `wiki`.* TO `wikiwriter`"), "\(instance): \(lines)")
            #expect(lines.contains("SET DEFAULT ROLE `wikireader` FOR `wikiuser`@`10.192.%`"), "\(instance): \(lines)")
        }
        #expect(after["db1001"] == after["db1002"] && after["db1002"] == after["db1003"], "\(after)")
        try await expectNoOwnTransactions(sandbox, on: ["db1002", "db1003"])

        // A grant made by hand on db1002, without the binary log: drift names it; a sync removes it there only.
        try await execute(sandbox, "db1002", "SET SESSION sql_log_bin = 0", "GRANT DELETE ON wiki.* TO 'wikiuser'@'10.64.%'")
        let drift = try await driftOutput(sandbox, seconds: 20) { $0.contains("GRANT_PRIVILEGES_DIFFER") && $0.contains("DELETE") }
        #expect(drift.contains("GRANT_PRIVILEGES_DIFFER") && drift.contains("db1002") && drift.contains("DELETE"), "\(drift)")
        let repair = try marina(["grant", "sync", "s1", "--yes"])
        #expect(repair.status == 0, "\(repair.stdout)\(repair.stderr)")
        #expect(repair.stdout.contains("✓ apply-grants db1002") && !repair.stdout.contains("apply-grants db1001"), "\(repair.stdout)")
        #expect(try await grants(sandbox) == after)
        let clean = try await driftOutput(sandbox, seconds: 20) { !$0.contains("GRANT_") }
        #expect(!clean.contains("GRANT_"), "\(clean)")
        try await expectNoOwnTransactions(sandbox, on: ["db1002", "db1003"])
        try expectNoHash(in: outputs + [drift, clean], sandbox: sandbox)
    }

    @Test(
        """
        one replica refuses (the settings account lost GRANT OPTION there, after its CREATE USER ran): the sync stops at it, every instance is back \
        to what it was and verified, exit 1 names it, and no hash shows
        """)
    func oneReplicaRefuses() async throws {
        let sandbox = try await TestServers.privateSandbox("grant-refuse", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await createAccounts(sandbox)
        func marina(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try runMarina(arguments, environment: ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"])
        }
        #expect(try marina(["grant", "import", "--from", "db1001", "--account", "wiki%", "--credentials-file", sandbox.credentialsFile]).status == 0)
        // An account the controller itself uses is never managed: the sync is refused, nothing changed.
        #expect(try marina(["grant", "user", "s1", Sandbox.replicationUser, "--host", "10.%", "--unix-socket"]).status == 0)
        #expect(try marina(["config", "commit", "--yes", "-m", "the replication account, by mistake"]).status == 0)
        let own = try marina(["grant", "sync", "s1", "--yes"])
        #expect(own.status == 2 && own.stdout.contains("\(Sandbox.replicationUser) is an account this controller uses"), "\(own.stdout)")
        #expect(try marina(["grant", "unmanage", "s1", Sandbox.replicationUser]).status == 0)
        // A new user (CREATE USER everywhere) and a privilege more for an existing one.
        let password = sandbox.directory + "/newapp.password"
        try "third-password\n".write(toFile: password, atomically: true, encoding: .utf8)
        #expect(try marina(["grant", "user", "s1", "newapp", "--host", "10.64.%", "--password-file", password]).status == 0)
        #expect(try marina(["grant", "set", "s1", "wikiuser", "--on", "wiki.*", "UPDATE"]).status == 0)
        #expect(try marina(["config", "commit", "--yes", "-m", "newapp"]).status == 0)
        try await execute(sandbox, "db1003", "SET SESSION sql_log_bin = 0", "REVOKE GRANT OPTION ON *.* FROM '\(Sandbox.adminUser)'@'127.0.0.1'")
        let before = try await grants(sandbox)

        let sync = try marina(["grant", "sync", "s1", "--yes"])
        #expect(sync.status == 4, "\(sync.stdout)\(sync.stderr)")
        #expect(sync.stdout.contains("Failed at apply-grants db1003 on db1003"), "\(sync.stdout)")
        #expect(sync.stdout.contains("↺ undid apply-grants db1002"), "\(sync.stdout)")
        #expect(sync.stdout.contains("Rolled back and verified"), "\(sync.stdout)")
        #expect(try await grants(sandbox) == before)
        for instance in ["db1001", "db1002", "db1003"] {
            let client = try await sandbox.root(instance)
            let rows = try await client.query("SELECT COUNT(*) AS n FROM mysql.user WHERE user = 'newapp'")
            await client.close()
            #expect(rows.first?["n"] == "0", "newapp left on \(instance)")
        }
        let record = try #require(try await lastOperation(sandbox, kind: "grant-sync"))
        #expect(record.state == .rolledBack && record.failure?.host == "db1003")
        try await expectNoOwnTransactions(sandbox, on: ["db1002", "db1003"])
        try expectNoHash(in: [sync.stdout, sync.stderr], sandbox: sandbox)
    }

    @Test(
        """
        the controller killed after a grant step ran and before its journal said so: the next leader kills its \
        sessions, runs that step again (nothing left to do there) and finishes; the undo is deleted
        """)
    func controllerKilledInTheMiddle() async throws {
        let sandbox = try await TestServers.privateSandbox("grant-crash", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await createAccounts(sandbox)
        func marina(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try runMarina(arguments, environment: ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"])
        }
        #expect(try marina(["grant", "import", "--from", "db1001", "--account", "wiki%", "--credentials-file", sandbox.credentialsFile]).status == 0)
        #expect(try marina(["grant", "set", "s1", "wikiuser", "--on", "wiki.*", "UPDATE"]).status == 0)
        #expect(try marina(["config", "commit", "--yes", "-m", "wikiuser may update"]).status == 0)
        try await restartController(sandbox, pauseAfter: "apply-grants")
        let id = "test-grant-sync-\(UInt32.random(in: 0...UInt32.max))"
        let request = OperationRecord(
            id: id, kind: "grant-sync", section: "s1", candidate: "", reason: "test", requestedBy: "test", requestedAt: Date())
        let keys = StoreKeys()
        _ = try await sandbox.etcdClient.transaction(
            Transaction(compares: [], success: [.put(keys.operation(id), try OperationJSON.encode(request)), .put(keys.request(id), id)]))
        #expect(try await pausedAfter(sandbox, id) == "apply-grants db1002")
        #expect(try await sandbox.etcdClient.value(keys.operationUndo(id)) != nil, "the undo was not written before the first step")
        try await restartController(sandbox, kill: true)

        let record = try await waitForOperation(sandbox, id) { $0.state.isFinished }
        #expect(record.state == .done, "\(record.state) \(record.failure.map { "\($0)" } ?? "")")
        #expect(record.steps.map(\.state) == [.done, .done, .done])
        let after = try await grants(sandbox)
        for instance in ["db1001", "db1002", "db1003"] {
            #expect(after[instance]?.contains("GRANT INSERT, UPDATE ON `wiki`.* TO `wikiuser`@`10.64.%`") == true, "\(instance): \(after)")
        }
        #expect(try await sandbox.etcdClient.value(keys.operationUndo(id)) == nil, "the undo (it holds hashes) outlived the sync")
        let shown = try marina(["operation", "show", id])
        #expect(shown.stdout.contains("grant-sync of s1") && shown.stdout.contains("apply-grants db1002"), "\(shown.stdout)")
        try await expectNoOwnTransactions(sandbox, on: ["db1002", "db1003"])
    }

    @Test(
        """
        a replica that stops answering in the middle of a sync: the sync fails at it, every other instance is still \
        restored and read back, and the sync is left for a human naming the one it could not reach, its undo kept
        """)
    func hostStopsAnsweringHalfway() async throws {
        let sandbox = try await TestServers.privateSandbox("grant-host-down", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await createAccounts(sandbox)
        func marina(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try runMarina(arguments, environment: ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"])
        }
        #expect(try marina(["grant", "import", "--from", "db1001", "--account", "wiki%", "--credentials-file", sandbox.credentialsFile]).status == 0)
        #expect(try marina(["grant", "set", "s1", "wikiuser", "--on", "wiki.*", "UPDATE"]).status == 0)
        #expect(try marina(["config", "commit", "--yes", "-m", "wikiuser may update"]).status == 0)
        let before = try await grants(sandbox, on: ["db1001", "db1002"])
        try await restartController(sandbox, pauseAfter: "apply-grants")
        let id = "test-grant-sync-\(UInt32.random(in: 0...UInt32.max))"
        let request = OperationRecord(
            id: id, kind: "grant-sync", section: "s1", candidate: "", reason: "test", requestedBy: "test", requestedAt: Date())
        let keys = StoreKeys()
        _ = try await sandbox.etcdClient.transaction(
            Transaction(compares: [], success: [.put(keys.operation(id), try OperationJSON.encode(request)), .put(keys.request(id), id)]))
        #expect(try await pausedAfter(sandbox, id) == "apply-grants db1002")
        try await Sandbox.stopInstance(directory: sandbox.directory, name: "db1003", kill: true)
        try await resume(sandbox, id)

        let record = try await waitForOperation(sandbox, id, seconds: 60) { $0.state.isFinished }
        #expect(record.state == .needsHuman, "\(record.state) \(record.attention)")
        #expect(record.attention.contains { $0.contains("db1003") }, "\(record.attention)")
        #expect(record.steps.first { $0.subject == "db1002" }?.state == .undone, "\(record.steps.map { "\($0.name) \($0.state)" })")
        #expect(try await grants(sandbox, on: ["db1001", "db1002"]) == before, "db1002 was not restored")
        #expect(try await sandbox.etcdClient.value(keys.operationUndo(id)) != nil, "the undo a human needs is gone")
    }

    @Test("grants.auto_sync: a commit that changes a section's accounts is synced by the controller on its own, journaled as its request")
    func automaticSync() async throws {
        let sandbox = try await TestServers.privateSandbox("grant-auto", replicas: 1, controller: true)
        defer { TestServers.stop(sandbox) }
        func marina(_ arguments: [String]) throws {
            let result = try runMarina(arguments, environment: ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"])
            #expect(result.status == 0, "\(arguments): \(result.stdout)\(result.stderr)")
        }
        let password = sandbox.directory + "/auto.password"
        try "second-password\n".write(toFile: password, atomically: true, encoding: .utf8)
        // Committed before the controller starts: it remembers it at its first look, and does not sync it.
        try marina(["grant", "user", "s1", "autofirst", "--host", "10.64.%", "--password-file", password])
        try marina(["config", "commit", "--yes", "-m", "autofirst"])
        try await Sandbox.stopController(directory: sandbox.directory)
        let restarted = Date()
        try await Sandbox.startController(
            directory: sandbox.directory, executable: marinaExecutable(), grants: "grants:\n  check_interval: 1\n  auto_sync: true")
        let looked = try await eventually(20) {
            guard let kv = try await sandbox.etcdClient.value(StoreKeys().observedGrants("db1001")) else { return false }
            return try StoredJSON.decode(ObservedGrants.self, from: kv.value).readAt > restarted
        }
        #expect(looked, "the grant watch never looked")
        #expect(try await lastOperation(sandbox, kind: "grant-sync") == nil, "a controller synced at its start")
        // A commit that changes the accounts afterwards is synced on its own.
        try marina(["grant", "user", "s1", "autoapp", "--host", "10.64.%", "--password-file", password])
        try marina(["grant", "set", "s1", "autoapp", "--on", "wiki.*", "SELECT"])
        try marina(["config", "commit", "--yes", "-m", "autoapp"])
        #expect(
            try await eventually(30) { try await lastOperation(sandbox, kind: "grant-sync")?.state == .done },
            "no automatic grant sync finished")
        let record = try #require(try await lastOperation(sandbox, kind: "grant-sync"))
        #expect(record.requestedBy.hasSuffix("(grants.auto_sync)"), "\(record.requestedBy)")
        for instance in ["db1001", "db1002"] {
            let client = try await sandbox.root(instance)
            let lines = try await client.query("SHOW GRANTS FOR 'autoapp'@'10.64.%'").rows.compactMap { $0[0] }
            await client.close()
            #expect(lines.contains("GRANT SELECT ON `wiki`.* TO `autoapp`@`10.64.%`"), "\(instance): \(lines.count) lines")
        }
        // Once: the same committed accounts are not synced again.
        try await Task.sleep(for: .seconds(3))
        #expect(try await operations(sandbox).filter { $0.kind == "grant-sync" }.count == 1)
        try expectNoHash(in: [], sandbox: sandbox)
    }

    // MARK: Helpers

    /// Two hosts of `wikiuser` with a role as default role, made on the primary (binlogged, so
    /// every replica has them as a site that adopts Marina would).
    private func createAccounts(_ sandbox: SandboxState) async throws {
        try await execute(
            sandbox, "db1001", "CREATE DATABASE wiki", "CREATE ROLE wikireader", "GRANT SELECT ON wiki.* TO wikireader",
            "CREATE USER 'wikiuser'@'10.64.%' IDENTIFIED BY 'first-password'", "CREATE USER 'wikiuser'@'10.192.%' IDENTIFIED BY 'first-password'",
            "GRANT INSERT ON wiki.* TO 'wikiuser'@'10.64.%'", "GRANT INSERT ON wiki.* TO 'wikiuser'@'10.192.%'",
            "GRANT wikireader TO 'wikiuser'@'10.64.%'", "GRANT wikireader TO 'wikiuser'@'10.192.%'",
            "SET DEFAULT ROLE wikireader FOR 'wikiuser'@'10.64.%'", "SET DEFAULT ROLE wikireader FOR 'wikiuser'@'10.192.%'")
        #expect(try await waitFor(try await binlogPosition(sandbox, "db1001"), on: "db1002", sandbox))
        #expect(try await waitFor(try await binlogPosition(sandbox, "db1001"), on: "db1003", sandbox))
    }

    /// `SHOW GRANTS` of every `wiki*` account and role on each instance, sorted.
    private func grants(_ sandbox: SandboxState, on instances: [String] = ["db1001", "db1002", "db1003"]) async throws -> [String: [String]] {
        var grants = [String: [String]]()
        for instance in instances {
            let client = try await sandbox.root(instance)
            var lines = [String]()
            for row in try await client.query("SELECT user, host FROM mysql.user WHERE user LIKE 'wiki%' OR user = 'newapp'").rows {
                let user = row["user"] ?? ""
                let host = row["host"] ?? ""
                let target = host.isEmpty ? "`\(user)`" : "'\(user)'@'\(host)'"
                lines += try await client.query("SHOW GRANTS FOR \(target)").rows.compactMap { $0[0] }
            }
            await client.close()
            grants[instance] = lines.sorted()
        }
        return grants
    }

    /// No replica wrote a transaction under its own server_id: its binary log holds only what it replicated.
    private func expectNoOwnTransactions(_ sandbox: SandboxState, on replicas: [String]) async throws {
        for replica in replicas {
            let client = try await sandbox.root(replica)
            let row = try await client.query("SELECT @@server_id AS id, @@gtid_binlog_state AS state").first
            await client.close()
            let own = (row?["state"] ?? "").split(separator: ",").filter { $0.split(separator: "-").dropFirst().first.map(String.init) == row?["id"] }
            #expect(own.isEmpty, "\(replica) has GTIDs of its own server_id: \(own)")
        }
    }

    /// No hash of the test passwords in the outputs, nor in any log of the sandbox.
    private func expectNoHash(in outputs: [String], sandbox: SandboxState) throws {
        var texts = outputs
        let enumerator = FileManager.default.enumerator(atPath: sandbox.directory)
        while let path = enumerator?.nextObject() as? String {
            guard path.hasSuffix(".log") else { continue }
            texts.append((try? String(contentsOfFile: sandbox.directory + "/" + path, encoding: .utf8)) ?? "")
        }
        for hash in Self.hashes {
            #expect(!texts.contains { $0.contains(hash) || $0.contains(String(hash.dropFirst())) }, "a hash shows in an output or a log")
        }
    }
}
