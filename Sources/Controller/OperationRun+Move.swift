import Foundation
import Operations

/// `marina instance move`: not built yet.
extension OperationRun {
    func prepareMove() async throws -> Bool {
        record.state = .refused
        record.refusals = ["move is not built yet"]
        return false
    }
    func performMove(_ index: Int) async throws { throw ControllerError.stepFailed(host: "controller", message: "move is not built yet") }
    func undoMove(_ index: Int) async throws {}
    func verifyMoveUndone() async throws {}
}
