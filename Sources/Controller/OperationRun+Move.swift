import Foundation
import MariaDBClient
import Observation
import Operations
import Topology

/// `marina instance move`: a replica of a section replicates from another member (the primary,
/// or a replica that binlogs what it replicates). One step (`RejoinPlan.moveSteps`), no point
/// of no return, undone by pointing the replica back at its original source; the step and its
/// undo read the replica first, so the next leader may run either again after a crash.
///
/// `record.candidate` is the replica that moves; the request's reason names the new source
/// (`RejoinPlan.moveReason`); the step's hosts are the mover, the new source and the original
/// source. `record.oldPrimary` stays nil: a rollback that needs a human sets read-only only the
/// instances the record names, and the original source may be the primary.
extension OperationRun {
    func prepareMove() async throws -> Bool {
        guard let sourceName = record.newSource, !sourceName.isEmpty else {
            return refuseUndoable(["the request does not name the instance to move \(record.candidate) under (new_source)"])
        }
        guard let section = topology.sections[record.section] else { return refuseUndoable(["unknown section \(record.section)"]) }
        var live = await probeMembers()
        var oldest: GTIDPosition?
        if let newSource = topology.instances[sourceName], sourceName != record.candidate {
            if live[sourceName] == nil { live[sourceName] = await probe(newSource, shard: section.name, datacenter: section.datacenter) }
            if live[sourceName]?.reachable == true { oldest = try? await oldestBinlogGTIDs(of: newSource, timeout: 5) }
        }
        let (roles, refusals) = RejoinPlan.movePreflight(
            mover: record.candidate, newSource: sourceName, section: record.section, topology: topology, live: live,
            newSourceOldestBinlogGTIDs: oldest)
        guard let roles else { return refuseUndoable(refusals) }
        do {
            try await context.hosts.verify([roles.mover, roles.newSource, roles.originalSource], timeout: 5)
        } catch let error as HostError {
            return refuseUndoable(["\(error.host) could not be reached: \(error.message)"])
        }
        record.steps = RejoinPlan.moveSteps(roles)
        return true
    }

    private func moveRoles(_ step: StepRecord) throws -> (mover: Instance, newSource: Instance, originalSource: Instance) {
        guard let names = RejoinPlan.moveRoles(in: step) else {
            throw ControllerError.stepFailed(host: "controller", message: "\(step.name) is not a move step")
        }
        return (try instance(names.mover), try instance(names.newSource), try instance(names.originalSource))
    }

    func performMove(_ index: Int) async throws {
        let step = steps[index]
        let (mover, newSource, _) = try moveRoles(step)
        let hosts = context.hosts
        let timeout = step.timeout
        if let channel = try await hosts.query(mover, "SHOW SLAVE STATUS", timeout: timeout).first,
            try await isChannel(channel, from: newSource, timeout: timeout), channel["Slave_IO_Running"] == "Yes",
            channel["Slave_SQL_Running"] == "Yes"
        {
            try await verifyReplicates(mover, from: newSource, timeout: timeout)
            return  // moved before a controller died
        }
        try await hosts.query(mover, SwitchoverSQL.stopReplication, timeout: timeout)
        guard let position = try await hosts.value(mover, SwitchoverSQL.readSlavePosition, column: "pos", timeout: timeout) else {
            throw ControllerError.stepFailed(host: mover.name, message: "no gtid_slave_pos")
        }
        // The primary has every transaction a replica applied; another replica may not have them yet.
        if newSource.name != (try sectionPrimary.name), !position.isEmpty {
            try await waitFor(position, on: newSource, timeout: timeout)
        }
        try await hosts.query(mover, SwitchoverSQL.moveTo(newSource), timeout: timeout)
        try await hosts.query(mover, SwitchoverSQL.startReplication, timeout: timeout)
        try await verifyReplicates(mover, from: newSource, timeout: timeout)
    }

    /// Back under the original source, as a switchover's move of a replica is undone: only a
    /// connected IO thread names its source reliably, otherwise it is pointed there again
    /// (harmless if it was there).
    func undoMove(_ index: Int) async throws {
        let step = steps[index]
        let (mover, _, original) = try moveRoles(step)
        let hosts = context.hosts
        let timeout = max(step.timeout, 5)
        let channel = try await hosts.query(mover, "SHOW SLAVE STATUS", timeout: timeout).first
        let connected = channel?["Slave_IO_Running"] == "Yes"
        var underOriginal = false
        if connected, let channel { underOriginal = try await isChannel(channel, from: original, timeout: timeout) }
        let running = connected && channel?["Slave_SQL_Running"] == "Yes"
        if !underOriginal {
            try await hosts.query(mover, SwitchoverSQL.stopReplication, timeout: timeout)
            try await hosts.query(mover, SwitchoverSQL.moveTo(original), timeout: timeout)
        }
        if !underOriginal || !running { try await hosts.query(mover, SwitchoverSQL.startReplication, timeout: timeout) }
        try await verifyReplicates(mover, from: original, timeout: timeout)
    }

    /// After a rollback: the replica replicates from its original source (or cannot be reached,
    /// noted for a human). Its `read_only` is not looked at: a move never changes it.
    func verifyMoveUndone() async throws {
        guard let step = steps.first(where: { RejoinPlan.moveRoles(in: $0) != nil }) else { return }
        let (mover, _, original) = try moveRoles(step)
        do {
            try await verifyReplicates(mover, from: original, timeout: 10)
        } catch let error as HostError where error.isUnreachable {
            record.attention.append(
                "\(error.host) could not be reached to verify the rollback (\(error.message)): check that it replicates from \(original.name)")
        }
    }
}
