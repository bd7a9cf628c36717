/// One thing wrong with a topology: where (a dotted path such as
/// `instances.db1002.sections.s1.percentage`) and what.
public struct TopologyIssue: Codable, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

extension Topology {
    /// Every way this topology breaks the rules, sorted by path; empty when it is valid.
    ///
    /// Rules: names are well-formed and match their keys; every reference (datacenter,
    /// section, primary) exists; an initialized section's primary is configured in it, pooled,
    /// and in the section's datacenter; the section keeps at least `min_replicas` pooled
    /// replicas, and at least one unless `allow_empty` (or `omit_replicas`); a read-only
    /// section has a reason; weights are within 0-1000000 and percentages within 0-100; hosts are
    /// IP addresses and ports within 1-65535. A member marked as needing a rejoin is pooled
    /// nowhere in its section (nor in any of its groups) and is not the section's primary:
    /// until it has rejoined, it may hold writes the rest of the section never had.
    public func validate() -> [TopologyIssue] {
        var issues = [TopologyIssue]()
        for datacenter in datacenters where !Names.isSimple(datacenter) {
            issues.append(.init("datacenters.\(datacenter)", "is not a valid datacenter name (lowercase letters, digits, - and _)"))
        }
        for (key, section) in sections {
            issues += validate(section, key: key)
        }
        for (key, instance) in instances {
            issues += validate(instance, key: key)
        }
        issues += validateGrantsAndVariables()
        return issues.sorted { ($0.path, $0.message) < ($1.path, $1.message) }
    }

    /// Pooled replicas of a section: pooled members in the section's datacenter, primary excluded.
    public func pooledReplicas(of section: Section) -> [Instance] {
        members(of: section.name)
            .filter { $0.membership.pooled && $0.instance.name != section.primary && $0.instance.datacenter == section.datacenter }
            .map(\.instance)
    }

    private func validate(_ section: Section, key: String) -> [TopologyIssue] {
        let path = "sections.\(key)"
        var issues = [TopologyIssue]()
        if !Names.isSimple(key) { issues.append(.init(path, "is not a valid section name (lowercase letters, digits, - and _)")) }
        if section.name != key { issues.append(.init("\(path).name", "is \"\(section.name)\" but the section is stored as \"\(key)\"")) }
        if !datacenters.contains(section.datacenter) {
            issues.append(.init("\(path).datacenter", "names unknown datacenter \"\(section.datacenter)\""))
        }
        if section.minReplicas < 0 { issues.append(.init("\(path).min_replicas", "must not be negative (is \(section.minReplicas))")) }
        if section.readOnly && section.readOnlyReason.isEmpty {
            issues.append(.init("\(path).ro_reason", "a read-only section needs a reason"))
        }
        guard section.isInitialized else { return issues }
        guard let primary = instances[section.primary] else {
            issues.append(.init("\(path).primary", "names unknown instance \"\(section.primary)\""))
            return issues
        }
        if let membership = primary.sections[key] {
            if !membership.pooled { issues.append(.init("\(path).primary", "the primary \(primary.name) must stay pooled")) }
        } else {
            issues.append(.init("\(path).primary", "\(primary.name) is not configured in section \(key)"))
        }
        if primary.datacenter != section.datacenter {
            issues.append(.init("\(path).primary", "\(primary.name) is in datacenter \(primary.datacenter), the section in \(section.datacenter)"))
        }
        guard !section.omitReplicas else { return issues }
        let pooled = pooledReplicas(of: section).count
        if pooled < section.minReplicas {
            issues.append(.init(path, "has \(pooled) pooled replicas, fewer than its minimum of \(section.minReplicas)"))
        } else if pooled == 0 && !section.allowEmpty {
            issues.append(.init(path, "has no pooled replica (set allow_empty if that is intended)"))
        }
        return issues
    }

    private func validate(_ instance: Instance, key: String) -> [TopologyIssue] {
        let path = "instances.\(key)"
        var issues = [TopologyIssue]()
        if !Names.isInstance(key) {
            issues.append(.init(path, "is not a valid instance name (like db1085 or db1101:3317)"))
        }
        if instance.name != key { issues.append(.init("\(path).name", "is \"\(instance.name)\" but the instance is stored as \"\(key)\"")) }
        if let namedPort = Names.port(inInstanceName: key), namedPort != instance.port {
            issues.append(.init("\(path).port", "is \(instance.port) but the name says \(namedPort)"))
        }
        if !Names.isIPAddress(instance.host) { issues.append(.init("\(path).host", "\"\(instance.host)\" is not an IP address")) }
        if !(1...65535).contains(instance.port) { issues.append(.init("\(path).port", "must be within 1-65535 (is \(instance.port))")) }
        if !datacenters.contains(instance.datacenter) {
            issues.append(.init("\(path).datacenter", "names unknown datacenter \"\(instance.datacenter)\""))
        }
        for (section, membership) in instance.sections {
            let memberPath = "\(path).sections.\(section)"
            if sections[section] == nil { issues.append(.init(memberPath, "names unknown section \"\(section)\"")) }
            if membership.weight < 0 { issues.append(.init("\(memberPath).weight", "must not be negative (is \(membership.weight))")) }
            if membership.weight > Membership.maximumWeight {
                issues.append(.init("\(memberPath).weight", "must be at most \(Membership.maximumWeight) (is \(membership.weight))"))
            }
            if !(0...100).contains(membership.percentage) {
                issues.append(.init("\(memberPath).percentage", "must be within 0-100 (is \(membership.percentage))"))
            }
            if let mark = membership.needsRejoin {
                let since = "needs a rejoin in section \(section) since failover \(mark.operation)"
                if membership.pooled { issues.append(.init("\(memberPath).pooled", "\(key) \(since) and must stay depooled")) }
                for (group, groupMembership) in membership.groups where groupMembership.pooled {
                    issues.append(.init("\(memberPath).groups.\(group).pooled", "\(key) \(since) and must stay depooled from group \(group)"))
                }
                if sections[section]?.primary == key {
                    issues.append(.init("sections.\(section).primary", "\(key) \(since) and cannot be its primary"))
                }
            }
            for (group, groupMembership) in membership.groups {
                if !Names.isSimple(group) { issues.append(.init("\(memberPath).groups.\(group)", "is not a valid group name")) }
                if groupMembership.weight < 0 {
                    issues.append(.init("\(memberPath).groups.\(group).weight", "must not be negative (is \(groupMembership.weight))"))
                }
                if groupMembership.weight > Membership.maximumWeight {
                    issues.append(
                        .init(
                            "\(memberPath).groups.\(group).weight",
                            "must be at most \(Membership.maximumWeight) (is \(groupMembership.weight))"))
                }
            }
        }
        return issues
    }
}
