import Grants
import Testing
import Topology

@Suite("Importing accounts from a live server")
struct ImportTests {
    @Test("one account per user name with all its hosts, one per role; what the planner expects is what was read")
    func grouping() throws {
        let states = GrantPlanner.expected(desired())
        let accounts = try GrantImport.accounts(from: states)
        #expect(accounts == desired().mapValues(\.canonical))
        #expect(GrantPlanner.expected(accounts) == states)
    }

    @Test("an account without a password has no authentication")
    func noPassword() throws {
        let state = AccountState(user: "nopw", host: "%", privileges: ["*.*": ["PROCESS"]])
        let accounts = try GrantImport.accounts(from: [state.key: state])
        #expect(accounts["nopw"] == ManagedAccount(name: "nopw", hosts: ["%"], privileges: ["*.*": ["PROCESS"]]))
    }

    @Test(
        "hosts that differ in anything but the host are refused, naming the user and what differs, never a hash",
        arguments: [
            ("authentication", { @Sendable (s: inout AccountState) in s.authentication = "*0000000000000000000000000000000000000000" }),
            ("privileges", { @Sendable (s: inout AccountState) in s.privileges["*.*"] = ["PROCESS"] }),
            ("tls", { @Sendable (s: inout AccountState) in s.tls = .x509 }),
            ("limits", { @Sendable (s: inout AccountState) in s.limits.maxUserConnections = 1 }),
            ("roles", { @Sendable (s: inout AccountState) in s.roles = [] }),
            ("default role", { @Sendable (s: inout AccountState) in s.defaultRole = nil }),
        ] as [(String, @Sendable (inout AccountState) -> Void)])
    func differingHosts(_ field: String, change: @Sendable (inout AccountState) -> Void) throws {
        var states = GrantPlanner.expected(desired())
        change(&states[key("wikiuser", "10.64.%")]!)
        let error = try #require(throws: GrantsError.self) { try GrantImport.accounts(from: states) }
        #expect(error.account == "wikiuser")
        #expect(error.message.contains("10.192.% and 10.64.% differ in \(field)"))
        #expect(!error.description.contains(nativeHash) && !error.description.contains("*0000"))
    }

    @Test(
        "unsupported plugins and hashes the source of truth refuses",
        arguments: [
            ("pam", "x", "pam, which Marina does not manage"),
            ("mysql_native_password OR unix_socket", "\(nativeHash) OR ", "mysql_native_password OR unix_socket"),
            ("mysql_native_password", "378b243e220ca493", "is not a mysql_native_password hash"),
            ("ed25519", nil, "ed25519 needs a hash"),
        ] as [(String, String?, String)])
    func refusedAuthentication(plugin: String, authentication: String?, mentions: String) throws {
        let state = AccountState(user: "old", host: "%", plugin: plugin, authentication: authentication)
        let error = try #require(throws: GrantsError.self) { try GrantImport.accounts(from: [state.key: state]) }
        #expect(error.account == "old")
        #expect(error.message.contains(mentions))
        #expect(!error.message.contains("378b243e220ca493"))
    }

    @Test("a name that is both a user and a role is refused")
    func userAndRole() throws {
        let role = AccountState(user: "both", host: "", isRole: true)
        let user = AccountState(user: "both", host: "%")
        let error = try #require(throws: GrantsError.self) { try GrantImport.accounts(from: [role.key: role, user.key: user]) }
        #expect(error.description.contains("both a role and a user"))
    }
}
