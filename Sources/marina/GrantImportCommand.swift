import ArgumentParser
import ConfigurationFiles
import Foundation
import Grants
import MariaDBClient
import Topology
import TopologyStore

/// `marina grant import`: a live server's accounts into the staged managed accounts, so that a
/// site adopts Marina without retyping its grants.
struct GrantImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Read accounts off a live instance (SHOW CREATE USER, SHOW GRANTS, roles) into a section's staged managed accounts.",
        discussion: """
            Every account whose user name matches --account (a SQL LIKE pattern, default every account but MariaDB's own, \
            Marina's and the one reading) becomes managed, with all its hosts, replacing a staged account of the same name; roles granted \
            to them are imported too. A user whose hosts differ in anything but the host, or that logs in with a plugin \
            other than mysql_native_password, ed25519 or unix_socket, is refused by name and nothing is staged. Review \
            with `marina grant diff`, then `marina config commit`.
            """)
    @OptionGroup var store: StoreOptions
    @Option(help: "The instance to read (its address from the topology).") var from: String
    @Option(help: "The section whose managed accounts they become (default: the instance's only section).") var section: String?
    @Option(help: "A SQL LIKE pattern of user names (repeat for several; default: every account but system ones).")
    var account: [String] = []
    @Option(help: "A client option file ([client] user and password) of an account that may read the mysql schema.")
    var credentialsFile: String
    @Option(help: "The option group of --credentials-file.") var credentialsGroup = "client"

    func run() async throws {
        try await running {
            let store = try store.store()
            let snapshot = try await store.read().staged
            guard let instance = snapshot.topology.instances[from] else { throw UsageProblem("unknown instance \(from)") }
            let sectionName: String
            if let section {
                guard instance.sections[section] != nil else { throw UsageProblem("\(from) is not configured in section \(section)") }
                sectionName = section
            } else {
                guard instance.sections.count == 1, let only = instance.sections.keys.first else {
                    throw UsageProblem("\(from) is in \(instance.sections.count) sections: name one with --section")
                }
                sectionName = only
            }
            let (user, password): (String?, String?)
            do {
                (user, password) = try OptionFile.clientCredentials(credentialsFile, group: credentialsGroup)
            } catch {
                throw UsageProblem("--credentials-file: \(error)")
            }
            guard let user else { throw UsageProblem("--credentials-file \(credentialsFile) names no user in [\(credentialsGroup)]") }
            let client = try await MariaDBClient.connect(
                MariaDBConfiguration(endpoint: .tcp(host: instance.host, port: instance.port), user: user, password: password))
            let states: [AccountKey: AccountState]
            do {
                let query: @Sendable (String) async throws -> [[String: String?]] = { sql in
                    let result = try await client.query(sql)
                    return result.rows.map { row in Dictionary(uniqueKeysWithValues: result.columns.map { ($0, row[$0]) }) }
                }
                var read = [AccountKey: AccountState]()
                for pattern in account.isEmpty ? ["%"] : account {
                    read.merge(try await AccountReader.read(matching: pattern, query: query)) { first, _ in first }
                }
                // Never MariaDB's or Marina's own accounts, nor the one reading (a pattern naming them is refused by validation).
                if account.isEmpty { read = read.filter { !GrantNames.isReserved($0.key.user) && $0.key.user != user && !$0.key.user.isEmpty } }
                // Roles granted to what is imported come along, so that the import validates.
                let roles = Set(read.values.flatMap(\.roles)).subtracting(read.keys.map(\.user))
                if !roles.isEmpty { read.merge(try await AccountReader.read(names: roles, query: query)) { first, _ in first } }
                states = read
                await client.close()
            } catch {
                await client.close()
                throw error
            }
            guard !states.isEmpty else {
                throw UsageProblem("no account of \(from) matches \(account.isEmpty ? "%" : account.joined(separator: ", "))")
            }
            let accounts = try GrantImport.accounts(from: states)
            var topology = snapshot.topology
            for account in accounts.values { topology = try topology.applying(.setAccount(section: sectionName, account: account)) }
            let outcome = try await store.stage(
                topology, over: snapshot, by: self.store.actor, change: "grant import from \(from) into \(sectionName)")
            try report(
                outcome,
                done:
                    "Staged \(accounts.count) managed accounts of \(sectionName) read from \(from): \(accounts.keys.sorted().joined(separator: ", "))",
                json: self.store.json)
        }
    }
}
