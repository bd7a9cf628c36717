import Controller
import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Operations
import StoredRecords
import Testing
import TopologyStore

/// `marina operation abort|resume|follow` on real servers: what the DBA reads back on the
/// servers and in the journal, and the exit status.
@Suite("Operation control: abort, resume, follow", .serialized)
struct OperationControlTests {
    @Test("abort before the point of no return: rolled back, db1001 writable again, exit 4, the journal names who and why")
    func abortBeforePointOfNoReturn() async throws {
        let sandbox = try await TestServers.privateSandbox("abort-early", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "dba"]
        // Paused at the flip's first step: db1003 is under db1002 and the section read-only by then.
        let id = try await switchoverPaused(sandbox, before: "old-primary-read-only", to: "db1002")

        let aborted = try runMarina(["operation", "abort", id, "--reason", "wrong candidate"], environment: environment)
        #expect(aborted.status == 4, "\(aborted.stdout)\(aborted.stderr)")
        #expect(aborted.stdout.contains("Abort asked"), "\(aborted.stdout)")
        #expect(aborted.stdout.contains("Rolled back and verified"), "\(aborted.stdout)")

        let record = try #require(try await operation(sandbox, id))
        #expect(record.state == .rolledBack)
        #expect(record.failure == OperationRecord.Failure(step: "db1001 read-only", host: "controller", error: "aborted by dba: wrong candidate"))
        #expect(record.abort?.tooLate == false && record.abort?.by == "dba" && record.abort?.reason == "wrong candidate")
        #expect(record.steps.first { $0.action == .oldPrimaryReadOnly }?.state == .pending)
        #expect(record.steps.first { $0.action == .moveReplicas }?.state == .undone)
        // What the DBA checks: db1001 takes writes again, every replica under it, the source of truth as before.
        #expect(try await readOnly(sandbox, "db1001") == false)
        try await expectPrimary("db1001", sandbox)
        #expect(try await sandbox.etcdClient.value(StoreKeys().abort(id)) == nil, "the abort request outlived the operation")
        #expect(try await sandbox.etcdClient.value(StoreKeys().lock("s1")) == nil)

        // Once finished: refused, naming the state; an unknown id: exit 1.
        let again = try runMarina(["operation", "abort", id, "--reason", "again"], environment: environment)
        #expect(again.status == 2 && again.stderr.contains("already finished (rolled-back)"), "\(again.stdout)\(again.stderr)")
        let unknown = try runMarina(["operation", "abort", "20990101-000000-s1-none", "--reason", "x"], environment: environment)
        #expect(unknown.status == 1 && unknown.stderr.contains("no operation 20990101-000000-s1-none"), "\(unknown.stderr)")
        let noReason = try runMarina(["operation", "abort", id], environment: environment)
        #expect(noReason.status == 64, "\(noReason.stderr)")
        // The audit trail has the abort.
        let audit = try runMarina(["audit", "list", "--json"], environment: environment)
        let entries = try JSONSerialization.jsonObject(with: Data(audit.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(entries.contains { $0["action"] as? String == "abort" && $0["operation"] as? String == id && $0["by"] as? String == "dba" })
    }

    @Test("abort after the point of no return: the operation finishes done, exit 0, the journal notes the abort came too late")
    func abortTooLate() async throws {
        let sandbox = try await TestServers.privateSandbox("abort-late", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "dba"]
        let id = try await switchoverPaused(sandbox, before: "old-primary-replicates", to: "db1002")

        // The abort follows the operation until it ends: it runs beside the test.
        let abort = try BackgroundMarina(["operation", "abort", id, "--reason", "changed my mind"], environment: environment)
        #expect(try await eventually(15) { try await sandbox.etcdClient.value(StoreKeys().abort(id)) != nil }, "no abort request was written")
        // A pause after the point of no return waits for its resume whatever the abort: `resume` releases it.
        let resumed = try runMarina(["operation", "resume", id], environment: environment)
        #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
        #expect(resumed.stdout.contains("paused by a test-only hook"), "\(resumed.stdout)")
        let aborted = try await abort.wait()
        #expect(aborted.status == 0, "\(aborted.stdout)\(aborted.stderr)")
        #expect(aborted.stdout.contains("has passed its point of no return"), "\(aborted.stdout)")
        #expect(aborted.stdout.contains("Done: db1002 is the primary of s1"), "\(aborted.stdout)")

        let record = try #require(try await operation(sandbox, id))
        #expect(record.state == .done)
        #expect(record.failure == nil)
        #expect(record.abort?.tooLate == true, "\(String(describing: record.abort))")
        #expect(record.abort?.outcome.contains("after the point of no return (db1002 writable)") == true, "\(String(describing: record.abort))")
        try await expectPrimary("db1002", sandbox)
        #expect(try await sandbox.etcdClient.value(StoreKeys().abort(id)) == nil)
    }

    @Test("abort without test hooks: a switchover waiting for propagation stops, rolls back, exit 4")
    func abortDuringPropagationWait() async throws {
        let sandbox = try await TestServers.privateSandbox("abort-wait", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "dba"]
        try await restartController(sandbox, playbooks: try playbooks(replacing: [("propagation_wait: 0", "propagation_wait: 120")]))
        let switching = try BackgroundMarina(["switchover", "s1", "--to", "db1002", "--yes"], environment: environment)
        let id = try await waitForRunning(sandbox, step: .waitPropagation)

        let aborted = try runMarina(["operation", "abort", id, "--reason", "not now"], environment: environment)
        #expect(aborted.status == 4, "\(aborted.stdout)\(aborted.stderr)")
        // The switchover's own command follows the same journal to the same end.
        let switched = try await switching.wait()
        #expect(switched.status == 4, "\(switched.stdout)\(switched.stderr)")
        #expect(switched.stdout.contains("Failed at wait for propagation on controller: aborted by dba: not now"), "\(switched.stdout)")
        let record = try #require(try await operation(sandbox, id))
        #expect(record.state == .rolledBack && record.abort?.tooLate == false)
        #expect(record.failure == OperationRecord.Failure(step: "wait for propagation", host: "controller", error: "aborted by dba: not now"))
        #expect(try await readOnly(sandbox, "db1001") == false)
        try await expectPrimary("db1001", sandbox)
    }

    /// The id of the one operation whose journal shows `step` running.
    func waitForRunning(_ sandbox: SandboxState, step: StepAction, seconds: Double = 30) async throws -> String {
        var id: String?
        _ = try await eventually(seconds) {
            for kv in try await sandbox.etcdClient.get(StoreKeys().operations, prefix: true).kvs {
                let record = try OperationJSON.decode(kv.value)
                if record.steps.contains(where: { $0.action == step && $0.state == .running }) { id = record.id }
            }
            return id != nil
        }
        return try #require(id, "no operation ran \(step.rawValue) within \(seconds) s")
    }

    @Test(
        "resume and abort refuse an operation left running without its lock (removed by hand): exit 2, nothing written; with it, the leader rolls it back, exit 4"
    )
    func resumeWithoutLock() async throws {
        let sandbox = try await TestServers.privateSandbox("resume", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "dba"]
        let keys = StoreKeys()
        let id = try await switchoverPaused(sandbox, before: "section-read-only", to: "db1002")
        // The controller dies there (its lease revoked, as its expiry would), and someone deletes the lock.
        try await Sandbox.stopController(directory: sandbox.directory, kill: true)
        if let leader = try await sandbox.etcdClient.value(keys.leader),
            let object = try JSONSerialization.jsonObject(with: Data(leader.value)) as? [String: Any], let lease = object["lease"] as? Int64
        {
            _ = try await sandbox.etcdClient.revokeLease(lease)
        }
        let lock = try #require(try await sandbox.etcdClient.value(keys.lock("s1")))
        _ = try await sandbox.etcdClient.delete(keys.lock("s1"))
        let journal = try #require(try await sandbox.etcdClient.value(keys.operation(id)))

        // The section may have changed since the lock went: neither goes forward or back from this journal.
        for command in [["resume", id], ["abort", id, "--reason", "stuck"]] {
            let refused = try runMarina(["operation"] + command, environment: environment)
            #expect(refused.status == 2, "\(command): \(refused.stdout)\(refused.stderr)")
            #expect(refused.stderr.contains("no lock names it (the lock of s1 was removed by hand)"), "\(refused.stderr)")
        }
        #expect(try await sandbox.etcdClient.value(keys.operation(id))?.modRevision == journal.modRevision)
        #expect(try await sandbox.etcdClient.value(keys.resumeRequest(id)) == nil)
        #expect(try await sandbox.etcdClient.value(keys.abort(id)) == nil)

        // With its lock, a new leader finishes it on its own: it had not passed its point of no return.
        _ = try await sandbox.etcdClient.put(keys.lock("s1"), lock.value)
        try await Sandbox.startController(directory: sandbox.directory, executable: marinaExecutable())
        let followed = try runMarina(["operation", "follow", id], environment: environment)
        #expect(followed.status == 4 && followed.stdout.contains("Rolled back and verified"), "\(followed.stdout)\(followed.stderr)")
        let record = try #require(try await operation(sandbox, id))
        #expect(record.state == .rolledBack)
        try await expectPrimary("db1001", sandbox)
        #expect(try await sandbox.etcdClient.value(keys.lock("s1")) == nil)

        // Finished: refused naming the state; follow gives its status; unknown ids exit 1.
        let again = try runMarina(["operation", "resume", id], environment: environment)
        #expect(again.status == 2 && again.stderr.contains("already finished (rolled-back)"), "\(again.stdout)\(again.stderr)")
        for command in ["resume", "follow"] {
            let unknown = try runMarina(["operation", command, "20990101-000000-s1-none"], environment: environment)
            #expect(unknown.status == 1, "\(command): \(unknown.stdout)\(unknown.stderr)")
        }
    }

    @Test("a plan that changed since it was approved is refused: the new plan is kept in the journal, nothing changes on the servers")
    func approvedPlan() async throws {
        let sandbox = try await TestServers.privateSandbox("approved-plan", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let before = try await serverTopology(sandbox)
        let commits = try await commitCount(sandbox)

        // The plan the controller makes for a dry run is the one it makes for the request: same digest, it runs.
        let dryRun = try await submit(sandbox, to: "db1002", dryRun: true)
        let plan = try await waitForOperation(sandbox, dryRun) { $0.state.isFinished }
        #expect(plan.state == .planned)

        let wrong = String(repeating: "0", count: 64)
        let refusedID = try await submit(sandbox, to: "db1002", approvedPlan: wrong)
        let refused = try await waitForOperation(sandbox, refusedID) { $0.state.isFinished }
        #expect(refused.state == .refused)
        #expect(
            refused.refusals == [
                "the plan changed since it was approved (approved 00000000, now \(OperationRecord.shortDigest(plan.planDigest()))): review it again"
            ], "\(refused.refusals)")
        #expect(refused.steps.map(\.name) == plan.steps.map(\.name), "the new plan is not in the refused record")
        #expect(refused.steps.allSatisfy { $0.state == .pending })
        #expect(try await serverTopology(sandbox) == before)
        #expect(try await commitCount(sandbox) == commits)
        #expect(try await sandbox.etcdClient.value(StoreKeys().lock("s1")) == nil)

        let approvedID = try await submit(sandbox, to: "db1002", approvedPlan: plan.planDigest())
        #expect(try await waitForOperation(sandbox, approvedID, seconds: 60) { $0.state.isFinished }.state == .done)
        try await expectPrimary("db1002", sandbox)
    }

    /// Writes a switchover request as the CLI does, with a dry run flag or an approved plan.
    func submit(_ sandbox: SandboxState, to candidate: String, dryRun: Bool = false, approvedPlan: String? = nil) async throws -> String {
        let id = "test-\(UInt32.random(in: 0...UInt32.max))"
        var record = OperationRecord(
            id: id, section: "s1", candidate: candidate, reason: "test", dryRun: dryRun, requestedBy: "test", requestedAt: Date())
        record.approvedPlan = approvedPlan
        let keys = StoreKeys()
        _ = try await sandbox.etcdClient.transaction(
            Transaction(compares: [], success: [.put(keys.operation(id), try OperationJSON.encode(record)), .put(keys.request(id), id)]))
        return id
    }
}

/// The leader's journal retention against a real etcd (its own key root on the shared one).
@Suite("Journal retention on etcd")
struct JournalRetentionStoreTests {
    @Test("old finished journals go with their companion keys; recent ones, unfinished ones and one a lock names stay")
    func prune() async throws {
        let etcd = try await TestServers.shared().etcdClient
        let keys = StoreKeys(root: String(uniquePrefix("retention").dropLast()))
        let now = Date()
        let day: TimeInterval = 86_400
        func put(_ id: String, _ state: OperationRecord.State, daysAgo: Double, dryRun: Bool = false) async throws {
            var record = OperationRecord(
                id: id, section: "s1", candidate: "db2", reason: "", dryRun: dryRun, requestedBy: "dba",
                requestedAt: now.addingTimeInterval(-daysAgo * day))
            record.state = state
            record.updatedAt = now.addingTimeInterval(-daysAgo * day)
            record.finishedAt = state.isFinished ? record.updatedAt : nil
            _ = try await etcd.put(keys.operation(id), try OperationJSON.encode(record))
        }
        try await put("old-done", .done, daysAgo: 200)
        try await put("old-rolled-back", .rolledBack, daysAgo: 150)
        try await put("old-running", .running, daysAgo: 300)
        try await put("old-locked", .done, daysAgo: 250)
        try await put("recent", .done, daysAgo: 3)
        try await put("newest", .done, daysAgo: 1)
        try await put("plan", .planned, daysAgo: 0.01, dryRun: true)
        try await put("fresh-plan", .planned, daysAgo: 0, dryRun: true)
        _ = try await etcd.put(keys.lock("s1"), "old-locked")
        _ = try await etcd.put(keys.operationUndo("old-done"), "{}")
        _ = try await etcd.put(keys.abort("old-done"), "{}")
        _ = try await etcd.put(keys.resume + "old-done/paused", "x")
        _ = try await etcd.put(keys.operation("unreadable"), "not json")
        let oldAudit = keys.audit(AuditRecord.newName(at: now.addingTimeInterval(-100 * day)))
        let newAudit = keys.audit(AuditRecord.newName(at: now.addingTimeInterval(-day)))
        _ = try await etcd.put(oldAudit, "{}")
        _ = try await etcd.put(newAudit, "{}")

        let deleted = try await JournalRetention.prune(etcd: etcd, keys: keys, keep: 1, keepDays: 90, now: now)
        #expect(deleted == ["old-done", "old-rolled-back", "plan"])
        let left = try await etcd.get(keys.operations, prefix: true, keysOnly: true).kvs.map { String($0.key.dropFirst(keys.operations.count)) }
        #expect(left.sorted() == ["fresh-plan", "newest", "old-locked", "old-running", "recent", "unreadable"])
        for key in [keys.operationUndo("old-done"), keys.abort("old-done"), keys.resume + "old-done/paused", oldAudit] {
            #expect(try await etcd.value(key) == nil, "\(key) was left")
        }
        #expect(try await etcd.value(newAudit) != nil)
        #expect(try await etcd.value(keys.lock("s1")) != nil)

        // A compare that does not hold (another leader) deletes nothing.
        try await put("old-again", .done, daysAgo: 200)
        let none = try await JournalRetention.prune(
            etcd: etcd, keys: keys, keep: 1, keepDays: 90, now: now, compares: [.absent(keys.lock("s1"))])
        #expect(none.isEmpty)
        #expect(try await etcd.value(keys.operation("old-again")) != nil)
    }
}

/// `marina` run beside the test (a command that follows an operation until it ends).
final class BackgroundMarina {
    let process: Process
    let output: String

    init(_ arguments: [String], environment: [String: String]) throws {
        output = TestServers.root + "/marina-\(UInt32.random(in: 0...UInt32.max))"
        FileManager.default.createFile(atPath: output + ".out", contents: nil)
        FileManager.default.createFile(atPath: output + ".err", contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: marinaExecutable())
        process.arguments = arguments
        process.environment = cliEnvironment(environment)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output + ".out"))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: output + ".err"))
        try process.run()
        self.process = process
    }

    /// Waits for it to exit (at most `seconds`, then kills it).
    func wait(seconds: Double = 60) async throws -> (status: Int32, stdout: String, stderr: String) {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning {
            process.terminate()
            try await Task.sleep(for: .milliseconds(200))
        }
        return (
            process.isRunning ? -1 : process.terminationStatus, (try? String(contentsOfFile: output + ".out", encoding: .utf8)) ?? "",
            (try? String(contentsOfFile: output + ".err", encoding: .utf8)) ?? ""
        )
    }
}
