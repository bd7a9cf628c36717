import Foundation
import Topology
import TopologyStore

/// `marina config history --json` and `GET /api/v1/history`: one commit.
public struct HistoryLine: Encodable, Sendable {
    public var revision: Int64?
    public var sequence: Int
    public var kind: String
    public var author: String
    public var at: Date
    public var message: String
    public var changes: [ConfigChange]

    public init(_ entry: HistoryEntry) {
        revision = entry.revision
        sequence = entry.sequence
        kind = entry.kind.rawValue
        author = entry.author
        at = entry.at
        message = entry.message
        changes = entry.changes
    }
}

/// `marina config diff --json` and `GET /api/v1/config/diff`.
public struct DiffOutput: Encodable, Sendable {
    public var changes: [ConfigChange]
    public var issues: [TopologyIssue]

    public init(changes: [ConfigChange], issues: [TopologyIssue]) {
        self.changes = changes
        self.issues = issues
    }
}

/// A staged edit or a commit refused by validation: nothing was written.
public struct RefusedOutput: Encodable, Sendable {
    public var outcome: String
    public var issues: [TopologyIssue]

    public init(outcome: String, issues: [TopologyIssue]) {
        self.outcome = outcome
        self.issues = issues
    }
}

/// What a commit did: `committed`, `nothing to commit`, `conflict`, `mirror not written`.
public struct CommitOutput: Encodable, Sendable {
    public var outcome: String
    public var revision: Int64?
    public var sequence: Int?
    public var mirrored: [String]?
    public var mirrorFailures: [String]?

    public init(outcome: String, revision: Int64? = nil, sequence: Int? = nil, mirrored: [String]? = nil, mirrorFailures: [String]? = nil) {
        self.outcome = outcome
        self.revision = revision
        self.sequence = sequence
        self.mirrored = mirrored
        self.mirrorFailures = mirrorFailures
    }

    enum CodingKeys: String, CodingKey {
        case outcome, revision, sequence, mirrored
        case mirrorFailures = "mirror_failures"
    }
}

/// What a staged edit did (`marina instance depool|pool ... --json`, `POST /api/v1/instances/{name}/depool|pool`).
public struct EditOutput: Encodable, Sendable {
    public var outcome: String
    public var revision: String?
    public var readRevision: String?

    public init(outcome: String, revision: String? = nil, readRevision: String? = nil) {
        self.outcome = outcome
        self.revision = revision
        self.readRevision = readRevision
    }

    enum CodingKeys: String, CodingKey {
        case outcome, revision
        case readRevision = "read_revision"
    }
}
