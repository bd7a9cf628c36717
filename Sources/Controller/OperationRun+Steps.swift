import Foundation
import MariaDBClient
import Observation
import Operations
import Topology

/// Each step's SQL, its check, and its undo. Every undo reads the host before acting, so
/// running it twice (a recovery after a crash in the middle of one) is harmless.
extension OperationRun {
    func instance(_ name: String) throws -> Instance {
        guard let instance = topology.instances[name] else {
            throw ControllerError.stepFailed(host: name, message: "not in the committed topology")
        }
        return instance
    }

    var oldPrimary: Instance { get throws { try instance(record.oldPrimary ?? "") } }
    var candidate: Instance { get throws { try instance(record.candidate) } }

    func perform(_ index: Int) async throws {
        switch record.kind {
        case "failover": return try await performFailover(index)
        case "rejoin": return try await performRejoin(index)
        case "move": return try await performMove(index)
        case "grant-sync", "variable-sync": return try await performSync(index)
        default: break
        }
        let step = steps[index]
        let hosts = context.hosts
        let timeout = step.timeout
        switch step.action {
        case .moveReplicas:
            let replica = try instance(step.subject ?? "")
            let candidate = try candidate
            try await hosts.query(replica, SwitchoverSQL.stopReplication, timeout: timeout)
            guard let position = try await hosts.value(replica, SwitchoverSQL.readSlavePosition, column: "pos", timeout: timeout) else {
                throw ControllerError.stepFailed(host: replica.name, message: "no gtid_slave_pos")
            }
            try await waitFor(position, on: candidate, timeout: timeout)
            try await hosts.query(replica, SwitchoverSQL.moveTo(candidate), timeout: timeout)
            try await hosts.query(replica, SwitchoverSQL.startReplication, timeout: timeout)
            try await verifyReplicates(replica, from: candidate, timeout: timeout)
        case .sectionReadOnly:
            let skipped = record.skipReplicas.filter { topology.instances[$0]?.sections[record.section]?.pooled == true }
            record.depooled = skipped
            try await commitEdits(
                [.setReadOnly(section: record.section, reason: Switchover.readOnlyReason(record.reason))]
                    + skipped.map { .depool(instance: $0, section: record.section, group: nil) },
                message: "operation \(record.id): section \(record.section) read-only for a switchover to \(record.candidate)")
        case .waitPropagation:
            try await abortableWait(seconds: context.playbook.options.propagationWait)
        case .oldPrimaryReadOnly:
            // Read back with the final position (next step), one round trip less in the window.
            let primary = try oldPrimary
            try await hosts.query(primary, SwitchoverSQL.setReadOnly(true), timeout: timeout)
            try await killPrivilegedWriters(on: primary, timeout: timeout)
        case .readFinalPosition:
            let primary = try oldPrimary
            let row = try await hosts.query(primary, "SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.gtid_binlog_pos AS pos", timeout: timeout).first
            guard row?["ro"] == "1" else {
                throw ControllerError.stepFailed(host: primary.name, message: "read_only is \(row?["ro"] ?? "unknown") after setting it ON")
            }
            guard let position = row?["pos"], !position.isEmpty, (try? GTIDPosition(parsing: position)) != nil else {
                throw ControllerError.stepFailed(host: primary.name, message: "gtid_binlog_pos is not a GTID position")
            }
            record.finalPosition = position
        case .waitCatchUp:
            try await waitFor(try finalPosition(), on: try candidate, timeout: timeout)
        case .detachCandidate:
            let candidate = try candidate
            try await hosts.query(candidate, SwitchoverSQL.stopReplication, timeout: timeout)
            if let channel = try await hosts.query(candidate, "SHOW SLAVE STATUS", timeout: timeout).first,
                channel["Slave_IO_Running"] == "Yes" || channel["Slave_SQL_Running"] == "Yes"
            {
                throw ControllerError.stepFailed(host: candidate.name, message: "replication still runs after STOP SLAVE")
            }
        case .commitPrimary:
            break  // inside the flip
        case .candidateWritable:
            // The last check before the point of no return: nothing was written on the old
            // primary after its final position was read (a writer that ignores read_only).
            try await expectNoWritesSinceFinalPosition(on: try oldPrimary, timeout: timeout)
            try await setReadOnly(false, on: try candidate, timeout: timeout)
        case .oldPrimaryReplicates:
            let primary = try oldPrimary
            let candidate = try candidate
            let channel = try await hosts.query(primary, "SHOW SLAVE STATUS", timeout: timeout).first
            if let channel, try await isChannel(channel, from: candidate, timeout: timeout),
                channel["Slave_IO_Running"] == "Yes", channel["Slave_SQL_Running"] == "Yes"
            {
                return  // done before a controller died
            }
            try await expectNoWritesSinceFinalPosition(on: primary, timeout: timeout)
            if channel != nil { try await hosts.query(primary, SwitchoverSQL.stopReplication, timeout: timeout) }
            try await hosts.query(primary, SwitchoverSQL.setSlavePosition(try finalPosition()), timeout: timeout)
            try await hosts.query(
                primary,
                SwitchoverSQL.replicateFrom(
                    candidate, user: context.replicationUser, password: context.replicationPassword,
                    settings: record.channelSettings), timeout: timeout)
            try await hosts.query(primary, SwitchoverSQL.startReplication, timeout: timeout)
            try await verifyReplicates(primary, from: candidate, timeout: timeout)
        case .resetCandidateReplication:
            let candidate = try candidate
            if try await hosts.query(candidate, "SHOW SLAVE STATUS", timeout: timeout).first != nil {
                try await hosts.query(candidate, SwitchoverSQL.resetReplication, timeout: timeout)
            }
        case .sectionReadWrite:
            try await commitEdits(
                [.setReadOnly(section: record.section, reason: record.previousReadOnlyReason)],
                message: "operation \(record.id): section \(record.section) takes writes on \(record.candidate)")
        case .exec:
            try await run(step.command ?? [], timeout: timeout)
        case .applyReceived, .catchUp, .repointReplicas, .applyGrants, .applyVariables:
            throw ControllerError.stepFailed(host: "controller", message: "\(step.action.rawValue) is not a switchover step")
        }
    }

