import Observation
import Operations
import Testing

private func state(_ text: String) -> GTIDState { try! GTIDState(parsing: text) }
private func position(_ text: String) -> GTIDPosition { try! GTIDPosition(parsing: text) }

/// Whether an old primary may rejoin as a replica of the primary that replaced it, and whether
/// an instance may move under another: the two pure decisions, no server.
@Suite("rejoin and move decisions")
struct RejoinDecisionTests {
    // MARK: Rejoin

    @Test(
        "clean: nothing the new primary lacks; it starts from its own last GTID of each domain",
        arguments: [
            ("identical states", "0-1001-100", "0-1001-100", "0-1001-100"),
            ("old primary behind (it died after the new primary received more)", "0-1001-90", "0-1001-100", "0-1001-90"),
            ("behind, the new primary already writing", "0-1001-100", "0-1001-100,0-1002-130", "0-1001-100"),
            ("an earlier primary's origin, replicated everywhere", "0-1001-100,0-1003-40", "0-1001-100,0-1002-101,0-1003-40", "0-1001-100"),
            ("the last GTID of a domain is another origin's", "0-1001-100,0-1003-140", "0-1001-100,0-1003-140", "0-1003-140"),
            ("several domains", "0-1001-100,1-1001-7,2-2001-3", "0-1001-100,0-1002-104,1-1001-9,2-2001-3", "0-1001-100,1-1001-7,2-2001-3"),
            ("empty old primary", "", "0-1002-5", ""),
            ("a tie in one domain (no strict mode) goes to its own GTID", "0-1001-50,0-1003-50", "0-1001-50,0-1003-50", "0-1001-50"),
        ])
    func clean(case name: String, old: String, new: String, start: String) {
        #expect(
            Rejoin.assess(oldPrimaryBinlogState: state(old), oldPrimaryServerID: 1001, newPrimaryBinlogState: state(new))
                == .clean(startFrom: position(start)), "\(name)")
    }

    @Test(
        "diverged: each origin's missing range, own writes first",
        arguments: [
            ("own writes no replica received", "0-1001-105", "0-1001-100,0-1002-101", ["0-1001-101..0-1001-105"]),
            ("a single own write", "0-1001-101", "0-1001-100", ["0-1001-101"]),
            ("a foreign origin the new primary never had", "0-1001-100,0-1005-3", "0-1001-100", ["0-1005-1..0-1005-3"]),
            ("a foreign origin ahead of the new primary's", "0-1001-100,0-1003-42", "0-1001-100,0-1003-40", ["0-1003-41..0-1003-42"]),
            (
                "several domains, own writes first",
                "0-1001-105,1-1001-9,1-2001-4,2-2001-8", "0-1001-100,1-1001-9,1-2001-2,2-2001-8",
                ["0-1001-101..0-1001-105", "1-2001-3..1-2001-4"]
            ),
            (
                "own writes in a domain the new primary lacks, listed before a lower foreign origin",
                "0-7-3,3-1001-2", "", ["3-1001-1..3-1001-2", "0-7-1..0-7-3"]
            ),
        ])
    func diverged(case name: String, old: String, new: String, transactions: [String]) {
        #expect(
            Rejoin.assess(oldPrimaryBinlogState: state(old), oldPrimaryServerID: 1001, newPrimaryBinlogState: state(new))
                == .diverged(transactions: transactions), "\(name)")
    }

    // MARK: Move

    /// The arguments of one move: by default db1003 moves under db1002, a replica of the
    /// primary in the same section that binlogs what it replicates and has every binary log.
    struct Move: Sendable, CustomTestStringConvertible {
        var name: String
        var mover = "db1003"
        var moverPosition: String? = "0-1001-100"
        var moverSection: String? = "s1"
        var newSource = "db1002"
        var newSourceSection: String? = "s1"
        var newSourceIsPrimary = false
        var logBin: Bool? = true
        var logSlaveUpdates: Bool? = true
        var oldest: String? = "0-1001-50"
        var cycle = false

        var testDescription: String { name }

        func refusals() -> [String] {
            InstanceMove.refusals(
                mover: mover, moverSlavePosition: moverPosition.map(position), moverSection: moverSection, newSource: newSource,
                newSourceSection: newSourceSection, newSourceIsPrimary: newSourceIsPrimary, newSourceLogBin: logBin,
                newSourceLogSlaveUpdates: logSlaveUpdates, newSourceOldestBinlogGTIDs: oldest.map(position), newSourceReplicatesFromMover: cycle)
        }
    }

    @Test(
        "allowed",
        arguments: [
            Move(name: "under a sibling that binlogs what it replicates"),
            Move(name: "under the primary, log_slave_updates unknown", newSource: "db1001", newSourceIsPrimary: true, logSlaveUpdates: nil),
            Move(name: "under the primary, log_slave_updates OFF", newSource: "db1001", newSourceIsPrimary: true, logSlaveUpdates: false),
            Move(name: "oldest binary log starts exactly at the mover's position", oldest: "0-1001-100"),
            Move(name: "a domain at sequence 0 in the oldest list, absent on the mover", oldest: "0-1001-50,1-2001-0"),
            Move(name: "a domain only the mover has", moverPosition: "0-1001-100,4-4001-9"),
            Move(name: "nothing purged yet: an empty list", oldest: ""),
        ])
    func allowed(_ move: Move) {
        #expect(move.refusals() == [])
    }

    @Test(
        "refused, naming the instances and the problem",
        arguments: [
            (Move(name: "itself", newSource: "db1003"), ["db1003 cannot replicate from itself"]),
            (
                Move(name: "another section", newSourceSection: "s2"),
                ["db1003 is in section s1 and db1002 in s2: a replica moves only within its section"]
            ),
            (
                Move(name: "mover in no section", moverSection: nil),
                ["db1003 is not a member of any section, db1002 is in s1: a replica moves only within its section"]
            ),
            (
                Move(name: "new source in no section", newSourceSection: nil),
                ["db1002 is not a member of any section, db1003 is in s1: a replica moves only within its section"]
            ),
            (
                Move(name: "neither in a section", moverSection: nil, newSourceSection: nil),
                ["neither db1003 nor db1002 is a member of a section: a replica moves only within its section"]
            ),
            (Move(name: "no binary log", logBin: false), ["db1002 has no binary log (log_bin is OFF): db1003 could not replicate from it"]),
            (
                Move(name: "binary log unknown", logBin: nil),
                ["cannot tell whether db1002 has a binary log (log_bin unknown) for db1003 to replicate from"]
            ),
            (
                Move(name: "a replica without log_slave_updates", logSlaveUpdates: false),
                [
                    "db1002 is not the primary and has log_slave_updates OFF: it does not binlog what it replicates, "
                        + "so db1003 would receive none of the primary's transactions"
                ]
            ),
            (
                Move(name: "a replica whose log_slave_updates is unknown", logSlaveUpdates: nil),
                [
                    "db1002 is not the primary and its log_slave_updates is unknown: "
                        + "cannot tell whether it would pass the primary's transactions on to db1003"
                ]
            ),
            (Move(name: "a cycle", cycle: true), ["db1002 replicates from db1003: moving db1003 under it would make a replication cycle"]),
            (
                Move(name: "mover position unknown", moverPosition: nil),
                ["db1003's position (gtid_slave_pos) is unknown: cannot tell where it would start replicating from db1002"]
            ),
            (
                Move(name: "oldest binary log unknown", oldest: nil),
                [
                    "cannot tell whether db1002 still has the binary logs db1003 needs "
                        + "(the GTID list at the start of its oldest binary log is unknown)"
                ]
            ),
            (
                Move(name: "purged past the mover", oldest: "0-1001-120"),
                [
                    "db1002 no longer has the binary logs db1003 needs in domain 0: "
                        + "its oldest binary log starts after 0-1001-120, db1003 is at 0-1001-100"
                ]
            ),
            (
                Move(name: "purged in a domain the mover lacks", oldest: "0-1001-50,1-2001-7"),
                [
                    "db1002 no longer has the binary logs db1003 needs in domain 1: "
                        + "its oldest binary log starts after 1-2001-7, db1003 has nothing of that domain"
                ]
            ),
            (
                Move(
                    name: "every problem at once", moverPosition: "0-1001-10,1-2001-3", logSlaveUpdates: false, oldest: "0-1001-50,1-2001-7",
                    cycle: true),
                [
                    "db1002 is not the primary and has log_slave_updates OFF: it does not binlog what it replicates, "
                        + "so db1003 would receive none of the primary's transactions",
                    "db1002 replicates from db1003: moving db1003 under it would make a replication cycle",
                    "db1002 no longer has the binary logs db1003 needs in domain 0: its oldest binary log starts after 0-1001-50, db1003 is at 0-1001-10",
                    "db1002 no longer has the binary logs db1003 needs in domain 1: its oldest binary log starts after 1-2001-7, db1003 is at 1-2001-3",
                ]
            ),
            (
                Move(name: "both positions unknown", moverPosition: nil, oldest: nil),
                [
                    "db1003's position (gtid_slave_pos) is unknown: cannot tell where it would start replicating from db1002",
                    "cannot tell whether db1002 still has the binary logs db1003 needs "
                        + "(the GTID list at the start of its oldest binary log is unknown)",
                ]
            ),
        ] as [(Move, [String])])
    func refused(_ move: Move, expected: [String]) {
        #expect(move.refusals() == expected)
    }
}
