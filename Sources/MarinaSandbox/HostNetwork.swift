import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Builds and tears down a namespaces sandbox's network (`SandboxNetwork`) with `ip` and `nft`,
/// and runs programs inside a host's namespace with `nsenter`. Needs root. Blocking: call it
/// from `Sandbox.blocking`. Every command and its output is appended to `D/network.log`.
enum HostNetwork {
    /// The programs namespaces mode runs, found before anything is created.
    struct Tools: Sendable {
        var ip: String
        var nft: String
        var nsenter: String
    }

    /// Checks, in one error listing every missing piece, that this process runs as root and
    /// that `ip` (iproute2), `nft` (nftables) and `nsenter` (util-linux) are installed.
    static func preflight(searchPath: [String] = Toolchain.defaultSearchPath) throws -> Tools {
        var problems = [String]()
        if geteuid() != 0 { problems.append("to run as root (it creates network namespaces, veth pairs and nft rules)") }
        var packages = [String]()
        func find(_ name: String, _ package: String) -> String {
            if let path = try? Toolchain.find(name, package: package, in: searchPath) { return path }
            problems.append("\(name) (Debian package \(package))")
            packages.append(package)
            return name
        }
        let tools = Tools(ip: find("ip", "iproute2"), nft: find("nft", "nftables"), nsenter: find("nsenter", "util-linux"))
        guard problems.isEmpty else {
            throw SandboxError.namespacesUnavailable(missing: problems, packages: packages)
        }
        return tools
    }

    /// The command that runs `executable` inside `namespace`'s network (nil: as is). `nsenter`
    /// enters the namespace and then becomes the program (no fork): the pid is the program's.
    static func command(_ executable: String, _ arguments: [String], in namespace: String?, tools: Tools?) -> (String, [String]) {
        guard let namespace, let tools else { return (executable, arguments) }
        return (tools.nsenter, ["--net=/run/netns/\(namespace)", "--", executable] + arguments)
    }

    // MARK: Building

    /// Creates the bridge with its address, after checking (under a lock shared by every
    /// `marina` process, so two sandboxes starting together cannot both take it) that no
    /// interface has an address and no route leads into the subnet.
    static func createBridge(_ network: SandboxNetwork, tools: Tools, log: String) throws {
        let lock = try subnetLock(network)
        defer { close(lock) }
        if let user = subnetUser(network) { throw SandboxError.subnetInUse(network.subnet, by: user) }
        try run(tools.ip, ["link", "add", network.bridge, "type", "bridge"], log: log)
        try run(tools.ip, ["addr", "add", network.bridgeAddress + "/24", "dev", network.bridge], log: log)
        try run(tools.ip, ["link", "set", network.bridge, "up"], log: log)
    }

    /// Creates one host: its namespace with `lo` up, and a veth pair from the bridge to its
    /// `eth0`, which carries its address.
    static func createHost(_ host: SandboxNetwork.Host, on network: SandboxNetwork, tools: Tools, log: String) throws {
        let inside = SandboxNetwork.insideInterface
        try run(tools.ip, ["netns", "add", host.namespace], log: log)
        try run(tools.ip, ["-n", host.namespace, "link", "set", "lo", "up"], log: log)
        try run(tools.ip, ["link", "add", host.veth, "type", "veth", "peer", "name", inside, "netns", host.namespace], log: log)
        try run(tools.ip, ["link", "set", host.veth, "master", network.bridge, "up"], log: log)
        try run(tools.ip, ["-n", host.namespace, "addr", "add", host.address + "/24", "dev", inside], log: log)
        try run(tools.ip, ["-n", host.namespace, "link", "set", inside, "up"], log: log)
    }

    /// Deletes every veth, namespace (with the nft tables in it) and the bridge of `network`
    /// that still exists; what is already gone is skipped. Returns what could not be deleted.
    @discardableResult
    static func remove(_ network: SandboxNetwork, log: String) -> [String] {
        guard let tools = try? preflight() else {
            return ["the network of \(network.subnet) (not root, or ip missing): see docs/sandbox.md to clean up by hand"]
        }
        var left = [String]()
        let namespaces = Set(existingNamespaces())
        for host in network.hosts {
            // Deleting the root end deletes its peer too, at once (a namespace's deletion is lazy).
            if interfaceExists(host.veth), (try? run(tools.ip, ["link", "delete", host.veth], log: log)) == nil { left.append(host.veth) }
            if namespaces.contains(host.namespace), (try? run(tools.ip, ["netns", "delete", host.namespace], log: log)) == nil {
                left.append(host.namespace)
            }
        }
        if interfaceExists(network.bridge), (try? run(tools.ip, ["link", "delete", network.bridge], log: log)) == nil {
            left.append(network.bridge)
        }
        return left
    }