    func undo(_ index: Int) async throws {
        switch record.kind {
        case "rejoin": return try await undoRejoin(index)
        case "move": return try await undoMove(index)
        case "grant-sync", "variable-sync": return try await undoSync(index)
        default: break
        }
        let step = steps[index]
        let hosts = context.hosts
        let timeout = max(step.timeout, 5)
        switch step.action {
        case .moveReplicas:
            let replica = try instance(step.subject ?? "")
            let primary = try oldPrimary
            let channel = try await hosts.query(replica, "SHOW SLAVE STATUS", timeout: timeout).first
            // Only a connected IO thread names its source reliably; otherwise it is moved again (harmless if it was there).
            let connected = channel?["Slave_IO_Running"] == "Yes"
            var underPrimary = false
            if connected, let channel { underPrimary = try await isChannel(channel, from: primary, timeout: timeout) }
            let running = connected && channel?["Slave_SQL_Running"] == "Yes"
            if !underPrimary {
                try await hosts.query(replica, SwitchoverSQL.stopReplication, timeout: timeout)
                try await hosts.query(replica, SwitchoverSQL.moveTo(primary), timeout: timeout)
            }
            if !underPrimary || !running { try await hosts.query(replica, SwitchoverSQL.startReplication, timeout: timeout) }
            try await verifyReplicates(replica, from: primary, timeout: timeout)
        case .sectionReadOnly:
            try await commitEdits(
                [.setReadOnly(section: record.section, reason: record.previousReadOnlyReason)]
                    + record.depooled.map { .pool(instance: $0, section: record.section, group: nil, percentage: nil) },
                message: "operation \(record.id) rolled back: section \(record.section) as it was")
        case .oldPrimaryReadOnly:
            // Never two writers: the old primary takes writes again only while the candidate cannot.
            let candidate = try candidate
            var candidateReadOnly: Bool?
            do {
                candidateReadOnly = try await readOnly(candidate, timeout: timeout)
            } catch let error as HostError where error.isUnreachable {
                candidateReadOnly = nil
            }
            let writableStep = steps.first { $0.action == .candidateWritable }?.state
            if let refusal = Recovery.oldPrimaryMayTakeWrites(candidateWritableStep: writableStep, candidateReadOnly: candidateReadOnly) {
                throw ControllerError.stepFailed(host: candidate.name, message: refusal)
            }
            try await setReadOnly(false, on: try oldPrimary, timeout: timeout)
        case .detachCandidate:
            let candidate = try candidate
            try await hosts.query(candidate, SwitchoverSQL.startReplication, timeout: timeout)
            try await verifyReplicates(candidate, from: try oldPrimary, timeout: timeout)
        case .commitPrimary:
            if try await context.store.committedTopology()?.sections[record.section]?.primary == record.candidate {
                try await commitEdits(
                    [.setPrimary(section: record.section, instance: record.oldPrimary ?? "")],
                    message: "operation \(record.id) rolled back: \(record.oldPrimary ?? "") primary of \(record.section) again")
            }
        case .exec:
            if let undo = step.undoCommand { try await run(undo, timeout: timeout) }
        case .waitPropagation, .readFinalPosition, .waitCatchUp, .candidateWritable, .oldPrimaryReplicates, .resetCandidateReplication,
            .sectionReadWrite, .applyReceived, .catchUp, .repointReplicas, .applyGrants, .applyVariables:
            break
        }
    }

