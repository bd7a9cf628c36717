import Foundation
import Yams

/// A whole topology as one YAML (or JSON) document: what `marina config import` reads and
/// `export` writes. Unknown fields are refused with their path; export writes sorted keys,
/// so exporting what was imported from an exported file gives the same bytes.
///
/// ```yaml
/// schema: 1
/// datacenters: [dc1]
/// sections:
///   s1: {datacenter: dc1, primary: db1001, min_replicas: 1, ...}
/// instances:
///   db1001: {host: 10.64.0.6, port: 3306, datacenter: dc1, sections: {s1: {pooled: true, weight: 0, percentage: 100}}}
/// ```
public struct TopologyDocument: Codable, Sendable, Equatable {
    public var schema: Int
    public var datacenters: [String]
    public var sections: [String: Section]
    public var instances: [String: Instance]
    /// Section → managed accounts; absent from documents of sites that manage none.
    public var grants: [String: [String: ManagedAccount]]
    public var variables: [String: ManagedVariables]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case schema, datacenters, sections, instances, grants, variables
    }

    public init(_ topology: Topology) {
        schema = schemaVersion
        datacenters = topology.datacenters.sorted()
        sections = topology.sections
        instances = topology.instances
        grants = topology.grants
        variables = topology.variables
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(schema, forKey: .schema)
        try container.encode(datacenters, forKey: .datacenters)
        try container.encode(sections, forKey: .sections)
        try container.encode(instances, forKey: .instances)
        if !grants.isEmpty { try container.encode(grants, forKey: .grants) }
        if !variables.isEmpty { try container.encode(variables, forKey: .variables) }
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        schema = try container.decode(Int.self, forKey: .schema)
        datacenters = try container.decodeIfPresent([String].self, forKey: .datacenters) ?? []
        sections = try container.decodeIfPresent([String: Section].self, forKey: .sections) ?? [:]
        instances = try container.decodeIfPresent([String: Instance].self, forKey: .instances) ?? [:]
        grants = try container.decodeIfPresent([String: [String: ManagedAccount]].self, forKey: .grants) ?? [:]
        variables = try container.decodeIfPresent([String: ManagedVariables].self, forKey: .variables) ?? [:]
    }

    /// The topology; names left out under `sections:` and `instances:` are taken from their keys.
    public var topology: Topology {
        var sections = self.sections
        var instances = self.instances
        for key in sections.keys where sections[key]!.name.isEmpty { sections[key]!.name = key }
        for key in instances.keys where instances[key]!.name.isEmpty { instances[key]!.name = key }
        var grants = self.grants
        for (section, accounts) in grants {
            for key in accounts.keys where accounts[key]!.name.isEmpty { grants[section]![key]!.name = key }
        }
        return Topology(datacenters: Set(datacenters), sections: sections, instances: instances, grants: grants, variables: variables)
    }

    /// Parses YAML (JSON is YAML too). Throws `SchemaError` naming the path and the problem.
    public static func parse(_ text: String, source: String = "document") throws -> TopologyDocument {
        let document: TopologyDocument
        do {
            document = try YAMLDecoder().decode(TopologyDocument.self, from: text)
        } catch let error as YamlError {
            throw SchemaError(path: source, problem: "is not valid YAML: \(error)")
        } catch {
            throw SchemaError.from(error, root: source)
        }
        guard document.schema == schemaVersion else {
            throw SchemaError(path: "\(source).schema", problem: "is \(document.schema); this Marina reads schema \(schemaVersion)")
        }
        return document
    }

    /// YAML with sorted keys and every field written out.
    public func yaml() throws -> String {
        let encoder = YAMLEncoder()
        encoder.options.sortKeys = true
        return try encoder.encode(self)
    }
}
