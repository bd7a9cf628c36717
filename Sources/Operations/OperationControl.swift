import Foundation
import StoredRecords

/// A DBA's request to stop an operation (`marina operation abort ID --reason WHY`), kept at
/// `aborts/<id>` beside the journal, which only the controller writes. The running operation
/// reads it before each step: before the point of no return it stops and rolls back; after
/// it, it notes that the abort came too late and finishes. Deleted with the operation's final
/// journal write.
public struct AbortRequest: Codable, Sendable, Equatable {
    public var schema = 1
    public var operation: String
    /// Who asked (`--author`, `MARINA_AUTHOR`, the login name and host).
    public var by: String
    public var at: Date
    public var reason: String

    public init(operation: String, by: String, at: Date, reason: String) {
        self.operation = operation
        self.by = by
        self.at = at
        self.reason = reason
    }

    /// The error the operation fails with when it stops for this abort.
    public var error: String { "aborted by \(by): \(reason)" }

    public static func decode(_ bytes: [UInt8], key: String) throws -> AbortRequest {
        try StoredJSON.decode(AbortRequest.self, from: bytes, key: key, schema: 1)
    }
}

/// An abort as the controller acted on it, in the journal (`OperationRecord.abort`).
public struct AbortNote: Codable, Sendable, Equatable {
    public var by: String
    /// When it was asked.
    public var at: Date
    public var reason: String
    /// It came after the point of no return: the operation went on to its usual end.
    public var tooLate: Bool
    /// What the controller did, in one line.
    public var outcome: String

    public init(_ request: AbortRequest, tooLate: Bool, outcome: String) {
        self.by = request.by
        self.at = request.at
        self.reason = request.reason
        self.tooLate = tooLate
        self.outcome = outcome
    }

    enum CodingKeys: String, CodingKey {
        case by, at, reason
        case tooLate = "too_late"
        case outcome
    }
}

/// `marina operation resume ID` for an operation that no task of the leader runs: kept at
/// `resume-requests/<id>` until the leader takes it. The leader then recovers the operation at
/// once (as it does every few seconds for an operation whose lock names it), taking the
/// section's lock first when nobody holds it (a lock removed by hand).
public struct ResumeRequest: Codable, Sendable, Equatable {
    public var schema = 1
    public var operation: String
    public var by: String
    public var at: Date

    public init(operation: String, by: String, at: Date) {
        self.operation = operation
        self.by = by
        self.at = at
    }

    public static func decode(_ bytes: [UInt8], key: String) throws -> ResumeRequest {
        try StoredJSON.decode(ResumeRequest.self, from: bytes, key: key, schema: 1)
    }
}

/// One entry of the audit trail (`audit/<time>-<random>`): a hand-made change to the
/// operations' own state that no journal records, such as a lock released by a DBA (`marina
/// lock release`), or a DBA's abort or resume. Written in the transaction of the change it
/// records; `marina audit list` reads them back.
public struct AuditRecord: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable {
        case lockRelease = "lock-release"
        case abort
        case resume
    }

    public var schema = 1
    public var at: Date
    public var by: String
    public var action: Action
    /// What it acted on: `locks/s1`, `operations/<id>`.
    public var subject: String
    /// The operation concerned.
    public var operation: String?
    /// That operation's state when it was done (`missing` for a lock naming no journal).
    public var operationState: String?
    public var reason: String

    public init(at: Date, by: String, action: Action, subject: String, operation: String?, operationState: String?, reason: String) {
        self.at = at
        self.by = by
        self.action = action
        self.subject = subject
        self.operation = operation
        self.operationState = operationState
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case schema, at, by, action, subject, operation
        case operationState = "operation_state"
        case reason
    }

    /// Its key's last segment: the time (UTC, sorting) and a random suffix, so that two DBAs at
    /// the same millisecond do not collide.
    public static func newName(at now: Date) -> String {
        "\(stamp(at: now))-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    }

    /// The time part of a name: entries before `stamp(at: t)` are those written before `t`.
    public static func stamp(at now: Date) -> String {
        now.formatted(
            Date.VerbatimFormatStyle(
                format:
                    "\(year: .defaultDigits)\(month: .twoDigits)\(day: .twoDigits)T\(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased))\(minute: .twoDigits)\(second: .twoDigits).\(secondFraction: .fractional(3))Z",
                timeZone: .gmt, calendar: Calendar(identifier: .gregorian)))
    }

    public static func decode(_ bytes: [UInt8], key: String) throws -> AuditRecord {
        try StoredJSON.decode(AuditRecord.self, from: bytes, key: key, schema: 1)
    }
}

/// Whether a section's lock may be released by hand (`marina lock release`): only a stale one.
/// Pure: the caller reads the lock and the journal it names.
public enum LockRelease: Equatable, Sendable {
    /// The operation it names has no journal, or has finished: nothing runs under it.
    /// `operationState` is its state, or `missing`.
    case allowed(operationState: String)
    /// The operation may be running: the lock stays.
    case refused(String)

    /// `journal`: nil when the operation has no journal; a failure when it cannot be read.
    public static func decide(section: String, operation id: String, journal: Result<OperationRecord, UnreadableRecord>?) -> LockRelease {
        switch journal {
        case nil:
            return .allowed(operationState: "missing")
        case .failure(let unreadable):
            return .refused(
                "the lock of \(section) names operation \(id), whose journal cannot be read (\(unreadable.problem)): "
                    + "it may be running (a newer Marina?); the lock stays")
        case .success(let record) where !record.state.isFinished:
            return .refused(
                "the lock of \(section) is held by operation \(id), which is \(record.state.rawValue) "
                    + "(requested by \(record.requestedBy)): it is not stale. Stop it with `marina operation abort \(id) --reason WHY`, "
                    + "or finish it with `marina operation resume \(id)`")
        case .success(let record):
            return .allowed(operationState: record.state.rawValue)
        }
    }
}
