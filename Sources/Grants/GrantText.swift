import Topology

/// Human text for differences and descriptions: never a hash.
enum GrantText {
    static func privileges(_ privileges: [String], on object: String) -> String {
        privileges.isEmpty ? "nothing on \(object)" : "\(privileges.joined(separator: ", ")) on \(object)"
    }

    static func limits(_ limits: ResourceLimits) -> String {
        let parts = limitClauses(limits).filter { $0.value != 0 }.map { "\($0.name) \($0.value)" }
        return parts.isEmpty ? "none" : parts.joined(separator: " ")
    }

    static func limitClauses(_ limits: ResourceLimits) -> [(name: String, value: Int)] {
        [
            ("MAX_QUERIES_PER_HOUR", limits.maxQueriesPerHour), ("MAX_UPDATES_PER_HOUR", limits.maxUpdatesPerHour),
            ("MAX_CONNECTIONS_PER_HOUR", limits.maxConnectionsPerHour), ("MAX_USER_CONNECTIONS", limits.maxUserConnections),
        ]
    }

    static func list(_ names: [String]) -> String { names.isEmpty ? "none" : names.joined(separator: ", ") }

    static func plugin(_ plugin: String?) -> String { plugin ?? "no password" }
}
