import EtcdClient
import Foundation
import Grants
import Logging
import Observation
import Operations
import StoredRecords
import Topology
import TopologyStore

/// The leader's look at every instance's managed accounts, every `grants.check_interval`
/// seconds: each instance of a section with managed accounts is read and compared with what is
/// committed, and the differences are written to `observed-grants/<instance>` (no secret), for
/// `marina drift` to show. With `grants.auto_sync`, a section whose committed accounts (or
/// variables) changed since the last automatic sync, and that differs somewhere, gets a sync
/// request, run and journaled like a DBA's.
///
/// It has its own connections (`hosts`), so that a slow server never holds an operation's.
struct GrantWatch: Sendable {
    let context: OperationContext
    let hosts: Hosts
    let settings: ControllerConfiguration.Grants

    func run(isLeader: @Sendable () async -> Bool) async {
        let state = AutoSyncMemory()
        while !Task.isCancelled {
            if await isLeader() {
                do {
                    try await look(state)
                } catch {
                    context.logger.warning("grant watch: \(error)")
                }
            } else {
                // A term of leadership starts by looking: what is committed then is only remembered.
                await state.forget()
            }
            try? await Task.sleep(for: .milliseconds(Int(settings.checkInterval * 1000)))
        }
        await hosts.closeAll()
    }

    private func look(_ memory: AutoSyncMemory) async throws {
        let (_, committed) = try await context.store.read()
        guard let topology = try await context.store.committedTopology(committed) else { return }
        let locks = Set(
            try await context.etcd.get(context.keys.locks, prefix: true, keysOnly: true).kvs.map {
                String($0.key.dropFirst(context.keys.locks.count))
            })
        // The first look remembers what is committed without syncing anything: a controller that
        // starts (or a new leader) syncs only what is committed after it looked.
        let first = await memory.seed(topology)
        let autoSync = settings.autoSync && !first
        var operations = [KVOperation]()
        var stale = Set(try await context.etcd.get(context.keys.observedGrants, prefix: true, keysOnly: true).kvs.map(\.key))
        for (name, section) in topology.sections.sorted(by: { $0.key < $1.key }) {
            let accounts = topology.grants[name] ?? [:]
            guard !accounts.isEmpty else { continue }
            let names = Set(accounts.keys)
            let expected = GrantPlanner.expected(accounts)
            var differs = false
            for (member, _) in topology.members(of: name) {
                let key = context.keys.observedGrants(member.name)
                stale.remove(key)
                var observed = ObservedGrants(instance: member.name, section: name, readAt: Date(), sequence: committed.sequence, differences: [])
                do {
                    let states = try await AccountReader.read(names: names) { sql in
                        let result = try await hosts.query(member, sql, timeout: 5)
                        return result.rows.map { row in Dictionary(uniqueKeysWithValues: result.columns.map { ($0, row[$0]) }) }
                    }
                    observed.differences = GrantPlanner.differences(expected: expected, observed: states, names: names).map {
                        AccountDrift(account: $0.account, kind: $0.kind.rawValue, expected: $0.expected, observed: $0.observed)
                    }
                    differs = differs || !observed.differences.isEmpty
                } catch let error as HostError {
                    observed.error = error.message
                } catch let error as GrantsError {
                    observed.error = "\(error)"
                }
                operations.append(.put(key, try StoredJSON.encode(observed)))
            }
            if autoSync, differs, !locks.contains(name), await memory.shouldSync(name, accounts: accounts) {
                try await request("grant-sync", section: section.name)
            }
        }
        if autoSync {
            for name in topology.sections.keys.sorted() where !locks.contains(name) {
                if await memory.shouldSync(name, variables: topology.variables[name] ?? ManagedVariables()) {
                    try await request("variable-sync", section: name)
                }
            }
        }
        operations += stale.sorted().map { .delete($0) }
        guard !operations.isEmpty else { return }
        // Written only while this controller leads.
        for chunk in stride(from: 0, to: operations.count, by: 100) {
            let part = Array(operations[chunk..<min(chunk + 100, operations.count)])
            _ = try await context.etcd.transaction(Transaction(compares: [await context.leadership.compare], success: part))
        }
    }

    /// Writes a sync request, as the CLI does; the leader's request loop runs it.
    private func request(_ kind: String, section: String) async throws {
        let record = OperationRecord(
            id: OperationRecord.newID(section: section, automatic: true), kind: kind, section: section, candidate: "",
            reason: "automatic: a commit changed the section's managed \(kind == "grant-sync" ? "accounts" : "variables")",
            requestedBy: "\(context.leadership.id) (grants.auto_sync)", requestedAt: Date())
        _ = try await context.etcd.transaction(
            Transaction(
                compares: [await context.leadership.compare, .absent(context.keys.operation(record.id))],
                success: [
                    .put(context.keys.operation(record.id), try OperationJSON.encode(record)), .put(context.keys.request(record.id), record.id),
                ]))
        context.logger.notice("grant watch: requested \(kind) \(record.id) of \(section) (grants.auto_sync)")
    }
}

/// What the automatic sync last acted on, per section: a sync is requested once per change of
/// the committed accounts (or variables), not again while the same ones still differ (a sync
/// that rolled back is for a human to look at).
actor AutoSyncMemory {
    private var seeded = false
    private var accounts = [String: [String: ManagedAccount]]()
    private var variables = [String: ManagedVariables]()

    func forget() {
        seeded = false
    }

    /// Remembers what `topology` commits, once; true the first time.
    func seed(_ topology: Topology) -> Bool {
        guard !seeded else { return false }
        seeded = true
        for name in topology.sections.keys {
            accounts[name] = topology.grants[name] ?? [:]
            variables[name] = topology.variables[name] ?? ManagedVariables()
        }
        return true
    }

    func shouldSync(_ section: String, accounts current: [String: ManagedAccount]) -> Bool {
        guard accounts[section, default: [:]] != current else { return false }
        accounts[section] = current
        return true
    }

    func shouldSync(_ section: String, variables current: ManagedVariables) -> Bool {
        guard variables[section, default: ManagedVariables()] != current else { return false }
        variables[section] = current
        return true
    }
}
