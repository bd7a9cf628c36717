import EtcdClient
import Foundation
import Grants
import MariaDBClient
import Observation
import Operations
import SQLText
import StoredRecords
import Topology

/// What a grant or variable sync read on each instance before changing anything: its undo,
/// kept at `operation-undo/<id>` (it holds account hashes, so never in the journal).
struct SyncUndo: Codable, Sendable, Equatable {
    var schema = 1
    /// Instance → the accounts of the managed names as they were.
    var grants: [String: [AccountState]] = [:]
    /// Instance → the managed variables as they were.
    var variables: [String: [String: LiveVariable]] = [:]
    /// Instance → whether its SQL thread ran (a variable sync stops it around some variables).
    var replicating: [String: Bool] = [:]
}

/// Grant sync and variable sync: one step per instance whose managed accounts (or variables)
/// differ from what is committed, replicas first, the primary last. Each step reads the
/// instance again, applies the fewest statements, and reads back; a grant step also checks
/// that the instance wrote no transaction of its own to its binary log (statements run with
/// `SET STATEMENT sql_log_bin = 0 FOR`, so they never replicate and never make an errant
/// GTID). Any failure restores every instance touched to what was read first, and reads it back.
extension OperationRun {
    var isSync: Bool { record.kind == "grant-sync" || record.kind == "variable-sync" }
    private var isGrantSync: Bool { record.kind == "grant-sync" }

    /// The managed account names of the section, and what they mean on one instance.
    private var managed: (names: Set<String>, expected: [AccountKey: AccountState]) {
        let accounts = topology.grants[record.section] ?? [:]
        return (Set(accounts.keys), GrantPlanner.expected(accounts))
    }

    /// The members a sync acts on, in its order (replicas first), without the skipped ones.
    private func syncMembers() -> [Instance] {
        guard let section = topology.sections[record.section] else { return [] }
        let members = topology.members(of: section.name).map(\.instance.name).filter { !record.skipReplicas.contains($0) }
        return SettingsSync.order(members: members, primary: section.primary).compactMap { topology.instances[$0] }
    }

    /// The settings account's connections: only they read and change accounts and variables.
    private var settingsHosts: Hosts {
        get throws {
            guard let hosts = context.settingsHosts else {
                throw ControllerError.stepFailed(host: "controller", message: "no settings account is configured (mariadb.settings_group)")
            }
            return hosts
        }
    }

