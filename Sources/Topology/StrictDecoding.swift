/// Decoding that refuses what it does not know: a field with a typo in its name is an error
/// that names the field, not a value silently ignored.
public struct AnyKey: CodingKey {
    public var stringValue: String
    public var intValue: Int?
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

/// Why a stored or imported value was refused: where, and what is wrong.
public struct SchemaError: Error, CustomStringConvertible, Equatable, Sendable {
    public var path: String
    public var problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }

    /// Turns a `DecodingError` into "at this path: this problem".
    public static func from(_ error: Error, root: String) -> SchemaError {
        if let error = error as? SchemaError { return SchemaError(path: root + "." + error.path, problem: error.problem) }
        guard let decoding = error as? DecodingError else { return SchemaError(path: root, problem: "\(error)") }
        func join(_ path: [CodingKey]) -> String {
            ([root] + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }).joined(separator: ".")
        }
        switch decoding {
        case .keyNotFound(let key, let context):
            return SchemaError(path: join(context.codingPath + [key]), problem: "is required")
        case .typeMismatch(let type, let context):
            return SchemaError(path: join(context.codingPath), problem: "must be \(describe(type))")
        case .valueNotFound(let type, let context):
            return SchemaError(path: join(context.codingPath), problem: "must be \(describe(type)), not null")
        case .dataCorrupted(let context):
            // Decoders wrap what an `init(from:)` threw, and syntax errors, in dataCorrupted.
            if let underlying = context.underlyingError {
                if underlying is SchemaError || underlying is DecodingError { return from(underlying, root: root) }
                return SchemaError(path: join(context.codingPath), problem: "is not valid YAML: \(underlying)")
            }
            return SchemaError(path: join(context.codingPath), problem: context.debugDescription)
        @unknown default:
            return SchemaError(path: root, problem: "\(decoding)")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "a whole number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default:
            let name = String(describing: type)
            if name.contains("Scalar") { return "a single value, not a list or a mapping" }
            return name.hasPrefix("Dictionary") ? "a mapping" : name.hasPrefix("Array") ? "a list" : name
        }
    }
}

extension Decoder {
    /// Throws when the object has a key that `Keys` does not list.
    public func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type, extra: [String] = []) throws {
        let known = Set(Keys.allCases.map(\.stringValue) + extra)
        let container = try container(keyedBy: AnyKey.self)
        for key in container.allKeys where !known.contains(key.stringValue) {
            let path = (codingPath + [key]).map(\.stringValue).joined(separator: ".")
            throw SchemaError(path: path, problem: "unknown field \"\(key.stringValue)\" (known: \(known.sorted().joined(separator: ", ")))")
        }
    }
}

extension Section {
    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self, extra: ["schema"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decodeIfPresent(String.self, forKey: .name) ?? "",
            primary: try c.decodeIfPresent(String.self, forKey: .primary) ?? "",
            datacenter: try c.decode(String.self, forKey: .datacenter),
            readOnly: try c.decodeIfPresent(Bool.self, forKey: .readOnly) ?? false,
            readOnlyReason: try c.decodeIfPresent(String.self, forKey: .readOnlyReason) ?? "",
            minReplicas: try c.decodeIfPresent(Int.self, forKey: .minReplicas) ?? 0,
            flavor: try c.decodeIfPresent(Flavor.self, forKey: .flavor) ?? .regular,
            omitReplicas: try c.decodeIfPresent(Bool.self, forKey: .omitReplicas) ?? false,
            allowEmpty: try c.decodeIfPresent(Bool.self, forKey: .allowEmpty) ?? false)
    }
}

extension Instance {
    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self, extra: ["schema"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decodeIfPresent(String.self, forKey: .name) ?? "",
            host: try c.decode(String.self, forKey: .host),
            port: try c.decodeIfPresent(Int.self, forKey: .port) ?? 3306,
            datacenter: try c.decode(String.self, forKey: .datacenter),
            candidatePrimary: try c.decodeIfPresent(Bool.self, forKey: .candidatePrimary) ?? false,
            note: try c.decodeIfPresent(String.self, forKey: .note) ?? "",
            sections: try c.decodeIfPresent([String: Membership].self, forKey: .sections) ?? [:])
    }
}

extension Membership {
    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            pooled: try c.decode(Bool.self, forKey: .pooled),
            weight: try c.decode(Int.self, forKey: .weight),
            percentage: try c.decodeIfPresent(Int.self, forKey: .percentage) ?? 100,
            groups: try c.decodeIfPresent([String: GroupMembership].self, forKey: .groups) ?? [:],
            needsRejoin: try c.decodeIfPresent(RejoinMark.self, forKey: .needsRejoin))
    }
}

extension RejoinMark {
    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            operation: try c.decode(String.self, forKey: .operation), newPrimary: try c.decode(String.self, forKey: .newPrimary),
            forkPoint: try c.decode(String.self, forKey: .forkPoint),
            lastKnownPosition: try c.decodeIfPresent(String.self, forKey: .lastKnownPosition))
    }
}

extension GroupMembership {
    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(pooled: try c.decodeIfPresent(Bool.self, forKey: .pooled) ?? true, weight: try c.decode(Int.self, forKey: .weight))
    }
}
