import Foundation
import Operations

/// `marina instance rejoin`: not built yet.
extension OperationRun {
    func prepareRejoin() async throws -> Bool {
        record.state = .refused
        record.refusals = ["rejoin is not built yet"]
        return false
    }
    func performRejoin(_ index: Int) async throws { throw ControllerError.stepFailed(host: "controller", message: "rejoin is not built yet") }
    func undoRejoin(_ index: Int) async throws {}
    func verifyRejoinUndone() async throws {}
}
