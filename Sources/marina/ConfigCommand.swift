import ArgumentParser
import Foundation
import MarinaViews
import Topology
import TopologyStore

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Review, commit, undo, import and export the source of truth.",
        subcommands: [Diff.self, Commit.self, Show.self, History.self, Restore.self, Import.self, Export.self, Mirror.self, ConfigCheckCommand.self])

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What a commit would change, per datacenter and section. Exit 0: none; 6: some; 2: the staged objects are invalid.")
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
                if !changes.isEmpty { throw Exit.attention }
            }
        }
    }

    struct Commit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Validate the staged objects, show the diff, ask, and write every datacenter's configuration with a history entry, atomically; then the site mirror.",
            discussion: """
                On a terminal the diff is shown and the commit asks for confirmation; elsewhere pass --yes (or --batch). What \
                is written is exactly the diff shown: the commit is a compare-and-swap on the revision it was read at, so a \
                change made meanwhile by someone else is a conflict (exit 3, nothing written). Exit status: 0 committed; \
                2 the staged objects are invalid; 3 changed meanwhile; 6 committed but a mirror was not written; 8 not \
                confirmed (`marina help exit-codes`).
                """
        )
        @OptionGroup var store: StoreOptions
        @OptionGroup var mirrorOptions: MirrorOptions
        @Option(name: .shortAndLong, help: "Why (recorded in history).") var message: String
        @Flag(name: [.customLong("yes"), .customShort("y"), .customLong("batch"), .customShort("b")], help: "Do not ask for confirmation.")
        var yes = false

        func run() async throws {
            try await running {
                guard !message.trimmingCharacters(in: .whitespaces).isEmpty else { throw UsageProblem("-m must say why") }
                let topologyStore = try store.store()
                let prepared = try await topologyStore.prepareCommit()
                if !store.json && prepared.issues.isEmpty {
                    if prepared.changes.isEmpty && prepared.sourceOfTruthChanged {
                        print(
                            "No change to the generated configuration; the staged objects differ from the committed ones (`marina config export` shows them)."
                        )
                    } else {
                        print(renderChanges(prepared.changes))
                    }
                }
                let also = try mirrorOptions.mirror()
                if !yes && prepared.issues.isEmpty && (!prepared.changes.isEmpty || prepared.sourceOfTruthChanged) {
                    guard !store.json else {
                        throw UsageProblem("--json needs --yes (or --batch): the diff and the question would mix with the JSON; nothing was written")
                    }
                    guard isatty(STDIN_FILENO) == 1 else {
                        throw UsageProblem("not on a terminal: pass --yes (or --batch) to commit without confirmation; nothing was written")
                    }
                    guard await Confirmation.ask("Commit these changes?") else {
                        print("Nothing committed.")
                        throw Exit.declined
                    }
                }
                let outcome: CommitOutcome
                do {
                    outcome = try await topologyStore.commit(prepared, message: message, by: store.actor, alsoMirror: also)
                } catch let failure as MirrorWriteFailed {
                    try reportMirrorFailure(failure, json: store.json)
                }
                try await reportCommit(outcome, store: topologyStore, alsoMirror: also, json: store.json)
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
                    rows.append([
                        String(entry.revision ?? 0), String(entry.sequence), formatter.string(from: entry.at), entry.author,
                        entry.kind.rawValue, String(entry.changes.count), entry.message,
                    ])
                }
                print(Tables.table(rows))
            }
        }
    }

    /// A history entry without its topology snapshot.
    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Make the topology of an earlier commit current again (staged and committed), validated like a commit; then the site mirror (exit 6 if it could not be written)."
        )
        @OptionGroup var store: StoreOptions
        @OptionGroup var mirrorOptions: MirrorOptions
        @Argument(help: "The commit's revision, from `marina config history`.") var revision: Int64
        @Option(name: .shortAndLong, help: "Why (recorded in history).") var message: String

        func run() async throws {
            try await running {
                let topologyStore = try store.store()
                let also = try mirrorOptions.mirror()
                let outcome: CommitOutcome
                do {
                    outcome = try await topologyStore.restore(revision: revision, message: message, by: store.actor, alsoMirror: also)
                } catch let failure as MirrorWriteFailed {
                    if let entry = failure.entry, !store.json { print(renderChanges(entry.changes)) }
                    try reportMirrorFailure(failure, json: store.json)
                }
                if case .committed(let entry) = outcome, !store.json { print(renderChanges(entry.changes)) }
                try await reportCommit(outcome, store: topologyStore, alsoMirror: also, json: store.json)
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
                let topologyStore = try store.store()
                // An export without hashes (the default) gives each account's hash back from what is staged.
                let (topology, unresolved) = document.topology.restoringRedactedHashes(
                    from: try await topologyStore.read().staged.topology)
                guard unresolved.isEmpty else {
                    throw UsageProblem(
                        "\(file): \(unresolved.joined(separator: ", ")) reads <redacted> and no staged account of that name has a hash: "
                            + "export with --include-hashes, or set it with `marina grant user`")
                }
                let outcome = try await topologyStore.replaceStaged(with: topology, by: store.actor, change: "import of \(file)")
                try report(
                    outcome,
                    done:
                        "Imported \(topology.datacenters.count) datacenters, \(topology.sections.count) sections and \(topology.instances.count) instances from \(file)",
                    json: store.json)
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the staged topology as YAML (what `import` reads); account hashes read <redacted> unless --include-hashes.")
        @OptionGroup var store: StoreOptions
        @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?
        @Flag(help: "Write the managed accounts' password hashes (for a backup kept as safely as etcd).") var includeHashes = false

        func run() async throws {
            try await running {
                let staged = try await store.store().read().staged.topology
                let yaml = try TopologyDocument(includeHashes ? staged : staged.redactingHashes).yaml()
                if let output {
                    // Readable by its owner only when it holds hashes: written beside it with those
                    // permissions, then renamed over it, so it is never partly written or readable by others.
                    let temporary = output + ".marina-\(getpid()).tmp"
                    let attributes: [FileAttributeKey: Any]? = includeHashes ? [.posixPermissions: 0o600] : nil
                    guard FileManager.default.createFile(atPath: temporary, contents: Data(yaml.utf8), attributes: attributes) else {
                        throw UsageProblem("cannot write \(temporary)")
                    }
                    guard rename(temporary, output) == 0 else {
                        unlink(temporary)
                        throw UsageProblem("cannot write \(output): \(String(cString: strerror(errno)))")
                    }
                } else {
                    print(yaml, terminator: "")
                }
            }
        }
    }

    struct Mirror: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set the site mirror: the etcd v2 directory (MediaWiki's) that every commit also writes, whoever commits.",
            discussion: """
                Without an option, shows the setting. Kept in etcd (<root>/site/mirror): `config commit`, `config restore`, \
                switchovers and the automatic depool all write it after their commit, and fail if they cannot. \
                Exit 6: the setting is saved or the commit stands, but the committed configuration could not be written there.
                """)
        @OptionGroup var store: StoreOptions
        @Option(
            help:
                "Mirror every commit to this etcd v2 directory (MediaWiki reads \(ConfigMirror.mediaWikiPrefix)), and write what is committed there now."
        )
        var v2Prefix: String?
        @Flag(help: "Stop mirroring: commits write no v2 mirror (the v2 keys already written stay as they are).")
        var off = false
        @Flag(help: "Write what is committed now to the site mirror (after a failed mirror write).")
        var sync = false

        func validate() throws {
            guard [v2Prefix != nil, off, sync].filter({ $0 }).count <= 1 else {
                throw ValidationError("give one of --v2-prefix, --off and --sync (none shows the setting)")
            }
        }

        func run() async throws {
            try await running {
                let topologyStore = try store.store()
                if let v2Prefix {
                    let actor = store.actor
                    let mirror: SiteMirror
                    do {
                        mirror = try SiteMirror(v2Prefix: v2Prefix, author: actor.author, at: actor.now)
                    } catch {
                        throw UsageProblem("\(error)")
                    }
                    try await topologyStore.setSiteMirror(mirror)
                    if !store.json { print("Site mirror set: every commit writes etcd v2 /v2/keys/\(mirror.v2Prefix)/<datacenter>/dbconfig.") }
                    try await write(topologyStore)
                } else if off {
                    try await topologyStore.setSiteMirror(nil)
                    if store.json {
                        try printJSON(MirrorOutput(v2Prefix: nil))
                    } else {
                        print("Site mirror off: commits write no v2 mirror; the v2 keys already written stay as they are.")
                    }
                } else if sync {
                    guard try await topologyStore.siteMirror() != nil else {
                        throw UsageProblem(
                            "no site mirror is set: `marina config mirror --v2-prefix \(ConfigMirror.mediaWikiPrefix)` sets MediaWiki's")
                    }
                    try await write(topologyStore)
                } else if let mirror = try await topologyStore.siteMirror() {
                    if store.json {
                        try printJSON(MirrorOutput(v2Prefix: mirror.v2Prefix, author: mirror.author, at: mirror.at))
                    } else {
                        print(
                            "Site mirror: every commit writes etcd v2 /v2/keys/\(mirror.v2Prefix)/<datacenter>/dbconfig"
                                + (mirror.author.map { " (set by \($0)\(mirror.at.map { " at \(ISO8601DateFormatter().string(from: $0))" } ?? ""))" }
                                    ?? "") + ".")
                    }
                } else if store.json {
                    try printJSON(MirrorOutput(v2Prefix: nil))
                } else {
                    print(
                        "Site mirror: off (commits write no v2 mirror). `marina config mirror --v2-prefix \(ConfigMirror.mediaWikiPrefix)` sets MediaWiki's."
                    )
                }
            }
        }

        /// Writes what is committed to the site mirror now.
        private func write(_ topologyStore: TopologyStore) async throws {
            let written: [String]
            do {
                written = try await topologyStore.syncMirror()
            } catch let failure as MirrorWriteFailed {
                try reportMirrorFailure(failure, json: store.json)
            }
            if store.json {
                let mirror = try await topologyStore.siteMirror()
                try printJSON(MirrorOutput(v2Prefix: mirror?.v2Prefix, author: mirror?.author, at: mirror?.at, written: written))
            } else if written.isEmpty {
                print("Nothing is committed yet: the first commit writes the mirror.")
            } else {
                for line in written { print("  wrote \(line)") }
            }
        }
    }

    struct MirrorOutput: Encodable {
        var v2Prefix: String?
        var author: String?
        var at: Date?
        var written: [String]?

        enum CodingKeys: String, CodingKey {
            case v2Prefix = "v2_prefix"
            case author, at, written
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(v2Prefix, forKey: .v2Prefix)  // null when off
            try c.encodeIfPresent(author, forKey: .author)
            try c.encodeIfPresent(at, forKey: .at)
            try c.encodeIfPresent(written, forKey: .written)
        }
    }
}

