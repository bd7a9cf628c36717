import Observation

/// Whether a restarted old primary may replicate from the primary that replaced it.
public enum RejoinVerdict: Equatable, Sendable {
    /// Everything it has, the new primary has too: it may replicate from the new primary,
    /// starting from this position (its `gtid_slave_pos`).
    case clean(startFrom: GTIDPosition)
    /// It holds transactions the new primary never received, one range per origin
    /// (`0-1001-101..0-1001-105`, or `0-1001-101` for one): it must not replicate as it is.
    /// Replicating would apply the new primary's transactions on top of writes the rest of the
    /// section never had, and the two histories would silently differ from then on.
    case diverged(transactions: [String])
}

/// The pure decision behind rejoining a primary that a failover replaced while it was dead.
public enum Rejoin {
    /// Compares the old primary's `gtid_binlog_state` with the new primary's.
    ///
    /// The old primary may rejoin only if its binary log holds nothing the new primary never
    /// received: for every origin (domain, server id) in the old primary's state, the new
    /// primary's state has that origin at an equal or higher sequence. The usual divergence is
    /// under the old primary's own server id: writes it acknowledged to clients after the last
    /// replica had received them, lost to the section when it died. Any other origin beyond the
    /// new primary's is divergence too (a transaction written on it while it was a replica,
    /// which the new primary never had).
    ///
    /// A diverged origin's range starts one after the new primary's sequence for that origin
    /// (at 1 when it has none) and ends at the old primary's: within a domain several servers
    /// share the sequence numbers, so the range bounds the missing GTIDs of that origin rather
    /// than listing each one. Own writes come first, then the other origins by domain and
    /// server id.
    ///
    /// When clean, it starts from the old primary's last GTID of each domain: the one with the
    /// highest sequence in its state, which is its `gtid_binlog_pos`. The new primary has that
    /// GTID (the state is contained in the new primary's), so it serves what follows. Two GTIDs
    /// of one domain share a sequence only without `gtid_strict_mode`; the old primary's own
    /// is taken then, as it wrote last while it was the primary.
    public static func assess(oldPrimaryBinlogState: GTIDState, oldPrimaryServerID: UInt32, newPrimaryBinlogState: GTIDState) -> RejoinVerdict {
        var own = [String]()
        var others = [String]()
        for gtid in oldPrimaryBinlogState.gtids {
            let theirs = newPrimaryBinlogState[domain: gtid.domain, server: gtid.server]?.sequence ?? 0
            guard gtid.sequence > theirs else { continue }
            let first = GTID(domain: gtid.domain, server: gtid.server, sequence: theirs + 1)
            let range = first == gtid ? "\(gtid)" : "\(first)..\(gtid)"
            if gtid.server == oldPrimaryServerID { own.append(range) } else { others.append(range) }
        }
        guard own.isEmpty && others.isEmpty else { return .diverged(transactions: own + others) }

        var last = [UInt32: GTID]()
        for gtid in oldPrimaryBinlogState.gtids {
            guard let current = last[gtid.domain] else {
                last[gtid.domain] = gtid
                continue
            }
            if gtid.sequence > current.sequence || (gtid.sequence == current.sequence && gtid.server == oldPrimaryServerID) {
                last[gtid.domain] = gtid
            }
        }
        return .clean(startFrom: GTIDPosition(Array(last.values)))
    }
}

