import Foundation
import Observation
import StoredRecords

/// An operation as kept in etcd at `/marina/v1/operations/<id>`: the request, the plan, and
/// the journal of every step (its start, result and duration), written before moving on.
public struct OperationRecord: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        /// Written by the CLI; no controller has taken it yet.
        case requested
        /// A dry run: planned and checked, nothing changed.
        case planned
        /// A preflight check failed; nothing changed.
        case refused
        case running
        case rollingBack = "rolling-back"
        case done
        /// Switched, but a host failed after the point of no return and needs a human.
        case doneNeedsAttention = "done-needs-attention"
        /// Failed before the point of no return; every completed step was undone and verified.
        case rolledBack = "rolled-back"
        /// The undo itself failed: the section is left read-only for a human.
        case needsHuman = "needs-human"

        public var isFinished: Bool {
            switch self {
            case .requested, .running, .rollingBack: false
            case .planned, .refused, .done, .doneNeedsAttention, .rolledBack, .needsHuman: true
            }
        }

        /// The CLI's exit status for an operation in this state (the table in `docs/cli.md`):
        /// 0 done or planned, 2 refused, 4 rolled back, 5 left for a human, 6 done but a host
        /// needs attention; 7 (outcome unknown) for one not finished.
        public var exitCode: Int32 {
            switch self {
            case .done, .planned: 0
            case .refused: 2
            case .rolledBack: 4
            case .needsHuman: 5
            case .doneNeedsAttention: 6
            case .requested, .running, .rollingBack: 7
            }
        }
    }

    public var schema = 1
    public var id: String
    public var kind: String
    public var section: String
    public var candidate: String
    public var reason: String
    public var skipReplicas: [String]
    public var dryRun: Bool
    public var requestedBy: String
    public var requestedAt: Date
    public var state: State
    /// The controller running it (its leader id).
    public var controller: String?
    public var oldPrimary: String?
    /// The section's read-only reason before the operation (nil when it took writes), restored at the end.
    public var previousReadOnlyReason: String?
    /// The old primary's final `gtid_binlog_pos`, once read.
    public var finalPosition: String?
    /// Skipped replicas this operation depooled (pooled again if it rolls back).
    public var depooled: [String] = []
    /// Milliseconds from the old primary's `read_only = ON` to the candidate's `read_only = OFF`:
    /// the window in which no instance takes the application's writes.
    public var windowMilliseconds: Double?
    /// `--force-long-transactions`: preflight does not refuse an old primary running a long
    /// transaction or statement (the flip may then time out at its read-only step and roll back).
    public var forceLongTransactions: Bool?
    /// The candidate's replication channel settings (TLS, retry, heartbeat period), read before
    /// the flip and given to the old primary's new channel, so that it replicates the same way.
    public var channelSettings: ReplicationChannelSettings?
    /// A failover's detection, choice, positions and fork point (nil for other operations).
    public var failover: FailoverDetails?
    /// A move's new source: the member `candidate` replicates from afterwards (nil for other operations).
    public var newSource: String?
    /// Test only: the step the controller is paused before.
    public var pausedBefore: String?
    /// The digest (`planDigest()`) of the plan the DBA approved, when the request carries one:
    /// the controller refuses to run a plan whose digest differs.
    public var approvedPlan: String?
    /// SHA-256 of what a plan's journaled statements leave out (a grant sync's password hashes,
    /// written `<redacted>` in the steps), so that the plan's digest covers them too.
    public var secretsDigest: String?
    /// A DBA's `marina operation abort` as the controller acted on it (nil: none).
    public var abort: AbortNote?
    public var steps: [StepRecord]
    /// Why a preflight refused it.
    public var refusals: [String]
    /// The step, host and error that made it fail.
    public var failure: Failure?
    /// Hosts that need a human after the operation finished.
    public var attention: [String]
    public var startedAt: Date?
    public var finishedAt: Date?
    public var updatedAt: Date

    public struct Failure: Codable, Sendable, Equatable {
        public var step: String
        public var host: String
        public var error: String
        public init(step: String, host: String, error: String) {
            self.step = step
            self.host = host
            self.error = error
        }
    }

    public init(
        id: String, kind: String = "switchover", section: String, candidate: String, reason: String, skipReplicas: [String] = [],
        dryRun: Bool = false, requestedBy: String, requestedAt: Date
    ) {
        self.id = id
        self.kind = kind
        self.section = section
        self.candidate = candidate
        self.reason = reason
        self.skipReplicas = skipReplicas
        self.dryRun = dryRun
        self.requestedBy = requestedBy
        self.requestedAt = requestedAt
        self.state = .requested
        self.steps = []
        self.refusals = []
        self.attention = []
        self.updatedAt = requestedAt
    }

    enum CodingKeys: String, CodingKey {
        case schema, id, kind, section, candidate, reason
        case skipReplicas = "skip_replicas"
        case dryRun = "dry_run"
        case requestedBy = "requested_by"
        case requestedAt = "requested_at"
        case state, controller
        case oldPrimary = "old_primary"
        case previousReadOnlyReason = "previous_read_only_reason"
        case finalPosition = "final_position"
        case depooled
        case windowMilliseconds = "window_milliseconds"
        case pausedBefore = "paused_before"
        case approvedPlan = "approved_plan"
        case secretsDigest = "secrets_digest"
        case abort
        case
            forceLongTransactions = "force_long_transactions"
        case channelSettings = "channel_settings"
        case failover
        case newSource = "new_source"
        case steps, refusals, failure, attention
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case updatedAt = "updated_at"
    }

    /// The steps completed so far (in order), which a rollback undoes in reverse.
    public var completedSteps: [StepRecord] { steps.filter { $0.state == .done } }

    /// Whether the point of no return has been passed (its step started: its effect may exist).
    public var passedPointOfNoReturn: Bool {
        steps.contains { $0.pointOfNoReturn && $0.state != .pending }
    }

    public var pointOfNoReturnIndex: Int? { steps.firstIndex { $0.pointOfNoReturn } }
}

