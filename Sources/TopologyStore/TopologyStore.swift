import EtcdClient
import Foundation
import StoredRecords
import Topology

/// The source of truth in etcd: staged objects, committed configurations and history.
///
/// Every write is one transaction that compares what it read: staged writes compare the
/// `staged` marker, commits compare the marker and the `committed` head. A concurrent writer
/// makes the transaction fail whole (`.conflict`), never half-apply.
///
/// Every commit (a CLI commit or restore, an operation's, an automatic one) reads the site
/// mirror setting (`SiteMirror`) in its own transaction and, once the transaction succeeded,
/// writes the committed configuration there through etcd's v2 API (v2 keys cannot be part of
/// a v3 transaction). If that write fails the commit still stands and the commit method
/// throws `MirrorWriteFailed` carrying the commit: the caller must know applications see a
/// stale configuration. So no caller can forget the mirror, and none can miss its failure.
public struct TopologyStore: Sendable {
    public let etcd: any CoordinationStore
    public let keys: StoreKeys
    /// Commits kept in history; older ones are deleted by the commit that passes the limit.
    public let historyLimit: Int

    public init(etcd: any CoordinationStore, keys: StoreKeys = StoreKeys(), historyLimit: Int = 200) {
        self.etcd = etcd
        self.keys = keys
        self.historyLimit = historyLimit
    }

    // MARK: Reading

    /// Staged objects and committed configuration, read in one transaction at one revision.
    public func read() async throws -> (staged: StagedSnapshot, committed: CommittedState) {
        let result = try await etcd.transaction(Transaction(compares: [], success: readOperations))
        let ranges = Self.ranges(of: result)
        guard ranges.count == 9 else { throw EtcdError(.malformedResponse, "the read transaction returned \(ranges.count) ranges") }
        return try parseRead(ranges, revision: result.revision)
    }

    /// The ranges of a transaction's gets, in order.
    static func ranges(of result: TransactionResult) -> [RangeResult] {
        result.results.compactMap { result -> RangeResult? in
            if case .get(let range) = result { return range }
            return nil
        }
    }

    /// The staged objects and committed state from the nine ranges `read()` asks for, in its order.
    func parseRead(_ ranges: [RangeResult], revision: Int64) throws -> (staged: StagedSnapshot, committed: CommittedState) {
        var topology = Topology()
        for kv in ranges[0].kvs {
            topology.datacenters.insert(try StoredJSON.decode(StoredDatacenter.self, from: kv.value, key: kv.key).name)
        }
        for kv in ranges[1].kvs {
            topology.sections[String(kv.key.dropFirst(keys.sections.count))] = try StoredJSON.decode(Section.self, from: kv.value, key: kv.key)
        }
        for kv in ranges[2].kvs {
            topology.instances[String(kv.key.dropFirst(keys.instances.count))] = try StoredJSON.decode(Instance.self, from: kv.value, key: kv.key)
        }
        for kv in ranges[7].kvs {
            let parts = kv.key.dropFirst(keys.grants.count).split(separator: "/", maxSplits: 1)
            guard parts.count == 2 else { throw StoreError.corrupt(key: kv.key, problem: "is not grants/<section>/<account>") }
            topology.grants[String(parts[0]), default: [:]][String(parts[1])] = try StoredJSON.decode(
                ManagedAccount.self, from: kv.value, key: kv.key)
        }
        for kv in ranges[8].kvs {
            topology.variables[String(kv.key.dropFirst(keys.variables.count))] = try StoredJSON.decode(
                ManagedVariables.self, from: kv.value, key: kv.key)
        }
        var configs = [String: GeneratedConfig]()
        for kv in ranges[4].kvs {
            configs[String(kv.key.dropFirst(keys.generated.count))] = try StoredJSON.decode(StoredGeneratedConfig.self, from: kv.value, key: kv.key)
                .config
        }
        let head = try ranges[5].kvs.first.map { try StoredJSON.decode(StoredHead.self, from: $0.value, key: $0.key) }
        let siteMirror = try ranges[6].kvs.first.map { try StoredJSON.decode(SiteMirror.self, from: $0.value, key: $0.key) }
        let staged = StagedSnapshot(topology: topology, revision: revision, markerRevision: ranges[3].kvs.first?.modRevision ?? 0)
        let committed = CommittedState(
            configs: configs, sequence: head?.sequence ?? 0, siteMirror: siteMirror,
            headRevision: ranges[5].kvs.first?.modRevision ?? 0)
        return (staged, committed)
    }

