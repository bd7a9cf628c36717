import EtcdClient
import Foundation
import Topology
import TopologyStore

extension Sandbox {
    /// The source of truth describing a sandbox: its datacenter; each section with its
    /// primary (pooled, weight 0, as Wikimedia runs primaries) and its replicas (pooled,
    /// weight 100, candidate primaries), a minimum of one pooled replica (or none, allowed
    /// empty, for a section without replicas).
    public static func topology(of state: SandboxState) -> Topology {
        var topology = Topology(datacenters: [state.datacenter])
        for section in state.sections {
            let members = state.instances(in: section)
            let replicas = members.filter { $0.role == .replica }.count
            topology.sections[section] = Section(
                name: section, primary: state.primary(of: section)?.name ?? "", datacenter: state.datacenter,
                minReplicas: min(1, replicas), allowEmpty: replicas == 0)
            for member in members {
                let primary = member.role == .primary
                topology.instances[member.name] = Instance(
                    name: member.name, host: member.host, port: member.port, datacenter: state.datacenter, candidatePrimary: true,
                    note: "sandbox", sections: [section: Membership(pooled: true, weight: primary ? 0 : 100)])
            }
        }
        return topology
    }

    /// Turns the site mirror on where MediaWiki reads (etcd v2), then writes the sandbox's
    /// topology into its etcd and commits it, so a new sandbox shows a real committed topology
    /// and its mirror, and every later commit (CLI, switchover, automatic) writes the mirror.
    static func register(_ state: SandboxState) async throws {
        let etcd = EtcdClient(EtcdConfiguration(endpoints: [state.etcd.url], tls: state.certificates?.etcdClientTLS))
        let store = TopologyStore(etcd: etcd)
        let actor = ChangeAuthor(author: "marina-sandbox", now: Date())
        try await store.setSiteMirror(try SiteMirror(v2Prefix: ConfigMirror.mediaWikiPrefix, author: actor.author, at: actor.now))
        guard case .applied = try await store.replaceStaged(with: topology(of: state), by: actor, change: "sandbox up") else {
            throw SandboxError.setupFailed(what: "the source of truth", detail: "the sandbox topology was refused")
        }
        guard case .committed = try await store.commit(message: "sandbox up", by: actor) else {
            throw SandboxError.setupFailed(what: "the source of truth", detail: "the first commit did not happen")
        }
    }
}