    // MARK: Checks

    func readOnly(_ instance: Instance, timeout: Double) async throws -> Bool {
        switch try await context.hosts.value(instance, "SELECT @@GLOBAL.read_only AS ro", column: "ro", timeout: timeout) {
        case "1": return true
        case "0": return false
        case let other: throw ControllerError.stepFailed(host: instance.name, message: "@@read_only answered \(other ?? "NULL")")
        }
    }

    /// Sets `read_only` and reads it back. When the statement or the read-back fails (a broken
    /// connection leaves the outcome unknown), the server is asked once more on a new
    /// connection: what it answers is the outcome. Past the point of no return this matters:
    /// a candidate that did become writable must be known as such, never rolled back blind.
    func setReadOnly(_ on: Bool, on instance: Instance, timeout: Double) async throws {
        do {
            try await context.hosts.query(instance, SwitchoverSQL.setReadOnly(on), timeout: timeout)
            guard try await readOnly(instance, timeout: timeout) == on else {
                throw ControllerError.stepFailed(
                    host: instance.name, message: "read_only is \(on ? "OFF" : "ON") after setting it \(on ? "ON" : "OFF")")
            }
        } catch ControllerError.notLeader {
            throw ControllerError.notLeader
        } catch let failure as HostError {
            let answer: Bool?
            do {
                answer = try await readOnly(instance, timeout: timeout)
            } catch ControllerError.notLeader {
                throw ControllerError.notLeader
            } catch {
                answer = nil
            }
            guard answer == on else { throw failure }
            context.logger.notice(
                "operation \(record.id): \(failure); \(instance.name) answers read_only \(on ? "ON" : "OFF") when asked again: done")
        }
    }

    /// After `read_only = ON`: sessions of accounts that write through it (`READ_ONLY ADMIN`,
    /// `SUPER`) are killed before the final position is read, so that none of their writes lands
    /// after it. A writer that reconnects is caught by `expectNoWritesSinceFinalPosition`.
    func killPrivilegedWriters(on primary: Instance, timeout: Double) async throws {
        for user in privilegedUsers {
            if SQL.quote(user).hasPrefix("'") {
                try await context.hosts.query(primary, ServerSessions.killUser(user), timeout: timeout)
                continue
            }
            // A name that needs a hexadecimal literal, which KILL USER does not take: by thread id.
            let sessions = try await context.hosts.query(
                primary, "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = \(SQL.quote(user))",
                timeout: timeout)
            for id in sessions.rows.compactMap({ $0["id"] }) where UInt(id) != nil {
                do {
                    try await context.hosts.query(primary, "KILL CONNECTION \(id)", timeout: timeout)
                } catch let error as HostError where error.isUnknownThread {
                    continue
                }
            }
        }
    }

    /// Nothing was written on the old primary under its own `server_id` after its final
    /// position: its `gtid_binlog_state` holds no GTID of its own beyond that position. (Events
    /// it applies from the new primary carry the new primary's id and do not count.)
    func expectNoWritesSinceFinalPosition(on primary: Instance, timeout: Double) async throws {
        let final = try GTIDPosition(parsing: try finalPosition())
        guard let own = UInt32(try await serverID(of: primary, timeout: timeout)),
            let text = try await context.hosts.value(primary, "SELECT @@GLOBAL.gtid_binlog_state AS state", column: "state", timeout: timeout),
            let state = try? GTIDState(parsing: text)
        else {
            throw ControllerError.stepFailed(host: primary.name, message: "its gtid_binlog_state could not be read")
        }
        let late = state.gtids.filter { $0.server == own && $0.sequence > (final[$0.domain]?.sequence ?? 0) }
        guard late.isEmpty else {
            throw ControllerError.stepFailed(
                host: primary.name,
                message: "took writes after its final position \(final) was read: "
                    + "\(late.map(\.description).joined(separator: ",")), by an account that writes through read_only")
        }
    }

