import EtcdClient
import Foundation
import Logging
import Observation
import Policy
import Topology
import TopologyStore

/// The leader's automatic depool and repool: every `interval`, read the committed topology,
/// the observations, the section locks and the policy state in one transaction (a read that
/// needs etcd's quorum, so without one nothing happens), decide with the pure engine, and
/// commit at most one change as a normal commit of the source of truth, with the state in the
/// same transaction.
///
/// A section whose lock an operation holds is busy: nothing automatic happens in it, and the
/// other sections go on. The commit compares the locks as read (etcd range compares): it
/// fails if a lock appeared for the section it changes, or if any key under `locks/` was
/// created or written since the read; the next tick decides again. (A switchover's commit
/// that loses its compare-and-swap to a commit in another section prepares it again.)
///
/// The store writes the site mirror (MediaWiki's etcd v2 keys) and the controller's own
/// `mirror:` after each commit. A commit whose mirror was not written stands: it is logged as
/// an error, and from then on each tick first writes the committed configuration to the
/// mirrors again, and decides nothing until that works (a change applications cannot see
/// does nothing for them); `marina drift` shows `MIRROR_STALE` meanwhile.
actor DepoolLoop {
    static let author = "marina-controller"

    let context: OperationContext
    let engine: PolicyEngine
    let interval: Double
    /// The wall clock the policy's timers read: `Date()`, or a test's.
    let now: @Sendable () -> Date
    private var timers = PolicyEngine.Timers()
    private var cached: (sequence: Int, topology: Topology)?
    private var failing = false
    private var unreadableLogged = Set<String>()
    /// A commit's mirror was not written: written again at every tick until it is.
    private var mirrorStale = false

    init(context: OperationContext, depool: ControllerConfiguration.Depool, now: @escaping @Sendable () -> Date = { Date() }) {
        self.context = context
        self.engine = PolicyEngine(defaults: depool.defaults, sections: depool.sections)
        self.interval = depool.interval
        self.now = now
    }

    /// Runs while `leading()` says so; returns when cancelled.
    func run(leading: @Sendable () async -> Bool) async {
        while !Task.isCancelled {
            if await leading() {
                do {
                    try await tick()
                    if failing { context.logger.notice("automatic depool: etcd answers again") }
                    failing = false
                } catch {
                    if !failing { context.logger.warning("automatic depool paused, no action taken: \(error)") }
                    failing = true
                }
            } else {
                timers = PolicyEngine.Timers()  // a new term counts afresh
            }
            try? await Task.sleep(for: .milliseconds(Int(interval * 1000)))
        }
    }

    func tick() async throws {
        let keys = context.keys
        if mirrorStale {
            do {
                try await context.store.syncMirror(also: context.mirror ?? ConfigMirror())
                mirrorStale = false
                context.logger.notice("automatic depool: the configuration mirror is written again")
            } catch let failure as MirrorWriteFailed {
                context.logger.debug("automatic depool paused: the configuration mirror is still not written: \(failure)")
                return
            }
        }
        let read = try await context.etcd.transaction(
            Transaction(
                compares: [],
                success: [
                    .get(keys.committed), .get(keys.observed, prefix: true), .get(keys.locks, prefix: true), .get(keys.policyState),
                ]))
        let ranges = read.results.compactMap { result -> RangeResult? in
            if case .get(let range) = result { return range }
            return nil
        }
        guard ranges.count == 4 else { throw EtcdError(.malformedResponse, "the policy read returned \(ranges.count) ranges") }
        var locks = [String: String]()  // section → operation id
        for kv in ranges[2].kvs { locks[String(kv.key.dropFirst(keys.locks.count))] = String(decoding: kv.value, as: UTF8.self) }
        guard let head = ranges[0].kvs.first else { return }
        let sequence = (try? JSONSerialization.jsonObject(with: Data(head.value)) as? [String: Any])?["sequence"] as? Int ?? -1
        let topology: Topology
        if let cached, cached.sequence == sequence {
            topology = cached.topology
        } else {
            guard let committed = try await context.store.committedTopology() else { return }
            topology = committed
            cached = (sequence, committed)
        }
        var observations = [String: Observation]()
        var unreadable = Set<String>()
        for kv in ranges[1].kvs {
            let name = String(kv.key.dropFirst(keys.observed.count))
            guard let observation = try? ObservationJSON.decode(kv.value) else {
                if !unreadableLogged.contains(name) {
                    context.logger.warning("automatic depool: the observation \(kv.key) does not decode; \(name) is left alone")
                }
                unreadable.insert(name)
                continue
            }
            observations[name] = observation
        }
        unreadableLogged = unreadable
        let stateRevision = ranges[3].kvs.first?.modRevision ?? 0
        let state = try ranges[3].kvs.first.map { try PolicyJSON.decode($0.value) } ?? PolicyState()

        let (change, newState) = engine.evaluate(
            now: now(), topology: topology, observations: observations, state: state, timers: &timers,
            busySections: Set(locks.keys), unreadable: unreadable)
        for (name, refusal) in newState.refusals where state.refusals[name]?.reason != refusal.reason {
            context.logger.warning("automatic \(refusal.action) of \(name) in \(refusal.section) refused: \(refusal.reason)")
            if state.refusals[name] == nil { ControllerInstruments.refused(action: refusal.action) }
        }
        let compares: [Compare] = [await context.leadership.compare, .unchanged(keys.policyState, since: stateRevision)]
        let putState = KVOperation.put(keys.policyState, try PolicyJSON.encode(newState))
        guard let change else {
            if newState != state { _ = try await context.etcd.transaction(Transaction(compares: compares, success: [putState])) }
            return
        }
        // The locks as read: none appeared for this section, none was taken or rewritten anywhere.
        let lockCompares: [Compare] = [.absent(keys.lock(change.section)), .unchanged(prefix: keys.locks, since: read.revision)]
        let (edit, message) = describe(change)
        switch try await context.store.prepare([edit], message: message, by: .init(author: Self.author, now: now()), kind: .automatic) {
        case .failure(let refused):
            // Validation caught what the engine did not (a rule of the source of truth): keep it as a refusal.
            var refusedState = state
            if case .depool(let name, let section, _) = change {
                refusedState.refusals[name] = PolicyState.Refusal(section: section, action: "depool", reason: refused.description, since: now())
            }
            context.logger.warning("automatic change refused by the source of truth's rules: \(message): \(refused)")
            if case .depool(let name, _, _) = change, state.refusals[name] == nil { ControllerInstruments.refused(action: "depool") }
            _ = try await context.etcd.transaction(
                Transaction(compares: compares, success: [.put(keys.policyState, try PolicyJSON.encode(refusedState))]))
        case .success(let prepared):
            let outcome: CommitOutcome
            do {
                outcome = try await context.store.commit(
                    prepared, alongWith: [putState], compares: compares + lockCompares,
                    alsoMirror: context.mirror ?? ConfigMirror())
            } catch let failure as MirrorWriteFailed {
                cached = nil
                mirrorStale = true
                context.logger.error("\(message): \(failure); automatic depool paused until the mirror is written")
                return
            }
            switch outcome {
            case .committed(let entry):
                cached = nil
                context.logger.notice("\(message) (commit #\(entry.sequence))")
                ControllerInstruments.committed(change)
            case .conflict, .invalid, .nothingToCommit:
                break  // someone committed or took a lock meanwhile: decide again on the next tick
            }
        }
    }

    private func describe(_ change: PolicyAction) -> (TopologyEdit, String) {
        switch change {
        case .depool(let name, let section, let reason):
            (.depool(instance: name, section: section, group: nil), "automatic depool of \(name) in \(section): \(reason)")
        case .repool(let name, let section, let percentage, let reason):
            (
                .pool(instance: name, section: section, group: nil, percentage: percentage),
                "automatic repool of \(name) in \(section) at \(percentage)%: \(reason)"
            )
        case .refused(let name, let section, let action, let reason):
            (.depool(instance: name, section: section, group: nil), "\(action) of \(name) refused: \(reason)")
        }
    }
}
