import EtcdClient
import Foundation
import Topology

/// Copies of the committed configuration outside Marina's own keys, written after a commit.
///
/// - v2: `{"val": config}` at `<prefix>/<datacenter>/dbconfig` through etcd's v2 API, which is
///   what MediaWiki's `EtcdConfig` reads (`GET /v2/keys/<prefix>/?recursive=true`).
/// - files: `<directory>/<datacenter>.json`, the config object, written atomically.
///
/// The site's v2 mirror is a setting in etcd (`SiteMirror`, `<root>/site/mirror`) that the
/// store writes after every commit; a `ConfigMirror` given to a commit (`alsoMirror:`) adds
/// mirrors of one process (a directory on the host running it, an extra v2 prefix).
///
/// Mirrors are written after the v3 transaction and are not part of it (etcd's v2 keys take
/// no part in v3 transactions): a failed mirror is an error for the caller
/// (`MirrorWriteFailed`) although the commit stands, and the next commit, restore or
/// `marina config mirror --sync` writes the mirrors again.
public struct ConfigMirror: Sendable, Equatable {
    public var v2Prefix: String?
    public var directory: String?

    public static let mediaWikiPrefix = "conftool/v1/mediawiki-config"

    public init(v2Prefix: String? = nil, directory: String? = nil) {
        self.v2Prefix = v2Prefix
        self.directory = directory
    }

    public var isEmpty: Bool { v2Prefix == nil && directory == nil }

    /// This mirror without the v2 prefix `prefix` (already written by someone else).
    public func excluding(v2Prefix prefix: String?) -> ConfigMirror {
        guard let prefix, let own = v2Prefix, SiteMirror.sameLocation(own, prefix) else { return self }
        return ConfigMirror(v2Prefix: nil, directory: directory)
    }

    /// The v2 path of a datacenter's configuration under `prefix`.
    public static func v2Path(prefix: String, datacenter: String) -> String {
        "\(SiteMirror.trimmed(prefix))/\(datacenter)/dbconfig"
    }

    /// What `write` writes for these datacenters, one line per target.
    public func targets(datacenters: [String]) -> [String] {
        datacenters.sorted().flatMap { datacenter -> [String] in
            (v2Prefix.map { ["etcd v2 /v2/keys/" + Self.v2Path(prefix: $0, datacenter: datacenter)] } ?? [])
                + (directory.map { ["\($0)/\(datacenter).json"] } ?? [])
        }
    }

    /// Writes every datacenter's configuration to each configured mirror; gives one line per
    /// mirror written, or throws naming the first mirror that failed.
    public func write(_ configs: [String: GeneratedConfig], etcd: any V2Store) async throws -> [String] {
        let report = await writeAll(configs, etcd: etcd)
        if let failure = report.failures.first { throw failure }
        return report.written
    }

    /// Writes every datacenter's configuration to each configured mirror, going on after a
    /// failure so that what can be written is: gives what was written and what failed.
    public func writeAll(_ configs: [String: GeneratedConfig], etcd: any V2Store) async -> (written: [String], failures: [MirrorFailure]) {
        var written = [String]()
        var failures = [MirrorFailure]()
        for (datacenter, config) in configs.sorted(by: { $0.key < $1.key }) {
            let json = String(decoding: config.json(), as: UTF8.self)
            if let prefix = v2Prefix {
                let path = Self.v2Path(prefix: prefix, datacenter: datacenter)
                let target = "etcd v2 /v2/keys/\(path)"
                do {
                    try await etcd.v2Put(path, #"{"val":"# + json + "}")
                    written.append(target)
                } catch {
                    failures.append(MirrorFailure(target: target, message: "\(error)"))
                }
            }
            if let directory {
                let path = "\(directory)/\(datacenter).json"
                do {
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    try config.json(pretty: true).write(to: URL(fileURLWithPath: path), options: .atomic)
                    written.append(path)
                } catch {
                    failures.append(MirrorFailure(target: path, message: "\(error)"))
                }
            }
        }
        return (written, failures)
    }

    /// The configuration in a v2 value as this mirror writes it (`{"val": config}`).
    public static func decodeV2Value(_ value: String) throws -> GeneratedConfig {
        struct Wrapped: Decodable { var val: GeneratedConfig }
        return try JSONDecoder().decode(Wrapped.self, from: Data(value.utf8)).val
    }
}

/// One mirror target that was not written, and why.
public struct MirrorFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// `etcd v2 /v2/keys/<path>`, a file path, or the setting that could not be read.
    public var target: String
    public var message: String

    public init(target: String, message: String) {
        self.target = target
        self.message = message
    }

    public var description: String { "\(target): \(message)" }
}

/// A commit that landed in etcd (v3) while a mirror of it was not written: applications
/// reading that mirror (MediaWiki reads the v2 one) still see the previous configuration.
///
/// Thrown by every commit path of `TopologyStore` after the commit, so that no caller can
/// take a stale mirror for success; `entry` is the commit, which stands. Fix the cause, then
/// `marina config mirror --sync` (or the next commit) writes the mirror again.
public struct MirrorWriteFailed: Error, Sendable, CustomStringConvertible {
    /// The commit that landed; nil when no commit was made (a `syncMirror`).
    public var entry: HistoryEntry?
    /// The mirrors that were written.
    public var written: [String]
    public var failures: [MirrorFailure]

    public init(entry: HistoryEntry?, written: [String], failures: [MirrorFailure]) {
        self.entry = entry
        self.written = written
        self.failures = failures
    }

    /// Only the v2 mirror (MediaWiki's) failed, or also a file.
    public var v2Failed: Bool { failures.contains { $0.target.hasPrefix("etcd v2 ") } }

    public var description: String {
        let what = entry.map { "commit #\($0.sequence) (revision \($0.revision ?? 0)) stands in etcd" } ?? "the committed configuration"
        return "\(what), but the mirror applications read was not written: "
            + failures.map(\.description).joined(separator: "; ")
            + ". Until it is, they see the previous configuration: fix the cause, then run `marina config mirror --sync`"
    }
}

/// The site's mirror and a process's own, written together, the site's first.
struct MirrorSet {
    var site: ConfigMirror?
    var own: ConfigMirror

    func writeAll(_ configs: [String: GeneratedConfig], etcd: any V2Store) async -> (written: [String], failures: [MirrorFailure]) {
        var written = [String]()
        var failures = [MirrorFailure]()
        for mirror in [site, own].compactMap({ $0 }) where !mirror.isEmpty {
            let report = await mirror.writeAll(configs, etcd: etcd)
            written += report.written
            failures += report.failures
        }
        return (written, failures)
    }
}

/// What the site mirror holds, as read through etcd's v2 API.
public struct MirrorContent: Sendable, Equatable {
    public var site: SiteMirror
    /// The raw value at `<prefix>/<datacenter>/dbconfig`, per datacenter.
    public var values: [String: String]
    /// Why the mirror could not be read at all (etcd's v2 API off or unreachable).
    public var readError: String?

    public init(site: SiteMirror, values: [String: String], readError: String? = nil) {
        self.site = site
        self.values = values
        self.readError = readError
    }
}
