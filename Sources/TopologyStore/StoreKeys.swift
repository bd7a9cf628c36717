/// Where the source of truth lives in etcd (see docs/etcd-keys.md).
public struct StoreKeys: Sendable {
    public let root: String

    public init(root: String = "/marina/v1") {
        self.root = root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    public var datacenters: String { root + "/datacenters/" }
    public var sections: String { root + "/sections/" }
    public var instances: String { root + "/instances/" }
    /// Bumped by every staged write: one compare on it detects any concurrent change,
    /// deletions included.
    public var staged: String { root + "/staged" }
    /// Staged managed accounts (`grants/<section>/<account>`) and variables (`variables/<section>`).
    public var grants: String { root + "/grants/" }
    public var variables: String { root + "/variables/" }
    /// The committed variables of each section (`committed-variables/<section>`), written by
    /// every commit: what agents read to keep their managed option file.
    public var committedVariables: String { root + "/committed-variables/" }
    /// The variables of each section the last successful variable sync applied
    /// (`synced-variables/<section>`, a `CommittedVariables`): what agents write to option files.
    public var syncedVariables: String { root + "/synced-variables/" }
    /// What the leading controller last read of each instance's managed accounts
    /// (`observed-grants/<instance>`, an `ObservedGrants`), without any secret.
    public var observedGrants: String { root + "/observed-grants/" }
    public var generated: String { root + "/generated/" }
    public var history: String { root + "/history/" }
    /// The sequence number of the latest commit.
    public var committed: String { root + "/committed" }
    /// Operations: plan and journal (`operations/<id>`), pending requests (`requests/<id>`),
    /// section locks (`locks/<section>`, valued with the operation id), the acting controller.
    public var operations: String { root + "/operations/" }
    public var requests: String { root + "/requests/" }
    public var locks: String { root + "/locks/" }
    public var leader: String { root + "/leader" }
    /// What a grant or variable sync read before changing anything (`operation-undo/<id>`): its
    /// undo. Kept apart from the journal because it holds account hashes; deleted when the
    /// operation ends.
    public var operationUndo: String { root + "/operation-undo/" }
    /// What the automatic depool policy remembers: replicas it depooled, refusals, last changes.
    public var policyState: String { root + "/policy/state" }
    /// Sections blocked from another automatic failover (`failover/blocked/<section>`, a
    /// `FailoverBlock`) until a DBA acknowledges the last one or the block runs out.
    public var failoverBlocks: String { root + "/failover/blocked/" }
    /// Primaries the leader cannot reach while a replica still replicates from them
    /// (`failover/unreachable/<section>`, a `PrimaryUnreachable`), under the leader's lease:
    /// what drift reports as `PRIMARY_UNREACHABLE_FROM_CONTROLLER`.
    public var unreachablePrimaries: String { root + "/failover/unreachable/" }
    /// Primary leases (`fencing/lease/<section>`, a `PrimaryLease`), each held by the agent on
    /// the section's primary under its own etcd lease (`docs/operations/fencing.md`).
    public var primaryLeases: String { root + "/fencing/lease/" }
    /// Test-only: a key that releases a controller paused by `pause_before`.
    public var resume: String { root + "/testing/resume/" }
    /// A DBA's abort of a running operation (`aborts/<id>`, an `AbortRequest`), beside the
    /// journal the controller alone writes; deleted by the operation's final journal write.
    public var aborts: String { root + "/aborts/" }
    /// A DBA's `marina operation resume` the leader has not taken yet (`resume-requests/<id>`).
    public var resumeRequests: String { root + "/resume-requests/" }
    /// Every running controller (`controllers/<id>`, a `ControllerRegistration`), each under a
    /// lease of its own: what `marina controller status` lists.
    public var controllers: String { root + "/controllers/" }
    /// The audit trail of hand-made changes to the operations' state (`audit/<time>-<random>`,
    /// an `AuditRecord`), such as a lock a DBA released.
    public var audit: String { root + "/audit/" }

    public func datacenter(_ name: String) -> String { datacenters + name }
    public func section(_ name: String) -> String { sections + name }
    public func instance(_ name: String) -> String { instances + name }
    public func grant(_ section: String, _ account: String) -> String { grants + section + "/" + account }
    public func variables(_ section: String) -> String { variables + section }
    public func committedVariables(_ section: String) -> String { committedVariables + section }
    public func syncedVariables(_ section: String) -> String { syncedVariables + section }
    public func observedGrants(_ instance: String) -> String { observedGrants + instance }
    public func generated(_ datacenter: String) -> String { generated + datacenter }
    public func operation(_ id: String) -> String { operations + id }
    public func request(_ id: String) -> String { requests + id }
    public func lock(_ section: String) -> String { locks + section }
    public func operationUndo(_ id: String) -> String { operationUndo + id }
    public func failoverBlock(_ section: String) -> String { failoverBlocks + section }
    public func unreachablePrimary(_ section: String) -> String { unreachablePrimaries + section }
    public func primaryLease(_ section: String) -> String { primaryLeases + section }
    public func abort(_ id: String) -> String { aborts + id }
    public func resumeRequest(_ id: String) -> String { resumeRequests + id }
    public func controller(_ id: String) -> String { controllers + id }
    public func audit(_ name: String) -> String { audit + name }
    /// Zero-padded so that keys sort in commit order.
    public func history(_ sequence: Int) -> String { history + String(repeating: "0", count: max(0, 10 - String(sequence).count)) + String(sequence) }
}
