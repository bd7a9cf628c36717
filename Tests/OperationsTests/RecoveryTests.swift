import Foundation
import Operations
import Testing

/// The recovery decision as a table: the journal of an operation left unfinished, what the
/// candidate answers, and what the next leader must do.
@Suite("Recovery decision")
struct RecoveryTests {
    /// A switchover's journal with the flip steps in the states given (by action).
    static func journal(_ state: OperationRecord.State, _ states: [StepAction: StepRecord.State]) -> OperationRecord {
        var record = OperationRecord(id: "op", section: "s1", candidate: "db1002", reason: "", requestedBy: "test", requestedAt: now)
        record.state = state
        let actions: [StepAction] = [
            .moveReplicas, .sectionReadOnly, .waitPropagation, .oldPrimaryReadOnly, .readFinalPosition, .waitCatchUp,
            .detachCandidate, .commitPrimary, .candidateWritable, .oldPrimaryReplicates, .resetCandidateReplication,
            .sectionReadWrite,
        ]
        record.steps = actions.map { action in
            var step = StepRecord(
                name: action.rawValue, action: action, hosts: [], statements: [], check: "", undo: [], timeout: 1,
                pointOfNoReturn: action.isPointOfNoReturn)
            step.state = states[action] ?? .pending
            return step
        }
        return record
    }

    static let flipStarted: [StepAction: StepRecord.State] = [
        .moveReplicas: .done, .sectionReadOnly: .done, .waitPropagation: .done, .oldPrimaryReadOnly: .running, .readFinalPosition: .running,
        .waitCatchUp: .running, .detachCandidate: .running, .commitPrimary: .running, .candidateWritable: .running,
    ]
    static var committed: [StepAction: StepRecord.State] {
        var states = flipStarted
        for action in [StepAction.oldPrimaryReadOnly, .readFinalPosition, .waitCatchUp, .detachCandidate, .commitPrimary] { states[action] = .done }
        return states
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var record: OperationRecord
        var candidateReadOnly: Bool?
        var needsCandidate: Bool
        var expected: String
        var testDescription: String { name }
    }

    static let pastPointOfNoReturn: [StepAction: StepRecord.State] = {
        var states = committed
        states[.candidateWritable] = .done
        states[.oldPrimaryReplicates] = .running
        return states
    }()

    static let cases: [Case] = [
        Case(
            name: "before the flip: back", record: journal(.running, [.moveReplicas: .done, .sectionReadOnly: .running]),
            candidateReadOnly: nil, needsCandidate: false, expected: "rollBack"),
        Case(
            name: "inside the flip, not committed: back without asking the candidate", record: journal(.running, flipStarted),
            candidateReadOnly: nil, needsCandidate: false, expected: "rollBack"),
        Case(
            name: "committed, candidate read-only: back", record: journal(.running, committed), candidateReadOnly: true, needsCandidate: true,
            expected: "rollBack"),
        Case(
            name: "committed, candidate writable: forward", record: journal(.running, committed), candidateReadOnly: false,
            needsCandidate: true, expected: "forward"),
        Case(
            name: "committed, candidate unreachable: a human, never the old primary writable", record: journal(.running, committed),
            candidateReadOnly: nil, needsCandidate: true, expected: "leaveForHuman"),
        Case(
            name: "point of no return journaled, candidate writable: forward", record: journal(.running, pastPointOfNoReturn),
            candidateReadOnly: false, needsCandidate: true, expected: "forward"),
        Case(
            name: "point of no return journaled, candidate unreachable: forward (its steps fail there and are noted)",
            record: journal(.running, pastPointOfNoReturn), candidateReadOnly: nil, needsCandidate: true, expected: "forward"),
        // A controller leaving the section for a human sets the candidate read-only before it
        // journals needs-human; one that stopped in between leaves a journal that says
        // "forward" with no writer. Finishing forward would record `done` with none.
        Case(
            name: "point of no return journaled, candidate read-only now: a human, never 'done' without a writer",
            record: journal(.running, pastPointOfNoReturn), candidateReadOnly: true, needsCandidate: true, expected: "leaveForHuman"),
        Case(
            name: "rolling back: go on rolling back", record: journal(.rollingBack, [.moveReplicas: .undoing]), candidateReadOnly: nil,
            needsCandidate: false, expected: "rollBack"),
        Case(
            name: "no plan: nothing ran",
            record: {
                var record = journal(.running, [:])
                record.steps = []
                return record
            }(), candidateReadOnly: nil, needsCandidate: false, expected: "nothingRan"),
        Case(
            name: "finished: release the lock", record: journal(.done, committed), candidateReadOnly: nil, needsCandidate: false,
            expected: "release"),
    ]

