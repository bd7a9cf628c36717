import StoredRecords

/// How observations are stored (`StoredJSON`, the codec of every record Marina keeps in etcd).
public enum ObservationJSON {
    public static func encode(_ observation: Observation) throws -> [UInt8] { try StoredJSON.encode(observation) }
    public static func decode(_ bytes: [UInt8]) throws -> Observation { try StoredJSON.decode(Observation.self, from: bytes) }
}
