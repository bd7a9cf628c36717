import Observation
import Topology

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension Drift {
    /// The detection table: one pure predicate per code, over one snapshot.
    public static let detections: [Detection] = DriftCode.allCases.map { code in Detection(code: code, detect: detector(for: code)) }

    /// The predicate of each code. An exhaustive switch: a new code does not compile without one.
    static func detector(for code: DriftCode) -> @Sendable (DriftContext) -> [DriftFinding] {
        switch code {
        case .twoWriters:
            return { context in
                context.sections.flatMap { entry in
                    context.replicas(entry).filter { $0.observation.readOnly == false }.map {
                        DriftFinding(
                            code, section: entry.section.name, instance: $0.instance.name,
                            expected: "read_only=ON (only \(entry.primary.name) is writable)", observed: "read_only=OFF")
                    }
                }
            }
        case .selfFenced:
            return { context in
                context.sections.flatMap { entry in
                    entry.members.compactMap { member -> DriftFinding? in
                        guard let fence = context.snapshot.observations[member.instance.name]?.selfFence else { return nil }
                        return DriftFinding(
                            code, section: entry.section.name, instance: member.instance.name,
                            expected: member.instance.name == entry.primary.name ? "writable under its primary lease" : "no fence",
                            observed:
                                "self-fenced since \(fence.since.formatted(.iso8601)): \(fence.reason) (\(fence.actions.joined(separator: ", ")))")
                    }
                }
            }
        case .primaryReadOnly:
            // A primary its own agent fenced is SELF_FENCED instead, with the reason.
            return primaryCheck(code) { observation in
                observation.reachable && observation.readOnly == true && observation.selfFence == nil ? ("read_only=OFF", "read_only=ON") : nil
            }
        case .primaryUnreachable:
            return primaryCheck(code) { observation in
                observation.reachable ? nil : ("reachable", "unreachable: \(observation.error ?? "no answer")")
            }
        case .primaryUnreachableFromController:
            return { context in
                context.sections.compactMap { entry in
                    guard let view = context.snapshot.controllerCannotReach[entry.section.name], view.primary == entry.primary.name else {
                        return nil
                    }
                    return DriftFinding(
                        code, section: entry.section.name, instance: entry.primary.name,
                        expected: "reachable by the controller \(view.controller)",
                        observed: "unreachable over SQL since \(view.since.formatted(.iso8601)), not dead: \(view.reason); no failover")
                }
            }
        case .replicaUnreachable:
            return { context in
                context.sections.flatMap { entry in
                    entry.members.compactMap { member -> DriftFinding? in
                        guard member.instance.name != entry.primary.name, member.membership.needsRejoin == nil,
                            let observation = context.snapshot.observations[member.instance.name], !observation.reachable
                        else { return nil }
                        return DriftFinding(
                            code, section: entry.section.name, instance: member.instance.name, expected: "reachable",
                            observed: "unreachable: \(observation.error ?? "no answer")")
                    }
                }
            }
        case .errantGTID:
            return { context in
                context.sections.flatMap { entry -> [DriftFinding] in
                    let primaryPosition = context.snapshot.observations[entry.primary.name]?.gtidBinlogPos
                    return context.replicas(entry).compactMap { replica in
                        guard let own = replica.observation.serverID else { return nil }
                        let errant = replica.observation.errantGTIDs(primaryPosition: primaryPosition)
                        guard !errant.isEmpty else { return nil }
                        return DriftFinding(
                            code, section: entry.section.name, instance: replica.instance.name,
                            expected: "no transaction of its own (server id \(own))",
                            observed: "errant " + errant.map(\.description).joined(separator: ","))
                    }
                }
            }
        case .wrongSource:
            return { context in
                context.sections.flatMap { entry in
                    context.replicas(entry).compactMap { replica -> DriftFinding? in
                        guard let channel = replica.observation.replication.first else { return nil }
                        let source = context.source(of: channel)
                        guard source != entry.primary.name else { return nil }
                        return DriftFinding(
                            code, section: entry.section.name, instance: replica.instance.name,
                            expected: "replicates from \(entry.primary.name)", observed: "replicates from \(source)")
                    }
                }
            }
        case .noSource:
            return replicaCheck(code) { replica, entry in
                replica.observation.replication.isEmpty ? ("replicates from \(entry.primary.name)", "no replication configured") : nil
            }
        case .replicationError:
            return replicaCheck(code) { replica, _ in
                guard let channel = replica.observation.replication.first else { return nil }
                let errors = [channel.lastIOError, channel.lastSQLError].filter { !$0.isEmpty }
                return errors.isEmpty
                    ? nil
                    : ("IO and SQL threads running", "io=\(channel.ioThread) sql=\(channel.sqlThread): \(errors.joined(separator: "; "))")
            }
        case .replicationStopped:
            return replicaCheck(code) { replica, _ in
                guard let channel = replica.observation.replication.first, !channel.isRunning,
                    channel.lastIOError.isEmpty, channel.lastSQLError.isEmpty
                else { return nil }
                return ("IO and SQL threads running", "io=\(channel.ioThread) sql=\(channel.sqlThread)")
            }
        case .pooledReplicaLagging:
            return { context in
                context.sections.flatMap { entry in
                    context.replicas(entry).compactMap { replica -> DriftFinding? in
                        guard replica.membership.pooled, let lag = replica.observation.heartbeatLag, lag > context.snapshot.maxLag else { return nil }
                        return DriftFinding(
                            code, section: entry.section.name, instance: replica.instance.name,
                            expected: "lag ≤ \(format(context.snapshot.maxLag)) s while pooled", observed: "lag \(format(lag)) s")
                    }
                }
            }
        case .heartbeatMissing:
            return primaryCheck(code) { observation in
                observation.reachable && observation.heartbeatLag == nil
                    ? ("a heartbeat row", observation.heartbeatError ?? "no heartbeat measured") : nil
            }
        case .heartbeatStale:
            return { context in
                context.sections.compactMap { entry in
                    guard let observation = context.snapshot.observations[entry.primary.name], observation.reachable,
                        let age = observation.heartbeatLag, age > context.snapshot.heartbeatStaleAfter
                    else { return nil }
                    return DriftFinding(
                        code, section: entry.section.name, instance: entry.primary.name,
                        expected: "heartbeat younger than \(format(context.snapshot.heartbeatStaleAfter)) s",
                        observed: "newest heartbeat \(format(age)) s old")
                }
            }
        case .primaryHeartbeatStalled:
            // Judged within the primary's observation (its probe against the writer's last
            // write, one host's clock): an observation republished every refresh interval
            // carries an older write when the writer is fine. Reachable or not: a locked
            // heartbeat table also hangs the probe's read of it.
            return { context in
                context.sections.compactMap { entry in
                    guard let observation = context.snapshot.observations[entry.primary.name], let written = observation.heartbeatWrittenAt,
                        observation.observedAt.timeIntervalSince(written) > context.snapshot.heartbeatStaleAfter
                    else { return nil }
                    let age = context.snapshot.now.timeIntervalSince(written)
                    let probe = observation.reachable ? "" : ", which found it unreachable: \(observation.error ?? "no answer")"
                    return DriftFinding(
                        code, section: entry.section.name, instance: entry.primary.name,
                        expected: "a heartbeat written at least every \(format(context.snapshot.heartbeatStaleAfter)) s",
                        observed:
                            "last heartbeat written \(format(age)) s ago by agent \(observation.agent) (\(format(observation.observedAt.timeIntervalSince(written)))"
                            + " s before its latest probe\(probe)); every replica's lag grows with it, and automatic depool waits for a second witness"
                    )
                }
            }
        case .gtidNotUsed:
            return replicaCheck(code) { replica, _ in
                guard let channel = replica.observation.replication.first, channel.usingGTID == "No" else { return nil }
                return ("MASTER_USE_GTID=slave_pos", "Using_Gtid=No")
            }
        case .gtidStrictModeOff:
            return memberCheck(code) { observation, _ in
                observation.gtidStrictMode == false ? ("gtid_strict_mode=ON", "gtid_strict_mode=OFF") : nil
            }
        case .binlogOff:
            return memberCheck(code) { observation, _ in
                observation.logBin == false ? ("log_bin=ON", "log_bin=OFF") : nil
            }
        case .binlogFormatMismatch:
            return { context in
                context.sections.flatMap { entry -> [DriftFinding] in
                    guard let format = context.snapshot.observations[entry.primary.name]?.binlogFormat else { return [] }
                    return context.replicas(entry).compactMap { replica in
                        guard replica.instance.candidatePrimary, let own = replica.observation.binlogFormat, own != format else { return nil }
                        return DriftFinding(
                            code, section: entry.section.name, instance: replica.instance.name,
                            expected: "binlog_format=\(format) like \(entry.primary.name)", observed: "binlog_format=\(own)")
                    }
                }
            }
        case .noObservation:
            return { context in
                context.snapshot.topology.instances.values.sorted { $0.name < $1.name }.compactMap { instance in
                    guard context.snapshot.observations[instance.name] == nil else { return nil }
                    return DriftFinding(
                        code, section: instance.sections.keys.sorted().first, instance: instance.name,
                        expected: "an observation from its agent", observed: "none (agent gone or not configured)")
                }
            }
        case .observationStale:
            return { context in
                let limit = context.snapshot.observationStaleAfter
                return context.snapshot.observations.keys.sorted().compactMap { name -> DriftFinding? in
                    guard let observation = context.snapshot.observations[name], let instance = context.snapshot.topology.instances[name] else {
                        return nil
                    }
                    let age = context.snapshot.now.timeIntervalSince(observation.observedAt)
                    guard abs(age) > limit else { return nil }
                    let observed =
                        age > 0
                        ? "observed \(format(age)) s ago by agent \(observation.agent): it stopped publishing while its lease lives"
                        : "observed \(format(-age)) s in the future by agent \(observation.agent): its clock or this one is wrong"
                    return DriftFinding(
                        code, section: instance.sections.keys.sorted().first, instance: name,
                        expected: "an observation at most \(format(limit)) s old", observed: observed)
                }
            }
        case .mirrorStale:
            return { context in
                guard let mirror = context.snapshot.mirror else { return [] }
                return mirror.committed.keys.sorted().flatMap { datacenter -> [DriftFinding] in
                    let committed = mirror.committed[datacenter]!
                    let path = "\(mirror.location)/\(datacenter)/dbconfig"
                    if let error = mirror.readError {
                        return [
                            DriftFinding(
                                code, section: nil, instance: nil, expected: "\(path) holds the committed configuration",
                                observed: "could not be read: \(error)")
                        ]
                    }
                    switch mirror.mirrored[datacenter] {
                    case nil:
                        return [
                            DriftFinding(
                                code, section: nil, instance: nil, expected: "\(path) holds the committed configuration",
                                observed: "absent")
                        ]
                    case .unreadable(let problem):
                        return [
                            DriftFinding(
                                code, section: nil, instance: nil, expected: "\(path) holds the committed configuration",
                                observed: "not a configuration: \(problem)")
                        ]
                    case .config(let mirrored):
                        return ConfigDiff.changes(from: [datacenter: mirrored], to: [datacenter: committed]).map { change in
                            let isHost = change.key == "hostsByName"
                            return DriftFinding(
                                code, section: isHost ? nil : change.entry, instance: isHost ? change.entry : nil,
                                expected: "\(datacenter) \(change.key) committed: \(change.after ?? "absent")",
                                observed: "mirror \(path): \(change.before ?? "absent")")
                        }
                    }
                }
            }
        case .needsRejoin:
            // Reported instead of the replica findings it would raise (no source, unreachable):
            // it is meant to be out. Two writers are still reported for it.
            return { context in
                context.sections.flatMap { entry in
                    entry.members.compactMap { member -> DriftFinding? in
                        guard let mark = member.membership.needsRejoin else { return nil }
                        let observation = context.snapshot.observations[member.instance.name]
                        let state =
                            observation.map { $0.reachable ? "up, read_only=\($0.readOnly.map { $0 ? "ON" : "OFF" } ?? "?")" : "down" }
                            ?? "no observation"
                        return DriftFinding(
                            code, section: entry.section.name, instance: member.instance.name,
                            expected: "a replica of \(entry.primary.name)",
                            observed: "\(mark) (\(state)): `marina instance rejoin \(member.instance.name)` once it is back")
                    }
                }
            }
        case .operationInProgress:
            return { context in
                context.snapshot.locks.sorted { $0.key < $1.key }.map { section, operation in
                    DriftFinding(
                        code, section: section, instance: nil, expected: "no operation running",
                        observed:
                            "operation \(operation) holds the lock: findings in \(section) may be its steps (`marina operation show \(operation)`)")
                }
            }
        case .unknownInstance:
            return { context in
                context.snapshot.observations.keys.sorted().compactMap { name in
                    guard context.snapshot.topology.instances[name] == nil else { return nil }
                    return DriftFinding(
                        code, section: nil, instance: name, expected: "not reported (not in the source of truth)",
                        observed: "reported by agent \(context.snapshot.observations[name]!.agent)")
                }
            }
        case .automaticActionRefused:
            return { context in
                context.snapshot.refusals.sorted { $0.instance < $1.instance }.map { refusal in
                    DriftFinding(
                        code, section: refusal.section, instance: refusal.instance,
                        expected: "automatic \(refusal.action)",
                        observed: "refused since \(refusal.since.formatted(.iso8601)): \(refusal.reason)")
                }
            }
        case .variableMismatch, .variablePendingRestart, .optionFileUnwritable:
            return variableCheck(code)
        case .grantAccountMissing, .grantAccountUnexpected, .grantAuthenticationDiffers, .grantTLSDiffers, .grantLimitsDiffer,
            .grantPrivilegesDiffer, .grantRolesDiffer, .grantDefaultRoleDiffers, .grantsUnreadable:
            return grantCheck(code)
        case .uncommittedChange:
            return { context in
                context.snapshot.uncommitted.map { change in
                    let isHost = change.key == "hostsByName"
                    return DriftFinding(
                        code, section: isHost ? nil : change.entry, instance: isHost ? change.entry : nil,
                        expected: "\(change.datacenter) \(change.key) committed: \(change.before ?? "absent")",
                        observed: "staged: \(change.after ?? "absent")")
                }
            }
        }
    }

    /// A check of each section's primary observation.
    private static func primaryCheck(_ code: DriftCode, _ check: @escaping @Sendable (Observation) -> (String, String)?)
        -> @Sendable (DriftContext) -> [DriftFinding]
    {
        { context in
            context.sections.compactMap { entry in
                guard let observation = context.snapshot.observations[entry.primary.name], let (expected, observed) = check(observation) else {
                    return nil
                }
                return DriftFinding(code, section: entry.section.name, instance: entry.primary.name, expected: expected, observed: observed)
            }
        }
    }

    /// A check of each reachable replica of each section.
    private static func replicaCheck(
        _ code: DriftCode,
        _ check:
            @escaping @Sendable (
                (instance: Instance, membership: Membership, observation: Observation),
                (section: Section, primary: Instance, members: [(instance: Instance, membership: Membership)])
            ) -> (String, String)?
    ) -> @Sendable (DriftContext) -> [DriftFinding] {
        { context in
            context.sections.flatMap { entry in
                context.replicas(entry).compactMap { replica in
                    guard replica.membership.needsRejoin == nil, let (expected, observed) = check(replica, entry) else { return nil }
                    return DriftFinding(code, section: entry.section.name, instance: replica.instance.name, expected: expected, observed: observed)
                }
            }
        }
    }

    /// A check of every reachable member (primary included) of each section.
    private static func memberCheck(_ code: DriftCode, _ check: @escaping @Sendable (Observation, Instance) -> (String, String)?)
        -> @Sendable (DriftContext) -> [DriftFinding]
    {
        { context in
            context.sections.flatMap { entry in
                entry.members.compactMap { member in
                    guard let observation = context.snapshot.observations[member.instance.name], observation.reachable,
                        let (expected, observed) = check(observation, member.instance)
                    else { return nil }
                    return DriftFinding(code, section: entry.section.name, instance: member.instance.name, expected: expected, observed: observed)
                }
            }
        }
    }

    static func format(_ seconds: Double) -> String {
        let tenths = (seconds * 10).rounded() / 10
        return tenths == tenths.rounded() ? String(Int(tenths)) : String(tenths)
    }
}
