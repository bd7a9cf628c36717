import ArgumentParser
import Foundation
import Logging
import MarinaSandbox

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run a local topology on loopback: a real etcd and MariaDB sections with GTID replication.",
        subcommands: [Up.self, Status.self, Down.self, Load.self, Restart.self, Kill.self]
    )

    struct DirectoryOption: ParsableArguments {
        @Option(name: .long, help: "The sandbox's directory (default: $MARINA_SANDBOX_DIR, else ./.sandbox).")
        var dir: String?

        var path: String { dir ?? ProcessInfo.processInfo.environment["MARINA_SANDBOX_DIR"] ?? ".sandbox" }
    }

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a sandbox, or report the one already running in the directory.")

        @OptionGroup var directory: DirectoryOption

        @Option(help: "Number of sections (s1, s2, ...), 1 to 9.")
        var sections = 1

        @Option(help: "Replicas per section, 0 to 9.")
        var replicas = 2

        @Option(name: .customLong("base-port"), help: "First of the consecutive loopback ports to use (default: a free block).")
        var basePort: Int?

        @Flag(help: "Make a private CA: mariadbd offers TLS, etcd serves HTTPS and requires client certificates.")
        var tls = false

        @Flag(help: "Do not start a marina agent (pt-heartbeat then writes the heartbeat; implies --no-controller).")
        var noAgent = false

        @Flag(help: "Do not start a marina controller.")
        var noController = false

        @Option(help: "Where switchover.yaml is (default: $MARINA_PLAYBOOKS, else the repository's playbooks/).")
        var playbooks: String?

        @Option(
            help: ArgumentHelp(
                "Whether the controller fails a dead primary over on its own: manual or automatic (every section).",
                valueName: "manual|automatic"))
        var failover = "manual"

        @Option(name: .customLong("agent-interval"), help: "Seconds between the agent's probes of each instance (above 0.01, at most 60).")
        var agentInterval: Double = 1

        @Flag(help: "Print the result as JSON (as `status --json`).")
        var json = false

        func run() async throws {
            try await running {
                // Checked before anything is computed from them (a port count, a port number).
                guard (1...9).contains(sections) else { throw UsageProblem("--sections must be between 1 and 9 (got \(sections))") }
                guard (0...9).contains(replicas) else { throw UsageProblem("--replicas must be between 0 and 9 (got \(replicas))") }
                if let basePort, !(1024...65535).contains(basePort) {
                    throw UsageProblem("--base-port must be between 1024 and 65535 (got \(basePort))")
                }
                let mode = try SandboxFailoverMode(flag: failover)
                try SandboxPlan.checkAgentInterval(agentInterval)
                let options = Sandbox.Options(
                    directory: directory.path, sections: sections, replicas: replicas, basePort: basePort, tls: tls,
                    agentExecutable: noAgent ? nil : Sandbox.currentExecutable,
                    controllerExecutable: noAgent || noController ? nil : Sandbox.currentExecutable, playbooks: playbooks,
                    failover: mode, agentInterval: agentInterval)
                let clock = ContinuousClock()
                let start = clock.now
                let started = try await Sandbox.up(options, logger: commandLogger("marina.sandbox"))
                let elapsed = clock.now - start
                let report = await SandboxReport.inspect(started.state)
                if json {
                    try printJSON(report)
                    return
                }
                if started.alreadyRunning {
                    print("A sandbox is already running in \(started.state.directory); nothing was started.\n")
                } else {
                    print(
                        "Started a sandbox in \(started.state.directory) in \(elapsed.formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))).\n"
                    )
                }
                print(SandboxRendering.render(report))
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the sandbox's topology as its servers report it now.")

        @OptionGroup var directory: DirectoryOption

        @Flag(help: "Print JSON for scripts: every instance with its name, section, role, port and socket, and the etcd URL.")
        var json = false

        func run() async throws {
            try await running {
                let report = await SandboxReport.inspect(try Sandbox.state(directory: directory.path))
                if json {
                    try printJSON(report)
                } else {
                    print(SandboxRendering.render(report))
                }
                let healthy =
                    report.etcd.running && report.instances.allSatisfy { $0.running && $0.error == nil }
                    && report.heartbeats.allSatisfy(\.running) && report.agent?.running != false && report.controller?.running != false
                if !healthy { throw ExitCode(3) }
            }
        }
    }

    struct Restart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a stopped or killed mariadbd of the sandbox again on its data (a replica resumes replicating).")

        @OptionGroup var directory: DirectoryOption

        @Argument(help: "The instance, such as db1002.")
        var name: String

        func run() async throws {
            try await running {
                let clock = ContinuousClock()
                let start = clock.now
                try await Sandbox.restartInstance(directory: directory.path, name: name)
                let elapsed = clock.now - start
                print("Restarted \(name) in \(elapsed.formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))).")
            }
        }
    }

    struct Kill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Crash, freeze or thaw one mariadbd of the sandbox, to try failover.",
            discussion: """
                KILL (the default) crashes it, as kill -9: its data stays, `marina sandbox restart NAME` starts it again. \
                STOP freezes it, as a host that died without closing its connections: it answers nothing. CONT thaws a frozen one.
                """)

        @OptionGroup var directory: DirectoryOption

        @Argument(help: "The instance, such as db1001.")
        var name: String

        @Option(help: ArgumentHelp("The signal to send: KILL, STOP or CONT.", valueName: "KILL|STOP|CONT"))
        var signal = "KILL"

        func run() async throws {
            try await running {
                let signal = try SandboxSignal(flag: self.signal)
                try await Sandbox.signalInstance(directory: directory.path, name: name, signal: signal)
                switch signal {
                case .kill: print("Killed \(name) (SIGKILL); `marina sandbox restart \(name)` starts it again.")
                case .stop: print("Froze \(name) (SIGSTOP); `marina sandbox kill \(name) --signal CONT` thaws it.")
                case .cont: print("Thawed \(name) (SIGCONT).")
                }
            }
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop exactly the processes the sandbox started.")

        @OptionGroup var directory: DirectoryOption

        @Flag(help: "Also delete the sandbox's directory (data and logs).")
        var purge = false

        func run() async throws {
            try await running {
                let stopped = try await Sandbox.stop(directory: directory.path, purge: purge)
                if stopped.isEmpty {
                    print("No sandbox process was running in \(directory.path).")
                } else {
                    print("Stopped \(stopped.count) processes: \(stopped.joined(separator: ", ")).")
                }
            }
        }
    }
}

func printJSON<Value: Encodable>(_ value: Value) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
