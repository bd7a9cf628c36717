import Foundation
import Testing
import Topology

/// Managed accounts and variables as values: what validation refuses (a plaintext password
/// first), the password hash, redaction, edits and the YAML round trip.
@Suite("Topology: managed accounts and variables")
struct GrantModelTests {
    static let hash = Authentication.nativePasswordHash(of: Array("password".utf8))

    static func topology() -> Topology {
        var topology = smallTopology()
        topology.grants["s1"] = [
            "wikiuser": ManagedAccount(
                name: "wikiuser", hosts: ["10.192.%", "10.64.%"], authentication: Authentication(plugin: .mysqlNativePassword, hash: hash),
                privileges: ["`wiki`.*": ["INSERT", "SELECT"]], roles: ["reader"], defaultRole: "reader"),
            "reader": ManagedAccount(name: "reader", kind: .role, privileges: ["`wiki`.*": ["SELECT"]]),
        ]
        topology.variables["s1"] = ManagedVariables(all: ["long_query_time": "2"], replica: ["slave_parallel_threads": "4"])
        return topology
    }

    @Test("the mysql_native_password hash is MariaDB's PASSWORD(): SHA1(SHA1(password)) in upper-case hex after a star")
    func nativeHash() {
        // SELECT PASSWORD('password') on MariaDB 10.11.
        #expect(Self.hash == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19")
        #expect(Authentication.nativePasswordHash(of: []) == "*BE1BDEC0AA74B4DCB079943E70528096CCA985F8")
    }

    @Test("a valid set of managed accounts and variables passes")
    func valid() {
        #expect(Self.topology().validate().isEmpty, "\(Self.topology().validate())")
    }

    @Test("a plaintext password, an unknown privilege, an object not canonical, a role not managed are refused by path")
    func refusals() {
        var topology = Self.topology()
        topology.grants["s1"]!["wikiuser"]!.authentication = Authentication(plugin: .mysqlNativePassword, hash: "secret123")
        topology.grants["s1"]!["wikiuser"]!.privileges["wiki.*"] = ["SELECT"]
        topology.grants["s1"]!["wikiuser"]!.privileges["`wiki`.*"] = ["SELECT", "FLY"]
        topology.grants["s1"]!["wikiuser"]!.roles = ["reader", "writer"]
        let issues = topology.validate().map(\.description)
        #expect(issues.contains { $0.hasPrefix("grants.s1.wikiuser.authentication.hash:") && $0.contains("a plaintext password is never accepted") })
        #expect(!issues.contains { $0.contains("secret123") }, "an issue repeats the value: \(issues)")
        #expect(issues.contains { $0.contains("grants.s1.wikiuser.privileges.wiki.*") && $0.contains("write `wiki`.*") })
        #expect(issues.contains { $0.contains("\"FLY\" is not a privilege") })
        #expect(issues.contains { $0.contains("\"writer\" is not a managed role of this section") })
    }

    @Test("a role cannot log in; a default role must be granted; a role-derived variable and an unknown section are refused")
    func moreRefusals() {
        var topology = Self.topology()
        topology.grants["s1"]!["reader"]!.authentication = Authentication(plugin: .unixSocket)
        topology.grants["s1"]!["wikiuser"]!.defaultRole = "other"
        topology.variables["s1"]!.primary["read_only"] = "OFF"
        topology.variables["s9"] = ManagedVariables(all: ["long_query_time": "1"])
        topology.grants["s1"]!["nopassword"] = ManagedAccount(name: "nopassword", hosts: ["%"])
        let issues = topology.validate().map(\.description)
        #expect(issues.contains { $0.hasPrefix("grants.s1.nopassword.authentication: a user needs a hash or unix_socket") })
        #expect(issues.contains("grants.s1.reader.authentication: a role cannot log in"))
        #expect(issues.contains { $0.hasPrefix("grants.s1.wikiuser.default_role:") })
        #expect(issues.contains { $0.hasPrefix("variables.s1.primary.read_only:") })
        #expect(issues.contains("variables.s9: names unknown section \"s9\""))
    }

