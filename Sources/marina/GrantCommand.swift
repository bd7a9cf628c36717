import ArgumentParser
import Foundation
import Topology
import TopologyStore

extension TLSRequirement: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased()) }
}

extension Authentication.Plugin: ExpressibleByArgument {}
extension VariableRole: ExpressibleByArgument {}

/// `marina grant`: the managed accounts of each section, staged like the topology and
/// committed with `marina config commit`; `grant sync` applies them to every instance.
struct GrantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant",
        abstract: "Managed accounts, roles and privileges of each section (staged until `config commit`; `grant sync` applies them).",
        discussion: """
            Only the account names listed for a section are managed: every account of such a name (on any host) is Marina's \
            to create, change or drop on the section's instances, and no other account is ever read into a plan or touched. \
            Passwords never reach etcd: `--password-file` (or the prompt) gives the password, and only its \
            mysql_native_password hash is stored. Output never shows a hash.
            """,
        subcommands: [
            Show.self, User.self, SetPrivileges.self, Revoke.self, RoleCommand.self, Unmanage.self, Diff.self, GrantImportCommand.self,
            GrantSyncCommand.self,
        ])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a section's staged managed accounts (hashes redacted).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The section.") var section: String
        @Argument(help: "One account (default: all).") var account: String?
        @Flag(help: "Show what is committed instead of what is staged.") var committed = false

        func run() async throws {
            try await running {
                let topology: Topology
                if committed {
                    topology = try await store.store().committedTopology() ?? Topology()
                } else {
                    topology = try await store.store().read().staged.topology
                }
                guard topology.sections[section] != nil else { throw UsageProblem("unknown section \(section)") }
                var accounts = (topology.grants[section] ?? [:]).values.sorted { $0.name < $1.name }.map { $0.redacted() }
                if let account {
                    accounts = accounts.filter { $0.name == account }
                    guard !accounts.isEmpty else { throw UsageProblem("\(account) is not a managed account of section \(section)") }
                }
                if store.json {
                    try printJSON(accounts)
                } else if accounts.isEmpty {
                    print("Section \(section) has no managed account.")
                } else {
                    print(accounts.map(GrantRendering.describe).joined(separator: "\n"))
                }
            }
        }
    }

    struct User: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a managed user, or change its hosts, authentication, TLS requirement or limits.",
            discussion: """
                A new user needs --host and one of --password-file, --password-prompt, --hash-file or --unix-socket. \
                Options not given keep their staged value.
                """)
        @OptionGroup var store: StoreOptions
        @Argument(help: "The section.") var section: String
        @Argument(help: "The user name.") var name: String
        @Option(name: .customLong("host"), help: "A host pattern (10.64.%, localhost); repeat for several. Replaces the staged list.")
        var hosts: [String] = []
        @Option(help: "A file holding the password (one line); its mysql_native_password hash is stored, never the password.")
        var passwordFile: String?
        @Flag(help: "Ask for the password on the terminal (not echoed).") var passwordPrompt = false
        @Option(help: "A file holding a hash made elsewhere (for ed25519: the value of ed25519_password()).") var hashFile: String?
        @Option(help: "The plugin of --hash-file: mysql_native_password or ed25519.") var plugin: Authentication.Plugin?
        @Flag(help: "Log in through unix_socket (no password).") var unixSocket = false
        @Option(help: "NONE, SSL or X509.") var tls: TLSRequirement?
        @Option(help: "MAX_USER_CONNECTIONS (0: unlimited).") var maxUserConnections: Int?
        @Option(help: "MAX_QUERIES_PER_HOUR (0: unlimited).") var maxQueriesPerHour: Int?
        @Option(help: "MAX_UPDATES_PER_HOUR (0: unlimited).") var maxUpdatesPerHour: Int?
        @Option(help: "MAX_CONNECTIONS_PER_HOUR (0: unlimited).") var maxConnectionsPerHour: Int?

        func validate() throws {
            let sources = [passwordFile != nil, passwordPrompt, hashFile != nil, unixSocket].filter { $0 }.count
            if sources > 1 { throw ValidationError("give one of --password-file, --password-prompt, --hash-file and --unix-socket") }
            if plugin != nil && hashFile == nil { throw ValidationError("--plugin goes with --hash-file") }
            if plugin == .unixSocket { throw ValidationError("--plugin unix_socket: use --unix-socket") }
        }

        func run() async throws {
            try await running {
                let authentication = try readAuthentication()
                let store = try store.store()
                let snapshot = try await store.read().staged
                var account = snapshot.topology.grants[section]?[name] ?? ManagedAccount(name: name)
                if snapshot.topology.grants[section]?[name] == nil {
                    guard !hosts.isEmpty else { throw UsageProblem("a new user needs --host") }
                    guard authentication != nil else {
                        throw UsageProblem("a new user needs --password-file, --password-prompt, --hash-file or --unix-socket")
                    }
                }
                guard account.kind == .user else { throw UsageProblem("\(name) is a role, not a user") }
                if !hosts.isEmpty { account.hosts = hosts }
                if let authentication { account.authentication = authentication }
                if let tls { account.tls = tls }
                if let maxUserConnections { account.limits.maxUserConnections = maxUserConnections }
                if let maxQueriesPerHour { account.limits.maxQueriesPerHour = maxQueriesPerHour }
                if let maxUpdatesPerHour { account.limits.maxUpdatesPerHour = maxUpdatesPerHour }
                if let maxConnectionsPerHour { account.limits.maxConnectionsPerHour = maxConnectionsPerHour }
                let outcome = try await store.apply(.setAccount(section: section, account: account), over: snapshot, by: self.store.actor)
                try report(outcome, done: "Staged user \(name) of \(section)", json: self.store.json)
            }
        }

        private func readAuthentication() throws -> Authentication? {
            if unixSocket { return Authentication(plugin: .unixSocket) }
            if let hashFile {
                let hash = try SecretFile.read(hashFile, what: "hash")
                let authentication = Authentication(plugin: plugin ?? .mysqlNativePassword, hash: hash)
                if let problem = authentication.problem { throw UsageProblem("--hash-file \(hashFile): \(problem)") }
                return authentication
            }
            let password: String
            if let passwordFile {
                password = try SecretFile.read(passwordFile, what: "password")
            } else if passwordPrompt {
                password = try SecretFile.prompt("Password for \(name): ")
            } else {
                return nil
            }
            guard !password.isEmpty else { throw UsageProblem("the password is empty") }
            return Authentication(plugin: .mysqlNativePassword, hash: Authentication.nativePasswordHash(of: Array(password.utf8)))
        }
    }

    /// What `grant set` and `grant revoke` name: the account, the object, the privileges.
    struct PrivilegeArguments: ParsableArguments {
        @OptionGroup var store: StoreOptions
        @Argument(help: "The section.") var section: String
        @Argument(help: "The managed user or role.") var name: String
        @Option(help: "The object: *.*, db.*, db.table, 'PROCEDURE db.p'.") var on: String
        @Argument(help: "Privileges: SELECT INSERT 'SELECT (col1, col2)' 'GRANT OPTION' ... (revoke: or ALL)") var privileges: [String]

        func edit(add: Bool) async throws {
            try await running {
                try await editPrivileges(store: store, section: section, name: name, object: on, privileges: privileges, add: add)
            }
        }
    }

    struct SetPrivileges: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Grant privileges on one object to a managed user or role (added to what it has).")
        @OptionGroup var arguments: PrivilegeArguments

        func run() async throws { try await arguments.edit(add: true) }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take privileges on one object from a managed user or role (ALL takes every privilege on it).")
        @OptionGroup var arguments: PrivilegeArguments

        func run() async throws { try await arguments.edit(add: false) }
    }

    struct Unmanage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop managing an account: it is left on the servers as it is and never touched again.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The section.") var section: String
        @Argument(help: "The managed user or role.") var name: String

        func run() async throws {
            try await running {
                let outcome = try await store.store().apply(.unmanageAccount(section: section, name: name), by: store.actor)
                try report(outcome, done: "\(name) of \(section) is no longer managed", json: store.json)
            }
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What a commit would change in the managed accounts and variables (hashes redacted). Exit 6 when there is a difference.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "One section (default: all).") var section: String?

        func run() async throws {
            try await running {
                let store = try store.store()
                let staged = try await store.read().staged.topology
                let committed = try await store.committedTopology() ?? Topology()
                var changes = ConfigDiff.grantAndVariableChanges(from: committed, to: staged)
                if let section { changes = changes.filter { $0.entry == section || $0.entry.hasSuffix(" in \(section)") } }
                if self.store.json { try printJSON(changes) } else { print(renderChanges(changes)) }
                if !changes.isEmpty { throw Exit.attention }
            }
        }
    }
}

