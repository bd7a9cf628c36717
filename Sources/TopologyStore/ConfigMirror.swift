import EtcdClient
import Foundation
import Topology

/// Copies of the committed configuration outside Marina's own keys, written after a commit.
///
/// - v2: `{"val": config}` at `<prefix>/<datacenter>/dbconfig` through etcd's v2 API, which is
///   what MediaWiki's `EtcdConfig` reads (`GET /v2/keys/<prefix>/?recursive=true`).
/// - files: `<directory>/<datacenter>.json`, the config object, written atomically.
///
/// Mirrors are written after the v3 transaction and are not part of it: a failed mirror is
/// reported, and the next commit or restore writes the mirrors again.
public struct ConfigMirror: Sendable {
    public var v2Prefix: String?
    public var directory: String?

    public static let mediaWikiPrefix = "conftool/v1/mediawiki-config"

    public init(v2Prefix: String? = nil, directory: String? = nil) {
        self.v2Prefix = v2Prefix
        self.directory = directory
    }

    public var isEmpty: Bool { v2Prefix == nil && directory == nil }

    /// Writes every datacenter's configuration to each configured mirror; gives one line per
    /// mirror written, or throws naming the mirror that failed.
    public func write(_ configs: [String: GeneratedConfig], etcd: EtcdClient) async throws -> [String] {
        var written = [String]()
        for (datacenter, config) in configs.sorted(by: { $0.key < $1.key }) {
            let json = String(decoding: config.json(), as: UTF8.self)
            if let prefix = v2Prefix {
                let path = "\(prefix)/\(datacenter)/dbconfig"
                try await etcd.v2Put(path, #"{"val":"# + json + "}")
                written.append("etcd v2 /v2/keys/\(path)")
            }
            if let directory {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let path = "\(directory)/\(datacenter).json"
                try config.json(pretty: true).write(to: URL(fileURLWithPath: path), options: .atomic)
                written.append(path)
            }
        }
        return written
    }
}
