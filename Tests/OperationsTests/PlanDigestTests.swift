import Foundation
import Operations
import Testing

/// The digest of an approved plan: what it covers (every step's SQL, hosts, undo, the roles)
/// and what it ignores (ids, times, states, the journal).
@Suite("Plan digest")
struct PlanDigestTests {
    /// A planned switchover of s1 to db1002 (the fixtures of `SwitchoverPlanTests`).
    func planned(id: String = "op1", at time: Date = now) throws -> OperationRecord {
        var record = OperationRecord(
            id: id, section: "s1", candidate: "db1002", reason: "kernel upgrade", requestedBy: "dba", requestedAt: time)
        let roles = try #require(Switchover.preflight(record, playbook: playbook, topology: topology(), live: healthy()).roles)
        record.oldPrimary = "db1001"
        record.steps = Switchover.plan(playbook, roles: roles, reason: record.reason, replicationUser: "repl")
        return record
    }

    @Test("the dry run and the request of the same plan have the same digest: ids, times, states and the journal are left out")
    func stable() throws {
        let dryRun = try planned(id: "20250101-000000-s1-aaaa", at: now)
        var request = try planned(id: "20250101-000105-s1-bbbb", at: now.addingTimeInterval(65))
        #expect(dryRun.planDigest() == request.planDigest())
        #expect(dryRun.planDigest().count == 64)
        request.dryRun = true
        request.state = .running
        request.controller = "c2"
        request.startedAt = now
        request.updatedAt = now.addingTimeInterval(3)
        request.steps[0].state = .done
        request.steps[0].milliseconds = 12.5
        request.steps[0].startedAt = now
        request.finalPosition = "0-1001-100"
        request.approvedPlan = dryRun.planDigest()
        #expect(dryRun.planDigest() == request.planDigest())
        // The same value through the journal's JSON.
        let stored = try OperationJSON.decode(try OperationJSON.encode(request))
        #expect(stored.planDigest() == dryRun.planDigest())
        #expect(stored.approvedPlan == dryRun.planDigest())
    }

    @Test("a changed statement, host, undo, timeout, point of no return, role or order changes the digest")
    func changes() throws {
        let base = try planned()
        let digest = base.planDigest()
        var variants = [String: OperationRecord]()
        var statement = base
        statement.steps[3].statements[0] = "db1001: SET GLOBAL read_only = OFF"
        variants["statement"] = statement
        var host = base
        host.steps[0].hosts = ["db1003", "db1004"]
        variants["host"] = host
        var undo = base
        undo.steps[3].undo = []
        variants["undo"] = undo
        var timeout = base
        timeout.steps[5].timeout += 1
        variants["timeout"] = timeout
        var pointOfNoReturn = base
        pointOfNoReturn.steps[8].pointOfNoReturn = false
        variants["point of no return"] = pointOfNoReturn
        var candidate = base
        candidate.candidate = "db1003"
        variants["candidate"] = candidate
        var primary = base
        primary.oldPrimary = "db1003"
        variants["old primary"] = primary
        var order = base
        order.steps.swapAt(1, 2)
        variants["order"] = order
        var fewer = base
        fewer.steps.removeLast()
        variants["a step less"] = fewer
        var check = base
        check.steps[4].check = ""
        variants["check"] = check
        var command = base
        command.steps[2].command = ["/bin/true"]
        variants["command"] = command
        var kind = base
        kind.kind = "failover"
        variants["kind"] = kind
        var section = base
        section.section = "s2"
        variants["section"] = section
        var skipped = base
        skipped.skipReplicas = ["db1003"]
        variants["skipped replica"] = skipped
        var source = base
        source.newSource = "db1003"
        variants["new source"] = source
        var subject = base
        subject.steps[0].subject = "db1004"
        variants["subject"] = subject
        var undoCommand = base
        undoCommand.steps[2].undoCommand = ["/bin/false"]
        variants["undo command"] = undoCommand
        // A grant sync's statements are journaled with their password hashes redacted: the digest
        // of the real ones stands for them.
        var secrets = base
        secrets.secretsDigest = OperationRecord.secretsDigest(["db1001": ["ALTER USER 'app'@'%' IDENTIFIED BY PASSWORD '*A1'"]])
        variants["secrets"] = secrets
        var otherSecrets = base
        otherSecrets.secretsDigest = OperationRecord.secretsDigest(["db1001": ["ALTER USER 'app'@'%' IDENTIFIED BY PASSWORD '*B2'"]])
        variants["other secrets"] = otherSecrets
        // A statement moved across a boundary between two fields is not the same plan.
        var moved = base
        moved.steps[3].statements = []
        moved.steps[3].check = base.steps[3].statements[0] + base.steps[3].check
        variants["moved text"] = moved
        for (what, variant) in variants {
            #expect(variant.planDigest() != digest, "\(what) did not change the digest")
        }
        #expect(Set(variants.values.map { $0.planDigest() }).count == variants.count, "two different plans share a digest")
    }

    @Test("the short form is the digest's first 8 characters")
    func short() throws {
        let digest = try planned().planDigest()
        #expect(OperationRecord.shortDigest(digest) == String(digest.prefix(8)))
    }
}
