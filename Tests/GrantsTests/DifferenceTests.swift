import Foundation
import Grants
import Testing
import Topology

@Suite("Differences between desired and observed accounts")
struct DifferenceTests {
    @Test("every kind, in kebab-case, with human text and never a hash")
    func everyKind() throws {
        let expected = GrantPlanner.expected(desired())
        var observed = expected
        let user = key("wikiuser", "10.64.%")
        observed[user]!.authentication = "*0000000000000000000000000000000000000000"
        observed[user]!.tls = .none
        observed[user]!.limits = ResourceLimits(maxQueriesPerHour: 3)
        observed[user]!.privileges["`wiki`.*"] = ["INSERT", "SELECT"]
        observed[user]!.roles = []
        observed[user]!.defaultRole = nil
        observed[key("edu", "localhost")]!.plugin = "mysql_native_password"
        observed[key("edu", "localhost")]!.authentication = nativeHash
        observed[key("sock", "localhost")] = nil
        observed[key("reader", "")]!.privileges = [:]
        observed[key("wikiuser", "%")] = AccountState(user: "wikiuser", host: "%")
        observed[key("other", "%")] = AccountState(user: "other", host: "%")
        let differences = GrantPlanner.differences(expected: expected, observed: observed, names: managed)
        #expect(
            differences.map(\.description) == [
                "'edu'@'localhost': authentication: expected ed25519, observed mysql_native_password",
                "reader: privileges: expected SELECT on `wiki`.*, observed nothing on `wiki`.*",
                "'sock'@'localhost': missing: expected an account, observed none",
                "'wikiuser'@'%': unexpected: expected none, observed an account",
                "'wikiuser'@'10.64.%': authentication: expected mysql_native_password, "
                    + "observed mysql_native_password with another authentication string (authentication differs)",
                "'wikiuser'@'10.64.%': tls: expected REQUIRE SSL, observed REQUIRE NONE",
                "'wikiuser'@'10.64.%': limits: expected MAX_USER_CONNECTIONS 10, observed MAX_QUERIES_PER_HOUR 3",
                "'wikiuser'@'10.64.%': privileges: expected DELETE, INSERT, UPDATE on `wiki`.*, observed INSERT, SELECT on `wiki`.*",
                "'wikiuser'@'10.64.%': roles: expected reader, observed none",
                "'wikiuser'@'10.64.%': default-role: expected reader, observed none",
            ])
        #expect(AccountDifference.Kind.defaultRole.rawValue == "default-role")
        for difference in differences {
            #expect(!difference.description.contains(nativeHash) && !difference.description.contains(edHash))
            #expect(!difference.description.contains("*0000"))
        }
        let encoded = try JSONEncoder().encode(differences)
        #expect(!String(decoding: encoded, as: UTF8.self).contains(nativeHash))
    }
}
