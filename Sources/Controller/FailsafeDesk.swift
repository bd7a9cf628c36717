import FailsafeLink
import Foundation
import Synchronization

/// The controller's side of the failsafe mode (`failover.failsafe_listen`,
/// `docs/operations/fencing.md`): the agent of a primary that cannot renew its lease asks
/// whether it may stay writable. The controller grants it only when it cannot reach etcd
/// either (its latest keep-alive failed) and it led at its last contact: then etcd is down for everyone, and no failover can be committed anyway. Each grant
/// is a promise: no failover of that section before the grant plus `hold` seconds (the primary
/// lease time and its margin), kept by `noFailoverReason`. A controller that starts to lead
/// keeps the same promise for the grants a previous leader may have given.
final class FailsafeDesk: Sendable {
    struct State {
        var lastContact: ContinuousClock.Instant?
        /// Whether the latest keep-alive or campaign failed to reach etcd.
        var latestFailed = false
        var ledAtLastContact = false
        var leadingSince: ContinuousClock.Instant?
        var grants = [String: ContinuousClock.Instant]()
    }

    let controller: String
    let hold: Double
    private let state = Mutex(State())

    init(controller: String, hold: Double) {
        self.controller = controller
        self.hold = hold
    }

    /// A keep-alive or campaign did not reach etcd.
    func etcdFailed() { state.withLock { $0.latestFailed = true } }

    /// A keep-alive or a campaign answered: `leading` tells whether this controller leads now.
    func etcdAnswered(leading: Bool) {
        let now = ContinuousClock.now
        state.withLock {
            $0.lastContact = now
            $0.latestFailed = false
            if leading && !$0.ledAtLastContact { $0.leadingSince = now }
            $0.ledAtLastContact = leading
        }
    }

    func answer(_ request: FailsafeRequest) -> FailsafeAnswer {
        let now = ContinuousClock.now
        return state.withLock { state -> FailsafeAnswer in
            let by = "controller \(controller)"
            guard state.ledAtLastContact, let last = state.lastContact else {
                return FailsafeAnswer(granted: false, by: by, reason: "this controller did not lead at its last contact with etcd")
            }
            let silent = now - last
            guard state.latestFailed else {
                return FailsafeAnswer(
                    granted: false, by: by, reason: "this controller reaches etcd: the lease must be renewed there (your host is cut off from it)")
            }
            state.grants[request.section] = now
            return FailsafeAnswer(
                granted: true, by: by,
                reason: "etcd silent for \(Int(silent.components.seconds)) s here too; no failover of \(request.section) for \(hold) s")
        }
    }

    /// Why a failover of `section` may not start now (a grant, or a new lead, too recent), or nil.
    func noFailoverReason(_ section: String) -> String? {
        let now = ContinuousClock.now
        let hold = Duration.milliseconds(Int(self.hold * 1000))
        return state.withLock { state in
            if let granted = state.grants[section], now - granted < hold {
                return "failsafe: this controller let the primary of \(section) keep its writes while etcd was down, "
                    + "\(Int((now - granted).components.seconds)) s ago; no failover for \(self.hold) s after that"
            }
            if let since = state.leadingSince, now - since < hold {
                return "failsafe: this controller leads since \(Int((now - since).components.seconds)) s; "
                    + "a previous leader may have let the primary keep its writes, so no failover for \(self.hold) s"
            }
            return nil
        }
    }
}
