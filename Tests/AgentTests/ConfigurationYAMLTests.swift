import ConfigurationFiles
import Foundation
import Testing

@testable import Agent

@Suite("The agent's YAML subset")
struct ConfigurationYAMLTests {
    func parse(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: try ConfigurationYAML.json(text))
    }

    @Test("block and flow collections, quotes, comments, numbers, booleans, null")
    func supported() throws {
        let value =
            try parse(
                """
                # comment
                a: 1            # trailing comment
                b: "x # not a comment"
                c: 'it''s'
                d: [1, "two", three]
                e: {name: db1, port: 3307}
                f:
                  - name: db1001
                    shard: s1
                  - plain
                g:
                h: true
                "i:j": 2.5
                k: "line\\nbreak"
                """) as? [String: Any]
        #expect(value?["a"] as? Int == 1)
        #expect(value?["b"] as? String == "x # not a comment")
        #expect(value?["c"] as? String == "it's")
        #expect((value?["d"] as? [Any])?.count == 3 && (value?["d"] as? [Any])?[1] as? String == "two")
        #expect((value?["e"] as? [String: Any])?["port"] as? Int == 3307)
        let list = value?["f"] as? [Any]
        #expect((list?[0] as? [String: Any])?["shard"] as? String == "s1" && list?[1] as? String == "plain")
        #expect(value?["g"] is NSNull && value?["h"] as? Bool == true && value?["i:j"] as? Double == 2.5)
        #expect(value?["k"] as? String == "line\nbreak")
    }

    @Test(
        "what it does not support is refused with the line number",
        arguments: [
            ("a: &anchor 1\n", "line 1: this YAML feature (&) is not supported here"),
            ("a:\n\t- 1\n", "line 2: tabs cannot indent YAML"),
            ("a: \"open\n", "line 1: unterminated quote"),
            ("a: [1, [2]]\n", "line 1: nested flow collections are not supported here"),
            ("a: 1\na: 2\n", "line 2: a appears twice"),
            ("a: 1\n   b: 2\n", "line 2: unexpected indentation"),
            ("just text\n", "line 1: expected `key: value`"),
            ("a: |\n  text\n", "line 1: this YAML feature (|) is not supported here"),
        ])
    func unsupported(text: String, message: String) {
        #expect(throws: ConfigurationError(message: message)) { try ConfigurationYAML.json(text) }
    }
}
