/// Where the source of truth lives in etcd (see docs/etcd-keys.md).
public struct StoreKeys: Sendable {
    public let root: String

    public init(root: String = "/marina/v1") {
        self.root = root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    public var datacenters: String { root + "/datacenters/" }
    public var sections: String { root + "/sections/" }
    public var instances: String { root + "/instances/" }
    /// Bumped by every staged write: one compare on it detects any concurrent change,
    /// deletions included.
    public var staged: String { root + "/staged" }
    public var generated: String { root + "/generated/" }
    public var history: String { root + "/history/" }
    /// The sequence number of the latest commit.
    public var committed: String { root + "/committed" }

    public func datacenter(_ name: String) -> String { datacenters + name }
    public func section(_ name: String) -> String { sections + name }
    public func instance(_ name: String) -> String { instances + name }
    public func generated(_ datacenter: String) -> String { generated + datacenter }
    /// Zero-padded so that keys sort in commit order.
    public func history(_ sequence: Int) -> String { history + String(repeating: "0", count: max(0, 10 - String(sequence).count)) + String(sequence) }
}
