/// Every kind of drift, with a stable code (`marina drift --json` and monitoring use it).
/// `docs/drift.md` says what each means and what a DBA usually does.
public enum DriftCode: String, Codable, Sendable, CaseIterable {
    case twoWriters = "TWO_WRITERS"
    case primaryReadOnly = "PRIMARY_READ_ONLY"
    case primaryUnreachable = "PRIMARY_UNREACHABLE"
    case primaryUnreachableFromController = "PRIMARY_UNREACHABLE_FROM_CONTROLLER"
    case replicaUnreachable = "REPLICA_UNREACHABLE"
    case errantGTID = "ERRANT_GTID"
    case wrongSource = "WRONG_SOURCE"
    case noSource = "NO_SOURCE"
    case replicationError = "REPLICATION_ERROR"
    case replicationStopped = "REPLICATION_STOPPED"
    case pooledReplicaLagging = "POOLED_REPLICA_LAGGING"
    case heartbeatMissing = "HEARTBEAT_MISSING"
    case heartbeatStale = "HEARTBEAT_STALE"
    case primaryHeartbeatStalled = "PRIMARY_HEARTBEAT_STALLED"
    case gtidNotUsed = "GTID_NOT_USED"
    case gtidStrictModeOff = "GTID_STRICT_MODE_OFF"
    case binlogOff = "BINLOG_OFF"
    case binlogFormatMismatch = "BINLOG_FORMAT_MISMATCH"
    case noObservation = "NO_OBSERVATION"
    case observationStale = "OBSERVATION_STALE"
    case mirrorStale = "MIRROR_STALE"
    case unknownInstance = "UNKNOWN_INSTANCE"
    case uncommittedChange = "UNCOMMITTED_CHANGE"
    case automaticActionRefused = "AUTOMATIC_ACTION_REFUSED"
    case operationInProgress = "OPERATION_IN_PROGRESS"
    case needsRejoin = "NEEDS_REJOIN"
    case selfFenced = "SELF_FENCED"
    case variableMismatch = "VARIABLE_MISMATCH"
    case variablePendingRestart = "VARIABLE_PENDING_RESTART"
    case optionFileUnwritable = "OPTION_FILE_UNWRITABLE"
    case grantAccountMissing = "GRANT_ACCOUNT_MISSING"
    case grantAccountUnexpected = "GRANT_ACCOUNT_UNEXPECTED"
    case grantAuthenticationDiffers = "GRANT_AUTHENTICATION_DIFFERS"
    case grantTLSDiffers = "GRANT_TLS_DIFFERS"
    case grantLimitsDiffer = "GRANT_LIMITS_DIFFER"
    case grantPrivilegesDiffer = "GRANT_PRIVILEGES_DIFFER"
    case grantRolesDiffer = "GRANT_ROLES_DIFFER"
    case grantDefaultRoleDiffers = "GRANT_DEFAULT_ROLE_DIFFERS"
    case grantsUnreadable = "GRANTS_UNREADABLE"

    public var severity: Severity {
        switch self {
        case .twoWriters, .primaryReadOnly, .primaryUnreachable, .errantGTID, .selfFenced: return .critical
        case .replicaUnreachable, .primaryUnreachableFromController, .wrongSource, .noSource, .replicationError, .replicationStopped,
            .pooledReplicaLagging,
            .heartbeatMissing, .heartbeatStale, .primaryHeartbeatStalled, .noObservation, .observationStale, .mirrorStale,
            .grantAccountMissing, .grantAuthenticationDiffers:
            return .error
        case .gtidNotUsed, .gtidStrictModeOff, .binlogOff, .binlogFormatMismatch, .unknownInstance, .automaticActionRefused, .needsRejoin,
            .variableMismatch, .variablePendingRestart, .optionFileUnwritable, .grantAccountUnexpected, .grantTLSDiffers, .grantLimitsDiffer,
            .grantPrivilegesDiffer, .grantRolesDiffer, .grantDefaultRoleDiffers, .grantsUnreadable:
            return .warning
        case .uncommittedChange, .operationInProgress:
            return .info
        }
    }

