import ArgumentParser
import Foundation
import Topology
import TopologyStore

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Review, commit, undo, import and export the source of truth.",
        subcommands: [Diff.self, Commit.self, Show.self, History.self, Restore.self, Import.self, Export.self])

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What a commit would change, per datacenter and section. Exit 0: none; 1: some; 2: the staged objects are invalid.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await running {
                let (changes, issues) = try await store.store().diff()
                if store.json {
                    try printJSON(DiffOutput(changes: changes, issues: issues))
                } else {
                    print(renderChanges(changes))
                    if !issues.isEmpty { printError("the staged objects are invalid:\n\(issueLines(issues))") }
                }
                if !issues.isEmpty { throw Exit.refused }
                if !changes.isEmpty { throw ExitCode(1) }
            }
        }
    }

    struct DiffOutput: Encodable {
        var changes: [ConfigChange]
        var issues: [TopologyIssue]
    }

    struct Commit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the staged objects, show the diff, and write every datacenter's configuration with a history entry, atomically.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var mirrorOptions: MirrorOptions
        @Option(name: .shortAndLong, help: "Why (recorded in history).") var message: String

        func run() async throws {
            try await running {
                guard !message.trimmingCharacters(in: .whitespaces).isEmpty else { throw UsageProblem("-m must say why") }
                let topologyStore = try store.store()
                let prepared = try await topologyStore.prepareCommit()
                if !store.json && prepared.issues.isEmpty {
                    if prepared.changes.isEmpty && prepared.sourceOfTruthChanged {
                        print("No change to the generated configuration; the staged objects differ from the committed ones (`marina config export` shows them).")
                    } else {
                        print(renderChanges(prepared.changes))
                    }
                }
                let outcome = try await topologyStore.commit(prepared, message: message, by: store.actor)
                try await reportCommit(outcome, store: topologyStore, mirror: mirrorOptions.mirror, json: store.json)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the committed configuration applications read (MediaWiki's shape).")
        @OptionGroup var store: StoreOptions
        @Option(help: "Only this datacenter.") var datacenter: String?

        func run() async throws {
            try await running {
                var configs = try await store.store().read().committed.configs
                if let datacenter {
                    guard let config = configs[datacenter] else { throw UsageProblem("no committed configuration for datacenter \(datacenter)") }
                    configs = [datacenter: config]
                }
                try printJSON(configs)
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The latest commits: revision, when, who, why, what changed.")
        @OptionGroup var store: StoreOptions
        @Option(help: "How many.") var limit = 20

        func run() async throws {
            try await running {
                let entries = try await store.store().history(limit: limit)
                if store.json {
                    try printJSON(entries.map(HistoryLine.init))
                    return
                }
                var rows = [["REVISION", "#", "WHEN (UTC)", "WHO", "KIND", "CHANGES", "WHY"]]
                let formatter = ISO8601DateFormatter()
                for entry in entries {
                    rows.append([String(entry.revision ?? 0), String(entry.sequence), formatter.string(from: entry.at), entry.author,
                                 entry.kind.rawValue, String(entry.changes.count), entry.message])
                }
                print(Tables.table(rows))
            }
        }
    }

    /// A history entry without its topology snapshot.
    struct HistoryLine: Encodable {
        var revision: Int64?
        var sequence: Int
        var kind: String
        var author: String
        var at: Date
        var message: String
        var changes: [ConfigChange]

        init(_ entry: HistoryEntry) {
            revision = entry.revision
            sequence = entry.sequence
            kind = entry.kind.rawValue
            author = entry.author
            at = entry.at
            message = entry.message
            changes = entry.changes
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the topology of an earlier commit current again (staged and committed), validated like a commit.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var mirrorOptions: MirrorOptions
        @Argument(help: "The commit's revision, from `marina config history`.") var revision: Int64
        @Option(name: .shortAndLong, help: "Why (recorded in history).") var message: String

        func run() async throws {
            try await running {
                let topologyStore = try store.store()
                let outcome = try await topologyStore.restore(revision: revision, message: message, by: store.actor)
                if case .committed(let entry) = outcome, !store.json { print(renderChanges(entry.changes)) }
                try await reportCommit(outcome, store: topologyStore, mirror: mirrorOptions.mirror, json: store.json)
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace every staged object with a whole topology from a YAML file (validated as a whole; commit separately).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "A topology YAML file (see config/topology.example.yaml).") var file: String

        func run() async throws {
            try await running {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw UsageProblem("cannot read \(file)") }
                let document = try TopologyDocument.parse(text, source: (file as NSString).lastPathComponent)
                let outcome = try await store.store().replaceStaged(with: document.topology, by: store.actor, change: "import of \(file)")
                let topology = document.topology
                try report(outcome, done: "Imported \(topology.datacenters.count) datacenters, \(topology.sections.count) sections and \(topology.instances.count) instances from \(file)",
                           json: store.json)
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the staged topology as YAML (what `import` reads).")
        @OptionGroup var store: StoreOptions
        @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?

        func run() async throws {
            try await running {
                let yaml = try TopologyDocument(try await store.store().read().staged.topology).yaml()
                if let output {
                    try yaml.write(toFile: output, atomically: true, encoding: .utf8)
                } else {
                    print(yaml, terminator: "")
                }
            }
        }
    }
}

/// Prints a commit's outcome, writes the mirrors after a successful one, and exits accordingly.
func reportCommit(_ outcome: CommitOutcome, store: TopologyStore, mirror: ConfigMirror, json: Bool) async throws {
    switch outcome {
    case .committed(let entry):
        var mirrored = [String]()
        var mirrorError: Error?
        if !mirror.isEmpty {
            do {
                mirrored = try await mirror.write(entry.topology.topology.generatedConfigs(), etcd: store.etcd)
            } catch {
                mirrorError = error
            }
        }
        if json {
            try printJSON(CommitOutput(outcome: "committed", revision: entry.revision, sequence: entry.sequence, mirrored: mirrored))
        } else {
            print("Committed #\(entry.sequence) at revision \(entry.revision ?? 0) by \(entry.author): \(entry.message)")
            for line in mirrored { print("  mirrored to \(line)") }
        }
        if let mirrorError {
            printError("committed, but a mirror was not written: \(mirrorError)")
            throw ExitCode(4)
        }
    case .nothingToCommit:
        if json { try printJSON(CommitOutput(outcome: "nothing to commit")) } else { print("Nothing to commit.") }
    case .invalid(let issues):
        if json { try printJSON(RefusedOutput(outcome: "invalid", issues: issues)) }
        printError("refused, nothing was written; the staged objects break these rules:\n\(issueLines(issues))")
        throw Exit.refused
    case .conflict(let revision):
        if json { try printJSON(CommitOutput(outcome: "conflict")) }
        printError("changed since you read it at revision \(revision); nothing was written: re-run")
        throw Exit.conflict
    }
}

struct CommitOutput: Encodable {
    var outcome: String
    var revision: Int64?
    var sequence: Int?
    var mirrored: [String]?
}
