import Foundation
import MarinaSandbox
import MarinaTestSupport
import Testing

/// The command line uses a sandbox's etcd only when told to (`--sandbox DIR`,
/// `MARINA_SANDBOX_DIR`), through the `etcd.yaml` the sandbox writes, TLS included.
@Suite("marina --sandbox")
struct SandboxFlagTests {
    static let unset = ["MARINA_ETCD", "MARINA_SANDBOX_DIR"]

    @Test("--sandbox DIR and MARINA_SANDBOX_DIR reach a TLS sandbox's etcd; down removes etcd.yaml")
    func tlsSandbox() async throws {
        let sandbox = try await TestServers.privateSandbox("sandbox-flag", sections: 0, tls: true)
        defer { TestServers.stop(sandbox) }
        #expect(FileManager.default.fileExists(atPath: sandbox.directory + "/etcd.yaml"))
        let byFlag = try runMarina(["datacenter", "list", "--sandbox", sandbox.directory], removing: Self.unset)
        #expect(byFlag.status == 0, "\(byFlag.stderr)")
        let byEnvironment = try runMarina(["datacenter", "list"], environment: ["MARINA_SANDBOX_DIR": sandbox.directory], removing: ["MARINA_ETCD"])
        #expect(byEnvironment.status == 0, "\(byEnvironment.stderr)")
        let both = try runMarina(["datacenter", "list", "--sandbox", sandbox.directory, "--etcd", sandbox.etcd.url], removing: Self.unset)
        #expect(both.status != 0 && both.stderr.contains("--etcd and --sandbox name two etcds: give one"), "\(both.stderr)")
        _ = try Sandbox.down(directory: sandbox.directory)
        #expect(!FileManager.default.fileExists(atPath: sandbox.directory + "/etcd.yaml"))
    }

    @Test("without --etcd, --sandbox or their variables, no sandbox is looked for, even in ./.sandbox")
    func neverSilently() throws {
        let directory = NSTemporaryDirectory() + "marina-no-sandbox-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory + "/.sandbox", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "etcd:\n  endpoints: [http://127.0.0.1:1]\n".write(toFile: directory + "/.sandbox/etcd.yaml", atomically: true, encoding: .utf8)
        let result = try runMarina(["datacenter", "list"], removing: Self.unset, in: directory)
        #expect(result.status == 1)
        #expect(
            result.stderr.contains("no etcd given: pass --etcd URL or set MARINA_ETCD (for a sandbox: --sandbox DIR or MARINA_SANDBOX_DIR)"),
            "\(result.stderr)")
        let missing = try runMarina(["datacenter", "list", "--sandbox", directory + "/none"], removing: Self.unset)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("--sandbox: no sandbox runs in \(directory)/none (no etcd.yaml there)"), "\(missing.stderr)")
    }
}
