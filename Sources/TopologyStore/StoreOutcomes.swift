import Foundation
import Topology

/// The staged objects as read at one etcd revision.
public struct StagedSnapshot: Sendable {
    public var topology: Topology
    /// The store revision of the read.
    public var revision: Int64
    /// Mod revision of the `staged` marker (0 before the first staged write): what a write compares.
    var markerRevision: Int64
}

/// The committed configuration as read at one etcd revision.
public struct CommittedState: Sendable {
    public var configs: [String: GeneratedConfig]
    /// The latest commit's sequence number (0 before the first).
    public var sequence: Int
    /// The site mirror every commit also writes (nil: none is set).
    public var siteMirror: SiteMirror?
    var headRevision: Int64
}

/// The answer to a staged edit. A lost race and a refused what-if are values, not errors.
public enum EditOutcome: Sendable, Equatable {
    case applied(revision: Int64)
    /// The change would break these rules; nothing was written.
    case refused([TopologyIssue])
    /// Someone changed the staged objects after they were read at `readRevision`; nothing was written.
    case conflict(readRevision: Int64)
}

/// The answer to a commit or restore. A commit whose site mirror could not be written is
/// `MirrorWriteFailed`, thrown after the commit landed (see `TopologyStore`).
public enum CommitOutcome: Sendable, Equatable {
    case committed(HistoryEntry)
    case nothingToCommit
    case invalid([TopologyIssue])
    case conflict(readRevision: Int64)
}

/// Who changes the source of truth, and when: recorded with every write.
public struct ChangeAuthor: Sendable {
    public var author: String
    public var now: Date
    public init(author: String, now: Date) {
        self.author = author
        self.now = now
    }
}
