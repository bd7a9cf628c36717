/// A change a DBA asks for, applied to a topology as a pure function.
public enum TopologyEdit: Sendable, Equatable {
    case addDatacenter(String)
    case addSection(Section)
    case setPrimary(section: String, instance: String)
    /// `reason: nil` makes the section read-write.
    case setReadOnly(section: String, reason: String?)
    case addInstance(Instance)
    case removeInstance(String)
    /// Adds the instance to a section, depooled, with a weight.
    case addToSection(instance: String, section: String, weight: Int)
    case removeFromSection(instance: String, section: String)
    /// Pools the instance in a section (or in one of its groups), optionally at a percentage.
    case pool(instance: String, section: String, group: String?, percentage: Int?)
    case depool(instance: String, section: String, group: String?)
    case setWeight(instance: String, section: String, group: String?, weight: Int)
    case setPercentage(instance: String, section: String, percentage: Int)
    case setCandidate(instance: String, candidate: Bool)
    /// Marks a member as needing a rejoin (a primary a failover replaced while it was dead) and
    /// depools it from the section and from every group of it. Marking again replaces the mark.
    case markNeedsRejoin(instance: String, section: String, mark: RejoinMark)
    /// Removes the mark once the member has rejoined; it stays depooled, to be repooled like
    /// any replica. Clearing a member without a mark changes nothing, so a step that is retried
    /// after it applied does not fail.
    case clearNeedsRejoin(instance: String, section: String)
    /// Creates or replaces a managed account of a section (the account's name is its key).
    case setAccount(section: String, account: ManagedAccount)
    /// Stops managing an account: it is left on the servers as it is, and never touched again.
    case unmanageAccount(section: String, name: String)
    /// Sets (or with `value: nil` removes) one desired variable of a section, for every
    /// instance (`role: nil`) or for the primary or the replicas only.
    case setVariable(section: String, role: VariableRole?, name: String, value: String?)
}

/// Which instances of a section a role-specific variable applies to.
public enum VariableRole: String, Sendable, Equatable, CaseIterable, Codable {
    case primary, replica
}

/// Why an edit cannot even be applied (as opposed to applying and failing validation).
public struct EditError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension Topology {
    /// The topology after `edit`, or an `EditError` naming what does not exist or already does.
    public func applying(_ edit: TopologyEdit) throws -> Topology {
        var topology = self
        switch edit {
        case .addDatacenter(let name):
            guard !datacenters.contains(name) else { throw EditError("datacenter \(name) already exists") }
            topology.datacenters.insert(name)
        case .addSection(let section):
            guard sections[section.name] == nil else { throw EditError("section \(section.name) already exists") }
            topology.sections[section.name] = section
        case .setPrimary(let section, let instance):
            guard instances[instance] != nil else { throw EditError("unknown instance \(instance)") }
            try topology.updateSection(section) { $0.primary = instance }
        case .setReadOnly(let section, let reason):
            try topology.updateSection(section) {
                $0.readOnly = reason != nil
                $0.readOnlyReason = reason ?? ""
            }
        case .addInstance(let instance):
            guard instances[instance.name] == nil else { throw EditError("instance \(instance.name) already exists") }
            topology.instances[instance.name] = instance
        case .removeInstance(let name):
            guard instances[name] != nil else { throw EditError("unknown instance \(name)") }
            if let section = sections.values.first(where: { $0.primary == name }) {
                throw EditError("\(name) is the primary of \(section.name): switch it over first")
            }
            topology.instances[name] = nil
        case .addToSection(let instance, let section, let weight):
            guard sections[section] != nil else { throw EditError("unknown section \(section)") }
            try topology.updateInstance(instance) {
                guard $0.sections[section] == nil else { throw EditError("\(instance) is already configured in section \(section)") }
                $0.sections[section] = Membership(pooled: false, weight: weight, percentage: 100)
            }
        case .removeFromSection(let instance, let section):
            try topology.updateMembership(instance, section) { _ in }
            topology.instances[instance]?.sections[section] = nil
        case .pool(let instance, let section, let group, let percentage):
            try topology.updateMembership(instance, section) { membership in
                if let group {
                    guard membership.groups[group] != nil else { throw EditError("\(instance) has no group \(group) in section \(section)") }
                    membership.groups[group]?.pooled = true
                } else {
                    membership.pooled = true
                    if let percentage { membership.percentage = percentage }
                }
            }
        case .depool(let instance, let section, let group):
            try topology.updateMembership(instance, section) { membership in
                if let group {
                    guard membership.groups[group] != nil else { throw EditError("\(instance) has no group \(group) in section \(section)") }
                    membership.groups[group]?.pooled = false
                } else {
                    membership.pooled = false
                }
            }
        case .setWeight(let instance, let section, let group, let weight):
            try topology.updateMembership(instance, section) { membership in
                if let group {
                    // Setting a group's weight creates the group, pooled.
                    membership.groups[group, default: GroupMembership(pooled: true, weight: weight)].weight = weight
                } else {
                    membership.weight = weight
                }
            }
        case .setPercentage(let instance, let section, let percentage):
            try topology.updateMembership(instance, section) { $0.percentage = percentage }
        case .setCandidate(let instance, let candidate):
            try topology.updateInstance(instance) { $0.candidatePrimary = candidate }
        case .markNeedsRejoin(let instance, let section, let mark):
            try topology.updateMember(instance, section) { membership in
                membership.needsRejoin = mark
                membership.pooled = false
                for group in membership.groups.keys { membership.groups[group]?.pooled = false }
            }
        case .clearNeedsRejoin(let instance, let section):
            try topology.updateMember(instance, section) { $0.needsRejoin = nil }
        case .setAccount(let section, let account):
            guard sections[section] != nil else { throw EditError("unknown section \(section)") }
            topology.grants[section, default: [:]][account.name] = account.canonical
        case .unmanageAccount(let section, let name):
            guard grants[section]?[name] != nil else { throw EditError("\(name) is not a managed account of section \(section)") }
            if let user = grants[section]?.values.first(where: { $0.roles.contains(name) }) {
                throw EditError("role \(name) is granted to \(user.name): revoke it there first")
            }
            topology.grants[section]?[name] = nil
            if topology.grants[section]?.isEmpty == true { topology.grants[section] = nil }
        case .setVariable(let section, let role, let name, let value):
            guard sections[section] != nil else { throw EditError("unknown section \(section)") }
            var variables = topology.variables[section] ?? ManagedVariables()
            switch role {
            case nil: variables.all[name] = value
            case .primary: variables.primary[name] = value
            case .replica: variables.replica[name] = value
            }
            topology.variables[section] = variables.isEmpty ? nil : variables
        }
        return topology
    }

