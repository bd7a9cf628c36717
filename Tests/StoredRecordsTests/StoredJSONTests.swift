import Foundation
import StoredRecords
import Testing

@Suite("StoredJSON: the codec of Marina's records in etcd")
struct StoredJSONTests {
    struct Record: Codable, Equatable {
        var name: String
        var at: Date
    }

    @Test("sorted keys, slashes as they are, times with milliseconds; times in whole seconds are read too")
    func format() throws {
        let record = Record(name: "/marina/v1", at: Date(timeIntervalSince1970: 1_800_000_000.25))
        let bytes = try StoredJSON.encode(record)
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"at":"2027-01-15T08:00:00.250Z","name":"/marina/v1"}"#)
        #expect(try StoredJSON.decode(Record.self, from: bytes) == record)
        let older = Array(#"{"at":"2027-01-15T08:00:00Z","name":"x"}"#.utf8)
        #expect(try StoredJSON.decode(Record.self, from: older).at == Date(timeIntervalSince1970: 1_800_000_000))
    }

    @Test("a schema is added beside the fields, and checked when read, naming the key")
    func schema() throws {
        let bytes = try StoredJSON.encode(Record(name: "a", at: Date(timeIntervalSince1970: 0)), addingSchema: 1)
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"at":"1970-01-01T00:00:00.000Z","name":"a","schema":1}"#)
        #expect(try StoredJSON.decode(Record.self, from: bytes, key: "/k", schema: 1).name == "a")
        #expect(throws: UnreadableValue(key: "/k", problem: "has schema 1; this Marina reads schema 2")) {
            try StoredJSON.decode(Record.self, from: bytes, key: "/k", schema: 2)
        }
        #expect(throws: UnreadableValue(key: "/k", problem: "is not a JSON object: {not json")) {
            try StoredJSON.decode(Record.self, from: Array("{not json".utf8), key: "/k", schema: 1)
        }
        #expect(throws: UnreadableValue(key: "/k", problem: "name is missing")) {
            try StoredJSON.decode(Record.self, from: Array(#"{"schema":1,"at":"1970-01-01T00:00:00Z"}"#.utf8), key: "/k", schema: 1)
        }
    }

    @Test("a number JSON cannot carry is not encoded")
    func notFinite() {
        #expect(throws: EncodingError.self) { try StoredJSON.encode(["lag": Double.nan]) }
        #expect(throws: EncodingError.self) { try StoredJSON.encode(["lag": Double.infinity], addingSchema: 1) }
    }
}
