import Foundation
import Topology

extension StoreKeys {
    /// The site's mirror setting (`SiteMirror`): where every commit also writes the
    /// configuration applications read.
    public var siteMirror: String { root + "/site/mirror" }
}

/// The site-wide mirror, kept in etcd at `<root>/site/mirror` as
/// `{"schema":1,"v2_prefix":"conftool/v1/mediawiki-config","author":…,"at":…}`: the etcd v2
/// directory MediaWiki's `EtcdConfig` reads. When it is set, `TopologyStore` writes
/// `{"val": config}` at `<v2_prefix>/<datacenter>/dbconfig` after every commit, whoever
/// commits (`marina config commit` and `restore`, a switchover, the automatic depool), and a
/// failed write is an error for that caller (`MirrorWriteFailed`).
public struct SiteMirror: Sendable, Equatable, Codable {
    /// Without leading or trailing `/`.
    public var v2Prefix: String
    /// Who set it, and when (absent when written by hand).
    public var author: String?
    public var at: Date?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case v2Prefix = "v2_prefix"
        case author, at
    }

    /// Checks and normalizes `v2Prefix` (see `normalized(_:)`).
    public init(v2Prefix: String, author: String? = nil, at: Date? = nil) throws(InvalidPrefix) {
        self.v2Prefix = try Self.normalized(v2Prefix)
        self.author = author
        self.at = at
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self, extra: ["schema"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let prefix = try c.decode(String.self, forKey: .v2Prefix)
        do {
            v2Prefix = try Self.normalized(prefix)
        } catch {
            throw SchemaError(path: "v2_prefix", problem: error.description)
        }
        author = try c.decodeIfPresent(String.self, forKey: .author)
        at = try c.decodeIfPresent(Date.self, forKey: .at)
    }

    /// Why a v2 prefix is refused.
    public struct InvalidPrefix: Error, Sendable, Equatable, CustomStringConvertible {
        public var prefix: String
        public var problem: String
        public var description: String { "v2 prefix \"\(prefix)\" \(problem)" }
    }

    /// A v2 directory path: segments of letters, digits, `.`, `_` and `-`, separated by `/`
    /// (a leading or trailing `/` is dropped); no empty, `.` or `..` segment, and none that
    /// starts with `_` (etcd v2 hides such keys from the recursive read MediaWiki does).
    public static func normalized(_ prefix: String) throws(InvalidPrefix) -> String {
        let trimmed = Self.trimmed(prefix)
        guard !trimmed.isEmpty else { throw InvalidPrefix(prefix: prefix, problem: "is empty") }
        for segment in trimmed.split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty { throw InvalidPrefix(prefix: prefix, problem: "has an empty segment (//)") }
            if segment == "." || segment == ".." { throw InvalidPrefix(prefix: prefix, problem: "has a \(segment) segment") }
            if segment.hasPrefix("_") {
                throw InvalidPrefix(prefix: prefix, problem: "has a segment starting with _, which etcd v2 hides from recursive reads")
            }
            let allowed = segment.unicodeScalars.allSatisfy { scalar in
                scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "._-".unicodeScalars.contains(scalar))
            }
            if !allowed { throw InvalidPrefix(prefix: prefix, problem: "may hold only letters, digits, '.', '_', '-' and '/'") }
        }
        return trimmed
    }

    static func trimmed(_ prefix: String) -> String {
        var text = Substring(prefix)
        while text.hasPrefix("/") { text = text.dropFirst() }
        while text.hasSuffix("/") { text = text.dropLast() }
        return String(text)
    }

    /// Whether two prefixes name the same v2 directory.
    static func sameLocation(_ a: String, _ b: String) -> Bool { trimmed(a) == trimmed(b) }
}
