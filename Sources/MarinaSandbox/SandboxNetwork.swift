/// Where a sandbox's servers live on the network (`sandbox up --hosts`).
public enum SandboxHosts: String, Codable, Sendable, CaseIterable {
    /// Everything on `127.0.0.1` of the machine's own network namespace (the default).
    case loopback
    /// Each `mariadbd`, its agent and the controller in a network namespace of their own (a
    /// "host"), joined by a bridge in the root namespace: what lets a test partition a host.
    case namespaces

    /// Reads `--hosts`' value, or one error naming the flag and the values it accepts.
    public init(flag value: String) throws {
        guard let hosts = Self(rawValue: value) else {
            throw SandboxError.invalidArgument("--hosts must be \(Self.allCases.map(\.rawValue).joined(separator: " or ")) (got \(value))")
        }
        self = hosts
    }
}

/// What `Sandbox.partition` cuts a host from.
public enum SandboxPartition: String, Codable, Sendable, CaseIterable {
    /// Every packet in and out of the host's namespace except on `lo`: its agent loses etcd,
    /// replicas and the controller lose it; applications on its unix socket still reach it.
    case everything
    /// Only the controller's namespace drops what goes to and comes from the host's address.
    case controller

    /// Reads `--from`'s value, or one error naming the flag and the values it accepts.
    public init(flag value: String) throws {
        guard let partition = Self(rawValue: value) else {
            throw SandboxError.invalidArgument("--from must be \(Self.allCases.map(\.rawValue).joined(separator: " or ")) (got \(value))")
        }
        self = partition
    }
}

/// The network of a sandbox started with `--hosts namespaces`, decided from its base port
/// before anything exists. Pure: the names and addresses are tested without root.
///
/// - The subnet is `10.213.K.0/24` with `K = basePort / 256`. A namespaces sandbox reserves
///   256 consecutive ports from its base port, so two sandboxes whose blocks do not overlap
///   (as `Ports` guarantees among the sandboxes of running processes) have different `K`.
///   `up` also checks that nothing on the machine already has an address or a route in it.
/// - The bridge, in the root namespace, is `mbr<P>` with address `.1`; the controller's host
///   `.2`; instance `db<s>00<i+1>` (section `s`, member `i` from 0) `.<10·s + i>`, so `db1001`
///   is `.10` and `db9010` `.99`.
/// - Each host is the namespace `marina-<P>-<name>`, joined to the bridge by the veth pair
///   `mv<P>-<id>` (root side, `id` the server id or `ctl`) and `eth0` (inside the namespace).
public struct SandboxNetwork: Codable, Sendable, Equatable {
    /// One host: a network namespace with one address on the bridge.
    public struct Host: Codable, Sendable, Equatable {
        /// The instance it runs (`db1001`), or `controller`.
        public var name: String
        /// Its network namespace, in `/run/netns/`.
        public var namespace: String
        /// The veth end in the root namespace, attached to the bridge; its peer is `eth0` in `namespace`.
        public var veth: String
        public var address: String

        public init(name: String, namespace: String, veth: String, address: String) {
            self.name = name
            self.namespace = namespace
            self.veth = veth
            self.address = address
        }
    }

    /// The first two octets of every sandbox subnet: a private range this machine does not use
    /// (see docs/sandbox.md).
    public static let prefix = "10.213"
    /// Ports a namespaces sandbox reserves from its base port: one /24 per 256 ports.
    public static let portWindow = 256
    /// The interface each host sees inside its namespace.
    public static let insideInterface = "eth0"
    /// The name of the controller's host.
    public static let controllerName = "controller"
    /// The longest interface name Linux accepts (`IFNAMSIZ` - 1).
    public static let interfaceNameLimit = 15

    /// `10.213.K.0/24`.
    public var subnet: String
    /// The bridge in the root namespace.
    public var bridge: String
    /// The bridge's address: what etcd also listens on, and the root namespace's address on the subnet.
    public var bridgeAddress: String
    public var instances: [Host]
    public var controller: Host

    /// The plan for a sandbox on `basePort` with instances named `db<serverID>`.
    public init(basePort: Int, serverIDs: [(name: String, serverID: Int)]) throws {
        guard (1024...65535).contains(basePort) else {
            throw SandboxError.invalidArgument("--base-port must be between 1024 and 65535 (got \(basePort))")
        }
        let third = basePort / Self.portWindow
        let network = "\(Self.prefix).\(third)"
        subnet = network + ".0/24"
        bridge = "mbr\(basePort)"
        bridgeAddress = network + ".1"
        controller = Host(
            name: Self.controllerName, namespace: "marina-\(basePort)-\(Self.controllerName)", veth: "mv\(basePort)-ctl",
            address: network + ".2")
        instances = try serverIDs.map { member in
            let section = member.serverID / 1000
            let index = member.serverID % 1000 - 1
            guard (1...9).contains(section), (0...9).contains(index) else {
                throw SandboxError.invalidArgument("no address for \(member.name): server ids run from 1001 to 9010")
            }
            return Host(
                name: member.name, namespace: "marina-\(basePort)-\(member.name)", veth: "mv\(basePort)-\(member.serverID)",
                address: "\(network).\(10 * section + index)")
        }
    }

    /// Every host: the instances, then the controller.
    public var hosts: [Host] { instances + [controller] }

    /// The host called `name` (an instance, or `controller`).
    public func host(named name: String) -> Host? { hosts.first { $0.name == name } }

    /// The MariaDB host pattern of the subnet (`10.213.K.%`): accounts that connect over TCP
    /// from another host of the sandbox exist for it too.
    public var accountHostPattern: String { String(subnet.dropLast("0/24".count)) + "%" }

    /// Every interface the plan creates in the root namespace: the bridge and one veth end per host.
    public var rootInterfaces: [String] { [bridge] + hosts.map(\.veth) }

    /// The subnet's network address as a 32-bit number (host order), and its mask.
    var subnetBits: (network: UInt32, mask: UInt32) {
        let octets = subnet.split(separator: "/")[0].split(separator: ".").compactMap { UInt32($0) }
        return (octets.reduce(0) { $0 << 8 | $1 }, 0xFFFF_FF00)
    }
}
