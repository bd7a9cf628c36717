import Foundation
import MarinaSandbox
import MarinaTestSupport
import Testing
import TopologyStore

/// `marina controller status` on a sandbox, and `marina controller --config F` still running a controller.
@Suite("Controller status", .serialized)
struct ControllerStatusTests {
    @Test("the sandbox's controller leads with a lease left within its TTL; a standby is listed, not leading; a dead one vanishes")
    func status() async throws {
        let sandbox = try await TestServers.privateSandbox("controller-status", controller: true)
        defer { TestServers.stop(sandbox) }
        let environment = ["MARINA_SANDBOX_DIR": sandbox.directory]
        func status() throws -> [String: Any] {
            let result = try runMarina(["controller", "status", "--json"], environment: environment)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        }
        func controllers(_ status: [String: Any]) -> [String: [String: Any]] {
            var byID = [String: [String: Any]]()
            for entry in status["controllers"] as? [[String: Any]] ?? [] {
                guard let registration = entry["registration"] as? [String: Any], let id = registration["id"] as? String else { continue }
                byID[id] = entry
            }
            return byID
        }

        // The sandbox's controller registers when it starts, and says it leads once it does (within a quarter second).
        var current = [String: Any]()
        #expect(
            try await eventually(10) {
                current = try status()
                return (controllers(current)["sandbox-controller"]?["registration"] as? [String: Any])?["leading"] as? Bool == true
            }, "\(current)")
        let leader = try #require(current["leader"] as? [String: Any])
        #expect(leader["id"] as? String == "sandbox-controller")
        let remaining = try #require(leader["lease_remaining"] as? Int)
        #expect(remaining > 0 && remaining <= 5, "lease left \(remaining) s, TTL 5")
        #expect(leader["lease_granted"] as? Int == 5)
        let own = try #require(controllers(current)["sandbox-controller"])
        #expect(own["is_leader"] as? Bool == true && own["stale"] as? Bool == false)
        let registration = try #require(own["registration"] as? [String: Any])
        #expect(registration["leading"] as? Bool == true)
        #expect(registration["version"] as? String == "0.1.0")
        #expect((registration["http"] as? String)?.hasSuffix(":\(sandbox.http?.controllerPort ?? 0)") == true, "\(registration)")
        #expect((own["age_seconds"] as? Double).map { $0 < 5 } == true)

        // A standby started the old way (`marina controller --config F`, the default subcommand `run`).
        let standby = try startStandby(sandbox)
        #expect(try await eventually(15) { controllers(try status())["standby"] != nil }, "the standby never registered")
        let second = try status()
        #expect(controllers(second)["standby"]?["is_leader"] as? Bool == false)
        #expect((controllers(second)["standby"]?["registration"] as? [String: Any])?["leading"] as? Bool == false)
        #expect((second["leader"] as? [String: Any])?["id"] as? String == "sandbox-controller")
        let table = try runMarina(["controller", "status"], environment: environment)
        #expect(table.stdout.contains("Leader: sandbox-controller") && table.stdout.contains("standby"), "\(table.stdout)")

        // Killed, its entry goes with its lease (5 s).
        kill(standby, SIGKILL)
        #expect(try await eventually(20) { controllers(try status())["standby"] == nil }, "the dead standby is still listed")

        // The controller's own configuration reaches etcd as well.
        let viaConfig = try runMarina(
            ["controller", "status", "--controller-config", sandbox.directory + "/controller.yaml"], removing: ["MARINA_SANDBOX_DIR"])
        #expect(viaConfig.status == 0 && viaConfig.stdout.contains("Leader: sandbox-controller"), "\(viaConfig.stdout)\(viaConfig.stderr)")

        // Stopped (it resigns): nobody leads, which needs attention (exit 6).
        try await Sandbox.stopController(directory: sandbox.directory)
        var nobody = try runMarina(["controller", "status"], environment: environment)
        for _ in 0..<100 where nobody.status != 6 {
            try await Task.sleep(for: .milliseconds(100))
            nobody = try runMarina(["controller", "status"], environment: environment)
        }
        #expect(nobody.status == 6 && nobody.stdout.contains("No controller leads."), "\(nobody.stdout)\(nobody.stderr)")
    }
}
