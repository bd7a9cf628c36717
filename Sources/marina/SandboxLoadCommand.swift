import ArgumentParser
import Foundation
import MarinaSandbox

extension SandboxCommand {
    struct Load: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write numbered rows to whichever instance of a section takes them, and check none is lost.",
            discussion: """
                An application for the sandbox: writes at --rate rows per second as marina_app (no SUPER, no READ ONLY ADMIN, \
                so read_only stops it) to whichever instance accepts them, while sampling @@read_only on every instance every \
                5 ms. Afterwards every acknowledged row must be on every instance. Run switchovers meanwhile from another shell. \
                Exit 6 if a row is missing or two instances were ever writable at once.
                """)

        @OptionGroup var directory: DirectoryOption
        @Option(help: "How long to write, in seconds.") var seconds: Double = 10
        @Option(help: "Rows per second.") var rate: Double = 200
        @Option(help: "The section.") var section = "s1"

        func validate() throws {
            if !seconds.isFinite || seconds <= 0 || seconds > 86_400 {
                throw ValidationError("--seconds must be a positive number of seconds, at most 86400 (got \(seconds))")
            }
            if !rate.isFinite || rate <= 0 || rate > 5000 { throw ValidationError("--rate must be above 0 and at most 5000 (got \(rate))") }
        }

        func run() async throws {
            try await running {
                let state = try Sandbox.state(directory: directory.path)
                guard !state.instances(in: section).isEmpty else { throw UsageProblem("the sandbox has no section \(section)") }
                let load = try LoadGenerator(state: state, section: section, rate: rate)
                await load.start()
                try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                let report = await load.stop()
                try await Task.sleep(for: .seconds(1))  // replicas catch up
                var missing = 0
                for instance in state.instances(in: section) {
                    let absent = try await LoadGenerator.missing(report.acknowledged, on: instance, state: state)
                    missing += absent.count
                    print("\(instance.name): \(report.acknowledged.count - absent.count) of \(report.acknowledged.count) acknowledged rows")
                }
                let outages = report.outages.map { String(format: "%.1f ms", $0) }.joined(separator: ", ")
                print(
                    "\(report.acknowledged.count) rows acknowledged in \(String(format: "%.1f", report.seconds)) s; "
                        + "\(report.failedAttempts) refused attempts; outages: \(outages.isEmpty ? "none" : outages)")
                print("\(report.samples) @@read_only samples, \(report.twoWritersSamples) with two writable instances")
                if missing > 0 || report.twoWritersSamples > 0 { throw Exit.attention }
            }
        }
    }
}
