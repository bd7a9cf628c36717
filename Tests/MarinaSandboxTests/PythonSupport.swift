import Foundation
import MarinaSandbox

/// The package this test target is in.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// The Python helpers of `Tests/MarinaSandboxTests/Scripts/`.
let testScripts = packageRoot + "/Tests/MarinaSandboxTests/Scripts"

/// Runs Debian's python3 (where python3-prometheus-client, python3-jsonschema and python3-yaml
/// are) with `arguments`, `input` on its standard input. The scripts read all their input
/// before they print, so writing it first cannot deadlock.
func runPython(_ arguments: [String], input: Data = Data()) throws -> (status: Int32, output: Data, errors: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = arguments
    let stdin = Pipe()
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    stdin.fileHandleForWriting.write(input)
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    let errors = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output, errors)
}

/// Prometheus text exposition parsed by the Python client's own parser (`parse_metrics.py`):
/// every sample by name, as `{labels, value, type}`. Throws with the parser's message when the
/// text is not valid exposition.
func parseMetrics(_ text: Data) throws -> [String: [[String: Any]]] {
    let run = try runPython([testScripts + "/parse_metrics.py"], input: text)
    guard run.status == 0, let parsed = try JSONSerialization.jsonObject(with: run.output) as? [String: [[String: Any]]] else {
        throw SandboxError.invalidArgument("parse_metrics.py exited \(run.status): \(run.errors)")
    }
    return parsed
}
