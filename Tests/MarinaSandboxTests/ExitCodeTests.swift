import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Operations
import Testing
import TopologyStore

/// Runs `marina` on a pseudo-terminal (standard input and output are a terminal) and answers
/// its question with `answer` ("-" ends the input instead): the path a DBA takes.
func marinaOnTerminal(_ arguments: [String], answer: String, environment: [String: String]) throws -> (status: Int32, output: String) {
    let variables = cliEnvironment(environment).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    let run = try runPython([testScripts + "/on_terminal.py", answer, "/usr/bin/env", "-i"] + variables + [marinaExecutable()] + arguments)
    guard run.status == 0, let result = try JSONSerialization.jsonObject(with: run.output) as? [String: Any],
        let status = result["status"] as? Int, let output = result["output"] as? String
    else { throw SandboxError.invalidArgument("on_terminal.py exited \(run.status): \(run.errors)") }
    return (Int32(status), output)
}

/// The exit-status table of `marina help exit-codes`, each status produced for real. Statuses
/// shown by other suites: 3 (RaceTests: a commit while a switchover holds the section;
/// SwitchoverTests: a busy section), 4 (SwitchoverTests: a replica refuses to move), 5
/// (SwitchoverTests: the undo fails, then `operation follow`), 6 (SwitchoverTests: attention after the point of no return;
/// MirrorTests: a mirror not written).
@Suite("Exit statuses", .serialized)
struct ExitCodeTests {
    @Test("`marina exit-codes`, `marina help exit-codes` and docs/cli.md give the same table")
    func tableIsDocumented() throws {
        let printed = try runMarina(["exit-codes"])
        #expect(printed.status == 0)
        let rows = printed.stdout.split(separator: "\n").map { line in
            (code: String(line.prefix(while: { $0 != " " })), meaning: line.drop(while: { $0 != " " }).trimmingCharacters(in: .whitespaces))
        }
        #expect(rows.map(\.code) == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "64"])
        let help = try runMarina(["help", "exit-codes"])
        #expect(help.status == 0)
        let document = try String(contentsOfFile: packageRoot + "/docs/cli.md", encoding: .utf8)
        // ArgumentParser wraps the discussion to the terminal's width.
        let helpText = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for row in rows {
            #expect(helpText.contains(row.meaning), "help lacks \(row.code)")
            #expect(document.contains("| \(row.code) | \(row.meaning) |"), "docs/cli.md lacks the row of \(row.code): \(row.meaning)")
        }
    }

