import Foundation

extension OperationRecord {
    /// The refusal of an operation whose section another operation holds: a lost race, not a
    /// failed check (the CLI exits 3 for it, 2 for other refusals).
    public static func busyRefusal(section: String, holder: String) -> String {
        "section \(section) is busy: \(holder) holds its lock"
    }

    /// Whether it was refused only because its section was busy.
    public var refusedAsBusy: Bool {
        state == .refused && refusals.count == 1 && refusals[0].hasPrefix("section \(section) is busy: ")
    }

    /// The CLI's exit status for this operation (the table of `marina help exit-codes`): its
    /// state's, except 3 for a refusal because the section was busy.
    public var exitStatus: Int32 { refusedAsBusy ? 3 : state.exitCode }
}
