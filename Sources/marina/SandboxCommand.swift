import ArgumentParser
import Foundation
import Logging
import MarinaSandbox
import MarinaViews

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run a local topology: a real etcd and MariaDB sections with GTID replication, on loopback or one network namespace per host.",
        subcommands: [Up.self, Status.self, Down.self, Load.self, Restart.self, Kill.self, Partition.self, Heal.self, HostAgent.self]
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

        @Option(
            help: ArgumentHelp(
                "Where the hosts live: loopback (everything on 127.0.0.1), or namespaces (each mariadbd with its agent, and the controller, in a network namespace of its own on a bridge; needs root, ip and nft).",
                valueName: "loopback|namespaces"))
        var hosts = "loopback"

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
                let hosts = try SandboxHosts(flag: self.hosts)
                try SandboxPlan.checkAgentInterval(agentInterval)
                let options = Sandbox.Options(
                    directory: directory.path, sections: sections, replicas: replicas, basePort: basePort, tls: tls,
                    agentExecutable: noAgent ? nil : Sandbox.currentExecutable,
                    controllerExecutable: noAgent || noController ? nil : Sandbox.currentExecutable, playbooks: playbooks,
                    failover: mode, agentInterval: agentInterval, hosts: hosts)
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
                    && (report.hostAgents ?? []).allSatisfy(\.running)
                if !healthy { throw Exit.attention }
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

    struct Partition: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cut one host of a namespaces sandbox off the network, with its own firewall (packets dropped, not refused).",
            discussion: """
                --from everything (the default): the host's namespace drops every packet in and out except on lo: its agent loses \
                etcd, the replicas and the controller lose it, applications on its unix socket still reach it. \
                --from controller: only the controller's namespace drops what goes to and comes from the host. \
                `marina sandbox heal NAME` undoes both. Only for a sandbox started with --hosts namespaces.
                """)

        @OptionGroup var directory: DirectoryOption

        @Argument(help: "The instance, such as db1001.")
        var name: String

        @Option(help: ArgumentHelp("What to cut it from: everything or controller.", valueName: "everything|controller"))
        var from = "everything"

        func run() async throws {
            try await running {
                let from = try SandboxPartition(flag: self.from)
                try await Sandbox.partition(directory: directory.path, name: name, from: from)
                switch from {
                case .everything:
                    print("Partitioned \(name) from everything (only its unix socket answers); `marina sandbox heal \(name)` undoes it.")
                case .controller: print("Partitioned \(name) from the controller; `marina sandbox heal \(name)` undoes it.")
                }
            }
        }
    }

    struct Heal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Undo every partition of one host of a namespaces sandbox.")

        @OptionGroup var directory: DirectoryOption

        @Argument(help: "The instance, such as db1001.")
        var name: String

        func run() async throws {
            try await running {
                try await Sandbox.heal(directory: directory.path, name: name)
                print("Healed \(name): nothing drops its packets any more.")
            }
        }
    }

    struct HostAgent: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "agent",
            abstract: "Crash, freeze, thaw or restart the agent of one host.",
            discussion: """
                The agent of NAME's host: its own in a namespaces sandbox, the sandbox's one agent on loopback. \
                KILL crashes it (its lease is not revoked: its observations vanish one lease TTL later); STOP freezes it (its \
                keep-alives stop too); CONT thaws it. --restart starts it again (stopping it first if it runs).
                """)

        @OptionGroup var directory: DirectoryOption

        @Argument(help: "The instance whose host's agent to act on, such as db1001.")
        var name: String

        @Option(help: ArgumentHelp("The signal to send: KILL, STOP or CONT.", valueName: "KILL|STOP|CONT"))
        var signal: String?

        @Flag(help: "Start the agent again, with a configuration written afresh.")
        var restart = false

        func validate() throws {
            if (signal == nil) == !restart { throw ValidationError("give one of --signal KILL|STOP|CONT and --restart") }
        }

        func run() async throws {
            try await running {
                if restart {
                    try await Sandbox.restartAgent(directory: directory.path, name: name)
                    print("Restarted the agent of \(name).")
                    return
                }
                let signal = try SandboxSignal(flag: self.signal ?? "")
                try await Sandbox.signalAgent(directory: directory.path, name: name, signal: signal)
                switch signal {
                case .kill: print("Killed the agent of \(name) (SIGKILL); `marina sandbox agent \(name) --restart` starts it again.")
                case .stop: print("Froze the agent of \(name) (SIGSTOP); `marina sandbox agent \(name) --signal CONT` thaws it.")
                case .cont: print("Thawed the agent of \(name) (SIGCONT).")
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
    print(try JSONView.string(value))
}
