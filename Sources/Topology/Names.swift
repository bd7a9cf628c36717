/// The names MediaWiki's configuration accepts, checked without regular expressions.
public enum Names {
    /// `db1085` or `db1101:3317`: lowercase letters, digits, and an optional `:port`
    /// (`^([a-z]+[0-9]+)(:[0-9]+)?$`).
    public static func isInstance(_ name: String) -> Bool {
        let parts = name.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return false }
        let base = parts[0]
        let letters = base.prefix { $0 >= "a" && $0 <= "z" }
        let digits = base.dropFirst(letters.count)
        guard !letters.isEmpty, !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit) else { return false }
        if parts.count == 2 { return !parts[1].isEmpty && parts[1].allSatisfy(\.isASCIIDigit) }
        return true
    }

    /// The port written in an instance's name (`db1101:3317` → 3317), if any.
    public static func port(inInstanceName name: String) -> Int? {
        name.split(separator: ":").dropFirst().first.flatMap { Int($0) }
    }

    /// Sections, datacenters and groups: a lowercase letter then lowercase letters, digits,
    /// `-` or `_`, at most 32 characters (`s1`, `es4`, `eqiad`, `recentchanges-x`).
    public static func isSimple(_ name: String) -> Bool {
        guard let first = name.first, first >= "a" && first <= "z", name.count <= 32 else { return false }
        return name.allSatisfy { ($0 >= "a" && $0 <= "z") || $0.isASCIIDigit || $0 == "-" || $0 == "_" }
    }

    /// An IPv4 or IPv6 address in text form.
    public static func isIPAddress(_ host: String) -> Bool {
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        if octets.count == 4 {
            return octets.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigit) && (Int($0) ?? 256) <= 255 }
        }
        let groups = host.split(separator: ":", omittingEmptySubsequences: false)
        return host.contains(":") && groups.count <= 8 && host.components(separatedBy: "::").count <= 2
            && groups.allSatisfy { $0.count <= 4 && $0.allSatisfy(\.isHexDigit) }
    }
}

extension Character {
    /// One of `0`-`9` alone (not a digit carrying a combining mark, which `Int` cannot parse).
    var isASCIIDigit: Bool { isASCII && self >= "0" && self <= "9" }
}
