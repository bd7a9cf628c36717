import EtcdClient
import Foundation
import Operations
import Topology
import TopologyStore

/// `marina operation resume ID` for an operation no task of this controller runs: the request
/// waits at `resume-requests/<id>` and the leader takes it at its next recovery pass (every
/// third of its lease), rather than waiting for the section's lock to bring the operation back.
/// Only an operation whose section's lock still names it is resumed: one whose lock was removed
/// by hand is left alone (the section may have changed since; a human judges it).
extension Controller {
    func takeResumeRequests(_ running: Running) async throws {
        let keys = context.keys
        for kv in try await context.etcd.get(keys.resumeRequests, prefix: true).kvs {
            let id = String(kv.key.dropFirst(keys.resumeRequests.count))
            let by = (try? ResumeRequest.decode(kv.value, key: kv.key))?.by ?? "?"
            guard await running.claim(id) else {
                logger.notice("operation \(id): resume asked by \(by); it is running on this controller already")
                try await answer(kv)
                continue
            }
            await running.add(
                id,
                Task { [self] in
                    do {
                        try await resume(id, request: kv, by: by)
                    } catch ControllerError.notLeader {
                        logger.warning("operation \(id): this controller lost the lead; the next leader recovers it")
                    } catch {
                        logger.error("resuming operation \(id): \(error)")
                    }
                    await running.release(id)
                })
        }
    }

    /// Deletes a resume request once acted on (if it is still the one read).
    private func answer(_ request: KeyValue) async throws {
        try context.fence.check()
        _ = try await context.etcd.transaction(
            Transaction(
                compares: [await context.leadership.compare, .unchanged(request.key, since: request.modRevision)], success: [.delete(request.key)]))
    }

    private func resume(_ id: String, request: KeyValue, by: String) async throws {
        let keys = context.keys
        guard let stored = try await context.etcd.value(keys.operation(id)) else {
            logger.error("operation \(id): resume asked by \(by), but it has no journal")
            return try await answer(request)
        }
        let record: OperationRecord
        do {
            record = try OperationJSON.decode(stored.value, key: stored.key)
        } catch {
            logger.error("operation \(id): resume asked by \(by), but \(error)")
            return try await answer(request)
        }
        // A request no controller took is the request loop's; a finished one has nothing to resume.
        guard record.state == .running || record.state == .rollingBack else { return try await answer(request) }
        let lock = keys.lock(record.section)
        let holder = try await context.etcd.value(lock)
        if let holder, holder.value != Array(id.utf8) {
            let holderID = String(decoding: holder.value, as: UTF8.self)
            logger.error("operation \(id): resume asked by \(by) refused: the lock of \(record.section) names operation \(holderID)")
            return try await answer(request)
        }
        guard holder != nil else {
            logger.error(
                "operation \(id): resume asked by \(by) refused: no lock names it (the lock of \(record.section) was removed by hand), so the section may have changed since; a human must look"
            )
            return try await answer(request)
        }
        try await answer(request)
        logger.notice("operation \(id): resumed now (asked by \(by))")
        let topology = try await context.store.committedTopology() ?? Topology()
        try await OperationRun(record: record, context: context, topology: topology).recover()
    }
}