    /// The nine gets of `read()`, in the order `parseRead` expects.
    var readOperations: [KVOperation] {
        [
            .get(keys.datacenters, prefix: true), .get(keys.sections, prefix: true), .get(keys.instances, prefix: true),
            .get(keys.staged), .get(keys.generated, prefix: true), .get(keys.committed), .get(keys.siteMirror),
            .get(keys.grants, prefix: true), .get(keys.variables, prefix: true),
        ]
    }

    /// What a commit would change now (staged versus committed), and the staged issues.
    public func diff() async throws -> (changes: [ConfigChange], issues: [TopologyIssue]) {
        let (staged, committed) = try await read()
        let base = try await committedTopology(committed) ?? Topology()
        return (changes(from: committed, base: base, to: staged.topology), staged.topology.validate())
    }

    /// What `topology` changes against what is committed: the generated configuration, and the
    /// needs-rejoin marks it cannot show (a marked member is depooled either way).
    func changes(from committed: CommittedState, base: Topology, to topology: Topology) -> [ConfigChange] {
        ConfigDiff.changes(from: committed.configs, to: topology.generatedConfigs()) + ConfigDiff.rejoinMarkChanges(from: base, to: topology)
            + ConfigDiff.grantAndVariableChanges(from: base, to: topology)
    }

    // MARK: Staged writes

    /// Applies one edit to the staged objects, refusing it if it would break a rule that the
    /// staged objects do not already break.
    public func apply(_ edit: TopologyEdit, by actor: ChangeAuthor) async throws -> EditOutcome {
        try await apply(edit, over: try await read().staged, by: actor)
    }

    /// Applies an edit decided on `snapshot`; `.conflict` if the staged objects changed since.
    public func apply(_ edit: TopologyEdit, over snapshot: StagedSnapshot, by actor: ChangeAuthor) async throws -> EditOutcome {
        if case .setPrimary(let section, _) = edit { try await requireIdle([section]) }
        let changed = try snapshot.topology.applying(edit)
        let introduced = snapshot.topology.issuesIntroduced(by: changed)
        guard introduced.isEmpty else { return .refused(introduced) }
        return try await writeStaged(changed, over: snapshot, by: actor, change: edit.summary)
    }

    /// Replaces every staged object with `topology` (an import), which must be valid as a whole.
    public func replaceStaged(with topology: Topology, by actor: ChangeAuthor, change: String) async throws -> EditOutcome {
        let issues = topology.validate()
        guard issues.isEmpty else { return .refused(issues) }
        return try await writeStaged(topology, over: try await read().staged, by: actor, change: change)
    }

    /// Stages `topology`, computed from `snapshot` by several edits at once (a grant import),
    /// refusing it if it breaks a rule the snapshot does not; `.conflict` if the staged objects
    /// changed since `snapshot`.
    public func stage(_ topology: Topology, over snapshot: StagedSnapshot, by actor: ChangeAuthor, change: String) async throws -> EditOutcome {
        let introduced = snapshot.topology.issuesIntroduced(by: topology)
        guard introduced.isEmpty else { return .refused(introduced) }
        return try await writeStaged(topology, over: snapshot, by: actor, change: change)
    }

