import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Testing
import Topology
import TopologyStore

/// `marina grant` and `marina variable` against a real etcd: bad input gets one message naming
/// the problem, a non-zero exit, and the staged topology exactly as it was; a password becomes a
/// hash in etcd and never shows.
@Suite("Grant and variable commands")
struct GrantCommandLineTests {
    @Test(
        """
        a plaintext password as a hash, an unknown privilege, an unmanaged account, a role-derived variable, a value with \
        a quote: each refused with its reason, nothing staged; a password file stores only its hash, shown as <redacted>
        """)
    func badInputAndSecrets() async throws {
        let sandbox = try await TestServers.privateSandbox("cli-grants", sections: 0)
        defer { TestServers.stop(sandbox) }
        let etcd = ["--etcd", sandbox.etcd.url]
        #expect(try runMarina(["config", "import", examplePath()] + etcd).status == 0)
        func staged() async throws -> Topology { try await TopologyStore(etcd: sandbox.etcdClient).read().staged.topology }
        let secret = sandbox.directory + "/secret"
        try "not-a-hash-but-a-password\n".write(toFile: secret, atomically: true, encoding: .utf8)
        let before = try await staged()

        let refusals: [([String], Int32, String)] = [
            (["grant", "user", "s1", "app", "--host", "10.%", "--hash-file", secret], 1, "a plaintext password is never accepted"),
            (["grant", "user", "s1", "app", "--host", "10.%"], 1, "a new user needs --password-file"),
            (["grant", "set", "s1", "app", "--on", "wiki.*", "SELECT"], 1, "app is not a managed account of section s1"),
            (["grant", "user", "s9", "app", "--host", "10.%", "--unix-socket"], 1, "unknown section s9"),
            (["variable", "set", "s1", "read_only", "OFF"], 2, "variables.s1.all.read_only: follows the instance's role"),
            (["variable", "set", "s1", "long_query_time", "2' OR '1"], 2, "without quotes"),
            (["grant", "user", "s1", "app", "--host", "10.%", "--password-file", secret, "--unix-socket"], 64, "give one of"),
            (["grant", "user", "s1", "marina_controller", "--host", "10.%", "--unix-socket"], 2, "is MariaDB's or Marina's own account"),
            (["grant", "user", "s1", "root", "--host", "localhost", "--unix-socket"], 2, "is MariaDB's or Marina's own account"),
            (["variable", "set", "s1", "skip_name_resolve", "ON"], 2, "it stays in the server's own configuration"),
        ]
        for (arguments, status, message) in refusals {
            let result = try runMarina(arguments + etcd)
            #expect(result.status == status, "\(arguments): \(result.status) \(result.stdout)\(result.stderr)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            #expect(!result.stderr.contains("not-a-hash-but-a-password"), "the secret shows: \(result.stderr)")
        }
        #expect(try await staged() == before, "a refused command changed the staged topology")

        let created = try runMarina(["grant", "user", "s1", "app", "--host", "10.%", "--password-file", secret] + etcd)
        #expect(created.status == 0, "\(created.stderr)")
        let set = try runMarina(["grant", "set", "s1", "app", "--on", "wiki.*", "select", "replication client", "FLY"] + etcd)
        #expect(set.status == 1 && set.stderr.contains("FLY: not a MariaDB privilege"), "\(set.stderr)")
        #expect(try runMarina(["grant", "set", "s1", "app", "--on", "wiki.*", "select", "insert"] + etcd).status == 0)
        let hash = Authentication.nativePasswordHash(of: Array("not-a-hash-but-a-password".utf8))
        let account = try #require(try await staged().grants["s1"]?["app"])
        #expect(account.authentication == Authentication(plugin: .mysqlNativePassword, hash: hash))
        #expect(account.privileges == ["`wiki`.*": ["INSERT", "SELECT"]])
        for arguments in [["grant", "show", "s1"], ["grant", "show", "s1", "--json"], ["grant", "diff"], ["config", "diff"]] {
            let result = try runMarina(arguments + etcd)
            #expect(!(result.stdout + result.stderr).contains(String(hash.dropFirst())), "\(arguments) shows the hash")
            #expect(!(result.stdout + result.stderr).contains("not-a-hash-but-a-password"), "\(arguments) shows the password")
        }
        #expect(try runMarina(["grant", "show", "s1", "--json"] + etcd).stdout.contains("<redacted>"))
        #expect(try runMarina(["grant", "diff", "s1"] + etcd).stdout.contains("app in s1"))
    }
}
