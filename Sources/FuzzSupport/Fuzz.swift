import Foundation

// Seeded fuzz inputs for the parsers' tests, shared by every test target that fuzzes one.

/// SplitMix64: a seeded generator, so that the inputs of a failing round can be produced again
/// from the seed and the round number.
public struct SeededGenerator: RandomNumberGenerator {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Inputs for the fuzz-style tests: random bytes, and a valid sample with a few random edits
/// (pieces of YAML or JSON syntax, numbers out of range, non-finite numbers inserted; slices
/// deleted; lines duplicated, swapped or cut).
public enum Fuzz {
    public static let pieces = [
        ":", ": ", " ", "-", "- ", "[", "]", "{", "}", ",", "#", "\"", "'", "\n", "\t", "  ", "&a ", "*a", "!!str ", "|", ">", "? ",
        ".nan", ".inf", "-.inf", "NaN", "1e400", "-1", "0", "1.5", "99999999999999999999", "9223372036854775807", "-9223372036854775808",
        "null", "~", "true", "[]", "{}", "é", "\u{301}", "\u{0}", "\\u0000", "💥",
    ]

    public static func bytes(_ generator: inout SeededGenerator) -> [UInt8] {
        (0..<Int.random(in: 0...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    public static func mutate(_ text: String, _ generator: inout SeededGenerator) -> String {
        var characters = Array(text)
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            let at = Int.random(in: 0...characters.count, using: &generator)
            let piece = Array(pieces.randomElement(using: &generator)!)
            switch Int.random(in: 0..<5, using: &generator) {
            case 0:
                characters.removeSubrange(at..<min(characters.count, at + Int.random(in: 1...12, using: &generator)))
            case 1:
                characters.insert(contentsOf: piece, at: at)
            case 2:
                // A value replaced: after the first `: ` from here, up to the end of its line.
                if let colon = characters[at...].firstIndex(of: ":"), colon + 1 < characters.count {
                    let end = characters[(colon + 1)...].firstIndex(of: "\n") ?? characters.count
                    characters.replaceSubrange((colon + 1)..<end, with: [" "] + piece)
                }
            default:
                var lines = String(characters).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                let line = Int.random(in: 0..<lines.count, using: &generator)
                let other = Int.random(in: 0..<lines.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: lines.insert(lines[line], at: other)
                case 1: lines.swapAt(line, other)
                default: lines.removeSubrange(min(line, other)...)
                }
                characters = Array(lines.joined(separator: "\n"))
            }
        }
        return String(characters)
    }

    /// Runs `rounds` inputs through `parse`: two in three a mutated `sample`, one in three random
    /// bytes. A round may parse or throw; `check` sees each error (with the input, to report).
    /// `MARINA_FUZZ_ROUNDS` sets another number of rounds, for a longer run by hand.
    public static func run(
        seed: UInt64, rounds: Int = 300, sample: String, _ parse: (String) throws -> Void,
        check: (any Error, String) -> Void
    ) {
        var generator = SeededGenerator(seed: seed)
        for round in 0..<(ProcessInfo.processInfo.environment["MARINA_FUZZ_ROUNDS"].flatMap { Int($0) } ?? rounds) {
            let text = round % 3 == 2 ? String(decoding: bytes(&generator), as: UTF8.self) : mutate(sample, &generator)
            do {
                try parse(text)
            } catch {
                check(error, "seed \(seed) round \(round): \(text.debugDescription)")
            }
        }
    }
}
