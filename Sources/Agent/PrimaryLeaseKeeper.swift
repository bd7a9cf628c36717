import EtcdClient
import FailsafeLink
import Logging
import MariaDBClient
import Observation
import StoredRecords

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The primary lease of one instance this agent watches, and its self-fence.
///
/// While the instance is the committed primary of its section, the keeper holds
/// `fencing/lease/<section>` under an etcd lease of `lease_ttl` seconds and renews it every
/// `renew_interval`. Each keep-alive that succeeds moves the **fence deadline** to the moment it
/// was *sent* plus `lease_ttl − margin`, on the monotonic clock: etcd received it later, so the
/// lease cannot expire before that moment plus `margin`. A second task watches the deadline on
/// its own (a keep-alive that hangs cannot delay it) and, once it passes, makes the instance
/// read-only, kills the sessions that could still write, and runs the site's hook.
///
/// The instance stays read-only until a keep-alive or a new lease succeeds again *and* the
/// committed configuration still names it primary *and* no operation holds the section's lock;
/// only a fence this keeper set is lifted. A new lease is taken only in a transaction that
/// compares the section's lock (absent) and the latest commit, so it cannot be taken in the middle
/// of a failover that replaces this primary.
actor PrimaryLeaseKeeper {
    let instance: String
    let section: String
    let settings: AgentConfiguration.Fencing
    let etcd: EtcdClient
    let root: String
    let agentName: String
    let fence: SQLFence
    let logger: Logger
    /// This agent's failsafe answers, told whether etcd answers here.
    let responder: FailsafeResponder?
    private let clock = ContinuousClock()
    private let startedAt = ContinuousClock.now

    private var leaseID: Int64 = 0
    /// When the writes of the instance stop being covered by a lease: the fence starts then.
    private var deadline: ContinuousClock.Instant?
    /// Whether the committed configuration names the instance primary (nil: not known yet).
    private var isPrimary: Bool?
    /// The mod revision of `committed` the primary was read at.
    private var committedRevision: Int64 = -1
    /// The latest probe's `read_only` (nil: unreachable or not probed yet).
    private var readOnly: Bool?
    /// Set while this keeper keeps the instance read-only.
    private(set) var selfFence: SelfFence?
    private var fencing = false
    /// The pooled replicas of the section, from the latest commit, and where their agents answer
    /// failsafe requests (from their observations, read while etcd answered).
    private var replicas = Set<String>()
    private var peers = [String: FailsafeEndpoint]()
    private var peersReadAt: ContinuousClock.Instant?
    /// Since when the failsafe mode keeps the instance writable without a renewed lease.
    private var failsafeSince: ContinuousClock.Instant?
    /// Set when a commit named another primary while this one was primary here: until a probe
    /// sees the instance read-only, a writable instance (an old primary restarted after a
    /// failover, as its option file says) is fenced at once.
    private var demotedAt: ContinuousClock.Instant?
    private var lastDemotionLook = ContinuousClock.now - .seconds(3600)
    /// When a fence last found the instance read-only already: looked at again a renewal later.
    private var alreadyReadOnlyAt = ContinuousClock.now - .seconds(3600)
    /// What was last logged of each kind, so that a repeated failure is logged once.
    private var logged = [String: String]()

    init(
        instance: String, section: String, settings: AgentConfiguration.Fencing, etcd: EtcdClient, root: String, agentName: String,
        fence: SQLFence, logger: Logger, responder: FailsafeResponder? = nil
    ) {
        self.instance = instance
        self.section = section
        self.settings = settings
        self.etcd = etcd
        self.root = root
        self.agentName = agentName
        self.fence = fence
        self.logger = logger
        self.responder = responder
    }

    var leaseKey: String { "\(root)/fencing/lease/\(section)" }
    var lockKey: String { "\(root)/locks/\(section)" }
    var committedKey: String { "\(root)/committed" }

    /// What the latest probe saw; the first writable sighting of an instance not known to be a
    /// replica starts the grace to take a lease.
    func noteProbe(readOnly: Bool?) {
        self.readOnly = readOnly
        if readOnly == true { demotedAt = nil }
        // No longer the primary and read-only: a replica, or an old primary left for a rejoin;
        // its fence is nothing to lift any more (drift says NEEDS_REJOIN instead).
        if readOnly == true, isPrimary == false, !fencing { selfFence = nil }
    }

    /// Renews and watches until cancelled; then gives the lease back if the instance is no longer
    /// writable, or leaves it to expire (a writable primary must not lose its lease early).
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.renewLoop() }
            group.addTask { await self.guardLoop() }
        }
        await fence.close()
    }

    /// The lease as the health checks and metrics read it (nothing is changed): whether the
    /// lease is held in etcd, the seconds left before the fence deadline (`now` on the
    /// monotonic clock), and why the instance is kept read-only while it is.
    func reading(at now: ContinuousClock.Instant) -> HealthCheck.Lease {
        let left = deadline.map { deadline -> Double in
            let components = (deadline - now).components
            return Double(components.seconds) + Double(components.attoseconds) / 1e18
        }
        return HealthCheck.Lease(held: leaseID != 0, secondsLeft: left, selfFence: selfFence?.reason ?? (fencing ? "the fence is running" : nil))
    }

    // MARK: Renewal

    private func renewLoop() async {
        let interval = Duration.milliseconds(Int(settings.renewInterval * 1000))
        var next = clock.now
        while !Task.isCancelled {
            await renewOnce()
            next += interval
            if next < clock.now { next = clock.now }
            try? await Task.sleep(until: next, clock: clock)
        }
    }

    /// One round: learn whether the instance is primary, renew or take the lease, lift a fence
    /// that may be lifted, give the lease back when the instance is no longer primary.
    func renewOnce() async {
        let sent = clock.now
        var confirmed = false
        do {
            isPrimary = try await readIsPrimary()
            confirmed = true
            responder?.etcdAnswered()
        } catch {
            responder?.etcdFailed()
            logOnce("primary", "primary lease of \(section): the committed primary cannot be read: \(error)")
        }
        var renewed = false
        if leaseID != 0 {
            do {
                if try await etcd.keepAlive(leaseID) != nil {
                    // The lease lives; the key must still be bound to it (not deleted, not taken over).
                    if let key = try await etcd.value(leaseKey), key.lease == leaseID {
                        renewed = true
                    } else {
                        logger.error("primary lease of \(section) on \(instance): the key is gone or bound to another lease; taking it again")
                        _ = try? await etcd.revokeLease(leaseID)
                        leaseID = 0
                    }
                } else {
                    logger.error(
                        "primary lease of \(section) on \(instance): lease \(leaseID) expired; \(instance) takes no writes until it has a lease again"
                    )
                    leaseID = 0
                }
            } catch {
                responder?.etcdFailed()
                logOnce("renew", "primary lease of \(section) on \(instance): keep-alive failed: \(error)")
            }
        }
        if isPrimary == true, leaseID == 0, confirmed {
            switch await acquire() {
            case .taken: renewed = true
            case .coveredByOperation:
                // The leader runs an operation on the section (a switchover that just made this
                // instance primary): inside its own lease, the operation answers for the primary.
                // Never for a deadline already passed: an old primary being replaced stays fenced,
                // and a fence that failed is retried.
                if selfFence == nil, deadline.map({ sent < $0 }) ?? true {
                    deadline = sent + .milliseconds(Int(settings.timing.fenceAfter * 1000))
                }
            case .notTaken: break
            }
        }
        if renewed {
            deadline = sent + .milliseconds(Int(settings.timing.fenceAfter * 1000))
            logged = [:]
            if failsafeSince != nil {
                logger.notice("failsafe of \(instance) over: the primary lease of \(section) is renewed in etcd again")
                failsafeSince = nil
            }
        } else if isPrimary == true, selfFence == nil, !confirmed, let failsafe = settings.failsafe, await failsafeGranted(failsafe) {
            deadline = sent + .milliseconds(Int(settings.timing.fenceAfter * 1000))
        }
        switch isPrimary {
        case false?:
            if leaseID != 0 || deadline != nil {
                demotedAt = clock.now
                logger.notice("\(instance) is no longer the committed primary of \(section); it is kept read-only")
            }
            deadline = nil
            if leaseID != 0 { await release() }
        case true?:
            demotedAt = nil
            // A primary that has never held a lease gets one lease time to take it.
            if deadline == nil { deadline = sent + .milliseconds(Int(settings.timing.fenceAfter * 1000)) }
        case nil:
            // Not known yet (etcd unreachable since start): a writable instance is treated as a
            // primary, counted from the agent's start.
            if deadline == nil, readOnly == false { deadline = startedAt + .milliseconds(Int(settings.timing.fenceAfter * 1000)) }
        }
        if renewed, confirmed, isPrimary == true, selfFence != nil { await liftIfAllowed() }
        if isPrimary == true, !fencing { await fence.prepare() }
    }

    /// Whether the latest commit names this instance the primary of its section. Reads the
    /// generated configuration again only when `committed` moved; with the failsafe mode, reads
    /// where the section's replica agents answer every few seconds.
    private func readIsPrimary() async throws -> Bool {
        guard let committed = try await etcd.value(committedKey) else { return false }
        var primary = isPrimary ?? false
        if committed.modRevision != committedRevision || isPrimary == nil {
            let members = try PrimaryDirectory.members(try await etcd.get(root + "/generated/", prefix: true).kvs)[section]
            committedRevision = committed.modRevision
            replicas = members?.replicas ?? []
            primary = members?.primary == instance
            peersReadAt = nil
        }
        if settings.failsafe != nil, primary, peersReadAt.map({ clock.now - $0 > .seconds(5) }) ?? true {
            var found = [String: FailsafeEndpoint]()
            for name in replicas {
                guard let kv = try await etcd.value("\(root)/observed/\(name)"),
                    let endpoint = (try? ObservationJSON.decode(kv.value))?.failsafeEndpoint.flatMap(FailsafeEndpoint.init)
                else { continue }
                found[name] = endpoint
            }
            peers = found
            peersReadAt = clock.now
        }
        return primary
    }

    /// The failsafe mode: a controller and a majority of the section's replica agents answer,
    /// directly, that etcd does not answer them either. Asked all at once, each within
    /// `request_timeout`.
    private func failsafeGranted(_ failsafe: AgentConfiguration.Fencing.Failsafe) async -> Bool {
        let request = FailsafeRequest(section: section, primary: instance, agent: agentName)
        let timeout = settings.requestTimeout
        let controllers = failsafe.controllers.compactMap(FailsafeEndpoint.init)
        let asked = await withTaskGroup(of: (Bool, FailsafeAnswer?).self) { group -> [(Bool, FailsafeAnswer?)] in
            for endpoint in controllers { group.addTask { (true, await FailsafeListener.ask(endpoint, request, timeout: timeout)) } }
            for endpoint in peers.values { group.addTask { (false, await FailsafeListener.ask(endpoint, request, timeout: timeout)) } }
            var answers = [(Bool, FailsafeAnswer?)]()
            for await answer in group { answers.append(answer) }
            return answers
        }
        let controller = asked.first { $0.0 && $0.1?.granted == true }?.1
        let replicaGrants = asked.filter { !$0.0 && $0.1?.granted == true }.count
        let majority = replicas.count / 2 + 1
        guard let controller, replicaGrants >= majority else {
            let refusals = asked.compactMap { $0.1.flatMap { $0.granted ? nil : "\($0.by): \($0.reason)" } }
            logOnce(
                "failsafe",
                "failsafe of \(instance) refused: \(controller == nil ? "no controller granted it" : "a controller granted it")"
                    + ", \(replicaGrants) of \(replicas.count) replica agents did (\(majority) needed)"
                    + (refusals.isEmpty ? "" : "; " + refusals.joined(separator: "; ")))
            return false
        }
        if failsafeSince == nil {
            failsafeSince = clock.now
            logger.critical(
                "failsafe of \(instance): etcd does not answer, but \(controller.by) and \(replicaGrants) of \(replicas.count) replica agents do and cannot reach it either; \(instance) stays writable"
            )
        }
        return true
    }

    enum Acquisition { case taken, coveredByOperation, notTaken }

    /// Takes the lease when no operation holds the section, nobody else holds it, and the commit
    /// that named this instance primary is still the latest.
    private func acquire() async -> Acquisition {
        do {
            switch try await lockState() {
            case .none: break
            case .operation(_, let candidate) where candidate == instance:
                logOnce(
                    "acquire", "primary lease of \(section): the operation promoting \(instance) holds the section; the lease is taken when it ends")
                return .coveredByOperation
            case .operation, .unreadable:
                logOnce("acquire", "primary lease of \(section): an operation that does not promote \(instance) holds the section")
                return .notTaken
            }
            let current = try await etcd.value(leaseKey)
            if let current, let holder = try? StoredJSON.decode(PrimaryLease.self, from: current.value), holder.instance != instance {
                logOnce("acquire", "primary lease of \(section): held by \(holder.instance) (agent \(holder.agent)); waiting for it to go")
                return .notTaken
            }
            let lease = try await etcd.grantLease(ttl: Int64(settings.leaseTTL))
            let record = PrimaryLease(
                section: section, instance: instance, agent: agentName, ttl: settings.leaseTTL, margin: settings.margin, acquiredAt: Date())
            let result = try await etcd.transaction(
                Transaction(
                    compares: [
                        .absent(lockKey), .unchanged(committedKey, since: committedRevision),
                        current.map { .unchanged(leaseKey, since: $0.modRevision) } ?? .absent(leaseKey),
                    ],
                    success: [.put(leaseKey, try StoredJSON.encode(record), lease: lease.id)]))
            guard result.succeeded else {
                _ = try? await etcd.revokeLease(lease.id)
                logOnce("acquire", "primary lease of \(section): changed while it was being taken; trying again")
                return .notTaken
            }
            leaseID = lease.id
            logger.notice(
                "primary lease of \(section) taken for \(instance) (lease \(lease.id), \(settings.leaseTTL) s, margin \(settings.margin) s)")
            return .taken
        } catch {
            logOnce("acquire", "primary lease of \(section): cannot be taken now: \(error)")
            return .notTaken
        }
    }

    /// What holds the section's lock: nothing, an operation (its kind and candidate), or a lock
    /// whose operation cannot be read.
    enum LockState: Sendable {
        case none
        case operation(kind: String, candidate: String)
        case unreadable
    }

    private struct LockingOperation: Decodable {
        var kind: String
        var candidate: String
    }

    private func lockState() async throws -> LockState {
        guard let lock = try await etcd.value(lockKey) else { return .none }
        let id = String(decoding: lock.value, as: UTF8.self)
        guard let record = try await etcd.value("\(root)/operations/\(id)"),
            let operation = try? JSONDecoder().decode(LockingOperation.self, from: Data(record.value))
        else { return .unreadable }
        return .operation(kind: operation.kind, candidate: operation.candidate)
    }

    /// Gives the lease back: the instance is no longer the committed primary.
    private func release() async {
        let id = leaseID
        leaseID = 0
        _ = try? await etcd.revokeLease(id)
        logger.notice("primary lease of \(section) released: \(instance) is no longer its committed primary")
    }

    /// Lifts this keeper's own fence: the lease is held again, the commit still names the
    /// instance and no operation holds the section.
    private func liftIfAllowed() async {
        guard !fencing, let fenced = selfFence else { return }
        do {
            guard try await etcd.value(lockKey) == nil else { return }
            try await fence.lift()
            selfFence = nil
            logger.notice(
                "self-fence of \(instance) lifted: the primary lease of \(section) is held again and \(instance) is still its committed primary (fenced since \(fenced.since))"
            )
        } catch {
            logOnce("lift", "self-fence of \(instance) cannot be lifted yet: \(error)")
        }
    }

    // MARK: The fence

    private func guardLoop() async {
        while !Task.isCancelled {
            if let deadline, clock.now >= deadline, selfFence == nil, !fencing, isPrimary != false,
                clock.now - alreadyReadOnlyAt >= .milliseconds(Int(settings.renewInterval * 1000))
            {
                await fenceNow(late: clock.now - deadline)
            } else if demotedAt != nil, isPrimary == false, readOnly == false, selfFence == nil, !fencing,
                clock.now - lastDemotionLook >= .milliseconds(Int(settings.renewInterval * 1000))
            {
                lastDemotionLook = clock.now
                await fenceNow(late: .zero, demoted: true)
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func fenceNow(late: Duration, demoted: Bool = false) async {
        fencing = true
        defer { fencing = false }
        if demoted {
            // Only on a fresh look: no operation holds the section (a switchover or its rollback
            // owns the servers meanwhile), and the latest commit still names another primary.
            do {
                switch try await lockState() {
                case .none, .unreadable: break
                case .operation(let kind, _) where kind == "failover": break  // the failover replacing it: it must not write
                case .operation: return  // a switchover, its rollback, a rejoin: the operation owns the servers
                }
                guard try await readIsPrimary() == false else {
                    isPrimary = true
                    demotedAt = nil
                    return
                }
            } catch {
                return  // etcd does not answer: the lease's own fence covers a host cut off
            }
        }
        let reason =
            demoted
            ? "\(instance) is writable but no longer the committed primary of \(section) (a failover replaced it)"
            : leaseID == 0
                ? "\(instance) holds no primary lease of \(section) (lost, or never taken since etcd stopped answering)"
                : "the primary lease of \(section) could not be renewed for \(settings.timing.fenceAfter) s (etcd unreachable from this host)"
        logger.critical("self-fence of \(instance): \(reason); making it read-only")
        do {
            let actions = try await fence.fence(reason: reason, instance: instance, section: section)
            selfFence = SelfFence(since: Date(), reason: reason, actions: actions)
            logger.critical("self-fence of \(instance) done: \(actions.joined(separator: ", "))")
        } catch SQLFence.Outcome.alreadyReadOnly {
            // Someone else made it read-only (a switchover, the controller's own fence): nothing
            // of this keeper's to lift later, so no fence is recorded. The passed deadline stays:
            // made writable again without a lease, it is fenced at the next look.
            alreadyReadOnlyAt = clock.now
        } catch {
            logger.critical("self-fence of \(instance) FAILED, retrying: \(error)")
        }
    }

    private func logOnce(_ kind: String, _ message: String) {
        guard logged[kind] != message else { return }
        logged[kind] = message
        logger.warning("\(message)")
    }
}
