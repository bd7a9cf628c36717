import Foundation
import Operations

/// The `exec` hooks of a playbook: a site's own commands, run by the controller.
extension OperationRun {
    func run(_ command: [String], timeout: Double) async throws {
        guard let program = command.first else { return }
        try context.fence.check()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : "/usr/bin/env")
        process.arguments = program.hasPrefix("/") ? Array(command.dropFirst()) : command
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                throw ControllerError.stepFailed(
                    host: "controller", message: "\(command.joined(separator: " ")) did not finish within \(Seconds.format(timeout)) s")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        guard process.terminationStatus == 0 else {
            throw ControllerError.stepFailed(
                host: "controller", message: "\(command.joined(separator: " ")) exited with status \(process.terminationStatus)")
        }
    }
}
