#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What the leading controller last read of one instance's managed accounts, compared with
/// what is committed (`observed-grants/<instance>`): the differences only, never a hash.
public struct ObservedGrants: Codable, Sendable, Equatable {
    public var schema: Int = 1
    public var instance: String
    public var section: String
    public var readAt: Date
    /// The commit the accounts were compared with.
    public var sequence: Int
    public var differences: [AccountDrift]
    /// Why the accounts could not be read, if they could not.
    public var error: String?

    public init(instance: String, section: String, readAt: Date, sequence: Int, differences: [AccountDrift], error: String? = nil) {
        self.instance = instance
        self.section = section
        self.readAt = readAt
        self.sequence = sequence
        self.differences = differences
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case schema, instance, section
        case readAt = "read_at"
        case sequence, differences, error
    }
}

/// One difference of a managed account: which account, what kind of difference, and both
/// sides in words (a secret never: authentication differs by plugin, or says only that it differs).
public struct AccountDrift: Codable, Sendable, Equatable, Hashable {
    public var account: String
    /// `missing`, `unexpected`, `authentication`, `tls`, `limits`, `privileges`, `roles`, `default-role`.
    public var kind: String
    public var expected: String
    public var observed: String

    public init(account: String, kind: String, expected: String, observed: String) {
        self.account = account
        self.kind = kind
        self.expected = expected
        self.observed = observed
    }
}