    private func writeStaged(_ topology: Topology, over snapshot: StagedSnapshot, by actor: ChangeAuthor, change: String) async throws -> EditOutcome
    {
        let operations =
            try stagedOperations(from: snapshot.topology, to: topology)
            + [.put(keys.staged, try StoredJSON.encode(StoredMarker(schema: schemaVersion, author: actor.author, at: actor.now, change: change)))]
        let result = try await run(Transaction(compares: [.unchanged(keys.staged, since: snapshot.markerRevision)], success: operations))
        return result.succeeded ? .applied(revision: result.revision) : .conflict(readRevision: snapshot.revision)
    }

    /// Puts for every object that differs, deletes for every object that is gone.
    func stagedOperations(from old: Topology, to new: Topology) throws -> [KVOperation] {
        var operations = [KVOperation]()
        for name in new.datacenters.subtracting(old.datacenters).sorted() {
            operations.append(.put(keys.datacenter(name), try StoredJSON.encode(StoredDatacenter(schema: schemaVersion, name: name))))
        }
        for name in old.datacenters.subtracting(new.datacenters).sorted() { operations.append(.delete(keys.datacenter(name))) }
        for (name, section) in new.sections.sorted(by: { $0.key < $1.key }) where old.sections[name] != section {
            operations.append(.put(keys.section(name), try StoredJSON.encodeWithSchema(section)))
        }
        for name in old.sections.keys.sorted() where new.sections[name] == nil { operations.append(.delete(keys.section(name))) }
        for (name, instance) in new.instances.sorted(by: { $0.key < $1.key }) where old.instances[name] != instance {
            operations.append(.put(keys.instance(name), try StoredJSON.encodeWithSchema(instance)))
        }
        for name in old.instances.keys.sorted() where new.instances[name] == nil { operations.append(.delete(keys.instance(name))) }
        for section in Set(old.grants.keys).union(new.grants.keys).sorted() {
            let before = old.grants[section] ?? [:]
            let after = new.grants[section] ?? [:]
            for (name, account) in after.sorted(by: { $0.key < $1.key }) where before[name] != account {
                operations.append(.put(keys.grant(section, name), try StoredJSON.encodeWithSchema(account)))
            }
            for name in before.keys.sorted() where after[name] == nil { operations.append(.delete(keys.grant(section, name))) }
        }
        for (section, variables) in new.variables.sorted(by: { $0.key < $1.key }) where old.variables[section] != variables {
            operations.append(.put(keys.variables(section), try StoredJSON.encodeWithSchema(variables)))
        }
        for section in old.variables.keys.sorted() where new.variables[section] == nil {
            operations.append(.delete(keys.variables(section)))
        }
        return operations
    }

    // MARK: Commits

    /// What a commit would write, read at one revision: shown to the DBA, then passed to
    /// `commit(_:message:by:)`, which writes exactly that or reports a conflict.
    public struct PreparedCommit: Sendable {
        public var staged: StagedSnapshot
        public var committed: CommittedState
        public var changes: [ConfigChange]
        public var issues: [TopologyIssue]
        /// Whether the staged objects differ from the committed ones in what the generated
        /// configuration does not show (a candidate flag, a minimum of replicas, a note).
        public var sourceOfTruthChanged: Bool
    }

    public func prepareCommit() async throws -> PreparedCommit {
        let (staged, committed) = try await read()
        let base = try await committedTopology(committed)
        let changes = changes(from: committed, base: base ?? Topology(), to: staged.topology)
        return PreparedCommit(
            staged: staged, committed: committed, changes: changes, issues: staged.topology.validate(),
            sourceOfTruthChanged: base != nil && base != staged.topology)
    }