/// The pure checks behind `marina instance move MOVER --under NEW_SOURCE`.
public enum InstanceMove {
    /// Why moving `mover` to replicate from `newSource` must be refused; empty when it may go.
    /// Every problem is listed at once, each naming the instances.
    ///
    /// Refused when: it would replicate from itself; the two are not members of one section;
    /// the new source has no binary log (or it is unknown); the new source is not the primary
    /// and does not binlog what it replicates (`log_slave_updates` OFF or unknown), so the
    /// primary's transactions would never reach the mover; the new source replicates from the
    /// mover (a cycle); the mover's position is unknown; the new source purged binary logs the
    /// mover still needs, or whether it did is unknown.
    ///
    /// - Parameters:
    ///   - moverSlavePosition: the mover's `gtid_slave_pos`, where it would start.
    ///   - moverSection, newSourceSection: the section each is a member of, nil when none.
    ///   - newSourceOldestBinlogGTIDs: the GTID list at the start of the new source's oldest
    ///     binary log (its last GTID per domain before that file), nil when unknown. In each
    ///     domain of it, a mover at a lower sequence, or without the domain while the list has
    ///     it above 0, needs transactions that are no longer in any binary log of the new source.
    public static func refusals(
        mover: String, moverSlavePosition: GTIDPosition?, moverSection: String?, newSource: String, newSourceSection: String?,
        newSourceIsPrimary: Bool, newSourceLogBin: Bool?, newSourceLogSlaveUpdates: Bool?, newSourceOldestBinlogGTIDs: GTIDPosition?,
        newSourceReplicatesFromMover: Bool
    ) -> [String] {
        guard mover != newSource else { return ["\(mover) cannot replicate from itself"] }
        var refusals = [String]()
        switch (moverSection, newSourceSection) {
        case (nil, nil):
            refusals.append("neither \(mover) nor \(newSource) is a member of a section: a replica moves only within its section")
        case (nil, let section?):
            refusals.append("\(mover) is not a member of any section, \(newSource) is in \(section): a replica moves only within its section")
        case (let section?, nil):
            refusals.append("\(newSource) is not a member of any section, \(mover) is in \(section): a replica moves only within its section")
        case (let moverSection?, let sourceSection?) where moverSection != sourceSection:
            refusals.append("\(mover) is in section \(moverSection) and \(newSource) in \(sourceSection): a replica moves only within its section")
        default:
            break
        }
        switch newSourceLogBin {
        case false?:
            refusals.append("\(newSource) has no binary log (log_bin is OFF): \(mover) could not replicate from it")
        case nil:
            refusals.append("cannot tell whether \(newSource) has a binary log (log_bin unknown) for \(mover) to replicate from")
        case true?:
            break
        }
        if !newSourceIsPrimary {
            switch newSourceLogSlaveUpdates {
            case false?:
                refusals.append(
                    "\(newSource) is not the primary and has log_slave_updates OFF: it does not binlog what it replicates, "
                        + "so \(mover) would receive none of the primary's transactions")
            case nil:
                refusals.append(
                    "\(newSource) is not the primary and its log_slave_updates is unknown: "
                        + "cannot tell whether it would pass the primary's transactions on to \(mover)")
            case true?:
                break
            }
        }
        if newSourceReplicatesFromMover {
            refusals.append("\(newSource) replicates from \(mover): moving \(mover) under it would make a replication cycle")
        }
        if moverSlavePosition == nil {
            refusals.append("\(mover)'s position (gtid_slave_pos) is unknown: cannot tell where it would start replicating from \(newSource)")
        }
        guard let oldest = newSourceOldestBinlogGTIDs else {
            refusals.append(
                "cannot tell whether \(newSource) still has the binary logs \(mover) needs "
                    + "(the GTID list at the start of its oldest binary log is unknown)")
            return refusals
        }
        guard let position = moverSlavePosition else { return refusals }
        for domain in oldest.entries.keys.sorted() {
            let first = oldest.entries[domain]!
            if let at = position[domain] {
                if at.sequence < first.sequence {
                    refusals.append(
                        "\(newSource) no longer has the binary logs \(mover) needs in domain \(domain): "
                            + "its oldest binary log starts after \(first), \(mover) is at \(at)")
                }
            } else if first.sequence > 0 {
                refusals.append(
                    "\(newSource) no longer has the binary logs \(mover) needs in domain \(domain): "
                        + "its oldest binary log starts after \(first), \(mover) has nothing of that domain")
            }
        }
        return refusals
    }
}
