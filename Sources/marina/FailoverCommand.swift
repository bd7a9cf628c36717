import ArgumentParser
import EtcdClient
import Foundation
import MarinaViews
import Operations
import StoredRecords
import TopologyStore

struct FailoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover",
        abstract: "Replace a dead primary by the replica that received the most of its binary log; acknowledge an automatic failover.",
        subcommands: [Run.self, Ack.self], defaultSubcommand: Run.self)

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Fail a section over from its dead primary (`marina failover SECTION`).",
            discussion: """
                Writes a request into etcd; the leading controller checks that the primary is dead on two witnesses (its own \
                connection fails, and the primary's agent or every replica agrees), refuses while it is alive (use `marina \
                switchover`), chooses the candidate, and runs the steps of playbooks/failover.yaml, printed as the journal \
                records them. Exit status: 0 done; 2 refused (nothing changed); 5 stopped before a new primary took writes, \
                the section is left read-only for a human; 6 done, but a host needs attention (`marina help exit-codes`).
                """)

        @Argument(help: "The section whose primary is dead.") var section: String
        @Option(help: "The replica to promote (a configured candidate), whatever its rank; it catches up from a more advanced one first.")
        var to: String?
        @Option(help: "Why: recorded in the journal.") var reason = ""
        @Flag(help: "Print the plan (witnesses, the choice and why each other replica was not chosen, every step) and change nothing.")
        var dryRun = false
        @Flag(help: "Do not ask for confirmation.") var yes = false
        @Option(help: "Seconds to wait for a controller to take the request.") var timeout: Double = 30
        @OptionGroup var store: StoreOptions

        func validate() throws {
            if section.isEmpty { throw ValidationError("the section must not be empty") }
            if to?.isEmpty == true { throw ValidationError("--to must name an instance") }
            try OperationClient.validate(timeout: timeout)
        }

        func run() async throws {
            try await running {
                let client = OperationClient(etcd: EtcdClient(try store.configuration()), keys: try store.keys, json: store.json)
                try await client.run(dryRun: dryRun, yes: yes, timeout: timeout, question: "Run this failover?") { try record(dryRun: $0) }
            }
        }

        private func record(dryRun: Bool) throws -> OperationRecord {
            let actor = store.actor
            return try OperationRequest.failover(
                section: section, to: to, reason: reason, dryRun: dryRun, author: actor.author, at: actor.now)
        }
    }

    struct Ack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Allow automatic failover of a section again after one ran (a human has looked).",
            discussion: """
                After an automatic failover the controller does not fail the same section over on its own again for \
                failover.block_seconds, so that a primary dying again is looked at by a human. This lifts the block.
                """)

        @Argument(help: "The section.") var section: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await running {
                let etcd = EtcdClient(try store.configuration())
                switch try await FailoverAcknowledgement.acknowledge(section: section, etcd: etcd, keys: try store.keys) {
                case .notBlocked:
                    print("Automatic failover of \(section) is not blocked: nothing to acknowledge.")
                case .acknowledged(let operation):
                    print(
                        "Acknowledged\(operation.map { " failover \($0)" } ?? ""): the controller may fail \(section) over on its own again.")
                }
            }
        }
    }
}
