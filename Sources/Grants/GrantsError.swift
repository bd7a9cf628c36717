/// An account Marina cannot read or import: what it holds that Marina does not manage, or a
/// line it cannot parse. The message names the account and never holds a secret.
public struct GrantsError: Error, CustomStringConvertible, Sendable, Equatable {
    /// `'user'@'host'`, a role's name, or a user's name (import).
    public var account: String
    public var message: String

    public init(account: String, message: String) {
        self.account = account
        self.message = message
    }

    public var description: String { "\(account): \(message)" }
}
