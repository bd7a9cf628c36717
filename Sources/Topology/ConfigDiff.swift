import Foundation

/// One difference between two generated configurations: a section's loads, groups or
/// read-only reason, or one host's address, in one datacenter. `before`/`after` are canonical
/// JSON, `nil` where the entry is absent.
///
/// Also, with the key `needs_rejoin`, a rejoin mark set or cleared on a member of a section
/// (`ConfigDiff.rejoinMarkChanges`): applications never see it, but whoever reviews a commit
/// should.
public struct ConfigChange: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The datacenter whose configuration changes; for `needs_rejoin`, the section's.
    public var datacenter: String
    /// `sectionLoads`, `externalLoads`, `groupLoadsBySection`, `readOnlyBySection`, `hostsByName`,
    /// or `needs_rejoin`.
    public var key: String
    /// The section (MediaWiki's name); for `hostsByName`, the instance; for `needs_rejoin`,
    /// `INSTANCE in SECTION` (the section's own name).
    public var entry: String
    public var before: String?
    public var after: String?

    public init(datacenter: String, key: String, entry: String, before: String?, after: String?) {
        self.datacenter = datacenter
        self.key = key
        self.entry = entry
        self.before = before
        self.after = after
    }

    public var description: String {
        "\(datacenter) \(key) \(entry)\n" + (before.map { "  - \($0)\n" } ?? "") + (after.map { "  + \($0)\n" } ?? "")
    }
}

public enum ConfigDiff {
    /// What changes when `staged` replaces `committed`, datacenter by datacenter, entry by
    /// entry, in a stable order.
    public static func changes(from committed: [String: GeneratedConfig], to staged: [String: GeneratedConfig]) -> [ConfigChange] {
        var changes = [ConfigChange]()
        for datacenter in Set(committed.keys).union(staged.keys).sorted() {
            let old = committed[datacenter] ?? GeneratedConfig()
            let new = staged[datacenter] ?? GeneratedConfig()
            changes += compare(datacenter, "sectionLoads", old.sectionLoads, new.sectionLoads)
            changes += compare(datacenter, "externalLoads", old.externalLoads, new.externalLoads)
            changes += compare(datacenter, "groupLoadsBySection", old.groupLoadsBySection, new.groupLoadsBySection)
            changes += compare(datacenter, "readOnlyBySection", old.readOnlyBySection, new.readOnlyBySection)
            changes += compare(datacenter, "hostsByName", old.hostsByName, new.hostsByName)
        }
        return changes
    }

    /// The rejoin marks set, changed or cleared when `staged` replaces `committed`, by datacenter
    /// then entry. The generated configuration cannot show them (a marked member is depooled,
    /// so it is absent either way), so a diff of a commit shows these next to `changes(from:to:)`.
    /// `before`/`after` are the mark as canonical JSON (its YAML keys), `nil` where there is none.
    public static func rejoinMarkChanges(from committed: Topology, to staged: Topology) -> [ConfigChange] {
        func marks(_ topology: Topology) -> [String: (section: String, instance: String, mark: RejoinMark)] {
            var marks = [String: (section: String, instance: String, mark: RejoinMark)]()
            for instance in topology.instances.values {
                for (section, membership) in instance.sections {
                    if let mark = membership.needsRejoin { marks["\(instance.name) in \(section)"] = (section, instance.name, mark) }
                }
            }
            return marks
        }
        let old = marks(committed)
        let new = marks(staged)
        var changes = [ConfigChange]()
        for entry in Set(old.keys).union(new.keys) where old[entry]?.mark != new[entry]?.mark {
            guard let (section, instance, _) = new[entry] ?? old[entry] else { continue }
            let datacenter =
                staged.sections[section]?.datacenter ?? committed.sections[section]?.datacenter ?? staged.instances[instance]?.datacenter
                ?? committed.instances[instance]?.datacenter ?? ""
            changes.append(
                ConfigChange(
                    datacenter: datacenter, key: "needs_rejoin", entry: entry, before: old[entry].map { canonical($0.mark) },
                    after: new[entry].map { canonical($0.mark) }))
        }
        return changes.sorted { ($0.datacenter, $0.entry) < ($1.datacenter, $1.entry) }
    }

