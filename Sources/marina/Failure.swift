import ArgumentParser
import Foundation

/// Prints one clear line for an error and exits non-zero; argument errors keep
/// ArgumentParser's own message and usage.
func exitReportingFailure(_ error: Error) -> Never {
    FileHandle.standardError.write(Data("marina: \(error)\n".utf8))
    exit(1)
}

/// Runs `body`, turning any thrown error into one message on stderr and exit status 1.
func reportingFailures<Result>(_ body: () async throws -> Result) async -> Result {
    do {
        return try await body()
    } catch {
        exitReportingFailure(error)
    }
}
