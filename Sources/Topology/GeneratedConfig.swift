import Foundation

/// The configuration applications read, in the shape MediaWiki's `LBFactoryConf` takes from
/// dbctl (docs/source-of-truth.md, "The generated configuration"), for one datacenter.
///
/// Each section is `[{primary: load}, {replica: load, ...}]`: the first entry is the writer.
/// Loads are effective weights (`weight × percentage / 100`); a depooled replica is absent.
public struct GeneratedConfig: Codable, Sendable, Equatable {
    public var sectionLoads: [String: [[String: Int]]]
    public var groupLoadsBySection: [String: [String: [String: Int]]]
    public var externalLoads: [String: [[String: Int]]]
    public var readOnlyBySection: [String: String]
    /// `ip`, or `ip:port` when the port is not 3306.
    public var hostsByName: [String: String]

    public init(
        sectionLoads: [String: [[String: Int]]] = [:], groupLoadsBySection: [String: [String: [String: Int]]] = [:],
        externalLoads: [String: [[String: Int]]] = [:], readOnlyBySection: [String: String] = [:],
        hostsByName: [String: String] = [:]
    ) {
        self.sectionLoads = sectionLoads
        self.groupLoadsBySection = groupLoadsBySection
        self.externalLoads = externalLoads
        self.readOnlyBySection = readOnlyBySection
        self.hostsByName = hostsByName
    }

    /// Canonical JSON (sorted keys): the same config always gives the same bytes.
    public func json(pretty: Bool = false) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data("{}".utf8)
    }

    /// The name MediaWiki uses for a section: `s3` is its `DEFAULT` cluster.
    public static func mediaWikiName(_ section: String) -> String { section == "s3" ? "DEFAULT" : section }
}

extension Topology {
    /// The configuration of every datacenter.
    public func generatedConfigs() -> [String: GeneratedConfig] {
        Dictionary(uniqueKeysWithValues: datacenters.map { ($0, generatedConfig(for: $0)) })
    }

    /// The configuration of one datacenter: its initialized sections, their primary first,
    /// then their pooled replicas in that datacenter; groups for regular sections; the reason
    /// of each read-only regular section; the address of every instance it names.
    public func generatedConfig(for datacenter: String) -> GeneratedConfig {
        var config = GeneratedConfig()
        for section in sections.values where section.datacenter == datacenter && section.isInitialized {
            guard let primary = instances[section.primary], let primaryMembership = primary.sections[section.name] else { continue }
            let name = GeneratedConfig.mediaWikiName(section.name)
            var replicas = [String: Int]()
            var groups = [String: [String: Int]]()
            var named = [primary]
            if !section.omitReplicas {
                for (instance, membership) in members(of: section.name)
                where membership.pooled && instance.name != primary.name && instance.datacenter == datacenter {
                    replicas[instance.name] = membership.effectiveWeight
                    named.append(instance)
                    for (group, groupMembership) in membership.groups where groupMembership.pooled {
                        groups[group, default: [:]][instance.name] = Membership.scaled(groupMembership.weight, membership.percentage)
                    }
                }
            }
            let loads = [[primary.name: primaryMembership.effectiveWeight], replicas]
            switch section.flavor {
            case .regular:
                config.sectionLoads[name] = loads
                if !groups.isEmpty { config.groupLoadsBySection[name] = groups }
                if section.readOnly { config.readOnlyBySection[name] = section.readOnlyReason }
            case .external:
                config.externalLoads[name] = loads
            }
            for instance in named {
                config.hostsByName[instance.name] = instance.port == 3306 ? instance.host : "\(instance.host):\(instance.port)"
            }
        }
        return config
    }
}