    func prepareSync() async throws -> Bool {
        guard context.settingsHosts != nil else {
            return refuse([
                "this controller has no settings account (mariadb.settings_group in its configuration): it cannot read or change accounts and variables"
            ])
        }
        // What is committed now that the lock is held: no commit can change the section's accounts or variables until it ends.
        if let committed = try await context.store.committedTopology() { topology = committed }
        guard let section = topology.sections[record.section] else { return refuse(["section \(record.section) is not committed"]) }
        let own = [context.controllerUser, context.replicationUser, context.settingsHosts?.account.user].compactMap { $0 }
        let ownManaged = own.filter { (topology.grants[record.section] ?? [:])[$0] != nil }
        guard ownManaged.isEmpty else {
            return refuse(
                ownManaged.map { "\($0) is an account this controller uses: it is never managed (`marina grant unmanage \(record.section) \($0)`)" })
        }
        if record.skipReplicas.contains(section.primary) { return refuse(["the primary \(section.primary) cannot be skipped"]) }
        // The values a variable sync releases reach every member's option file: it acts on every member.
        if !isGrantSync, !record.skipReplicas.isEmpty {
            return refuse(["a variable sync acts on every instance of the section: --skip-replica is for grant sync only"])
        }
        let playbook = isGrantSync ? context.grantSyncPlaybook : context.variableSyncPlaybook
        var undo = SyncUndo()
        var statements = [String: [String]]()
        var undoText = [String: [String]]()
        var refusals = [String]()
        // The statements as they run (password hashes in them): never journaled, only their digest.
        var unredacted = [String: [String]]()
        for member in syncMembers() {
            do {
                if isGrantSync {
                    let (names, expected) = managed
                    let current = try await readAccounts(names, on: member, timeout: 5)
                    // What the undo could not write back exactly is refused before anything changes.
                    for state in current.values.sorted(by: { $0.key < $1.key }) where state.plugin?.contains(" OR ") == true {
                        refusals.append(
                            "\(state.key) on \(member.name) authenticates with several plugins (\(state.plugin ?? "")): a sync could not restore it")
                    }
                    undo.grants[member.name] = current.values.sorted { $0.key < $1.key }
                    let planned = GrantPlanner.statements(from: current, to: expected, names: names)
                    statements[member.name] = planned.map(\.redacted)
                    unredacted[member.name] = planned.map(\.sql)
                    undoText[member.name] = ["restore the \(current.count) accounts of managed names read on \(member.name) before the sync"]
                } else {
                    let desired = desiredVariables(for: member)
                    let live = try await readVariables(Array(desired.keys), on: member, timeout: 5)
                    for name in desired.keys.sorted() where live[name] == nil {
                        refusals.append("\(member.name) has no system variable \(name)")
                    }
                    undo.variables[member.name] = live
                    let replicating = try await sqlThreadRunning(on: member, timeout: 5)
                    undo.replicating[member.name] = replicating
                    // Values only a restart applies go to the agent's option file once the sync ends: shown, not run.
                    let startup = desired.keys.sorted().compactMap { name -> String? in
                        guard let current = live[name], current.readOnly, !SystemVariableValue.same(current.value, desired[name]!) else { return nil }
                        return "-- at the next restart (option file): \(name) = \(desired[name]!), now \(current.value)"
                    }
                    statements[member.name] = VariableStatements.statements(desired: desired, live: live, replicating: replicating) + startup
                    let changed = (statements[member.name] ?? []).isEmpty ? [] : desired.keys.filter { live[$0].map { !$0.readOnly } ?? false }
                    undoText[member.name] = changed.sorted().compactMap { name in
                        live[name].map { "SET GLOBAL \(name) = \(VariableStatements.literal($0.value))" }
                    }
                }
            } catch let error as HostError {
                refusals.append("\(member.name) could not be read: \(error.message)")
            } catch let error as GrantsError {
                refusals.append("\(member.name) has an account Marina cannot manage: \(error)")
            }
        }
        guard refusals.isEmpty else { return refuse(refusals) }
        record.secretsDigest = isGrantSync ? OperationRecord.secretsDigest(unredacted) : nil
        record.steps = SettingsSync.plan(
            playbook, order: syncMembers().map(\.name), statements: statements, undo: undoText, section: record.section)
        if !record.dryRun {
            try await journal([.put(context.keys.operationUndo(record.id), try StoredJSON.encode(undo))])
        }
        return true
    }

    func performSync(_ index: Int) async throws {
        let step = steps[index]
        if step.action == .exec {
            if let command = step.command { try await run(command, timeout: step.timeout) }
            return
        }
        let member = try instance(step.subject ?? "")
        let deadline = ContinuousClock.now + .seconds(step.timeout)
        func remaining() -> Double { max(0.5, Double((deadline - ContinuousClock.now).components.seconds) + 1) }
        if step.action == .applyGrants {
            let (names, expected) = managed
            let isPrimary = topology.sections[record.section]?.primary == member.name
            let ownBefore: String? = isPrimary ? nil : try await ownTransactions(on: member, timeout: remaining())
            let current = try await readAccounts(names, on: member, timeout: remaining())
            for statement in GrantPlanner.statements(from: current, to: expected, names: names) {
                try await settingsHosts.query(member, Self.unlogged(statement), timeout: remaining())
            }
            let after = try await readAccounts(names, on: member, timeout: remaining())
            let left = GrantPlanner.differences(expected: expected, observed: after, names: names)
            guard left.isEmpty else {
                throw ControllerError.stepFailed(host: member.name, message: "after the sync: " + left.map(\.description).joined(separator: "; "))
            }
            if let ownBefore {
                let ownAfter = try await ownTransactions(on: member, timeout: remaining())
                if ownAfter != ownBefore {
                    throw ControllerError.stepFailed(
                        host: member.name,
                        message: "wrote transactions of its own server_id to its binary log ([\(ownBefore)] → [\(ownAfter)]): an errant GTID")
                }
            }
        } else {
            let desired = desiredVariables(for: member)
            let live = try await readVariables(Array(desired.keys), on: member, timeout: remaining())
            let replicating = try await sqlThreadRunning(on: member, timeout: remaining())
            try await runKeepingSQLThread(
                VariableStatements.statements(desired: desired, live: live, replicating: replicating), on: member, timeout: remaining())
            let after = try await readVariables(Array(desired.keys), on: member, timeout: remaining())
            let wrong = desired.keys.sorted().filter { name in
                guard let value = after[name], !value.readOnly else { return false }
                return !SystemVariableValue.same(value.value, desired[name]!)
            }
            guard wrong.isEmpty else {
                throw ControllerError.stepFailed(
                    host: member.name,
                    message: "after the sync: " + wrong.map { "\($0) is \(after[$0]?.value ?? "?"), not \(desired[$0]!)" }.joined(separator: "; "))
            }
        }
    }

