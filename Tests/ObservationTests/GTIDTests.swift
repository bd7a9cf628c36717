import Foundation
import Observation
import Testing

@Suite("GTID positions")
struct GTIDTests {
    @Test("parses what the server prints, in any domain order, and prints it back sorted")
    func parse() throws {
        let position = try GTIDPosition(parsing: "1-2001-7,0-1001-42")
        #expect(position[0] == GTID(domain: 0, server: 1001, sequence: 42))
        #expect(position[1] == GTID(domain: 1, server: 2001, sequence: 7))
        #expect(position.description == "0-1001-42,1-2001-7")
        #expect(try GTIDPosition(parsing: "").isEmpty)
        #expect(
            try GTIDPosition(parsing: " 0-1-1 , 4294967295-4294967295-18446744073709551615 ").description
                == "0-1-1,4294967295-4294967295-18446744073709551615")
    }

    @Test(
        "malformed positions are errors that name them",
        arguments: [
            "0-1", "0-1-2-3", "a-1-2", "0-1-", "-0-1-2", "0-1-2,", ",0-1-2", "0-1-2,0-3-4", "0-1-+2", "0-1-2\u{0}", "0–1–2",
            "4294967296-1-1", "0-1-18446744073709551616", "0-1-2;DROP TABLE x", "٣-1-2", "0 -1-2",
        ])
    func malformed(_ text: String) {
        do {
            let parsed = try GTIDPosition(parsing: text)
            Issue.record("accepted \(text.debugDescription) as \(parsed)")
        } catch {
            #expect(error is GTIDError)
            #expect("\(error)".hasPrefix("malformed GTID position \(text.debugDescription)"))
        }
    }

    @Test("comparison is per domain: contains, ahead (errant), behind")
    func compare() throws {
        let primary = try GTIDPosition(parsing: "0-1001-100,1-2001-50")
        let caughtUp = try GTIDPosition(parsing: "0-1001-100,1-2001-50")
        let lagging = try GTIDPosition(parsing: "0-1001-90,1-2001-50")
        let errant = try GTIDPosition(parsing: "0-1001-100,1-2001-50,2-1002-3")
        let errantSameDomain = try GTIDPosition(parsing: "0-1002-101,1-2001-50")
        #expect(caughtUp.contains(primary) && primary.contains(caughtUp))
        #expect(!lagging.contains(primary) && primary.contains(lagging))
        #expect(lagging.behind(primary) == [GTID(domain: 0, server: 1001, sequence: 100)])
        #expect(errant.contains(primary))
        #expect(errant.ahead(of: primary) == [GTID(domain: 2, server: 1002, sequence: 3)])
        #expect(errantSameDomain.ahead(of: primary) == [GTID(domain: 0, server: 1002, sequence: 101)])
        #expect(caughtUp.ahead(of: primary).isEmpty)
        #expect(GTIDPosition().contains(GTIDPosition()))
        #expect(!GTIDPosition().contains(primary))
    }

    @Test("encodes as the server's text and refuses a malformed one when decoding")
    func codable() throws {
        let position = try GTIDPosition(parsing: "0-1-5")
        let data = try JSONEncoder().encode(["p": position])
        #expect(String(decoding: data, as: UTF8.self) == #"{"p":"0-1-5"}"#)
        #expect(try JSONDecoder().decode([String: GTIDPosition].self, from: data)["p"] == position)
        #expect(throws: GTIDError.self) { try JSONDecoder().decode([String: GTIDPosition].self, from: Data(#"{"p":"x"}"#.utf8)) }
    }
}