    func finalPosition() throws -> String {
        guard let position = record.finalPosition, !position.isEmpty else {
            throw ControllerError.stepFailed(host: record.oldPrimary ?? "controller", message: "no final position was read: nothing to wait for")
        }
        return position
    }

    func waitFor(_ position: String, on instance: Instance, timeout: Double) async throws {
        guard !position.isEmpty else {
            throw ControllerError.stepFailed(host: instance.name, message: "no GTID position to wait for")
        }
        let waited = try await context.hosts.value(
            instance, SwitchoverSQL.waitFor(position, timeout: timeout), column: "waited",
            timeout: timeout + 2)
        guard waited == "0" else {
            throw ControllerError.stepFailed(host: instance.name, message: "did not apply \(position) within \(Seconds.format(timeout)) s")
        }
    }

    /// The `@@server_id` of an instance, read once per run.
    func serverID(of instance: Instance, timeout: Double) async throws -> String {
        if let known = serverIDs[instance.name] { return known }
        guard let id = try await context.hosts.value(instance, "SELECT @@GLOBAL.server_id AS id", column: "id", timeout: timeout), !id.isEmpty else {
            throw ControllerError.stepFailed(host: instance.name, message: "@@server_id could not be read")
        }
        serverIDs[instance.name] = id
        return id
    }

    /// Whether a `SHOW SLAVE STATUS` row replicates from `source`, by the server id the IO thread
    /// saw (`Master_Server_Id`), not by the address text, which may be a host name or another
    /// address of the same host. Before the IO thread has connected the id is 0: not yet.
    func isChannel(_ channel: Row, from source: Instance, timeout: Double) async throws -> Bool {
        guard let id = channel["Master_Server_Id"], id != "0", !id.isEmpty else { return false }
        return id == (try await serverID(of: source, timeout: timeout))
    }

    /// Both threads running from `source`, then caught up with the source's binlog position.
    func verifyReplicates(_ replica: Instance, from source: Instance, timeout: Double) async throws {
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int(timeout * 1000))
        let sourceID = try await serverID(of: source, timeout: timeout)
        var last = "no replication configured"
        while true {
            let channel = try await context.hosts.query(replica, "SHOW SLAVE STATUS", timeout: timeout).first
            if let channel {
                let seen = channel["Master_Server_Id"] ?? "0"
                let running = channel["Slave_IO_Running"] == "Yes" && channel["Slave_SQL_Running"] == "Yes"
                // The id is the IO thread's last source until it connects to the new one: judge it once connected.
                if running && seen != "0" && !seen.isEmpty && seen != sourceID {
                    throw ControllerError.stepFailed(
                        host: replica.name,
                        message: "replicates from server_id \(seen) "
                            + "(\(channel["Master_Host"] ?? ""):\(channel["Master_Port"] ?? "")) instead of \(source.name) (server_id \(sourceID))")
                }
                if seen == sourceID && running { break }
                last = "IO \(channel["Slave_IO_Running"] ?? "?"), SQL \(channel["Slave_SQL_Running"] ?? "?")"
                let error = [channel["Last_IO_Error"], channel["Last_SQL_Error"]].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "; ")
                if !error.isEmpty { last += ": " + error }
            }
            guard ContinuousClock.now < deadline else {
                throw ControllerError.stepFailed(
                    host: replica.name, message: "does not replicate from \(source.name) within \(Seconds.format(timeout)) s (\(last))")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        guard let position = try await context.hosts.value(source, SwitchoverSQL.readBinlogPosition, column: "pos", timeout: timeout),
            !position.isEmpty
        else { return }
        let remaining = max(0.5, timeout - Seconds.milliseconds(since: start) / 1000)
        try await waitFor(position, on: replica, timeout: remaining)
    }
}
