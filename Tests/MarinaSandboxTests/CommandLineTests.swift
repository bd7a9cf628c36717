import Foundation
import MarinaSandbox
import MarinaTestSupport
import Testing

@Suite("The marina command line")
struct CommandLineTests {
    @Test("sandbox status --json lists every instance and the etcd URL")
    func statusJSON() async throws {
        let sandbox = try await TestServers.shared()
        let result = try runMarina(["sandbox", "status", "--json", "--dir", sandbox.directory])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect((json["etcd"] as? [String: Any])?["url"] as? String == sandbox.etcd.url)
        let instances = try #require(json["instances"] as? [[String: Any]])
        #expect(instances.compactMap { $0["name"] as? String } == ["db1001", "db1002", "db1003"])
        #expect(instances.compactMap { $0["role"] as? String } == ["primary", "replica", "replica"])
        #expect(instances.compactMap { $0["section"] as? String } == ["s1", "s1", "s1"])
        #expect(instances.compactMap { $0["port"] as? Int } == sandbox.instances.map(\.port))
        #expect(instances.compactMap { $0["socket"] as? String } == sandbox.instances.map(\.socket))
    }

    @Test("human status draws the replication tree read from the servers")
    func statusText() async throws {
        let sandbox = try await TestServers.shared()
        let result = try runMarina(["sandbox", "status", "--dir", sandbox.directory])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("db1001  127.0.0.1:\(sandbox.instances[0].port)  read_only=OFF  writable primary"))
        #expect(result.stdout.contains("└─ db1002"))
        #expect(result.stdout.contains("replica of db1001 io=Yes sql=Yes"))
    }

    @Test("an unknown flag is refused with ArgumentParser's message and a non-zero exit")
    func unknownFlag() throws {
        let result = try runMarina(["sandbox", "up", "--no-such-flag"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("Unknown option '--no-such-flag'"))
    }

    @Test("status without a sandbox says so and exits 1")
    func statusWithoutSandbox() throws {
        let directory = TestServers.root + "/nothing-here"
        let result = try runMarina(["sandbox", "status", "--dir", directory])
        #expect(result.status == 1)
        #expect(result.stderr == "marina: no sandbox is running in \(directory): start one with `marina sandbox up --dir \(directory)`\n")
    }

    @Test("up on a port in use names the port, exits 1 and leaves no process")
    func portInUse() throws {
        let base = try Ports.findFreeBlock(count: 5)
        let blocker = try ListeningSocket(port: base)
        defer { blocker.close() }
        let directory = TestServers.root + "/cli-port"
        let result = try runMarina(["sandbox", "up", "--dir", directory, "--base-port", String(base)])
        #expect(result.status == 1)
        #expect(result.stderr.contains("port \(base) (for etcd clients) is already in use"))
        #expect(processes(containing: directory + "/").isEmpty)
    }

    @Test("up with too many sections is refused before anything starts")
    func badSections() throws {
        let directory = TestServers.root + "/cli-sections"
        let result = try runMarina(["sandbox", "up", "--dir", directory, "--sections", "12"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("--sections must be between 1 and 9 (got 12)"))
        #expect(processes(containing: directory + "/").isEmpty)
    }

    @Test("version names marina and both C libraries")
    func version() throws {
        let result = try runMarina(["version"])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("marina "))
        #expect(result.stdout.contains("libmariadb 3."))
        #expect(result.stdout.contains("libcurl/"))
    }
}

@Suite("marina status")
struct StatusCommandTests {
    @Test("shows each instance as configured and as its agent observes it, from etcd only")
    func status() async throws {
        let sandbox = try await TestServers.shared()
        let result = try runMarina(["status", "s1", "--json", "--etcd", sandbox.etcd.url])
        #expect(result.status == 0, "\(result.stderr)")
        let sections = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        let members = try #require(sections.first?["members"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: members.compactMap { member in (member["name"] as? String).map { ($0, member) } })
        #expect(byName["db1001"]?["configuredRole"] as? String == "primary")
        #expect(byName["db1001"]?["observedRole"] as? String == "primary")
        #expect(byName["db1002"]?["observedRole"] as? String == "replica")
        #expect(byName["db1002"]?["source"] as? String == "db1001")
        #expect(byName["db1003"]?["sqlThread"] as? String == "Yes")
        #expect(byName["db1003"]?["heartbeatLag"] as? Double != nil)
        let text = try runMarina(["status", "--etcd", sandbox.etcd.url]).stdout
        #expect(text.contains("└─ db1002  configured replica  observed replica  read_only=ON  from db1001 io=Yes sql=Yes"))
        #expect(try runMarina(["status", "s9", "--etcd", sandbox.etcd.url]).stderr == "marina: unknown section s9\n")
    }
}