    @Test("a global privilege on a database, columns on a database, and one name managed by two sections of one instance are refused")
    func levelsAndSharedInstances() {
        var topology = Self.topology()
        topology.grants["s1"]!["wikiuser"]!.privileges["`wiki`.*"] = ["SELECT", "SUPER"]
        topology.grants["s1"]!["wikiuser"]!.privileges["`wiki`.`page`"] = ["SELECT (A)"]
        topology.grants["s1"]!["reader"]!.privileges["`db`.*"] = ["SELECT (A)"]
        #expect(topology.validate().map(\.description).contains { $0.contains("SUPER is not a privilege of a database (only of *.*)") })
        #expect(topology.validate().map(\.description).contains { $0.contains("grants.s1.reader.privileges.`db`.*: columns are granted on a table") })
        #expect(!topology.validate().map(\.description).contains { $0.contains("`wiki`.`page`") })
        var shared = Self.topology()
        shared.sections["s2"] = Section(name: "s2", datacenter: "dc1")
        shared.instances["db1002"]!.sections["s2"] = Membership(pooled: false, weight: 0)
        shared.grants["s2"] = ["reader": ManagedAccount(name: "reader", kind: .role)]
        #expect(
            shared.validate().map(\.description).contains { $0.hasPrefix("grants.s2.reader: is also managed in section s1, and db1002 is in both") })
    }

    @Test("edits: set an account (stored canonical), unmanage it (refused while a role is granted), set and remove variables")
    func edits() throws {
        var topology = Self.topology()
        var account = topology.grants["s1"]!["wikiuser"]!
        account.privileges["`wiki`.*"] = ["UPDATE", "SELECT", "select", "USAGE"]
        topology = try topology.applying(.setAccount(section: "s1", account: account))
        #expect(topology.grants["s1"]?["wikiuser"]?.privileges["`wiki`.*"] == ["SELECT", "UPDATE"])
        #expect(throws: EditError.self) { try topology.applying(.unmanageAccount(section: "s1", name: "reader")) }
        topology = try topology.applying(.unmanageAccount(section: "s1", name: "wikiuser"))
        #expect(topology.grants["s1"]?["wikiuser"] == nil)
        topology = try topology.applying(.setVariable(section: "s1", role: .replica, name: "slave_parallel_threads", value: nil))
        topology = try topology.applying(.setVariable(section: "s1", role: nil, name: "long_query_time", value: nil))
        #expect(topology.variables["s1"] == nil)
        #expect(throws: EditError.self) { try topology.applying(.setVariable(section: "s9", role: nil, name: "x", value: "1")) }
    }

    @Test("the diff of accounts never shows a hash: <redacted>, or <redacted, changed> when it changed")
    func redactedDiff() {
        let before = Self.topology()
        var after = before
        after.grants["s1"]!["wikiuser"]!.authentication?.hash = Authentication.nativePasswordHash(of: Array("other".utf8))
        let changes = ConfigDiff.grantAndVariableChanges(from: before, to: after)
        #expect(changes.count == 1)
        let text = changes.map(\.description).joined()
        #expect(text.contains("<redacted, changed>") && text.contains("wikiuser in s1"))
        #expect(!text.contains(Self.hash) && !text.contains(String(Self.hash.dropFirst(1))))
        #expect(
            TopologyEdit.setAccount(section: "s1", account: after.grants["s1"]!["wikiuser"]!).summary == "setAccount(section: s1, account: wikiuser)")
    }

    @Test("a topology document with accounts and variables reads back equal; without them it has no such keys")
    func document() throws {
        let topology = Self.topology()
        let yaml = try TopologyDocument(topology).yaml()
        #expect(try TopologyDocument.parse(yaml).topology == topology)
        #expect(!(try TopologyDocument(smallTopology()).yaml()).contains("grants"))
        #expect(throws: (any Error).self) { try TopologyDocument.parse(yaml.replacingOccurrences(of: "default_role:", with: "defualt_role:")) }
    }

    @Test("canonical names: objects and privileges as SHOW GRANTS prints them")
    func names() {
        #expect(GrantNames.object("wiki.*") == "`wiki`.*")
        #expect(GrantNames.object("`wiki%`.`page`") == "`wiki%`.`page`")
        #expect(GrantNames.object("procedure db.p") == "PROCEDURE `db`.`p`")
        #expect(GrantNames.object("db") == nil)
        #expect(GrantNames.privilege("replication client") == "BINLOG MONITOR")
        #expect(GrantNames.privilege("select (b, `a`)") == "SELECT (A, B)")
        #expect(GrantNames.privilege("DROP (a)") == nil)
    }
}

@Suite("Topology: exports without hashes")
struct RedactedExportTests {
    @Test("an export without hashes gives them back from the staged accounts on import; one it cannot is named")
    func roundTrip() {
        let topology = GrantModelTests.topology()
        let exported = topology.redactingHashes
        #expect(exported.grants["s1"]?["wikiuser"]?.authentication?.hash == "<redacted>")
        let (restored, unresolved) = exported.restoringRedactedHashes(from: topology)
        #expect(restored == topology && unresolved.isEmpty)
        let (_, missing) = exported.restoringRedactedHashes(from: smallTopology())
        #expect(missing == ["grants.s1.wikiuser.authentication.hash"])
    }
}