/// `marina grant role create|grant|revoke`.
struct RoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "role", abstract: "Managed roles: create one, grant it to a managed user, revoke it.",
        subcommands: [Create.self, Grant.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a managed role (give it privileges with `grant set`).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The section.") var section: String
        @Argument(help: "The role name.") var role: String

        func run() async throws {
            try await running {
                let store = try store.store()
                let snapshot = try await store.read().staged
                guard snapshot.topology.grants[section]?[role] == nil else { throw UsageProblem("\(role) is already managed in \(section)") }
                let outcome = try await store.apply(
                    .setAccount(section: section, account: ManagedAccount(name: role, kind: .role)), over: snapshot, by: self.store.actor)
                try report(outcome, done: "Staged role \(role) of \(section)", json: self.store.json)
            }
        }
    }

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Grant a managed role to a managed user or role.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The section.") var section: String
        @Argument(help: "The role.") var role: String
        @Option(help: "The managed user (or role) that gets it.") var to: String
        @Flag(help: "Make it the user's default role (enabled at login).") var `default` = false

        func run() async throws {
            try await running {
                try await editAccount(store: store, section: section, name: to, done: "Staged: \(role) granted to \(to) in \(section)") {
                    $0.roles.append(role)
                    if `default` { $0.defaultRole = role }
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a managed role from a managed user or role.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The section.") var section: String
        @Argument(help: "The role.") var role: String
        @Option(help: "The managed user (or role) that loses it.") var from: String

        func run() async throws {
            try await running {
                try await editAccount(store: store, section: section, name: from, done: "Staged: \(role) revoked from \(from) in \(section)") {
                    guard $0.roles.contains(role) else { throw UsageProblem("\(from) does not have role \(role)") }
                    $0.roles.removeAll { $0 == role }
                    if $0.defaultRole == role { $0.defaultRole = nil }
                }
            }
        }
    }
}

/// Reads the staged account, changes it, and stages it again over the same snapshot.
private func editAccount(
    store options: StoreOptions, section: String, name: String, done: String, _ change: (inout ManagedAccount) throws -> Void
) async throws {
    let store = try options.store()
    let snapshot = try await store.read().staged
    guard snapshot.topology.sections[section] != nil else { throw UsageProblem("unknown section \(section)") }
    guard var account = snapshot.topology.grants[section]?[name] else {
        throw UsageProblem("\(name) is not a managed account of section \(section) (add it with `marina grant user` or `grant role create`)")
    }
    try change(&account)
    try report(
        try await store.apply(.setAccount(section: section, account: account), over: snapshot, by: options.actor), done: done, json: options.json)
}

private func editPrivileges(store: StoreOptions, section: String, name: String, object: String, privileges: [String], add: Bool) async throws {
    guard let canonicalObject = GrantNames.object(object) else {
        throw UsageProblem("--on \(object): not an object (write *.*, db.*, db.table or 'PROCEDURE db.p')")
    }
    let revokeAll = !add && privileges.map { $0.uppercased() } == ["ALL"]
    var canonical = [String]()
    if !revokeAll {
        for privilege in privileges {
            guard let name = GrantNames.privilege(privilege) else { throw UsageProblem("\(privilege): not a MariaDB privilege") }
            canonical.append(name)
        }
        guard !canonical.isEmpty else { throw UsageProblem("name at least one privilege") }
    }
    let verb = add ? "granted to" : "revoked from"
    try await editAccount(store: store, section: section, name: name, done: "Staged: privileges on \(canonicalObject) \(verb) \(name) in \(section)")
    {
        account in
        var current = Set(account.privileges[canonicalObject] ?? [])
        if add {
            current.formUnion(canonical)
        } else if revokeAll {
            guard !current.isEmpty else { throw UsageProblem("\(name) has no privilege on \(canonicalObject)") }
            current = []
        } else {
            let missing = Set(canonical).subtracting(current)
            guard missing.isEmpty else {
                throw UsageProblem("\(name) does not have \(missing.sorted().joined(separator: ", ")) on \(canonicalObject)")
            }
            current.subtract(canonical)
        }
        account.privileges[canonicalObject] = current.isEmpty ? nil : current.sorted()
    }
}

/// Secrets read by the CLI: from a file, or from the terminal without echo; never from an argument.
enum SecretFile {
    static func read(_ path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw UsageProblem("cannot read the \(what) file \(path)")
        }
        var value = text
        while value.hasSuffix("\n") || value.hasSuffix("\r") { value.removeLast() }
        return value
    }

    static func prompt(_ question: String) throws -> String {
        guard isatty(STDIN_FILENO) == 1 else { throw UsageProblem("not on a terminal: use --password-file") }
        var saved = termios()
        tcgetattr(STDIN_FILENO, &saved)
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            print("")
        }
        print(question, terminator: "")
        guard let line = readLine(strippingNewline: true) else { throw UsageProblem("no password given") }
        return line
    }
}

