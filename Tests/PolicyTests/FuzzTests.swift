import Foundation
import FuzzSupport
import Observation
import StoredRecords
import Testing

@testable import Policy

@Suite("The stored policy state: fuzz")
struct PolicyStateFuzzTests {
    @Test("random bytes and mutated states give a state or an error with a description, never a crash")
    func state() throws {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let state = PolicyState(
            managed: [
                "db1002": .init(
                    section: "s1", phase: .repooling, step: 1, since: now, originalPercentage: 100,
                    reason: "lag 7 s", depooledAt: now, expectedPooled: true, expectedPercentage: 50)
            ],
            refusals: ["db1003": .init(section: "s1", action: "depool", reason: "too many", since: now)],
            lastChange: ["s1": now])
        let sample = String(decoding: try PolicyJSON.encode(state), as: UTF8.self)
        #expect(try PolicyJSON.decode(Array(sample.utf8)) == state)
        Fuzz.run(seed: 0x9011C7, sample: sample, { _ = try PolicyJSON.decode(Array($0.utf8)) }) { error, input in
            #expect(!StoredJSON.describe(error, bytes: Array(input.utf8)).isEmpty, "\(input)")
        }
    }
}