    private static func compare<Value: Encodable & Equatable>(
        _ datacenter: String, _ key: String, _ old: [String: Value],
        _ new: [String: Value]
    ) -> [ConfigChange] {
        var changes = [ConfigChange]()
        for entry in Set(old.keys).union(new.keys).sorted() where old[entry] != new[entry] {
            let before = old[entry].map { canonical($0) }
            let after = new[entry].map { canonical($0) }
            changes.append(ConfigChange(datacenter: datacenter, key: key, entry: entry, before: before, after: after))
        }
        return changes
    }

    static func canonical<Value: Encodable>(_ value: Value) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
    }
}

extension ConfigDiff {
    /// The managed accounts (key `grants`, entry `ACCOUNT in SECTION`) and variables (key
    /// `variables`, entry the section) changed when `staged` replaces `committed`. Hashes are
    /// never shown: a hash reads `<redacted>`, or `<redacted, changed>` on the side that changed it.
    public static func grantAndVariableChanges(from committed: Topology, to staged: Topology) -> [ConfigChange] {
        func datacenter(_ section: String) -> String {
            staged.sections[section]?.datacenter ?? committed.sections[section]?.datacenter ?? ""
        }
        var changes = [ConfigChange]()
        for section in Set(committed.grants.keys).union(staged.grants.keys).sorted() {
            let old = committed.grants[section] ?? [:]
            let new = staged.grants[section] ?? [:]
            for name in Set(old.keys).union(new.keys).sorted() where old[name] != new[name] {
                let hashChanged = old[name]?.authentication?.hash != new[name]?.authentication?.hash && old[name] != nil && new[name] != nil
                changes.append(
                    ConfigChange(
                        datacenter: datacenter(section), key: "grants", entry: "\(name) in \(section)",
                        before: old[name].map { canonical($0.redacted(changed: false)) },
                        after: new[name].map { canonical($0.redacted(changed: hashChanged)) }))
            }
        }
        for section in Set(committed.variables.keys).union(staged.variables.keys).sorted()
        where committed.variables[section] != staged.variables[section] {
            changes.append(
                ConfigChange(
                    datacenter: datacenter(section), key: "variables", entry: section, before: committed.variables[section].map { canonical($0) },
                    after: staged.variables[section].map { canonical($0) }))
        }
        return changes
    }
}

extension ManagedAccount {
    /// The account with its hash replaced by `<redacted>` (`<redacted, changed>` when `changed`):
    /// the form every output and log shows.
    public func redacted(changed: Bool = false) -> ManagedAccount {
        var account = self
        if account.authentication?.hash != nil { account.authentication?.hash = changed ? "<redacted, changed>" : "<redacted>" }
        return account
    }
}

extension Topology {
    /// The hash every redacted output shows in place of one.
    public static let redactedHash = "<redacted>"

    /// The topology with every account's hash replaced by `<redacted>`: what `config export`
    /// writes unless asked for the hashes.
    public var redactingHashes: Topology {
        var topology = self
        topology.grants = grants.mapValues { $0.mapValues { $0.redacted() } }
        return topology
    }

    /// The topology with each `<redacted>` hash taken back from the same account (section, name,
    /// plugin) of `current`, so that an export without hashes imports unchanged; the paths of
    /// those `current` cannot give back.
    public func restoringRedactedHashes(from current: Topology) -> (topology: Topology, unresolved: [String]) {
        var topology = self
        var unresolved = [String]()
        for (section, accounts) in grants {
            for (name, account) in accounts where account.authentication?.hash == Self.redactedHash {
                let known = current.grants[section]?[name]?.authentication
                if let known, known.plugin == account.authentication?.plugin, known.hash != nil {
                    topology.grants[section]?[name]?.authentication = known
                } else {
                    unresolved.append("grants.\(section).\(name).authentication.hash")
                }
            }
        }
        return (topology, unresolved.sorted())
    }
}