    /// Writes every datacenter's configuration computed from the staged objects of `prepared`,
    /// with a history entry, in one transaction that fails (`.conflict`) if the staged objects
    /// or the committed head changed since `prepared` was read; then the site mirror, and
    /// `alsoMirror` (this process's own mirrors). Throws `MirrorWriteFailed` after a commit
    /// whose mirror was not written.
    public func commit(
        _ prepared: PreparedCommit, message: String, by actor: ChangeAuthor, kind: HistoryEntry.Kind = .commit,
        alsoMirror: ConfigMirror = ConfigMirror()
    ) async throws -> CommitOutcome {
        guard prepared.issues.isEmpty else { return .invalid(prepared.issues) }
        let firstCommit = prepared.committed.sequence == 0 && !prepared.staged.topology.datacenters.isEmpty
        guard !prepared.changes.isEmpty || prepared.sourceOfTruthChanged || firstCommit else { return .nothingToCommit }
        return try await writeCommit(
            staged: prepared.staged, committed: prepared.committed, topology: prepared.staged.topology,
            stagedOperations: [], kind: kind, message: message, actor: actor, alsoMirror: alsoMirror)
    }

    /// Prepares and commits at once (for automatic commits and scripts).
    public func commit(
        message: String, by actor: ChangeAuthor, kind: HistoryEntry.Kind = .commit,
        alsoMirror: ConfigMirror = ConfigMirror()
    ) async throws -> CommitOutcome {
        try await commit(try await prepareCommit(), message: message, by: actor, kind: kind, alsoMirror: alsoMirror)
    }

    /// Makes the topology of the commit written at `revision` the staged and committed state
    /// again, validated like a commit, recorded as a new commit; one transaction, then the
    /// mirrors as after a commit.
    public func restore(revision: Int64, message: String, by actor: ChangeAuthor, alsoMirror: ConfigMirror = ConfigMirror()) async throws
        -> CommitOutcome
    {
        let listing = try await etcd.get(keys.history, prefix: true, keysOnly: true)
        guard let key = listing.kvs.first(where: { $0.modRevision == revision })?.key, let kv = try await etcd.value(key) else {
            throw StoreError.unknownRevision(revision)
        }
        let entry = try StoredJSON.decode(HistoryEntry.self, from: kv.value, key: kv.key)
        let topology = entry.topology.topology
        let issues = topology.validate()
        guard issues.isEmpty else { return .invalid(issues) }
        let (staged, committed) = try await read()
        let operations =
            try stagedOperations(from: staged.topology, to: topology)
            + [
                .put(
                    keys.staged,
                    try StoredJSON.encode(
                        StoredMarker(
                            schema: schemaVersion, author: actor.author, at: actor.now,
                            change: "restore of revision \(revision)")))
            ]
        return try await writeCommit(
            staged: staged, committed: committed, topology: topology, stagedOperations: operations,
            kind: .restore, message: "restore of revision \(revision): \(message)", actor: actor, alsoMirror: alsoMirror)
    }

    private func writeCommit(
        staged: StagedSnapshot, committed: CommittedState, topology: Topology, stagedOperations: [KVOperation],
        kind: HistoryEntry.Kind, message: String, actor: ChangeAuthor, alsoMirror: ConfigMirror
    ) async throws -> CommitOutcome {
        // A human's commit may not touch a section an operation holds; the transaction compares
        // that the touched sections' locks are still absent.
        let base = try await committedTopology(committed) ?? Topology()
        let touched = Self.sectionsTouched(from: base, to: topology)
        try await requireIdle(touched)
        var (transaction, entry, configs) = try commitTransaction(
            staged: staged, committed: committed, base: base, topology: topology,
            stagedOperations: stagedOperations, kind: kind, message: message, actor: actor)
        transaction.compares += touched.sorted().map { .absent(keys.lock($0)) }
        return try await runCommit(
            transaction, entry: entry, configs: configs, readRevision: staged.revision, writeMirror: true,
            alsoMirror: alsoMirror)
    }