/// How accounts print for people: never a hash.
enum GrantRendering {
    static func describe(_ account: ManagedAccount) -> String {
        var lines = ["\(account.kind == .role ? "role" : "user") \(account.name)"]
        if !account.hosts.isEmpty { lines.append("  hosts: \(account.hosts.joined(separator: ", "))") }
        if let authentication = account.authentication {
            lines.append("  authentication: \(authentication.plugin.rawValue)\(authentication.hash == nil ? "" : " (hash redacted)")")
        }
        if account.tls != .none { lines.append("  require: \(account.tls.rawValue)") }
        let limits = account.limits
        for (name, value) in [
            ("max_user_connections", limits.maxUserConnections), ("max_queries_per_hour", limits.maxQueriesPerHour),
            ("max_updates_per_hour", limits.maxUpdatesPerHour), ("max_connections_per_hour", limits.maxConnectionsPerHour),
        ] where value != 0 {
            lines.append("  \(name): \(value)")
        }
        for (object, privileges) in account.privileges.sorted(by: { $0.key < $1.key }) {
            lines.append("  \(privileges.joined(separator: ", ")) ON \(object)")
        }
        if !account.roles.isEmpty { lines.append("  roles: \(account.roles.joined(separator: ", "))") }
        if let role = account.defaultRole { lines.append("  default role: \(role)") }
        return lines.joined(separator: "\n")
    }
}
