import Foundation
import MarinaSandbox
import Operations

//   marina-bench switchover --marina PATH [--runs N]
//     A sandbox (etcd, a primary and two replicas, the agent writing the heartbeat, a
//     controller: all run by PATH, the release `marina`) with the load generator writing 200
//     rows/s as an application user and sampling @@read_only on every instance every 5 ms.
//     N switchovers (30) round the three instances, each the whole `marina switchover s1 --to
//     X --yes --json` process, 200 ms apart. Figures: the command's wall time; the write
//     window from the journal (the old primary's read_only=ON sent to the candidate's
//     read_only=OFF answered) and each flip step's share; the outages the load generator saw
//     (first refused write to the next acknowledged one); lost writes and two-writer samples.

func benchmarkSwitchover(marina: String, runs: Int) async throws {
    let directory = NSTemporaryDirectory() + "marina-bench-switchover-\(getpid())"
    let state = try await Sandbox.up(
        .init(
            directory: directory, sections: 1, replicas: 2, agentExecutable: marina,
            controllerExecutable: marina)
    ).state
    defer { _ = try? Sandbox.down(directory: directory, purge: true) }
    let load = try LoadGenerator(state: state, rate: 200)
    await load.start()
    try await Task.sleep(for: .seconds(1))

    var commands = [Double]()
    var windows = [Double]()
    var steps = [String: [Double]]()
    let targets = ["db1002", "db1003", "db1001"]
    for run in 0..<runs {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: marina)
        process.arguments = ["switchover", "s1", "--to", targets[run % 3], "--yes", "--json"]
        process.environment = ProcessInfo.processInfo.environment.merging(["MARINA_SANDBOX_DIR": directory]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        let start = ContinuousClock.now
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        commands.append(seconds(ContinuousClock.now - start))
        let record = try OperationJSON.decode(Array(data))
        guard process.terminationStatus == 0, record.state == .done, let window = record.windowMilliseconds else {
            throw BenchmarkError("switchover \(run) ended \(record.state) (exit \(process.terminationStatus)): \(record.failure?.error ?? "")")
        }
        windows.append(window / 1000)
        let flip = record.steps.drop { $0.action != .oldPrimaryReadOnly }.prefix { !$0.pointOfNoReturn } + record.steps.filter(\.pointOfNoReturn)
        for step in flip { steps[step.action.rawValue, default: []].append((step.milliseconds ?? 0) / 1000) }
        try await Task.sleep(for: .milliseconds(200))
    }
    try await Task.sleep(for: .milliseconds(500))
    let report = await load.stop()
    var missing = 0
    for instance in state.instances { missing += try await LoadGenerator.missing(report.acknowledged, on: instance, state: state).count }

    print("switchover under \(Int(Double(report.acknowledged.count) / report.seconds)) writes/s, \(runs) runs:")
    print("  whole command (marina switchover ... --yes): " + describe(commands))
    print(
        "  write window (journal, read_only=ON sent to read_only=OFF answered): " + describe(windows) + "  p99 "
            + String(format: "%.1f ms", percentile(windows.sorted(), 0.99) * 1000))
    print(
        "  outage seen by the application (first refused write to next acknowledged): "
            + describe(report.outages.map { $0 / 1000 }) + "  p99 " + String(format: "%.1f ms", percentile(report.outages.sorted(), 0.99)))
    print("  window by step (median ms):")
    for action in StepAction.allCases {
        guard let samples = steps[action.rawValue] else { continue }
        print("    \(action.rawValue.padding(toLength: 24, withPad: " ", startingAt: 0)) " + describe(samples))
    }
    print(
        "  acknowledged writes \(report.acknowledged.count), missing on any instance \(missing); "
            + "@@read_only samples \(report.samples) (one every \(String(format: "%.1f", report.seconds * 1000 / Double(max(report.samples, 1)))) ms), "
            + "with two writable instances \(report.twoWritersSamples)")
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