    /// Restores one instance to what was read before the sync, then reads it back.
    func undoSync(_ index: Int) async throws {
        let step = steps[index]
        if step.action == .exec {
            if let undo = step.undoCommand { try await run(undo, timeout: max(step.timeout, 5)) }
            return
        }
        let member = try instance(step.subject ?? "")
        let timeout = max(step.timeout, 5)
        let undo = try await readSyncUndo()
        if step.action == .applyGrants {
            guard let snapshot = undo.grants[member.name] else {
                throw ControllerError.stepFailed(host: member.name, message: "no accounts were read before the sync: nothing to restore to")
            }
            let names = managed.names
            let target = Dictionary(snapshot.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
            let isPrimary = topology.sections[record.section]?.primary == member.name
            let ownBefore: String? = isPrimary ? nil : try await ownTransactions(on: member, timeout: timeout)
            let current = try await readAccounts(names, on: member, timeout: timeout)
            for statement in GrantPlanner.statements(from: current, to: target, names: names) {
                try await settingsHosts.query(member, Self.unlogged(statement), timeout: timeout)
            }
            if let ownBefore, try await ownTransactions(on: member, timeout: timeout) != ownBefore {
                throw ControllerError.stepFailed(
                    host: member.name, message: "wrote transactions of its own server_id while restoring: an errant GTID")
            }
            let after = try await readAccounts(names, on: member, timeout: timeout)
            let left = GrantPlanner.differences(expected: target, observed: after, names: names)
            guard left.isEmpty else {
                throw ControllerError.stepFailed(
                    host: member.name, message: "not as before the sync: " + left.map(\.description).joined(separator: "; "))
            }
        } else {
            guard let snapshot = undo.variables[member.name] else {
                throw ControllerError.stepFailed(host: member.name, message: "no variables were read before the sync: nothing to restore to")
            }
            let live = try await readVariables(Array(snapshot.keys), on: member, timeout: timeout)
            let changed = snapshot.keys.sorted().compactMap { name -> (String, String)? in
                guard let before = snapshot[name], !before.readOnly, let now = live[name], !SystemVariableValue.same(now.value, before.value) else {
                    return nil
                }
                return (name, before.value)
            }
            let replicating = try await sqlThreadRunning(on: member, timeout: timeout)
            try await runKeepingSQLThread(
                VariableStatements.statements(setting: changed, replicating: replicating), on: member, timeout: timeout)
            // A thread the forward step stopped, and could not start again, runs again.
            if undo.replicating[member.name] == true, try await !sqlThreadRunning(on: member, timeout: timeout) {
                try await settingsHosts.query(member, "START SLAVE SQL_THREAD", timeout: timeout)
            }
            let after = try await readVariables(Array(snapshot.keys), on: member, timeout: timeout)
            let wrong = changed.filter { name, value in !(after[name].map { SystemVariableValue.same($0.value, value) } ?? false) }
            guard wrong.isEmpty else {
                throw ControllerError.stepFailed(
                    host: member.name,
                    message: "not as before the sync: " + wrong.map { "\($0.0) is \(after[$0.0]?.value ?? "?")" }.joined(separator: "; "))
            }
        }
    }

    /// After a rollback, every instance the sync read is read again and compared with what
    /// was read first; one that cannot be reached is left for a human to check.
    func verifySyncUndone() async throws {
        let undo = try await readSyncUndo()
        for member in syncMembers() {
            do {
                if isGrantSync, let snapshot = undo.grants[member.name] {
                    let target = Dictionary(snapshot.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
                    let left = GrantPlanner.differences(
                        expected: target, observed: try await readAccounts(managed.names, on: member, timeout: 5), names: managed.names)
                    guard left.isEmpty else {
                        throw ControllerError.stepFailed(
                            host: member.name, message: "is not as before: " + left.map(\.description).joined(separator: "; "))
                    }
                } else if let snapshot = undo.variables[member.name] {
                    if undo.replicating[member.name] == true, try await !sqlThreadRunning(on: member, timeout: 5) {
                        throw ControllerError.stepFailed(host: member.name, message: "its SQL thread is stopped; it ran before the sync")
                    }
                    let live = try await readVariables(Array(snapshot.keys), on: member, timeout: 5)
                    for (name, before) in snapshot.sorted(by: { $0.key < $1.key }) where !before.readOnly {
                        guard let now = live[name], SystemVariableValue.same(now.value, before.value) else {
                            throw ControllerError.stepFailed(
                                host: member.name, message: "has \(name) = \(live[name]?.value ?? "?"), not \(before.value) as before")
                        }
                    }
                }
            } catch let error as HostError where error.isUnreachable {
                record.attention.append("\(error.host) could not be reached to verify the rollback (\(error.message)): check it by hand")
            }
        }
    }

    // MARK: Reading instances

    private func readSyncUndo() async throws -> SyncUndo {
        let key = context.keys.operationUndo(record.id)
        guard let kv = try await context.etcd.value(key) else {
            throw ControllerError.stepFailed(host: "etcd", message: "\(key) is missing: what the sync read first is gone")
        }
        return try StoredJSON.decode(SyncUndo.self, from: kv.value, key: kv.key, schema: 1)
    }

    private func readAccounts(_ names: Set<String>, on member: Instance, timeout: Double) async throws -> [AccountKey: AccountState] {
        let hosts = try settingsHosts
        return try await AccountReader.read(names: names) { sql in
            let result = try await hosts.query(member, sql, timeout: timeout)
            return result.rows.map { row in Dictionary(uniqueKeysWithValues: result.columns.map { ($0, row[$0]) }) }
        }
    }

    private func readVariables(_ names: [String], on member: Instance, timeout: Double) async throws -> [String: LiveVariable] {
        guard !names.isEmpty else { return [:] }
        var live = [String: LiveVariable]()
        for row in try await settingsHosts.query(member, VariableStatements.readSQL(names), timeout: timeout).rows {
            guard let name = row["name"] else { continue }
            live[name] = LiveVariable(value: row["value"] ?? "", readOnly: row["read_only"] == "YES")
        }
        return live
    }

    private func desiredVariables(for member: Instance) -> [String: String] {
        let isPrimary = topology.sections[record.section]?.primary == member.name
        return topology.variables[record.section]?.values(isPrimary: isPrimary) ?? [:]
    }

    private func sqlThreadRunning(on member: Instance, timeout: Double) async throws -> Bool {
        try await context.hosts.query(member, "SHOW SLAVE STATUS", timeout: timeout).first?["Slave_SQL_Running"] == "Yes"
    }

    /// The newest sequence number of each domain written under the instance's own
    /// `server_id` (`gtid_binlog_state`), as text: it changes only when the instance itself
    /// writes a transaction to its binary log. Empty when it has none.
    private func ownTransactions(on member: Instance, timeout: Double) async throws -> String {
        let row = try await context.hosts.query(member, "SELECT @@GLOBAL.server_id AS id, @@GLOBAL.gtid_binlog_state AS state", timeout: timeout)
            .first
        guard let id = row?["id"] else { throw ControllerError.stepFailed(host: member.name, message: "no server_id") }
        return (row?["state"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
            $0.split(separator: "-").dropFirst().first.map(String.init) == id
        }.sorted().joined(separator: ",")
    }

    /// Runs a variable sync's statements; if one fails after `STOP SLAVE SQL_THREAD`, the thread
    /// is started again before the error goes on, so that no failure leaves a replica not applying.
    private func runKeepingSQLThread(_ statements: [String], on member: Instance, timeout: Double) async throws {
        var stopped = false
        do {
            for statement in statements {
                try await settingsHosts.query(member, statement, timeout: timeout)
                if statement == "STOP SLAVE SQL_THREAD" { stopped = true }
                if statement == "START SLAVE SQL_THREAD" { stopped = false }
            }
        } catch {
            if stopped { _ = try? await settingsHosts.query(member, "START SLAVE SQL_THREAD", timeout: 5) }
            throw error
        }
    }

    /// The statement in a form that writes no binary log, whatever the session's setting.
    static func unlogged(_ statement: GrantStatement) -> SQLStatement {
        SQLStatement(text: "SET STATEMENT sql_log_bin = 0 FOR " + statement.sql, shown: "SET STATEMENT sql_log_bin = 0 FOR " + statement.redacted)
    }
}
