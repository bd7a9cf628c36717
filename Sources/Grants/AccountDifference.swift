/// One way an account on an instance is not as desired. Its text never holds a secret: an
/// authentication difference names plugins only.
public struct AccountDifference: Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case missing, unexpected, authentication, tls, limits, privileges, roles
        case defaultRole = "default-role"
    }

    /// `AccountKey.description`.
    public var account: String
    public var kind: Kind
    /// Human text, e.g. "SELECT, INSERT on `wiki`.*".
    public var expected: String
    public var observed: String

    public init(account: String, kind: Kind, expected: String, observed: String) {
        self.account = account
        self.kind = kind
        self.expected = expected
        self.observed = observed
    }

    public var description: String { "\(account): \(kind.rawValue): expected \(expected), observed \(observed)" }
}

extension GrantPlanner {
    /// Every difference between `expected` and `observed` for the accounts whose name is in
    /// `names`, by account then kind (privileges one object at a time).
    public static func differences(
        expected: [AccountKey: AccountState], observed: [AccountKey: AccountState], names: Set<String>
    ) -> [AccountDifference] {
        var differences = [AccountDifference]()
        let keys = Set(expected.keys).union(observed.keys).filter { names.contains($0.user) }.sorted()
        for key in keys {
            let account = key.description
            func add(_ kind: AccountDifference.Kind, _ expected: String, _ observed: String) {
                differences.append(AccountDifference(account: account, kind: kind, expected: expected, observed: observed))
            }
            guard let want = expected[key] else {
                add(.unexpected, "none", key.isRole ? "a role" : "an account")
                continue
            }
            guard let have = observed[key] else {
                add(.missing, key.isRole ? "a role" : "an account", "none")
                continue
            }
            if want.plugin != have.plugin {
                add(.authentication, GrantText.plugin(want.plugin), GrantText.plugin(have.plugin))
            } else if want.authentication != have.authentication {
                add(
                    .authentication, GrantText.plugin(want.plugin),
                    "\(GrantText.plugin(have.plugin)) with another authentication string (authentication differs)")
            }
            if want.tls != have.tls { add(.tls, "REQUIRE \(want.tls.rawValue)", "REQUIRE \(have.tls.rawValue)") }
            if want.limits != have.limits { add(.limits, GrantText.limits(want.limits), GrantText.limits(have.limits)) }
            for object in Set(want.privileges.keys).union(have.privileges.keys).sorted() {
                let wanted = want.privileges[object] ?? []
                let held = have.privileges[object] ?? []
                if wanted != held {
                    add(.privileges, GrantText.privileges(wanted, on: object), GrantText.privileges(held, on: object))
                }
            }
            if want.roles != have.roles { add(.roles, GrantText.list(want.roles), GrantText.list(have.roles)) }
            if want.defaultRole != have.defaultRole { add(.defaultRole, want.defaultRole ?? "none", have.defaultRole ?? "none") }
        }
        return differences
    }
}
