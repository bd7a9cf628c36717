/// How MariaDB compares a global system variable's value: the text a DBA writes (`2`, `ON`,
/// `64M`, `'STRICT_TRANS_TABLES'`) against what the server reports (`2.000000`, `1`,
/// `67108864`, `STRICT_TRANS_TABLES`). Shared by the agent (what goes into its option file)
/// and drift (what differs from the committed value), so that both judge alike.
///
/// Two values are the same when, after trimming blanks and one pair of matching quotes:
/// - they are equal ignoring case (enums: `ROW` and `row`);
/// - both are numbers of equal value, a number taking `ON`/`TRUE` as 1 and `OFF`/`FALSE` as 0,
///   and a whole number a `K`, `M`, `G`, `T`, `P` or `E` suffix (powers of 1024, as option files
///   read them): `2` and `2.000000`, `ON` and `1`, `64M` and `67108864`;
/// - both are lists of flags (one of them has a comma) holding the same flags in any order,
///   ignoring case: `sql_mode` as the server reorders it.
public enum SystemVariableValue {
    public static func same(_ left: String, _ right: String) -> Bool {
        let (a, b) = (unquoted(left), unquoted(right))
        if a.lowercased() == b.lowercased() { return true }
        if let x = number(a), let y = number(b) {
            return x == y || abs(x - y) <= 1e-9 * max(1, abs(x), abs(y))
        }
        if a.contains(",") || b.contains(",") { return flags(a) == flags(b) }
        return false
    }

    /// The value without surrounding blanks and one pair of matching quotes.
    public static func unquoted(_ text: String) -> String {
        let trimmed = trimmedBlanks(text)
        if trimmed.count >= 2, let first = trimmed.first, first == "'" || first == "\"", trimmed.last == first {
            return String(trimmed.dropFirst().dropLast())
        }
        return trimmed
    }

    /// The value as a number, or nil when it is not one.
    static func number(_ text: String) -> Double? {
        switch text.uppercased() {
        case "ON", "TRUE": return 1
        case "OFF", "FALSE": return 0
        default: break
        }
        if let value = Double(text), value.isFinite { return value }
        let multipliers: [Character: Double] = ["K": 0x1p10, "M": 0x1p20, "G": 0x1p30, "T": 0x1p40, "P": 0x1p50, "E": 0x1p60]
        guard let last = text.uppercased().last, let multiplier = multipliers[last], let whole = Int64(text.dropLast()) else {
            return nil
        }
        return Double(whole) * multiplier
    }

    private static func flags(_ text: String) -> Set<String> {
        Set(text.split(separator: ",").map { trimmedBlanks(String($0)).uppercased() }.filter { !$0.isEmpty })
    }

    private static func trimmedBlanks(_ text: String) -> String {
        var characters = Substring(text)
        while let first = characters.first, first.isWhitespace { characters.removeFirst() }
        while let last = characters.last, last.isWhitespace { characters.removeLast() }
        return String(characters)
    }
}
