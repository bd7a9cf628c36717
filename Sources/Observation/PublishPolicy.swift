#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// When an agent writes an observation to etcd. Pure: the caller passes the clock.
///
/// An observation is published when it differs *meaningfully* from the last one published
/// (reachability, error, server id, read_only, binlog settings, any replication connection's
/// source, threads, GTID mode or errors, the heartbeat lag moving to another band, or a managed
/// variable's runtime value, pending restart or option file error), and
/// otherwise every `refreshInterval`. GTID positions and lag movements inside a band are not
/// meaningful on their own: on a busy primary they change at every probe, and writing them
/// each second would cost etcd one write per instance per second for nothing a decision needs.
///
/// So a lag crossing a band boundary (a depool threshold is one) is in etcd one probe interval
/// after it happens, and an idle fleet costs one write per instance per `refreshInterval`.
public struct PublishPolicy: Sendable, Equatable {
    /// Ascending lag boundaries in seconds; a lag moving across one is published at once.
    /// The lowest should be above the heartbeat interval, or lag flaps across it.
    public var lagBands: [Double]
    public var refreshInterval: TimeInterval

    public init(lagBands: [Double] = [2, 5, 10, 30, 60, 300], refreshInterval: TimeInterval = 10) {
        self.lagBands = lagBands.sorted()
        self.refreshInterval = refreshInterval
    }

    /// The band index of a lag (nil lag is its own band).
    public func band(of lag: Double?) -> Int? {
        guard let lag else { return nil }
        return lagBands.firstIndex { lag < $0 } ?? lagBands.count
    }

    /// Why `current` must be published now, or nil when it may wait.
    public func reason(toPublish current: Observation, after published: Observation?, publishedAt: Date?, now: Date) -> String? {
        guard let published, let publishedAt else { return "first observation" }
        if current.reachable != published.reachable { return current.reachable ? "reachable again" : "unreachable" }
        if current.error != published.error { return "error changed" }
        if current.serverID != published.serverID { return "server id changed" }
        if current.readOnly != published.readOnly { return "read_only changed" }
        if current.gtidStrictMode != published.gtidStrictMode || current.logBin != published.logBin
            || current.logSlaveUpdates != published.logSlaveUpdates || current.binlogFormat != published.binlogFormat
        {
            return "binlog settings changed"
        }
        if current.replication.map(\.essentials) != published.replication.map(\.essentials) { return "replication changed" }
        if band(of: current.heartbeatLag) != band(of: published.heartbeatLag) { return "lag band changed" }
        if current.heartbeatError != published.heartbeatError { return "heartbeat error changed" }
        if current.variables != published.variables || current.pendingRestart != published.pendingRestart
            || current.optionFileValues != published.optionFileValues
            || current.optionFile != published.optionFile || current.optionFileError != published.optionFileError
        {
            return "managed variables changed"
        }
        if now.timeIntervalSince(publishedAt) >= refreshInterval { return "refresh" }
        return nil
    }
}

extension ReplicationChannel {
    /// What a change of is meaningful: everything but positions and seconds behind.
    var essentials: [String] {
        [name, sourceHost, String(sourcePort), ioThread, sqlThread, usingGTID, lastIOError, lastSQLError]
    }
}
