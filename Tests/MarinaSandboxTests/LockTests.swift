import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Operations
import Testing
import TopologyStore

/// `marina lock list|release` and the audit trail, on a sandbox with a controller.
@Suite("Section locks", .serialized)
struct LockTests {
    @Test("release is refused while the lock's operation runs; a stale lock (no journal, or a finished one) is released and audited")
    func release() async throws {
        let sandbox = try await TestServers.privateSandbox("locks", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "dba"]
        let keys = StoreKeys()
        func locks() throws -> [[String: Any]] {
            let listed = try runMarina(["lock", "list", "--json"], environment: environment)
            #expect(listed.status == 0, "\(listed.stderr)")
            return try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]] ?? []
        }

        #expect(try runMarina(["lock", "list"], environment: environment).stdout.contains("No section is locked."))
        let unlocked = try runMarina(["lock", "release", "s1", "--reason", "nothing"], environment: environment)
        #expect(unlocked.status == 1 && unlocked.stderr.contains("section s1 holds no lock"), "\(unlocked.stderr)")

        // A live operation: paused by the test hook, it holds s1.
        let id = try await switchoverPaused(sandbox, before: "old-primary-read-only", to: "db1002")
        let live = try #require(try locks().first)
        #expect(live["section"] as? String == "s1" && live["operation"] as? String == id)
        #expect(live["state"] as? String == "running" && live["stale"] as? Bool == false && live["requested_by"] as? String == "test")
        #expect((live["age_seconds"] as? Double).map { $0 >= 0 } == true)
        let refused = try runMarina(["lock", "release", "s1", "--reason", "stuck?"], environment: environment)
        #expect(refused.status == 2, "\(refused.stdout)\(refused.stderr)")
        #expect(refused.stderr.contains("held by operation \(id), which is running"), "\(refused.stderr)")
        #expect(try await sandbox.etcdClient.value(keys.lock("s1")).map { String(decoding: $0.value, as: UTF8.self) } == id)
        try await resume(sandbox, id)
        #expect(try await waitForOperation(sandbox, id) { $0.state.isFinished }.state == .done)

        // A stale lock naming an operation without a journal (its journal deleted by hand).
        _ = try await sandbox.etcdClient.put(keys.lock("s1"), "20200101-000000-s1-gone")
        let stale = try #require(try locks().first)
        #expect(stale["state"] as? String == "missing" && stale["stale"] as? Bool == true)
        #expect(try runMarina(["lock", "list"], environment: environment).stdout.contains("missing (stale)"))
        let released = try runMarina(["lock", "release", "s1", "--reason", "journal deleted by hand"], environment: environment)
        #expect(released.status == 0, "\(released.stdout)\(released.stderr)")
        #expect(released.stdout.contains("Released the lock of s1, which named operation 20200101-000000-s1-gone (missing)"))
        #expect(try await sandbox.etcdClient.value(keys.lock("s1")) == nil)

        // A stale lock naming a finished operation (a final journal write made by hand, say). A
        // leading controller would clean it up itself within a third of its lease (its recovery
        // finds the operation finished): stopped, it leaves it to the DBA, and the test cannot race it.
        try await Sandbox.stopController(directory: sandbox.directory)
        _ = try await sandbox.etcdClient.put(keys.lock("s1"), id)
        let finished = try runMarina(["lock", "release", "s1", "--reason", "left after \(id)", "--json"], environment: environment)
        #expect(finished.status == 0, "\(finished.stdout)\(finished.stderr)")
        #expect(try await sandbox.etcdClient.value(keys.lock("s1")) == nil)

        // The audit trail, newest first, says who released what and why.
        let audit = try runMarina(["audit", "list", "--json"], environment: environment)
        let entries = try JSONSerialization.jsonObject(with: Data(audit.stdout.utf8)) as? [[String: Any]] ?? []
        let releases = entries.filter { $0["action"] as? String == "lock-release" }
        #expect(releases.count == 2, "\(audit.stdout)")
        #expect(releases.first?["operation"] as? String == id && releases.first?["operation_state"] as? String == "done")
        #expect(releases.first?["reason"] as? String == "left after \(id)" && releases.first?["by"] as? String == "dba")
        #expect(releases.last?["operation"] as? String == "20200101-000000-s1-gone" && releases.last?["subject"] as? String == "locks/s1")
        let table = try runMarina(["audit", "list"], environment: environment)
        #expect(table.stdout.contains("lock-release") && table.stdout.contains("journal deleted by hand"), "\(table.stdout)")

        // Bad input changes nothing: no reason, a malformed section.
        #expect(try runMarina(["lock", "release", "s1"], environment: environment).status == 64)
        #expect(try runMarina(["lock", "release", "s/1", "--reason", "x"], environment: environment).status == 64)
    }
}
