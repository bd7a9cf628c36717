import Foundation
import FuzzSupport
import StoredRecords
import Testing
import Topology

@testable import TopologyStore

@Suite("Stored topology values: fuzz")
struct StoredValueFuzzTests {
    @Test("random bytes and mutated stored objects give a value or one error naming the key, never a crash")
    func storedObjects() throws {
        let instance = Instance(
            name: "db1002", host: "10.0.0.2", port: 3306, datacenter: "dc1", candidatePrimary: true, note: "n",
            sections: ["s1": Membership(pooled: true, weight: 100, percentage: 50, groups: ["dump": .init(weight: 5)])])
        let section = Section(name: "s1", primary: "db1001", datacenter: "dc1", readOnly: true, readOnlyReason: "maintenance", minReplicas: 1)
        let samples: [(UInt64, String, (String) throws -> Void)] = [
            (
                0x1257, String(decoding: try StoredJSON.encodeWithSchema(instance), as: UTF8.self),
                {
                    _ = try StoredJSON.decode(Instance.self, from: Array($0.utf8), key: "/fuzz").sections.values.map(\.effectiveWeight)
                }
            ),
            (
                0x5EC7, String(decoding: try StoredJSON.encodeWithSchema(section), as: UTF8.self),
                {
                    _ = try StoredJSON.decode(Section.self, from: Array($0.utf8), key: "/fuzz")
                }
            ),
            (
                0x4EAD, String(decoding: try StoredJSON.encode(StoredHead(schema: 1, sequence: 7)), as: UTF8.self),
                {
                    _ = try StoredJSON.decode(StoredHead.self, from: Array($0.utf8), key: "/fuzz")
                }
            ),
        ]
        for (seed, sample, decode) in samples {
            try decode(sample)
            Fuzz.run(seed: seed, rounds: 200, sample: sample, decode) { error, input in
                guard case .corrupt(let key, let problem) = error as? StoreError else {
                    Issue.record("not StoreError.corrupt: \(error) \(input)")
                    return
                }
                #expect(key == "/fuzz" && !problem.isEmpty, "\(input)")
            }
        }
    }

    @Test("a value that cannot be written as JSON throws instead of giving bytes to write")
    func encoderThrows() {
        #expect(throws: EncodingError.self) { try StoredJSON.encode(["lag": Double.nan]) }
        #expect(throws: EncodingError.self) { try StoredJSON.encodeWithSchema(["lag": Double.infinity]) }
    }
}