    private mutating func updateSection(_ name: String, _ change: (inout Section) throws -> Void) throws {
        guard var section = sections[name] else { throw EditError("unknown section \(name)") }
        try change(&section)
        sections[name] = section
    }

    private mutating func updateInstance(_ name: String, _ change: (inout Instance) throws -> Void) throws {
        guard var instance = instances[name] else { throw EditError("unknown instance \(name)") }
        try change(&instance)
        instances[name] = instance
    }

    private mutating func updateMembership(_ instance: String, _ section: String, _ change: (inout Membership) throws -> Void) throws {
        guard sections[section] != nil else { throw EditError("unknown section \(section)") }
        try updateInstance(instance) {
            guard var membership = $0.sections[section] else {
                throw EditError(
                    "\(instance) is not configured in section \(section): add it with `marina instance add-section \(instance) --section \(section) --weight N`"
                )
            }
            try change(&membership)
            $0.sections[section] = membership
        }
    }

    /// Like `updateMembership`, for a change made to a member as it is (the rejoin marks):
    /// the refusals name what is missing without suggesting to configure it.
    private mutating func updateMember(_ instance: String, _ section: String, _ change: (inout Membership) -> Void) throws {
        guard instances[instance] != nil else { throw EditError("unknown instance \(instance)") }
        guard sections[section] != nil else { throw EditError("unknown section \(section)") }
        guard instances[instance]?.sections[section] != nil else { throw EditError("\(instance) is not configured in section \(section)") }
        change(&instances[instance]!.sections[section]!)
    }

    /// The issues `candidate` has that this topology does not: what a change would break.
    /// An edit is refused when this is not empty, so a topology that is already broken can
    /// still be repaired one step at a time.
    public func issuesIntroduced(by candidate: Topology) -> [TopologyIssue] {
        let existing = Set(validate())
        return candidate.validate().filter { !existing.contains($0) }
    }
}

extension TopologyEdit {
    /// The edit in one line, for the staged marker and logs: an account's hash never shows.
    public var summary: String {
        if case .setAccount(let section, let account) = self { return "setAccount(section: \(section), account: \(account.name))" }
        return "\(self)"
    }
}