    public var summary: String {
        switch self {
        case .twoWriters: return "an instance other than the section's primary is writable"
        case .primaryReadOnly: return "the configured primary is read-only: the section takes no writes"
        case .primaryUnreachable: return "the configured primary does not answer its agent"
        case .replicaUnreachable: return "a replica does not answer its agent"
        case .primaryUnreachableFromController:
            return "the leading controller cannot reach the primary over SQL while a replica still replicates from it: unreachable, not dead"
        case .errantGTID: return "a replica holds transactions the primary never had"
        case .wrongSource: return "a replica replicates from something other than its section's primary"
        case .noSource: return "a replica replicates from nothing"
        case .replicationError: return "a replication thread stopped on an error"
        case .replicationStopped: return "replication threads are stopped (no error)"
        case .pooledReplicaLagging: return "a pooled replica lags more than the threshold"
        case .heartbeatMissing: return "the primary has no heartbeat row to measure lag from"
        case .heartbeatStale: return "the primary's heartbeat is not being written"
        case .primaryHeartbeatStalled:
            return
                "the agent's heartbeat writer on the primary has written nothing for longer than the limit: every replica's lag grows with it, and automatic depool waits for a second witness"
        case .gtidNotUsed: return "a replica does not replicate with GTID"
        case .gtidStrictModeOff: return "gtid_strict_mode is off"
        case .binlogOff: return "the binary log is off"
        case .binlogFormatMismatch: return "a candidate's binlog_format differs from the primary's"
        case .noObservation: return "no agent reports this instance"
        case .observationStale:
            return "an instance's observation is older than the limit (its agent stopped publishing), or dated in the future (a clock)"
        case .mirrorStale: return "the mirror applications read (etcd v2) differs from the committed configuration"
        case .unknownInstance: return "an agent reports an instance the source of truth does not have"
        case .uncommittedChange: return "staged objects not committed yet (informational: drift is judged against what is committed)"
        case .automaticActionRefused: return "a guard rail stopped an automatic depool or repool (the replica still lags, or waits)"
        case .operationInProgress: return "an operation holds the section's lock: its steps change the servers (informational)"
        case .needsRejoin: return "a failover replaced this old primary: it is out of the section until `marina instance rejoin`"
        case .variableMismatch:
            return "a managed global variable's runtime value differs from the committed one for the instance's role (settable at runtime)"
        case .variablePendingRestart:
            return "a managed global variable cannot be set at runtime: it is in the agent's option file and takes effect at the next restart"
        case .grantAccountMissing: return "a managed account or role does not exist on the instance"
        case .grantAccountUnexpected:
            return "an account of a managed user name exists with a host pattern that is not desired (made by hand): the next grant sync drops it"
        case .grantAuthenticationDiffers:
            return "a managed account authenticates with another plugin or another password than committed (never shown)"
        case .grantTLSDiffers: return "a managed account's REQUIRE (TLS) differs from the committed one"
        case .grantLimitsDiffer: return "a managed account's resource limits (WITH MAX_...) differ from the committed ones"
        case .grantPrivilegesDiffer: return "a managed account has privileges more or fewer than committed, on one object"
        case .grantRolesDiffer: return "a managed account has roles more or fewer than committed"
        case .grantDefaultRoleDiffers: return "a managed account's default role differs from the committed one"
        case .grantsUnreadable: return "the leading controller's settings account could not read the instance's managed accounts"
        case .optionFileUnwritable:
            return "the agent cannot write the instance's option file: a restart would lose the managed variables set at runtime"
        case .selfFenced:
            return
                "the agent made this instance read-only itself: its primary lease could not be renewed (etcd unreachable from its host) or was lost"
        }
    }
}