    /// Runs a commit's transaction with a read of the site mirror setting added to it (so the
    /// setting is the one at the commit's revision), then writes the mirrors.
    private func runCommit(
        _ transaction: Transaction, entry: HistoryEntry, configs: [String: GeneratedConfig], readRevision: Int64,
        writeMirror: Bool, alsoMirror: ConfigMirror
    ) async throws -> CommitOutcome {
        var transaction = transaction
        transaction.success.append(.get(keys.siteMirror))
        let result = try await run(transaction)
        guard result.succeeded else { return .conflict(readRevision: readRevision) }
        var entry = entry
        entry.revision = result.revision
        guard writeMirror else { return .committed(entry) }
        var written = [String]()
        var failures = [MirrorFailure]()
        var site: SiteMirror?
        if let kv = Self.ranges(of: result).last?.kvs.first {
            do {
                site = try StoredJSON.decode(SiteMirror.self, from: kv.value, key: kv.key)
            } catch {
                failures.append(MirrorFailure(target: "the site mirror setting", message: "\(error)"))
            }
        }
        let report = await mirrors(site: site, also: alsoMirror).writeAll(configs, etcd: etcd)
        written += report.written
        failures += report.failures
        guard failures.isEmpty else { throw MirrorWriteFailed(entry: entry, written: written, failures: failures) }
        return .committed(entry)
    }

    /// The mirrors to write: the site's v2 prefix, then this process's own (a v2 prefix equal
    /// to the site's is written once).
    func mirrors(site: SiteMirror?, also: ConfigMirror) -> MirrorSet {
        MirrorSet(site: site.map { ConfigMirror(v2Prefix: $0.v2Prefix) }, own: also.excluding(v2Prefix: site?.v2Prefix))
    }

    /// The one transaction of a commit: generated configurations, history entry and head,
    /// comparing the staged marker and the committed head read in `staged` and `committed`.
    private func commitTransaction(
        staged: StagedSnapshot, committed: CommittedState, base: Topology, topology: Topology, stagedOperations: [KVOperation],
        kind: HistoryEntry.Kind, message: String, actor: ChangeAuthor
    )
        throws -> (Transaction, HistoryEntry, [String: GeneratedConfig])
    {
        let configs = topology.generatedConfigs()
        let sequence = committed.sequence + 1
        let entry = HistoryEntry(
            schema: schemaVersion, sequence: sequence, kind: kind, author: actor.author, at: actor.now, message: message,
            basedOnRevision: staged.revision, revision: nil,
            changes: ConfigDiff.changes(from: committed.configs, to: configs) + ConfigDiff.rejoinMarkChanges(from: base, to: topology)
                + ConfigDiff.grantAndVariableChanges(from: base, to: topology),
            topology: TopologyDocument(topology))
        var operations = stagedOperations
        for (datacenter, config) in configs.sorted(by: { $0.key < $1.key }) {
            let stored = StoredGeneratedConfig(schema: schemaVersion, datacenter: datacenter, sequence: sequence, config: config)
            operations.append(.put(keys.generated(datacenter), try StoredJSON.encode(stored)))
        }
        for datacenter in committed.configs.keys.sorted() where configs[datacenter] == nil {
            operations.append(.delete(keys.generated(datacenter)))
        }
        for section in Set(base.variables.keys).union(topology.variables.keys).sorted() where base.variables[section] != topology.variables[section] {
            if let variables = topology.variables[section] {
                let stored = CommittedVariables(section: section, sequence: sequence, variables: variables)
                operations.append(.put(keys.committedVariables(section), try StoredJSON.encode(stored)))
            } else {
                operations.append(.delete(keys.committedVariables(section)))
            }
        }
        operations.append(.put(keys.history(sequence), try StoredJSON.encode(entry)))
        operations.append(.put(keys.committed, try StoredJSON.encode(StoredHead(schema: schemaVersion, sequence: sequence))))
        if sequence > historyLimit {
            operations.append(.deleteRange(from: keys.history(0), to: keys.history(sequence - historyLimit + 1)))
        }
        let compares: [Compare] = [.unchanged(keys.staged, since: staged.markerRevision), .unchanged(keys.committed, since: committed.headRevision)]
        return (Transaction(compares: compares, success: operations), entry, configs)
    }

