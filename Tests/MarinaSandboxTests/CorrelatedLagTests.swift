import EtcdClient
import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Policy
import Testing
import TopologyStore

/// `marina drift` with a short heartbeat limit: the stall is reported within seconds.
func driftNow(_ sandbox: SandboxState, _ extra: [String] = []) throws -> String {
    let result = try runMarina(["drift"] + extra, environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
    return result.stdout + result.stderr
}

@Suite("Correlated lag: the primary's heartbeat stalls", .serialized)
struct CorrelatedLagTests {
    @Test(
        "the heartbeat table locked on the primary for 30 s: every replica lags, none leaves the configuration, the refusals and drift name the primary"
    )
    func lockedHeartbeatTable() async throws {
        let sandbox = try await TestServers.privateSandbox("correlated-lag", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        try await Sandbox.stopController(directory: sandbox.directory)
        try await Sandbox.startController(directory: sandbox.directory, executable: marinaExecutable(), depool: fastPolicy)
        #expect(try await pooledReplicas(sandbox) == ["db1002": 100, "db1003": 100])
        let commits = try await commitCount(sandbox)

        // The agent's heartbeat writer (and its probe's read of the table) wait behind the lock.
        let locker = try await sandbox.root("db1001", readTimeout: 60)
        try await locker.execute("LOCK TABLES heartbeat.heartbeat WRITE")
        let lockedAt = Date()
        var pooled = [[String: Int]]()
        var drift = ""
        while Date().timeIntervalSince(lockedAt) < 30 {
            let now = try await pooledReplicas(sandbox)
            if pooled.last != now { pooled.append(now) }
            if !drift.contains("PRIMARY_HEARTBEAT_STALLED"), Date().timeIntervalSince(lockedAt) > 8 {
                drift = try driftNow(sandbox, ["--heartbeat-stale", "3"])
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        let state = try await policyState(sandbox)
        try await locker.execute("UNLOCK TABLES")
        await locker.close()

        #expect(pooled == [["db1002": 100, "db1003": 100]], "a replica left the configuration: \(pooled)")
        #expect(try await commitCount(sandbox) == commits)
        for replica in ["db1002", "db1003"] {
            let reason = state.refusals[replica]?.reason ?? "no refusal"
            #expect(reason.hasPrefix("the heartbeat on the primary db1001 stalled"), "\(replica): \(reason)")
        }
        let line = drift.split(separator: "\n").first { $0.contains("PRIMARY_HEARTBEAT_STALLED") }.map(String.init) ?? ""
        #expect(line.contains("db1001") && line.contains("last heartbeat written"), "\(drift)")

        // The heartbeat resumes: the replicas catch up, and their long bad timers depool nothing.
        // The evaluation that cleared the refusals found each replica either no longer bad (its timer reset, so a
        // depool needs a new bad period) or depooled it, in the same transaction as the state: checking at once is exact.
        #expect(try await eventually(15) { try await policyState(sandbox).refusals.isEmpty })
        #expect(try await pooledReplicas(sandbox) == ["db1002": 100, "db1003": 100])
        #expect(try await commitCount(sandbox) == commits)
        #expect(!(try driftNow(sandbox, ["--heartbeat-stale", "3"]).contains("PRIMARY_HEARTBEAT_STALLED")))
    }
}
