import Observation
import Topology

extension Drift {
    /// Managed accounts, from what the leader's grant watch wrote for each member of a section
    /// that has some: one finding per difference, naming the account and both sides (never a
    /// hash), as of the watch's last look (`read_at`, every `grants.check_interval` seconds): a
    /// commit or a sync shows at the next look.
    static func grantCheck(_ code: DriftCode) -> @Sendable (DriftContext) -> [DriftFinding] {
        let kind: String? =
            switch code {
            case .grantAccountMissing: "missing"
            case .grantAccountUnexpected: "unexpected"
            case .grantAuthenticationDiffers: "authentication"
            case .grantTLSDiffers: "tls"
            case .grantLimitsDiffer: "limits"
            case .grantPrivilegesDiffer: "privileges"
            case .grantRolesDiffer: "roles"
            case .grantDefaultRoleDiffers: "default-role"
            default: nil
            }
        return { context in
            context.sections.flatMap { entry -> [DriftFinding] in
                guard !(context.snapshot.topology.grants[entry.section.name] ?? [:]).isEmpty else { return [] }
                return entry.members.flatMap { member -> [DriftFinding] in
                    guard member.membership.needsRejoin == nil, let observed = context.snapshot.grants[member.instance.name],
                        observed.section == entry.section.name
                    else { return [] }
                    guard let kind else {
                        guard let error = observed.error else { return [] }
                        return [
                            DriftFinding(
                                code, section: entry.section.name, instance: member.instance.name, expected: "managed accounts readable",
                                observed: "\(error) (read \(observed.readAt.formatted(.iso8601)))")
                        ]
                    }
                    return observed.differences.filter { $0.kind == kind }.map {
                        DriftFinding(
                            code, section: entry.section.name, instance: member.instance.name, expected: "\($0.account): \($0.expected)",
                            observed: "\($0.observed) (`marina grant sync \(entry.section.name)`)")
                    }
                }
            }
        }
    }
}
