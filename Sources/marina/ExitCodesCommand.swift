import ArgumentParser

/// `marina exit-codes` and `marina help exit-codes`: the one table of exit statuses that every
/// command follows (`Exit` holds them; `docs/cli.md` repeats the table, and a test keeps the
/// two the same).
struct ExitCodesCommand: ParsableCommand {
    static let table: [(code: Int32, meaning: String)] = [
        (0, "success (a report found nothing to show: no drift, no staged change)"),
        (1, "an error before anything changed (a bad setting, an unknown name, etcd unreachable before writing)"),
        (2, "refused by a check: validation, a preflight, a plan that changed since it was approved; nothing changed"),
        (3, "lost a race with another writer, or a running operation holds the section; nothing changed: re-run"),
        (4, "the operation failed and was rolled back; the rollback was verified"),
        (5, "left for a human: the section is read-only, or a rollback could not be completed"),
        (6, "done, but something needs attention: a host after the point of no return, a mirror not written, drift found"),
        (7, "outcome unknown: etcd stopped answering while following an operation; `marina operation follow ID`"),
        (8, "the confirmation was declined (or not answered); nothing changed"),
        (64, "a wrong flag or argument; nothing was done"),
    ]

    static var text: String {
        table.map { String($0.code).padding(toLength: 4, withPad: " ", startingAt: 0) + $0.meaning }.joined(separator: "\n")
    }

    static let configuration = CommandConfiguration(
        commandName: "exit-codes",
        abstract: "The exit status of every marina command.",
        discussion: "Every command exits with one of these statuses:\n\n" + text
            + "\n\nFor 1, 2, 3, 8 and 64 nothing was written. A command following an operation prints its id, so that one that "
            + "exits 7 can be followed again.")

    func run() {
        print(Self.text)
    }
}