/// Prints a commit's outcome and exits accordingly. The store wrote the mirrors (the site's and
/// `alsoMirror`); a failed one never gets here (`reportMirrorFailure`).
func reportCommit(_ outcome: CommitOutcome, store: TopologyStore, alsoMirror: ConfigMirror, json: Bool) async throws {
    switch outcome {
    case .committed(let entry):
        let datacenters = Array(entry.topology.topology.datacenters)
        let site = try? await store.siteMirror()
        let mirrored =
            ConfigMirror(v2Prefix: site?.v2Prefix).targets(datacenters: datacenters)
            + alsoMirror.excluding(v2Prefix: site?.v2Prefix).targets(datacenters: datacenters)
        if json {
            try printJSON(CommitOutput(outcome: "committed", revision: entry.revision, sequence: entry.sequence, mirrored: mirrored))
        } else {
            print("Committed #\(entry.sequence) at revision \(entry.revision ?? 0) by \(entry.author): \(entry.message)")
            for line in mirrored { print("  mirrored to \(line)") }
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

/// A commit that stands while a mirror of it was not written: says so, and exits `Exit.attention`.
func reportMirrorFailure(_ failure: MirrorWriteFailed, json: Bool) throws -> Never {
    if let entry = failure.entry {
        if json {
            try printJSON(
                CommitOutput(
                    outcome: "committed", revision: entry.revision, sequence: entry.sequence, mirrored: failure.written,
                    mirrorFailures: failure.failures.map(\.description)))
        } else {
            print("Committed #\(entry.sequence) at revision \(entry.revision ?? 0) by \(entry.author): \(entry.message)")
            for line in failure.written { print("  mirrored to \(line)") }
        }
    } else if json {
        try printJSON(CommitOutput(outcome: "mirror not written", mirrored: failure.written, mirrorFailures: failure.failures.map(\.description)))
    }
    let stale =
        failure.v2Failed
        ? "MediaWiki (everything reading the etcd v2 mirror) still sees the previous configuration"
        : "what reads that mirror still sees the previous configuration"
    printError(
        "\(failure.entry == nil ? "the committed configuration stands" : "committed"), but a mirror was not written: "
            + failure.failures.map(\.description).joined(separator: "; ")
            + ". \(stale): fix the cause, then run `marina config mirror --sync`")
    throw Exit.attention
}