    @Test("forward or back", arguments: cases)
    func decide(_ test: Case) {
        #expect(Recovery.needsCandidateState(test.record) == test.needsCandidate)
        let decision = Recovery.decide(test.record, candidateReadOnly: test.candidateReadOnly)
        let kind: String =
            switch decision {
            case .release: "release"
            case .nothingRan: "nothingRan"
            case .forward: "forward"
            case .rollBack: "rollBack"
            case .leaveForHuman: "leaveForHuman"
            }
        #expect(kind == test.expected, "\(decision)")
    }

    @Test("the steps to undo: every one that may have taken effect, newest first")
    func stepsToUndo() {
        let record = Self.journal(
            .rollingBack,
            [
                .moveReplicas: .done, .sectionReadOnly: .undone, .oldPrimaryReadOnly: .failed,
                .readFinalPosition: .running, .waitCatchUp: .undoFailed,
            ])
        #expect(
            Recovery.stepsToUndo(record.steps).map { record.steps[$0].action } == [
                .waitCatchUp, .readFinalPosition, .oldPrimaryReadOnly,
                .moveReplicas,
            ])
    }

    @Test(
        "the old primary takes writes again only when the candidate cannot",
        arguments: [
            (StepRecord.State?.some(.pending), Bool?.none, true),
            (.some(.running), nil, false),
            (.some(.failed), nil, false),
            (.some(.pending), false, false),
            (.some(.running), true, true),
            (nil, nil, false),
        ] as [(StepRecord.State?, Bool?, Bool)])
    func oldPrimaryMayTakeWrites(_ step: StepRecord.State?, _ candidateReadOnly: Bool?, _ allowed: Bool) {
        #expect((Recovery.oldPrimaryMayTakeWrites(candidateWritableStep: step, candidateReadOnly: candidateReadOnly) == nil) == allowed)
    }
}

@Suite("Sessions on the old primary")
struct ServerSessionsTests {
    @Test("a long transaction or statement is refused, naming the thread, the account and the age; short ones and idle sessions pass")
    func longRunning() {
        let sessions = [
            ServerSession(id: "41", user: "app", host: "10.0.0.9:5000", command: "Sleep", seconds: 600),
            ServerSession(id: "42", user: "app", host: "10.0.0.9:5001", command: "Sleep", seconds: 12, transactionSeconds: 12),
            ServerSession(id: "43", user: "batch", host: "10.0.0.8:6000", command: "Query", seconds: 7, info: "UPDATE t SET x = 1"),
            ServerSession(id: "44", user: "app", host: "10.0.0.9:5002", command: "Query", seconds: 1, transactionSeconds: 1),
        ]
        let refusals = ServerSessions.longRunning(sessions, on: "db1001", limit: 3)
        #expect(refusals.count == 2)
        #expect(refusals[0].contains("a transaction open for 12 s in thread 42 (app@10.0.0.9:5001)"), "\(refusals)")
        #expect(refusals[1].contains("a statement running for 7 s in thread 43 (batch@10.0.0.8:6000)"), "\(refusals)")
        #expect(!refusals.joined().contains("UPDATE"), "a statement's text may carry data: it is not quoted")
        #expect(refusals.allSatisfy { $0.contains("--force-long-transactions") })
    }

    @Test("rows read back from the server")
    func rows() {
        let sessions = ServerSessions.sessions(from: [
            ["id": "7", "user": "u", "host": "h", "command": "Query", "seconds": "4", "trx_seconds": "5", "info": ""],
            ["user": "no id"],
        ])
        #expect(sessions == [ServerSession(id: "7", user: "u", host: "h", command: "Query", seconds: 4, transactionSeconds: 5, info: nil)])
    }

    @Test("channel settings carried to the old primary's new channel, quoted")
    func channelSettings() {
        let settings = ReplicationChannelSettings(
            channel: [
                "Master_SSL_Allowed": "Yes", "Master_SSL_CA_File": "/etc/ssl/ca.pem",
                "Master_SSL_Verify_Server_Cert": "No", "Connect_Retry": "10",
            ],
            heartbeatPeriod: "2.000")
        #expect(
            settings.changeMasterOptions
                == #"MASTER_SSL = 1, MASTER_SSL_CA = '/etc/ssl/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT = 0, MASTER_CONNECT_RETRY = 10, MASTER_HEARTBEAT_PERIOD = 2.000"#
        )
    }
}