/// One planned step and its journal.
public struct StepRecord: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        case pending, running, done, failed, undoing, undone
        case undoFailed = "undo-failed"
    }

    public var name: String
    public var action: StepAction
    /// The replica a `move-replicas` step moves, or the hook's name.
    public var subject: String?
    public var hosts: [String]
    /// The exact SQL (or command), each prefixed by the host that runs it. Passwords read `<from the credentials file>`.
    public var statements: [String]
    public var check: String
    public var undo: [String]
    public var timeout: Double
    public var pointOfNoReturn: Bool
    /// For `exec` steps: the command and its undo.
    public var command: [String]?
    public var undoCommand: [String]?

    public var state: State = .pending
    public var startedAt: Date?
    /// Milliseconds the step took (action and check).
    public var milliseconds: Double?
    public var error: String?
    public var host: String?
    public var undoMilliseconds: Double?
    public var undoError: String?

    public init(
        name: String, action: StepAction, subject: String? = nil, hosts: [String], statements: [String], check: String, undo: [String],
        timeout: Double, pointOfNoReturn: Bool = false, command: [String]? = nil, undoCommand: [String]? = nil
    ) {
        self.name = name
        self.action = action
        self.subject = subject
        self.hosts = hosts
        self.statements = statements
        self.check = check
        self.undo = undo
        self.timeout = timeout
        self.pointOfNoReturn = pointOfNoReturn
        self.command = command
        self.undoCommand = undoCommand
    }

    enum CodingKeys: String, CodingKey {
        case name, action, subject, hosts, statements, check, undo, timeout
        case pointOfNoReturn = "point_of_no_return"
        case command
        case undoCommand = "undo_command"
        case state
        case startedAt = "started_at"
        case milliseconds, error, host
        case undoMilliseconds = "undo_milliseconds"
        case undoError = "undo_error"
    }
}

extension OperationRecord {
    /// A new operation id: `YYYYMMDD-HHMMSS-SECTION-xxxx` in UTC (`-auto-xxxx` for the
    /// controller's own requests), sorting by time.
    public static func newID(section: String, automatic: Bool = false) -> String {
        let stamp = Date().formatted(
            Date.VerbatimFormatStyle(
                format:
                    "\(year: .defaultDigits)\(month: .twoDigits)\(day: .twoDigits)-\(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased))\(minute: .twoDigits)\(second: .twoDigits)",
                timeZone: .gmt, calendar: Calendar(identifier: .gregorian)))
        return "\(stamp)-\(section)-\(automatic ? "auto-" : "")\(String(UInt16.random(in: 0...UInt16.max), radix: 16))"
    }
}

/// Operation records as stored in etcd (`StoredJSON`).
public enum OperationJSON {
    /// Throws when the record cannot be written as JSON (a number that is not finite, such
    /// as a NaN duration): the caller then writes nothing, rather than bytes that are not a record.
    public static func encode(_ record: OperationRecord) throws -> [UInt8] {
        try StoredJSON.encode(record)
    }

    public static func decode(_ bytes: [UInt8]) throws -> OperationRecord {
        try StoredJSON.decode(OperationRecord.self, from: bytes)
    }

    /// Decodes the record stored at `key`; a value that is not one throws an
    /// `UnreadableRecord` naming the key and the problem in one line.
    public static func decode(_ bytes: [UInt8], key: String) throws(UnreadableRecord) -> OperationRecord {
        do {
            return try decode(bytes)
        } catch {
            throw UnreadableRecord(key: key, problem: StoredJSON.describe(error, bytes: bytes))
        }
    }
}

/// A stored operation record (journal) that does not decode: where it is, and why.
public struct UnreadableRecord: Error, CustomStringConvertible, Equatable, Sendable {
    /// The etcd key.
    public var key: String
    /// What is wrong with the value, in one line.
    public var problem: String

    public init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }

    public var description: String { "the operation record at \(key) cannot be read: \(problem)" }
}