    /// Throws `StoreError.sectionBusy` naming the operation if one of `sections` is locked.
    private func requireIdle(_ sections: Set<String>) async throws {
        guard !sections.isEmpty else { return }
        for kv in try await etcd.get(keys.locks, prefix: true).kvs {
            let section = String(kv.key.dropFirst(keys.locks.count))
            if sections.contains(section) {
                throw StoreError.sectionBusy(section: section, operation: String(decoding: kv.value, as: UTF8.self))
            }
        }
    }

    /// The sections whose own settings, or whose members' settings, differ between two
    /// topologies; a change to an instance (its host, port, candidacy) touches every section it is in.
    public static func sectionsTouched(from old: Topology, to new: Topology) -> Set<String> {
        var touched = Set<String>()
        for name in Set(old.sections.keys).union(new.sections.keys) where old.sections[name] != new.sections[name] {
            touched.insert(name)
        }
        // A grant sync reads the committed accounts once it holds the lock: a commit may not change them under it.
        for name in Set(old.grants.keys).union(new.grants.keys) where old.grants[name] != new.grants[name] { touched.insert(name) }
        for name in Set(old.variables.keys).union(new.variables.keys) where old.variables[name] != new.variables[name] { touched.insert(name) }
        for name in Set(old.instances.keys).union(new.instances.keys) {
            let before = old.instances[name]
            let after = new.instances[name]
            guard before != after else { continue }
            let sections = Set(before?.sections.keys ?? [:].keys).union(after?.sections.keys ?? [:].keys)
            var instanceOnly = before
            var otherInstanceOnly = after
            instanceOnly?.sections = [:]
            otherInstanceOnly?.sections = [:]
            if instanceOnly != otherInstanceOnly {
                touched.formUnion(sections)
            } else {
                for section in sections where before?.sections[section] != after?.sections[section] { touched.insert(section) }
            }
        }
        return touched
    }

    // MARK: Edits committed at once (operations and automatic policies)

    /// Edits made concrete against what is committed, ready to be written in one transaction:
    /// prepared ahead so that writing them costs one round trip (a switchover prepares its
    /// primary change before the write window and sends it inside).
    public struct PreparedEdits: Sendable {
        public var transaction: Transaction
        public var entry: HistoryEntry
        /// The committed topology once written.
        public var topology: Topology
        /// Its generated configuration (what the mirrors get), computed ahead too.
        public var configs: [String: GeneratedConfig]
        var readRevision: Int64
    }

    /// The committed topology (the latest history entry), or nil before the first commit.
    public func committedTopology() async throws -> Topology? {
        let (_, committed) = try await read()
        return try await committedTopology(committed)
    }

    /// The topology of the commit `committed` names (its history entry), or nil before the first commit.
    public func committedTopology(_ committed: CommittedState) async throws -> Topology? {
        guard committed.sequence > 0 else { return nil }
        let key = keys.history(committed.sequence)
        guard let kv = try await etcd.value(key) else {
            throw StoreError.corrupt(key: key, problem: "the committed head names this history entry, which does not exist")
        }
        return try StoredJSON.decode(HistoryEntry.self, from: kv.value, key: kv.key).topology.topology
    }

