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
        #expect(try await eventually(within: 10) {
            (try? String(contentsOfFile: log, encoding: .utf8))?.contains("operation \(id) was withdrawn before it took the lock") == true
        })
        #expect(try await sandbox.etcdClient.value(StoreKeys().lock("s1")) == nil)
        #expect(try await sandbox.etcdClient.value(StoreKeys().operation(id)) == nil, "the withdrawn operation's journal came back")
        #expect(try await serverTopology(sandbox) == before)
        #expect(try await commitCount(sandbox) == commits)
    }
}
