import Foundation

/// One difference between two generated configurations: a section's loads, groups or
/// read-only reason, or one host's address, in one datacenter. `before`/`after` are canonical
/// JSON, `nil` where the entry is absent.
public struct ConfigChange: Codable, Sendable, Equatable, CustomStringConvertible {
    public var datacenter: String
    /// `sectionLoads`, `externalLoads`, `groupLoadsBySection`, `readOnlyBySection` or `hostsByName`.
    public var key: String
    /// The section (MediaWiki's name) or, for `hostsByName`, the instance.
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
