import Foundation
import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Testing

@Suite("MariaDBClient when the server dies or hangs")
struct FaultTests {
    @Test("kill -9 of the server during a query gives connection-lost, and no reconnect happens")
    func killedServer() async throws {
        let sandbox = try await TestServers.privateSandbox("kill9")
        defer { TestServers.stop(sandbox) }
        let member = try #require(sandbox.instance(named: "db1001"))
        let client = try await MariaDBClient.connect(
            MariaDBConfiguration(
                endpoint: .tcp(host: "127.0.0.1", port: member.port), user: Sandbox.adminUser,
                password: try Credentials.load(from: sandbox.credentialsFile).adminPassword, readTimeout: 60))
        #expect(try await client.query("SELECT 1 AS one").first?.int("one") == 1)

        async let sleeping: Result<QueryResult, MariaDBError> = {
            do { return .success(try await client.query("SELECT SLEEP(50)")) } catch { return .failure(error as! MariaDBError) }
        }()
        // The server runs the query (another session sees it) before it dies.
        let observer = try await MariaDBClient.connect(
            MariaDBConfiguration(
                endpoint: .tcp(host: "127.0.0.1", port: member.port), user: Sandbox.adminUser,
                password: try Credentials.load(from: sandbox.credentialsFile).adminPassword))
        let deadline = Date().addingTimeInterval(10)
        var running = false
        while !running && Date() < deadline {
            running =
                try await observer.query(
                    "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO = 'SELECT SLEEP(50)'"
                ).first?.int("n") == 1
            if !running { try await Task.sleep(for: .milliseconds(20)) }
        }
        await observer.close()
        #expect(running, "the query never reached the server")
        kill(member.pid, SIGKILL)
        guard case .failure(let error) = await sleeping else {
            Issue.record("the query survived the server's death")
            return
        }
        #expect(error.isConnectionLost)
        #expect(error.code == 2013 || error.code == 2006)

        let again = try await #require(throws: MariaDBError.self) {
            try await MariaDBClient.connect(MariaDBConfiguration(endpoint: .socket(path: member.socket), user: "root", connectTimeout: 2))
        }
        #expect(again.isConnectionLost)
    }

    @Test("a SIGSTOPped server makes connect and read time out instead of hanging")
    func stoppedServer() async throws {
        let sandbox = try await TestServers.privateSandbox("sigstop")
        defer { TestServers.stop(sandbox) }
        let member = try #require(sandbox.instance(named: "db1001"))
        let client = try await MariaDBClient.connect(
            MariaDBConfiguration(endpoint: .socket(path: member.socket), user: "root", connectTimeout: 1, readTimeout: 1))
        kill(member.pid, SIGSTOP)
        defer { kill(member.pid, SIGCONT) }
        // kill() returns before every thread has stopped; wait until the kernel says so.
        try await waitUntilStopped(member.pid)

        let readError = try await #require(throws: MariaDBError.self) { try await client.query("SELECT 1") }
        #expect(readError.isTimeout)

        let connectError = try await #require(throws: MariaDBError.self) {
            try await MariaDBClient.connect(
                MariaDBConfiguration(endpoint: .tcp(host: "127.0.0.1", port: member.port), user: "root", connectTimeout: 1, readTimeout: 1))
        }
        #expect(connectError.isTimeout || connectError.isConnectionLost)
        await client.close()
    }
}
