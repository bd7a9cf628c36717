import FailsafeLink
import Observation
import Synchronization

/// This agent's answers to the failsafe requests of other agents' primaries (`fencing.failsafe`,
/// `docs/operations/fencing.md`). It grants a request only when it cannot reach etcd either
/// (its latest attempt failed: etcd is down here too) and it watches a replica of the request's
/// section that is reachable, read-only and replicating: evidence that the asking primary is
/// not the one cut off, and that this host would not let the replica be promoted (no etcd, no
/// commit). It answers from what the probes and the lease keepers last saw, never blocking.
final class FailsafeResponder: Sendable {
    let agent: String
    private struct State {
        var latest = [String: (section: String, observation: Observation)]()
        var etcdFailed = false
    }
    private let state = Mutex(State())

    init(agent: String) { self.agent = agent }

    func noted(_ observation: Observation, section: String) {
        state.withLock { $0.latest[observation.instance] = (section, observation) }
    }

    func etcdAnswered() { state.withLock { $0.etcdFailed = false } }
    func etcdFailed() { state.withLock { $0.etcdFailed = true } }

    func answer(_ request: FailsafeRequest) -> FailsafeAnswer {
        state.withLock { state in
            let by = "agent \(agent)"
            guard state.etcdFailed else {
                return FailsafeAnswer(granted: false, by: by, reason: "this agent reaches etcd: the lease must be renewed there")
            }
            let replica = state.latest.values.first { entry in
                entry.section == request.section && entry.observation.instance != request.primary && entry.observation.reachable
                    && entry.observation.readOnly == true && entry.observation.replication.first != nil
            }
            guard let replica else {
                return FailsafeAnswer(granted: false, by: by, reason: "no reachable, read-only, replicating replica of \(request.section) here")
            }
            return FailsafeAnswer(
                granted: true, by: by, reason: "\(replica.observation.instance) replicates in \(request.section); etcd does not answer here either")
        }
    }
}
