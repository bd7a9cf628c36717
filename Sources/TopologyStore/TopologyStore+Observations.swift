import EtcdClient
import Observation

extension StoreKeys {
    /// One observation per instance, written by agents under their lease.
    public var observed: String { root + "/observed/" }
}

extension TopologyStore {
    /// Every observation the agents have published, by instance, and the revision of the read.
    /// An observation that does not decode is reported as an error naming its key.
    public func observations() async throws -> (observations: [String: Observation], revision: Int64) {
        let range = try await etcd.get(keys.observed, prefix: true)
        return (try decodeObservations(range), range.revision)
    }

    /// The observations of a range read of `observed/`.
    func decodeObservations(_ range: RangeResult) throws -> [String: Observation] {
        var observations = [String: Observation]()
        for kv in range.kvs {
            do {
                observations[String(kv.key.dropFirst(keys.observed.count))] = try ObservationJSON.decode(kv.value)
            } catch {
                throw StoreError.corrupt(key: kv.key, problem: "is not an observation: \(error)")
            }
        }
        return observations
    }
}
