import Foundation
import FuzzSupport
import Observation
import StoredRecords
import Testing

@Suite("Stored observations: fuzz")
struct ObservationFuzzTests {
    @Test("random bytes and mutated observations give an observation or an error with a one-line description, never a crash")
    func observation() throws {
        var observation = Observation(
            instance: "db1002", agent: "db1002-agent", agentStartedAt: Date(timeIntervalSince1970: 1_700_000_000),
            observedAt: Date(timeIntervalSince1970: 1_700_000_010.25), reachable: true,
            replication: [
                ReplicationChannel(
                    sourceHost: "10.0.0.1", sourcePort: 3306, sourceServerID: 1001, ioThread: "Yes",
                    sqlThread: "Yes", usingGTID: "Slave_Pos", secondsBehindMaster: 0,
                    gtidIOPos: try GTIDPosition(parsing: "0-1001-100"))
            ])
        observation.serverID = 1002
        observation.readOnly = true
        observation.heartbeatLag = 0.25
        observation.gtidCurrentPos = try GTIDPosition(parsing: "0-1001-100,1-1002-7")
        let sample = String(decoding: try ObservationJSON.encode(observation), as: UTF8.self)
        #expect(try ObservationJSON.decode(Array(sample.utf8)) == observation)
        Fuzz.run(seed: 0x0B5E, sample: sample, { _ = try ObservationJSON.decode(Array($0.utf8)) }) { error, input in
            let problem = StoredJSON.describe(error, bytes: Array(input.utf8))
            #expect(!"\(error)".isEmpty && !problem.isEmpty && !problem.contains("\n"), "\(problem) \(input)")
        }
    }

    @Test("an observation holding a number JSON cannot carry is not encoded")
    func nonFinite() {
        var observation = Observation(instance: "db1002", agent: "a", agentStartedAt: Date(), observedAt: Date(), reachable: true)
        observation.heartbeatLag = .nan
        #expect(throws: EncodingError.self) { try ObservationJSON.encode(observation) }
    }
}
