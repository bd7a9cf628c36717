import EtcdClient
import Testing

@Suite("etcd metrics: the operation label")
struct EtcdMetricsTests {
    @Test("each gateway path the client calls has its own label; anything else is `other`")
    func operations() {
        let expected: [String: String] = [
            "/v3/kv/range": "range", "/v3/kv/put": "put", "/v3/kv/deleterange": "delete", "/v3/kv/txn": "txn", "/v3/kv/compaction": "compact",
            "/v3/lease/grant": "lease_grant", "/v3/lease/keepalive": "lease_keepalive", "/v3/lease/revoke": "lease_revoke",
            "/v3/lease/timetolive": "lease_timetolive", "/v3/maintenance/status": "status", "/v3/watch": "watch",
            "/v3/auth/authenticate": "other", "/v3/kv/range/../../x": "other",
        ]
        for (path, label) in expected { #expect(EtcdMetrics.Operation(path: path).rawValue == label, "\(path)") }
        #expect(Set(EtcdMetrics.Operation.allCases.map(\.rawValue)).count == EtcdMetrics.Operation.allCases.count)
        let plain = EtcdMetrics.Operation.allCases.allSatisfy { $0.rawValue.allSatisfy { $0.isLowercase || $0 == "_" || $0.isNumber } }
        #expect(plain)
    }

    @Test("the duration buckets rise strictly from half a millisecond to ten seconds")
    func buckets() {
        let buckets = EtcdMetrics.durationBuckets
        let rising = zip(buckets, buckets.dropFirst()).allSatisfy { $0 < $1 }
        #expect(rising)
        #expect(buckets.first == .microseconds(500) && buckets.last == .seconds(10))
    }
}
