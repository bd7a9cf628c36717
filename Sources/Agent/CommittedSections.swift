import EtcdClient
import StoredRecords

/// Every section's committed primary and pooled replicas with their effective weights, from the
/// generated configurations in etcd (`generated/<datacenter>`): what the applications read, so
/// what a load balancer must agree with.
struct CommittedSections: Sendable, Equatable {
    struct Section: Sendable, Equatable {
        var primary: String?
        /// Each pooled replica's effective weight (a depooled replica is absent).
        var replicas: [String: Int]
    }

    var sections: [String: Section] = [:]

    init() {}

    init(_ generated: [KeyValue]) throws {
        for kv in generated {
            let stored = try StoredJSON.decode(PrimaryDirectory.StoredLoads.self, from: kv.value)
            for (name, loads) in stored.config.sectionLoads {
                // The generated configuration names section s3 `DEFAULT`, as MediaWiki does.
                let section = name == "DEFAULT" ? "s3" : name
                var entry = sections[section] ?? Section(primary: nil, replicas: [:])
                if let primary = loads.first?.keys.first { entry.primary = primary }
                for group in loads.dropFirst() {
                    for (instance, weight) in group { entry.replicas[instance] = max(entry.replicas[instance] ?? 0, weight) }
                }
                if let primary = entry.primary { entry.replicas[primary] = nil }
                sections[section] = entry
            }
        }
    }
}
