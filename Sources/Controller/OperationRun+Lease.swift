import Foundation
import MariaDBClient
import Observation
import Operations
import Probing
import StoredRecords
import Topology

/// The failover's side of the primary lease (`docs/operations/fencing.md`): nobody is made
/// writable while the old primary's lease can still be valid, and an old primary that is alive
/// but has lost its lease is fenced over SQL before anyone else is promoted.
extension OperationRun {
    /// What waiting for the old primary's lease came to.
    enum LeaseWait {
        /// The lease can no longer be valid: what was waited, for the journal.
        case over(String)
        /// The lease is still renewed, or the key is not one this controller can read.
        case refused(String)
    }

    /// Waits until the old primary's lease cannot be valid any more. No wait when the primary's
    /// own agent reports it down (that agent is alive and holds the lease: the primary does not
    /// answer it either). Otherwise the lease key must vanish (its agent no longer renews it),
    /// then the larger of its margin and `primary_lease_margin` passes. No key at all (it expired
    /// already, or the agent never took one) costs `primary_lease_ttl + primary_lease_margin`.
    func waitOutPrimaryLease(_ primary: String, agentReportsDown: Bool) async throws -> LeaseWait {
        if agentReportsDown { return .over("no lease wait: \(primary)'s own agent reports it down") }
        let settings = context.failover
        let key = context.keys.primaryLease(record.section)
        let clock = ContinuousClock()
        let start = clock.now
        guard let first = try await context.etcd.value(key) else {
            if let sighting = await context.leaseSightings.gone(section: record.section, instance: primary) {
                // The leader's watch saw it held, and it is gone: it expired before the first look
                // that found it gone (or this one).
                let margin = max(sighting.lease.margin, settings.primaryLeaseMargin)
                let until = sighting.goneAt + .milliseconds(Int(margin * 1000))
                if clock.now < until { try await Task.sleep(until: until, clock: clock) }
                return .over(
                    "the primary lease of \(record.section) (\(primary), \(sighting.lease.ttl) s) was gone when the failover watch looked, "
                        + "\(Seconds.format((start - sighting.goneAt).seconds)) s before the failover; then \(Seconds.format(margin)) s of margin from that look"
                )
            }
            let seconds = Double(settings.primaryLeaseTTL) + settings.primaryLeaseMargin
            context.logger.notice(
                "operation \(record.id): no primary lease of \(record.section) in etcd; waiting \(seconds) s before anyone takes writes")
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return .over(
                "no primary lease of \(record.section) in etcd (expired, or never taken): waited primary_lease_ttl + primary_lease_margin = \(Seconds.format(seconds)) s"
            )
        }
        guard let lease = try? StoredJSON.decode(PrimaryLease.self, from: first.value) else {
            return .refused("\(key) is not a primary lease this controller can read: a human must look at it")
        }
        guard lease.instance == primary else {
            return .refused("the primary lease of \(record.section) names \(lease.instance), not its primary \(primary)")
        }
        // Unrenewed, the lease vanishes within its time-to-live; still there later, it is renewed.
        let limit = Duration.milliseconds(Int((Double(lease.ttl) + 1.5) * 1000))
        context.logger.notice("operation \(record.id): waiting for the primary lease of \(record.section) (\(primary), \(lease.ttl) s) to expire")
        while try await context.etcd.value(key) != nil {
            // The agent that holds it may report its primary down meanwhile (its next probe after
            // a crash): then it is alive, reaches etcd, and its primary answers nobody.
            if try await agentNowReportsDown(primary) { return .over("no lease wait: \(primary)'s own agent reports it down") }
            if clock.now - start > limit {
                return .refused(
                    "the primary lease of \(record.section) is still renewed by \(primary)'s agent (\(lease.agent)) after \(lease.ttl) s: "
                        + "its host reaches etcd, so it is not cut off")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let expiredAfter = clock.now - start
        let margin = max(lease.margin, settings.primaryLeaseMargin)
        try await Task.sleep(for: .milliseconds(Int(margin * 1000)))
        return .over(
            "the primary lease of \(record.section) (\(primary), \(lease.ttl) s) expired \(Seconds.format(expiredAfter.seconds)) s into the wait; "
                + "then \(Seconds.format(margin)) s of margin")
    }

    /// Whether the primary's own agent, fresh, reports it unreachable.
    func agentNowReportsDown(_ primary: String) async throws -> Bool {
        guard let stored = try await context.etcd.value(context.keys.observed + primary),
            let observation = try? ObservationJSON.decode(stored.value)
        else { return false }
        return !observation.reachable && Date().timeIntervalSince(observation.observedAt) <= context.failover.maxObservationAge
    }

    /// The old primary answers but has lost its lease, and its agent is silent (frozen, dead):
    /// nothing fences it but the controller. `SET GLOBAL read_only = ON`, every client session
    /// but replication's and the controller's own killed, `read_only` read back; gives its final
    /// `gtid_binlog_pos`, which every replica applies before the candidate takes writes.
    func fenceOverSQL(_ primary: Instance, timeout: Double) async throws -> String {
        let hosts = context.hosts
        try await setReadOnly(true, on: primary, timeout: timeout)
        let sessions = try await hosts.query(primary, ClientSessions.query, timeout: timeout)
        var killed = 0
        for row in sessions.rows where row["user"] != context.controllerUser {
            guard let id = row["id"].flatMap({ UInt($0) }) else { continue }
            do {
                try await hosts.query(primary, "KILL CONNECTION \(id)", timeout: timeout)
                killed += 1
            } catch let error as HostError {
                guard case .refused(let reply) = error.failure, reply.code == ClientSessions.alreadyGone else { throw error }
                continue  // ER_NO_SUCH_THREAD: it ended on its own
            }
        }
        guard try await readOnly(primary, timeout: timeout) == true else {
            throw ControllerError.stepFailed(host: primary.name, message: "read_only is OFF again after the controller's fence")
        }
        let position = try await hosts.value(primary, SwitchoverSQL.readBinlogPosition, column: "pos", timeout: timeout) ?? ""
        guard (try? GTIDPosition(parsing: position)) != nil else {
            throw ControllerError.stepFailed(host: primary.name, message: "gtid_binlog_pos is not a GTID position: \(position)")
        }
        context.logger.critical(
            "operation \(record.id): \(primary.name) had lost its lease with its agent silent; fenced over SQL (read_only = ON, \(killed) sessions killed) at \(position)"
        )
        return position
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// What the leader's failover watch saw of the primary leases, on the controller's monotonic
/// clock: the last lease seen held in each section, and when the watch first found it gone. A
/// lease seen held and then gone expired before that look, so a failover needs to wait only its
/// margin from then, not a whole lease time.
actor LeaseSightings {
    struct Sighting: Sendable {
        var lease: PrimaryLease
        var goneAt: ContinuousClock.Instant
    }
    private var held = [String: PrimaryLease]()
    private var goneAt = [String: ContinuousClock.Instant]()

    func held(_ lease: PrimaryLease) {
        held[lease.section] = lease
        goneAt[lease.section] = nil
    }

    /// The instance last seen holding `section`'s lease.
    func holder(of section: String) -> String? { held[section]?.instance }

    func absent(_ section: String) {
        if held[section] != nil, goneAt[section] == nil { goneAt[section] = .now }
    }

    /// The lease of `instance` in `section` the watch saw held, and when it was first seen gone
    /// (now, if the watch has not looked since: it is gone at the latest now); nil if the watch
    /// never saw that instance hold it.
    func gone(section: String, instance: String) -> Sighting? {
        guard let lease = held[section], lease.instance == instance else { return nil }
        if goneAt[section] == nil { goneAt[section] = .now }
        return Sighting(lease: lease, goneAt: goneAt[section]!)
    }
}