    /// The names `ip netns list` shows (the files in `/run/netns`).
    static func existingNamespaces() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
    }

    static func interfaceExists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: "/sys/class/net/\(name)")
    }

    // MARK: Partitions

    /// The nft table a partition from everything adds inside the host's own namespace.
    static let partitionTable = "marina_partition"

    /// The nft table, in the controller's namespace, that cuts it from one host.
    static func controllerCutTable(_ host: String) -> String { "marina_cut_\(host)" }

    /// The host's own firewall drops every packet in and out except on `lo` (replaced if present).
    static func partitionEverything(_ host: SandboxNetwork.Host, tools: Tools, log: String) throws {
        try nft(
            in: host.namespace,
            replacing: partitionTable,
            with: [
                "chain input { type filter hook input priority 0; policy accept; iifname != \"lo\" drop; }",
                "chain output { type filter hook output priority 0; policy accept; oifname != \"lo\" drop; }",
            ], tools: tools, log: log)
    }

    /// The controller's firewall drops every packet to and from the host's address.
    static func cutFromController(_ host: SandboxNetwork.Host, controller: SandboxNetwork.Host, tools: Tools, log: String) throws {
        try nft(
            in: controller.namespace,
            replacing: controllerCutTable(host.name),
            with: [
                "chain input { type filter hook input priority 0; policy accept; ip saddr \(host.address) drop; }",
                "chain output { type filter hook output priority 0; policy accept; ip daddr \(host.address) drop; }",
            ], tools: tools, log: log)
    }

    /// Removes both kinds of partition of `host` (a table that is not there is no error).
    static func heal(_ host: SandboxNetwork.Host, controller: SandboxNetwork.Host, tools: Tools, log: String) throws {
        try nft(in: host.namespace, replacing: partitionTable, with: nil, tools: tools, log: log)
        try nft(in: controller.namespace, replacing: controllerCutTable(host.name), with: nil, tools: tools, log: log)
    }

    /// One atomic nft transaction in `namespace`: the `inet` table `table` is created if
    /// missing, deleted, and (with `chains`) made again with exactly those chains.
    private static func nft(in namespace: String, replacing table: String, with chains: [String]?, tools: Tools, log: String) throws {
        var lines = ["table inet \(table) {}", "delete table inet \(table)"]
        if let chains { lines += ["table inet \(table) {"] + chains.map { "  " + $0 } + ["}"] }
        let file = (log as NSString).deletingLastPathComponent + "/nft-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).nft"
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let (executable, arguments) = command(tools.nft, ["-f", file], in: namespace, tools: tools)
        try run(executable, arguments, log: log, describing: "nft in \(namespace): " + lines.joined(separator: "; "))
    }

    // MARK: Running

    /// Runs a command to completion; its output is appended to `log`, and a failure throws
    /// with that output.
    static func run(_ executable: String, _ arguments: [String], log: String, describing: String? = nil) throws {
        let output = (log as NSString).deletingLastPathComponent + "/.command-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let status = try ChildProcess.run(executable, arguments, logFile: output)
        let text = ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let line = describing ?? ([(executable as NSString).lastPathComponent] + arguments).joined(separator: " ")
        append("\(line)\(status == 0 ? "" : "  => exit \(status)")\(text.isEmpty ? "" : "\n  " + text)\n", to: log)
        guard status == 0 else { throw SandboxError.setupFailed(what: line, detail: text.isEmpty ? "exit status \(status)" : text) }
    }

    private static func append(_ text: String, to path: String) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        _ = text.utf8CString.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, $0.count - 1) }
    }

    // MARK: The subnet's owner

    /// An exclusive lock, shared by every process of the machine, on one subnet: held while it
    /// is checked free and the bridge takes it.
    private static func subnetLock(_ network: SandboxNetwork) throws -> Int32 {
        let directory = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/marina-ports"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/subnet-" + network.subnet.replacingOccurrences(of: "/", with: "_") + ".lock"
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw SandboxError.directoryNotWritable(directory, reason: String(cString: strerror(errno))) }
        while flock(descriptor, LOCK_EX) != 0 && errno == EINTR {}
        return descriptor
    }

    /// What already uses the subnet on this machine: an interface with an address in it, or
    /// a route (other than the default route) that covers part of it; nil when it is free.
    static func subnetUser(_ network: SandboxNetwork) -> String? {
        let (subnet, mask) = network.subnetBits
        for (interface, address) in ipv4Addresses() where address & mask == subnet {
            return "interface \(interface) has an address in it"
        }
        for route in ipv4Routes() where route.mask != 0 {
            let common = route.mask & mask
            if route.destination & common == subnet & common { return "a route to it goes through \(route.interface)" }
        }
        return nil
    }

    /// Every IPv4 address of the root namespace's interfaces (host byte order).
    private static func ipv4Addresses() -> [(String, UInt32)] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var result = [(String, UInt32)]()
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            let value = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            result.append((String(cString: entry.pointee.ifa_name), value))
        }
        return result
    }

    /// The main IPv4 routing table, from `/proc/net/route` (little-endian hex fields).
    private static func ipv4Routes() -> [(interface: String, destination: UInt32, mask: UInt32)] {
        let text = (try? String(contentsOfFile: "/proc/net/route", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count >= 8, let destination = UInt32(fields[1], radix: 16), let mask = UInt32(fields[7], radix: 16) else { return nil }
            return (String(fields[0]), UInt32(bigEndian: destination.littleEndian), UInt32(bigEndian: mask.littleEndian))
        }
    }
}
