import Controller
import Foundation
import Operations
import Testing

/// Which finished journals the leader deletes: the last `keep` of each section and everything
/// younger than `keep_days` stay; nothing unfinished, nothing a lock names; dry runs go after a minute.
@Suite("Journal retention")
struct RetentionTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let day: TimeInterval = 86_400

    func journal(
        _ id: String, _ section: String = "s1", state: OperationRecord.State = .done, daysAgo: Double, dryRun: Bool = false
    ) -> JournalRetention.Journal {
        JournalRetention.Journal(id: id, section: section, state: state, dryRun: dryRun, time: now.addingTimeInterval(-daysAgo * day))
    }

    @Test("per section: the newest `keep` stay whatever their age, the rest stay while younger than the period")
    func countAndPeriod() {
        let journals = [
            journal("s1-a", daysAgo: 400), journal("s1-b", daysAgo: 300), journal("s1-c", daysAgo: 200), journal("s1-d", daysAgo: 100),
            journal("s1-e", daysAgo: 50), journal("s1-f", daysAgo: 1),
            journal("s2-a", "s2", daysAgo: 500), journal("s2-b", "s2", state: .rolledBack, daysAgo: 400),
        ]
        // keep 2, 90 days: s1 keeps f and e (newest two, e also by age), loses a, b, c, d (older than 90 days);
        // s2 keeps both (its newest two).
        #expect(JournalRetention.expired(journals, keep: 2, keepDays: 90, now: now, locked: []) == ["s1-a", "s1-b", "s1-c", "s1-d"])
        // keep 1, 250 days: s1 keeps f (newest) and c, d, e (younger than 250 days); s2 keeps b.
        #expect(JournalRetention.expired(journals, keep: 1, keepDays: 250, now: now, locked: []) == ["s1-a", "s1-b", "s2-a"])
        // keep_days 0: the count alone.
        #expect(
            JournalRetention.expired(journals, keep: 3, keepDays: 0, now: now, locked: []) == ["s1-a", "s1-b", "s1-c"])
        // Everything within the count: nothing goes.
        #expect(JournalRetention.expired(journals, keep: 100, keepDays: 1, now: now, locked: []) == [])
    }

    @Test("an unfinished operation or one a lock names is never deleted, however old")
    func neverLive() {
        let journals = [
            journal("old-running", state: .running, daysAgo: 900), journal("old-rolling-back", state: .rollingBack, daysAgo: 900),
            journal("old-requested", state: .requested, daysAgo: 900), journal("old-locked", daysAgo: 900),
            journal("old-done", daysAgo: 800), journal("new", daysAgo: 0),
        ]
        #expect(
            JournalRetention.expired(journals, keep: 1, keepDays: 1, now: now, locked: ["old-locked"]) == ["old-done"])
        // Locked, a finished journal does not count among the kept either: the next one is the newest kept.
        #expect(JournalRetention.expired(journals, keep: 1, keepDays: 1, now: now, locked: ["new", "old-locked"]) == [])
    }

    @Test("every finished state is pruned alike but one left for a human, kept with its undo; a dry run's record goes a minute after it was planned")
    func dryRuns() {
        let minute: Double = 60 / 86_400
        let journals = [
            journal("plan-old", state: .planned, daysAgo: 2 * minute, dryRun: true),
            journal("plan-new", state: .planned, daysAgo: 0.5 * minute, dryRun: true),
            journal("refused-dry-run", state: .refused, daysAgo: 2 * minute, dryRun: true),
            // A planned record without the flag (written by hand, or an older Marina) is a plan all the same.
            journal("planned-unflagged", state: .planned, daysAgo: 2 * minute, dryRun: true),
            journal("refused", state: .refused, daysAgo: 100), journal("human", state: .needsHuman, daysAgo: 100),
            journal("attention", state: .doneNeedsAttention, daysAgo: 100), journal("recent", daysAgo: 2),
        ]
        #expect(
            JournalRetention.expired(journals, keep: 1, keepDays: 90, now: now, locked: [])
                == ["attention", "plan-old", "planned-unflagged", "refused", "refused-dry-run"])
    }

    @Test("a record is judged by when it finished, else when it was last written")
    func journalTime() {
        var record = OperationRecord(
            id: "x", section: "s1", candidate: "db2", reason: "", requestedBy: "dba", requestedAt: now.addingTimeInterval(-10 * day))
        record.state = .done
        record.updatedAt = now.addingTimeInterval(-5 * day)
        #expect(JournalRetention.Journal(record).time == now.addingTimeInterval(-5 * day))
        record.finishedAt = now.addingTimeInterval(-4 * day)
        #expect(JournalRetention.Journal(record).time == now.addingTimeInterval(-4 * day))
        record.state = .planned
        #expect(JournalRetention.Journal(record).dryRun)
    }

    @Test(
        "journal: is strictly validated, each problem naming its key",
        arguments: [
            ("journal: {keep: 0}\n", "c.yaml: journal.keep must be from 1 to 100000 journals per section (got 0)"),
            ("journal: {keep_days: -1}\n", "c.yaml: journal.keep_days must be from 0 to 36500 days (got -1)"),
            ("journal: {keep: 10, keepdays: 3}\n", "c.yaml: controller.journal.keepdays: unknown field"),
            ("journal: {keep: many}\n", "c.yaml: controller.journal.keep"),
        ])
    func configuration(text: String, message: String) {
        let base = "etcd: {endpoints: [http://x]}\nmariadb: {credentials_file: f}\nplaybooks: p\n"
        do {
            _ = try ControllerConfiguration.parse(base + text, file: "c.yaml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }

    @Test("journal: defaults to 100 per section and 90 days; both can be set")
    func configurationDefaults() throws {
        let base = "etcd: {endpoints: [http://x]}\nmariadb: {credentials_file: f}\nplaybooks: p\n"
        let defaults = try ControllerConfiguration.parse(base, file: "c.yaml")
        #expect(defaults.journal == ControllerConfiguration.Journal(keep: 100, keepDays: 90))
        let set = try ControllerConfiguration.parse(base + "journal: {keep: 20, keep_days: 0}\n", file: "c.yaml")
        #expect(set.journal == ControllerConfiguration.Journal(keep: 20, keepDays: 0))
    }
}
