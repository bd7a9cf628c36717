/// A configuration file that cannot be used: where, and why.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public var description: String { message }

    public init(message: String) {
        self.message = message
    }
}

extension Decoder {
    /// Throws a `ConfigurationError` naming the first key of this mapping that `Keys` does not
    /// list, with its path (`etcd.ca: unknown key (known: ...)`).
    public func refuseUnknownConfigurationKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type) throws {
        let known = Set(Keys.allCases.map(\.stringValue))
        for key in try container(keyedBy: AnyConfigurationKey.self).allKeys where !known.contains(key.stringValue) {
            let path = configurationPath(codingPath + [key])
            throw ConfigurationError(message: "\(path): unknown key (known: \(known.sorted().joined(separator: ", ")))")
        }
    }
}

extension KeyedDecodingContainer {
    /// A whole number, read as a number first so that `1.5` or `1e30` is refused naming its key
    /// (rather than as JSON that does not parse).
    public func decodeWholeIfPresent(forKey key: Key) throws -> Int? {
        guard let value = try decodeIfPresent(Double.self, forKey: key) else { return nil }
        guard value.isFinite, value.rounded() == value, abs(value) <= 1e15 else {
            throw ConfigurationError(message: "\(configurationPath(codingPath + [key])) must be a whole number (got \(value))")
        }
        return Int(value)
    }
}

/// Any key of a mapping, to find the ones a configuration does not know.
private struct AnyConfigurationKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// `instances[0].socket`: a decoding path as a person writes it.
public func configurationPath(_ path: [any CodingKey]) -> String {
    var text = ""
    for key in path {
        if let index = key.intValue ?? (key.stringValue.hasPrefix("Index ") ? Int(key.stringValue.dropFirst(6)) : nil) {
            text += "[\(index)]"
        } else {
            text += (text.isEmpty ? "" : ".") + key.stringValue
        }
    }
    return text
}