    @Test("0, 1, 2, 6, 8 and 64 from real commands; a declined confirmation changes nothing and journals no dry run")
    func everyDayStatuses() async throws {
        let sandbox = try await TestServers.privateSandbox("exit-codes", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"]

        #expect(try runMarina(["status"], environment: environment).status == 0)
        let unknown = try runMarina(["operation", "show", "no-such-operation"], environment: environment)
        #expect(unknown.status == 1 && unknown.stderr.hasPrefix("marina: "), "\(unknown.stderr)")
        #expect(try runMarina(["switchover", "s1", "--to", "db1002", "--no-such-flag"], environment: environment).status == 64)
        let refused = try switchover(sandbox, ["s1", "--to", "db9999", "--yes"])
        #expect(refused.status == 2, "\(refused.stdout)\(refused.stderr)")

        // 8: declined at the question, after the plan was shown; the primary and the history are
        // unchanged and the plan was not kept in the journal.
        let history = try await commitCount(sandbox)
        let declined = try marinaOnTerminal(["switchover", "s1", "--to", "db1002", "--reason", "no"], answer: "n", environment: environment)
        #expect(declined.status == 8, "\(declined.output)")
        #expect(declined.output.contains("POINT OF NO RETURN") && declined.output.contains("Nothing changed."), "\(declined.output)")
        let ended = try marinaOnTerminal(["switchover", "s1", "--to", "db1002"], answer: "-", environment: environment)
        #expect(ended.status == 8, "\(ended.output)")
        try await expectPrimary("db1001", sandbox)
        #expect(try await commitCount(sandbox) == history)
        let journals = try await sandbox.etcdClient.get(StoreKeys().operations, prefix: true).kvs
        let dryRuns = try journals.map { try OperationJSON.decode($0.value) }.filter(\.dryRun)
        #expect(dryRuns.isEmpty, "dry runs left in the journal: \(dryRuns.map(\.id))")

        // 6: a staged change is what `config diff` reports; `config commit` asks and, declined, writes nothing (8).
        #expect(try runMarina(["instance", "depool", "db1003", "--section", "s1"], environment: environment).status == 0)
        #expect(try runMarina(["config", "diff"], environment: environment).status == 6)
        let commits = try await commitCount(sandbox)
        let notCommitted = try marinaOnTerminal(["config", "commit", "-m", "depool db1003"], answer: "n", environment: environment)
        #expect(notCommitted.status == 8, "\(notCommitted.output)")
        #expect(notCommitted.output.contains("db1003") && notCommitted.output.contains("Commit these changes? [y/N]"), "\(notCommitted.output)")
        #expect(try await commitCount(sandbox) == commits)
        let withoutTerminal = try runMarina(["config", "commit", "-m", "depool db1003"], environment: environment)
        #expect(withoutTerminal.status == 1 && withoutTerminal.stderr.contains("pass --yes (or --batch)"), "\(withoutTerminal.stderr)")
        let committed = try marinaOnTerminal(["config", "commit", "-m", "depool db1003"], answer: "y", environment: environment)
        #expect(committed.status == 0, "\(committed.output)")
        #expect(try await commitCount(sandbox) == commits + 1)
    }

    @Test("approved on a terminal: the request carries the digest of the plan shown, and the step running is shown as it runs")
    func approvedPlanRuns() async throws {
        let sandbox = try await TestServers.privateSandbox("exit-approve", replicas: 1, controller: true)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "test"]
        let run = try marinaOnTerminal(["switchover", "s1", "--to", "db1002", "--reason", "approved"], answer: "y", environment: environment)
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("Done: db1002 is the primary of s1"), "\(run.output)")
        try await expectPrimary("db1002", sandbox)
        let journals = try await sandbox.etcdClient.get(StoreKeys().operations, prefix: true).kvs.map { try OperationJSON.decode($0.value) }
        #expect(journals.count == 1, "\(journals.map { "\($0.id) \($0.state)" })")
        let record = try #require(journals.first)
        #expect(record.approvedPlan != nil && record.approvedPlan == record.planDigest())
    }

    @Test("7: etcd stops answering while the CLI follows: the id is printed, the operation goes on, `operation follow` ends it")
    func unknownOutcome() async throws {
        let sandbox = try await TestServers.privateSandbox("exit-unknown", replicas: 1, controller: true)
        defer { TestServers.stop(sandbox) }
        try await restartController(sandbox, pauseBefore: "old-primary-read-only")
        // The CLI reaches etcd through a forwarder that the test kills: etcd itself, the agent and
        // the controller go on.
        let port = try Ports.findFreeBlock(count: 1)
        let etcdPort = try #require(URL(string: sandbox.etcd.url)?.port)
        let forwarder = Process()
        forwarder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        forwarder.arguments = [testScripts + "/tcp_forward.py", String(port), String(etcdPort)]
        let ready = Pipe()
        forwarder.standardOutput = ready
        try forwarder.run()
        // SIGKILL: the test process's children may inherit a mask that blocks SIGTERM.
        defer { if forwarder.isRunning { kill(forwarder.processIdentifier, SIGKILL) } }
        _ = ready.fileHandleForReading.availableData
        let process = Process()
        process.executableURL = URL(fileURLWithPath: marinaExecutable())
        process.arguments = ["switchover", "s1", "--to", "db1002", "--yes", "--json", "--etcd", "http://127.0.0.1:\(port)"]
        process.environment = cliEnvironment(["MARINA_AUTHOR": "test"])
        let outputFile = TestServers.root + "/exit-unknown-\(UInt32.random(in: 0...UInt32.max)).out"
        FileManager.default.createFile(atPath: outputFile, contents: nil)
        let err = Pipe()
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputFile))
        process.standardError = err
        try process.run()
        let paused = try await waitForPausedOperation(sandbox)
        // Cut once the CLI has shown the pause: it has followed the operation this far.
        let shown = try await eventually(30) {
            ((try? String(contentsOfFile: outputFile, encoding: .utf8)) ?? "").contains(#""event":"paused""#)
        }
        #expect(shown, "the CLI did not show the pause")
        kill(forwarder.processIdentifier, SIGKILL)
        forwarder.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let stdout = Data(((try? String(contentsOfFile: outputFile, encoding: .utf8)) ?? "").utf8)
        #expect(process.terminationStatus == 7, "\(stderr)")
        #expect(stderr.contains("operation \(paused)") && stderr.contains("marina operation follow \(paused)"), "\(stderr)")
        let events = String(decoding: stdout, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(events.first?["event"] as? String == "requested" && events.first?["id"] as? String == paused, "\(events)")
        #expect(events.contains { $0["event"] as? String == "paused" }, "\(events)")
        #expect(events.contains { $0["event"] as? String == "step-finished" && $0["state"] as? String == "done" }, "\(events)")
        #expect(!events.contains { $0["event"] as? String == "outcome" })

        try await resume(sandbox, paused)
        let followed = try runMarina(["operation", "follow", paused, "--json"], environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
        #expect(followed.status == 0, "\(followed.stdout)\(followed.stderr)")
        let last = followed.stdout.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(
            last?["event"] as? String == "outcome" && last?["state"] as? String == "done" && last?["exit_code"] as? Int == 0, "\(followed.stdout)")
        try await expectPrimary("db1002", sandbox)
    }
}

/// The id of the one operation in the sandbox once it is paused by `pause_before`.
func waitForPausedOperation(_ sandbox: SandboxState, seconds: Double = 30) async throws -> String {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        for kv in try await sandbox.etcdClient.get(StoreKeys().operations, prefix: true).kvs {
            let record = try OperationJSON.decode(kv.value)
            if record.pausedBefore != nil && !record.dryRun { return record.id }
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw SandboxError.invalidArgument("no operation paused within \(seconds) s")
}
