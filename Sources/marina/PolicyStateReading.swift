import EtcdClient
import Policy
import TopologyStore

extension TopologyStore {
    /// What the automatic depool policy remembers (empty when it never acted).
    func policyState() async throws -> PolicyState {
        guard let kv = try await etcd.value(keys.policyState) else { return PolicyState() }
        do {
            return try PolicyJSON.decode(kv.value)
        } catch {
            throw StoreError.corrupt(key: kv.key, problem: "is not the policy state: \(error)")
        }
    }
}
