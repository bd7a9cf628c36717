import EtcdClient
import Foundation
import StoredRecords
import Topology

/// The mirrors of the generated configuration: the site mirror setting (etcd v2, for
/// MediaWiki) and the writes and reads of what it holds.
extension TopologyStore {
    /// The site mirror setting, or nil when none is set.
    public func siteMirror() async throws -> SiteMirror? {
        try await etcd.value(keys.siteMirror).map { try StoredJSON.decode(SiteMirror.self, from: $0.value, key: $0.key) }
    }

    /// Sets the site mirror (nil: none). Commits from then on write it; what is committed now
    /// is not written by this (`syncMirror`).
    public func setSiteMirror(_ mirror: SiteMirror?) async throws {
        if let mirror {
            _ = try await etcd.put(keys.siteMirror, try StoredJSON.encodeWithSchema(mirror))
        } else {
            _ = try await etcd.delete(keys.siteMirror)
        }
    }

    /// Writes `configs` (a commit's configuration) to the site mirror, read now, and to
    /// `also`; gives what was written, or throws `MirrorWriteFailed` (with no entry).
    @discardableResult
    public func writeMirror(_ configs: [String: GeneratedConfig], also: ConfigMirror = ConfigMirror()) async throws -> [String] {
        let site: SiteMirror?
        do {
            site = try await siteMirror()
        } catch {
            throw MirrorWriteFailed(entry: nil, written: [], failures: [MirrorFailure(target: "the site mirror setting", message: "\(error)")])
        }
        let report = await mirrors(site: site, also: also).writeAll(configs, etcd: etcd)
        guard report.failures.isEmpty else { throw MirrorWriteFailed(entry: nil, written: report.written, failures: report.failures) }
        return report.written
    }

    /// Writes what is committed now to the site mirror and to `also` (after a failed mirror
    /// write, or when the mirror was just set); gives what was written, or throws
    /// `MirrorWriteFailed`.
    @discardableResult
    public func syncMirror(also: ConfigMirror = ConfigMirror()) async throws -> [String] {
        let (_, committed) = try await read()
        let report = await mirrors(site: committed.siteMirror, also: also).writeAll(committed.configs, etcd: etcd)
        guard report.failures.isEmpty else { throw MirrorWriteFailed(entry: nil, written: report.written, failures: report.failures) }
        return report.written
    }

    /// What the site mirror holds now, per datacenter (the raw v2 values at
    /// `<prefix>/<datacenter>/dbconfig`), read as MediaWiki reads it: one recursive v2 GET.
    /// A mirror that cannot be read gives `readError` rather than throwing.
    public func readMirror(_ site: SiteMirror) async -> MirrorContent {
        do {
            guard let node = try await etcd.v2Get(site.v2Prefix, recursive: true) else { return MirrorContent(site: site, values: [:]) }
            var values = [String: String]()
            let base = "/" + site.v2Prefix + "/"
            for (key, value) in node.leaves where key.hasPrefix(base) && key.hasSuffix("/dbconfig") {
                let datacenter = key.dropFirst(base.count).dropLast("/dbconfig".count)
                guard !datacenter.isEmpty, !datacenter.contains("/") else { continue }
                values[String(datacenter)] = value
            }
            return MirrorContent(site: site, values: values)
        } catch {
            return MirrorContent(site: site, values: [:], readError: "\(error)")
        }
    }
}