    /// Applies `edits` to the committed topology (not to whatever else is staged) and prepares
    /// the commit: the staged objects get the same edits, so that a staged change of someone
    /// else stays staged and the staged objects agree with what is committed. `.refused` if the
    /// edits would break a rule the committed topology does not already break.
    public func prepare(
        _ edits: [TopologyEdit], message: String, by actor: ChangeAuthor,
        kind: HistoryEntry.Kind = .automatic
    ) async throws -> Result<PreparedEdits, EditsRefused> {
        let (staged, committed) = try await read()
        guard let base = try await committedTopology(committed) else { return .failure(EditsRefused(issues: [], reason: "nothing is committed yet")) }
        var topology = base
        var stagedTopology = staged.topology
        do {
            for edit in edits {
                topology = try topology.applying(edit)
                stagedTopology = try stagedTopology.applying(edit)
            }
        } catch {
            return .failure(EditsRefused(issues: [], reason: "\(error)"))
        }
        let introduced = base.issuesIntroduced(by: topology)
        guard introduced.isEmpty else { return .failure(EditsRefused(issues: introduced, reason: "the change would break the rules")) }
        let operations =
            try stagedOperations(from: staged.topology, to: stagedTopology)
            + [.put(keys.staged, try StoredJSON.encode(StoredMarker(schema: schemaVersion, author: actor.author, at: actor.now, change: message)))]
        let (transaction, entry, configs) = try commitTransaction(
            staged: staged, committed: committed, base: base, topology: topology,
            stagedOperations: operations, kind: kind, message: message, actor: actor)
        return .success(PreparedEdits(transaction: transaction, entry: entry, topology: topology, configs: configs, readRevision: staged.revision))
    }

    /// Why prepared edits were refused: the rules they would break, or the edit that does not apply.
    public struct EditsRefused: Error, Sendable, Equatable, CustomStringConvertible {
        public var issues: [TopologyIssue]
        public var reason: String
        public var description: String {
            issues.isEmpty ? reason : reason + ": " + issues.map { "\($0)" }.joined(separator: "; ")
        }
    }

    /// Writes prepared edits, with `operations` added to the same transaction (a journal entry)
    /// and `compares` added to its conditions (a leader's lease); `.conflict` if anything
    /// compared changed since the edits were prepared. Then the site mirror and `alsoMirror`,
    /// as every commit: `MirrorWriteFailed` if one was not written. `writeMirror: false` leaves
    /// the mirrors to the caller (`writeMirror(_:also:)`), for a commit inside a window that
    /// must stay one round trip.
    public func commit(
        _ prepared: PreparedEdits, alongWith operations: [KVOperation] = [], compares: [Compare] = [],
        writeMirror: Bool = true, alsoMirror: ConfigMirror = ConfigMirror()
    ) async throws -> CommitOutcome {
        var transaction = prepared.transaction
        transaction.success += operations
        transaction.compares += compares
        return try await runCommit(
            transaction, entry: prepared.entry, configs: prepared.configs, readRevision: prepared.readRevision,
            writeMirror: writeMirror, alsoMirror: alsoMirror)
    }

    /// The latest `limit` commits, newest first: one keys-only listing, then one read
    /// transaction of those entries.
    public func history(limit: Int = 20) async throws -> [HistoryEntry] {
        let listing = try await etcd.get(keys.history, prefix: true, keysOnly: true)
        let wanted = listing.kvs.suffix(limit).reversed().map(\.key)
        guard !wanted.isEmpty else { return [] }
        let result = try await etcd.transaction(Transaction(compares: [], success: wanted.map { .get($0) }))
        return try result.results.compactMap { result -> HistoryEntry? in
            guard case .get(let range) = result, let kv = range.kvs.first else { return nil }  // pruned meanwhile
            var entry = try StoredJSON.decode(HistoryEntry.self, from: kv.value, key: kv.key)
            entry.revision = kv.modRevision
            return entry
        }
    }

    /// Runs a transaction, turning etcd's size limits into an error that says what to change.
    func run(_ transaction: Transaction) async throws -> TransactionResult {
        do {
            return try await etcd.transaction(transaction)
        } catch let error as EtcdError where error.message.contains("too many operations") || error.message.contains("too large") {
            throw StoreError.tooLarge(operations: transaction.success.count, detail: error.message)
        }
    }
}
