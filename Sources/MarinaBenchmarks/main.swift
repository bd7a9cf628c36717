import Foundation
import MarinaSandbox

// Benchmarks whose figures go in docs/benchmarks.md. Run with `make bench`.
//
//   marina-bench sandbox-up [--runs N]
//     Time from `Sandbox.up` being called to its return, for one section of a primary and
//     two replicas: etcd answering, every mariadbd accepting connections, replication set up
//     and caught up (MASTER_GTID_WAIT), and the first heartbeat row written. The first run
//     uses an empty template cache (the "first time"); the others reuse the template.

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = p * Double(sorted.count - 1)
    let low = Int(rank.rounded(.down)), high = Int(rank.rounded(.up))
    return sorted[low] + (sorted[high] - sorted[low]) * (rank - Double(low))
}

func describe(_ samples: [Double]) -> String {
    let sorted = samples.sorted()
    return String(format: "n=%d  median %.2f s  min %.2f s  p90 %.2f s  max %.2f s",
                  sorted.count, percentile(sorted, 0.5), sorted.first ?? .nan, percentile(sorted, 0.9), sorted.last ?? .nan)
}

func benchmarkSandboxUp(runs: Int) async throws {
    let root = NSTemporaryDirectory() + "marina-bench-\(getpid())"
    let cache = root + "/cache"
    setenv("MARINA_CACHE_DIR", cache, 1)
    defer { try? FileManager.default.removeItem(atPath: root) }
    var warm = [Double]()
    var cold: Double?
    for run in 0..<(runs + 1) {
        let directory = "\(root)/sandbox-\(run)"
        let clock = ContinuousClock()
        let start = clock.now
        let started = try await Sandbox.up(.init(directory: directory, sections: 1, replicas: 2))
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        _ = try await Sandbox.stop(directory: started.state.directory, purge: true)
        if run == 0 { cold = seconds } else { warm.append(seconds) }
        print(String(format: "run %2d  %@  %.2f s", run, run == 0 ? "cold (template built)" : "warm", seconds))
    }
    print("sandbox up, 1 primary + 2 replicas, first time: " + String(format: "%.2f s", cold ?? .nan))
    print("sandbox up, 1 primary + 2 replicas, after the first time: " + describe(warm))
}

let arguments = CommandLine.arguments.dropFirst()
let runs = arguments.firstIndex(of: "--runs").flatMap { arguments.index(after: $0) < arguments.endIndex ? Int(arguments[arguments.index(after: $0)]) : nil } ?? 10
switch arguments.first {
case "sandbox-up":
    try await benchmarkSandboxUp(runs: runs)
default:
    FileHandle.standardError.write(Data("usage: marina-bench sandbox-up [--runs N]\n".utf8))
    exit(2)
}
