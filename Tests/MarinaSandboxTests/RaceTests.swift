import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Testing
import TopologyStore

/// Races between the CLI and the controller, closed by etcd compares.
@Suite("etcd compares close the races", .serialized)
struct RaceTests {
    @Test("a request the CLI withdrew after the controller read it, before the lock, is never run")
    func withdrawnRequestNeverRuns() async throws {
        let sandbox = try await TestServers.privateSandbox("race-withdraw", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await restartController(sandbox, pauseBefore: "take-lock")
        let commits = try await commitCount(sandbox)
        let before = try await serverTopology(sandbox)

        let result = try switchover(sandbox, ["s1", "--to", "db1002", "--yes", "--timeout", "2"])
        #expect(result.status != 0)
        #expect((result.stdout + result.stderr).contains("it was withdrawn, nothing changed"), "\(result.stdout)\(result.stderr)")
        let id = try #require(result.stdout.split(separator: "\n").first?.split(separator: " ").dropFirst(2).first.map { String($0.dropLast()) })
        // The controller had read the request and was about to take the lock when the CLI withdrew it.
        #expect(try await sandbox.etcdClient.value(StoreKeys().resume + id + "/paused") != nil, "the controller never read the request")
        try await resume(sandbox, id)

        let log = sandbox.directory + "/controller.log"
        #expect(
            try await eventually(10) {
                (try? String(contentsOfFile: log, encoding: .utf8))?.contains("operation \(id) was withdrawn before it took the lock") == true
            })
        #expect(try await sandbox.etcdClient.value(StoreKeys().lock("s1")) == nil)
        #expect(try await sandbox.etcdClient.value(StoreKeys().operation(id)) == nil, "the withdrawn operation's journal came back")
        #expect(try await serverTopology(sandbox) == before)
        #expect(try await commitCount(sandbox) == commits)
    }
}

@Suite("Human edits and running operations", .serialized)
struct BusySectionTests {
    @Test(
        "a commit or set-primary touching a section an operation holds is refused with the operation's id (exit 5); a commit elsewhere goes through")
    func busySection() async throws {
        let sandbox = try await TestServers.privateSandbox("race-busy", sections: 2, replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory, "MARINA_AUTHOR": "dba"]
        let store = TopologyStore(etcd: sandbox.etcdClient)
        let weight = try #require(try await store.committedTopology()?.instances["db1003"]?.sections["s1"]?.weight)
        let other = try #require(sandbox.instances(in: "s2").last?.name)
        let id = try await switchoverPaused(sandbox, before: "old-primary-read-only", to: "db1002")
        let commits = try await commitCount(sandbox)

        #expect(try runMarina(["instance", "set-weight", "db1003", "--section", "s1", "--weight", "50"], environment: environment).status == 0)
        let commit = try runMarina(["config", "commit", "--yes", "-m", "while a switchover runs"], environment: environment)
        #expect(commit.status == 3, "\(commit.stdout)\(commit.stderr)")
        #expect(commit.stderr.contains("section s1 is busy: operation \(id) holds its lock"), "\(commit.stderr)")
        #expect(try await commitCount(sandbox) == commits)
        let setPrimary = try runMarina(["section", "set-primary", "s1", "db1003"], environment: environment)
        #expect(setPrimary.status == 3 && setPrimary.stderr.contains("operation \(id)"), "\(setPrimary.stdout)\(setPrimary.stderr)")

        // Back to what is committed in s1, a change in s2 commits while s1 is held.
        #expect(
            try runMarina(["instance", "set-weight", "db1003", "--section", "s1", "--weight", "\(weight)"], environment: environment).status == 0)
        #expect(try runMarina(["instance", "set-weight", other, "--section", "s2", "--weight", "60"], environment: environment).status == 0)
        let elsewhere = try runMarina(["config", "commit", "--yes", "-m", "s2 only"], environment: environment)
        #expect(elsewhere.status == 0, "\(elsewhere.stdout)\(elsewhere.stderr)")

        try await resume(sandbox, id)
        #expect(try await waitForOperation(sandbox, id) { $0.state.isFinished }.state == .done)
        try await expectPrimary("db1002", sandbox)
        #expect(try await store.committedTopology()?.instances[other]?.sections["s2"]?.weight == 60)
    }
}

@Suite("Who asked")
struct AuthorTests {
    @Test("with no author in the environment (as under cron or systemd), a commit records the login name, not unknown")
    func loginName() async throws {
        let sandbox = try await TestServers.privateSandbox("author", replicas: 1)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory]
        let unset = ["MARINA_AUTHOR", "SUDO_USER", "USER", "LOGNAME"]
        #expect(
            try runMarina(["instance", "set-weight", "db1002", "--section", "s1", "--weight", "7"], environment: environment, removing: unset).status
                == 0)
        #expect(try runMarina(["config", "commit", "--yes", "-m", "by whom"], environment: environment, removing: unset).status == 0)
        let history = try await TopologyStore(etcd: sandbox.etcdClient).history(limit: 1)
        let login = String(cString: getpwuid(geteuid())!.pointee.pw_name)
        #expect(history.first?.author.hasPrefix("\(login)@") == true, "\(history.first?.author ?? "")")
        #expect(history.first?.author.hasPrefix("unknown@") == false)
    }
}
