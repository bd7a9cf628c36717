import BlockingIO
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A client of etcd's v3 API through its JSON gateway, over libcurl.
///
/// It knows nothing of Marina: keys are strings, values bytes. Requests go to the endpoint
/// that last answered; one that cannot be reached is skipped for the next. A request whose
/// connection breaks after it was sent is retried elsewhere only if it is a read; a write
/// then fails with `.outcomeUnknown`, because sending it again could apply it twice.
///
/// Every libcurl call runs on the client's own dispatch queue, never on Swift's cooperative
/// pool; each watch gets a thread of its own for as long as it runs.
public final class EtcdClient: Sendable {
    public let configuration: EtcdConfiguration
    private let queue: BlockingQueue
    /// Index into `configuration.endpoints` of the endpoint to try first.
    private let preferredEndpoint = Mutex(0)
    /// The auth token, when `configuration.credentials` is set and a token was obtained.
    private let token = Mutex<String?>(nil)

    public init(_ configuration: EtcdConfiguration) {
        precondition(!configuration.endpoints.isEmpty, "an etcd configuration needs at least one endpoint")
        self.configuration = configuration
        self.queue = BlockingQueue(label: "etcd \(configuration.endpoints.joined(separator: ","))", concurrent: true)
        EtcdMetrics.registerCounters()
    }

    public convenience init(endpoints: [String]) {
        self.init(EtcdConfiguration(endpoints: endpoints))
    }

    // MARK: Key-value

    /// Reads one key, or with `prefix` every key that starts with `key`, at the latest
    /// revision or at `revision`.
    /// With `keysOnly`, values come back empty (for listing large values cheaply).
    public func get(
        _ key: String, prefix: Bool = false, revision: Int64? = nil, limit: Int64? = nil,
        keysOnly: Bool = false
    ) async throws -> RangeResult {
        var body = Wire.rangeBody(key, prefix: prefix)
        if let revision { body["revision"] = .string(String(revision)) }
        if let limit { body["limit"] = .string(String(limit)) }
        if keysOnly { body["keys_only"] = true }
        let response: Wire.RangeResponse = try await call("/v3/kv/range", body, idempotent: true)
        return try response.model()
    }

    /// The value of one key, or `nil` when it does not exist.
    public func value(_ key: String) async throws -> KeyValue? {
        try await get(key).kvs.first
    }

    /// Writes one key; gives the revision of the write.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) async throws -> Int64 {
        var body: [String: JSONValue] = ["key": .string(Wire.encode64(key)), "value": .string(Wire.encode64(value))]
        if lease != 0 { body["lease"] = .string(String(lease)) }
        let response: Wire.PutResponse = try await call("/v3/kv/put", body, idempotent: false)
        return Wire.int(response.header?.revision)
    }

    @discardableResult
    public func put(_ key: String, _ value: String, lease: Int64 = 0) async throws -> Int64 {
        try await put(key, Array(value.utf8), lease: lease)
    }

    /// Deletes one key, or every key under a prefix; gives how many were deleted.
    @discardableResult
    public func delete(_ key: String, prefix: Bool = false) async throws -> Int64 {
        let response: Wire.DeleteResponse = try await call("/v3/kv/deleterange", Wire.rangeBody(key, prefix: prefix), idempotent: false)
        return Wire.int(response.deleted)
    }

    /// Runs a transaction. A compare that does not hold is reported in the result
    /// (`succeeded == false`), not thrown.
    public func transaction(_ transaction: Transaction) async throws -> TransactionResult {
        let body: [String: JSONValue] = [
            "compare": .array(transaction.compares.map(Wire.compareBody)),
            "success": .array(transaction.success.map(Wire.operationBody)),
            "failure": .array(transaction.failure.map(Wire.operationBody)),
        ]
        let readOnly = (transaction.success + transaction.failure).allSatisfy {
            if case .get = $0 { return true } else { return false }
        }
        let response: Wire.TxnResponse = try await call("/v3/kv/txn", body, idempotent: readOnly)
        let results: [KVResult] = try (response.responses ?? []).map { op in
            if let range = op.response_range { return .get(try range.model()) }
            if let put = op.response_put { return .put(revision: Wire.int(put.header?.revision)) }
            if let delete = op.response_delete_range { return .delete(deleted: Wire.int(delete.deleted)) }
            throw EtcdError(.malformedResponse, "a transaction response names no operation")
        }
        return TransactionResult(succeeded: response.succeeded ?? false, revision: Wire.int(response.header?.revision), results: results)
    }

    /// Discards history before `revision`; watches from older revisions then fail with `.compacted`.
    public func compact(_ revision: Int64, physical: Bool = false) async throws {
        let _: Wire.PutResponse = try await call(
            "/v3/kv/compaction", ["revision": .string(String(revision)), "physical": .bool(physical)], idempotent: true)
    }

    // MARK: Leases

    /// Grants a lease of `ttl` seconds. Keys put with it vanish when it expires or is revoked.
    public func grantLease(ttl: Int64) async throws -> Lease {
        let response: Wire.LeaseGrantResponse = try await call("/v3/lease/grant", ["TTL": .string(String(ttl))], idempotent: false)
        if let error = response.error, !error.isEmpty {
            throw EtcdError(.server(grpcCode: GRPCCode.failedPrecondition, httpStatus: 200), error)
        }
        return Lease(id: Wire.int(response.ID), ttl: Wire.int(response.TTL))
    }

    /// Renews a lease once. Gives the new time-to-live in seconds, or `nil` when the lease no
    /// longer exists (expired or revoked): its keys are gone, and a new lease is needed.
    public func keepAlive(_ leaseID: Int64) async throws -> Int64? {
        let response: Wire.LeaseKeepAliveResponse = try await call("/v3/lease/keepalive", ["ID": .string(String(leaseID))], idempotent: true)
        let ttl = Wire.int(response.result?.TTL)
        return ttl > 0 ? ttl : nil
    }

    /// Revokes a lease, deleting its keys at once. Gives `false` if it did not exist.
    @discardableResult
    public func revokeLease(_ leaseID: Int64) async throws -> Bool {
        do {
            let _: Wire.PutResponse = try await call("/v3/lease/revoke", ["ID": .string(String(leaseID))], idempotent: true)
            return true
        } catch let error as EtcdError where error.grpcCode == GRPCCode.notFound {
            return false
        }
    }

    /// A lease's remaining time and the keys bound to it.
    public func leaseStatus(_ leaseID: Int64) async throws -> LeaseStatus {
        let response: Wire.LeaseTimeToLiveResponse = try await call(
            "/v3/lease/timetolive", ["ID": .string(String(leaseID)), "keys": true], idempotent: true)
        let remaining = Wire.int(response.TTL)
        let keys = try (response.keys ?? []).map { String(decoding: try Wire.decode64($0), as: UTF8.self) }
        return LeaseStatus(id: leaseID, remaining: remaining >= 0 ? remaining : nil, granted: Wire.int(response.grantedTTL), keys: keys)
    }

    // MARK: Cluster

    /// The server version of the first endpoint that answers, and the store revision.
    public func status() async throws -> (version: String, revision: Int64) {
        struct StatusResponse: Decodable {
            var header: Wire.Header?
            var version: String?
        }
        let response: StatusResponse = try await call("/v3/maintenance/status", [:], idempotent: true)
        return (response.version ?? "", Wire.int(response.header?.revision))
    }

    // MARK: Requests

    /// Runs a blocking curl request on the client's queue (for the v2 mirror).
    func blockingV2(_ body: @escaping @Sendable () throws -> (status: Int, body: Data)) async throws -> (status: Int, body: Data) {
        try await queue.run(body)
    }

    /// Sends one unary request and decodes its answer, failing over between endpoints.
    func call<Response: Decodable>(_ path: String, _ body: [String: JSONValue], idempotent: Bool) async throws -> Response {
        let payload = try JSONValue.object(body).data()
        return try await EtcdMetrics.measure(EtcdMetrics.Operation(path: path)) {
            let data = try await queue.run { [self] in try perform(path, payload, idempotent: idempotent) }
            do {
                return try JSONDecoder().decode(Response.self, from: data)
            } catch {
                throw EtcdError(.malformedResponse, "\(path): \(error)")
            }
        }
    }

    /// Blocking: runs on `queue`.
    private func perform(_ path: String, _ payload: Data, idempotent: Bool, reauthenticated: Bool = false) throws -> Data {
        let headers = try authorizationHeaders()
        do {
            return try send(path, payload, headers: headers, idempotent: idempotent)
        } catch let error as EtcdError where error.grpcCode == GRPCCode.unauthenticated && configuration.credentials != nil && !reauthenticated {
            // The token expired or the server restarted: get a new one, once.
            token.withLock { $0 = nil }
            return try perform(path, payload, idempotent: idempotent, reauthenticated: true)
        }
    }

    private func send(_ path: String, _ payload: Data, headers: [String], idempotent: Bool) throws -> Data {
        let endpoints = configuration.endpoints
        let first = preferredEndpoint.withLock { $0 }
        var attempts = [String]()
        for offset in 0..<endpoints.count {
            let index = (first + offset) % endpoints.count
            let endpoint = endpoints[index]
            let response: (status: Int, body: Data)
            do {
                let request = try CurlRequest(
                    url: endpoint + path, body: payload, headers: headers, tls: configuration.tls,
                    connectTimeout: configuration.connectTimeout, totalTimeout: configuration.requestTimeout)
                response = try request.perform()
            } catch let failure as CurlRequest.TransportFailure {
                guard failure.requestNotSent || idempotent else {
                    throw EtcdError(.outcomeUnknown(endpoint: endpoint, reason: failure.message), "\(path)")
                }
                attempts.append("\(endpoint): \(failure.message)")
                continue
            }
            if response.status == 200 {
                preferredEndpoint.withLock { $0 = index }
                return response.body
            }
            let error = Self.serverError(response.status, response.body)
            // A member without a leader has applied nothing: another member may have one.
            if error.grpcCode == GRPCCode.unavailable {
                attempts.append("\(endpoint): \(error.message)")
                continue
            }
            throw error
        }
        throw EtcdError(.unavailable(attempts: attempts), "no endpoint of \(endpoints.count) answered \(path)")
    }

    static func serverError(_ status: Int, _ body: Data) -> EtcdError {
        let decoded = try? JSONDecoder().decode(Wire.ErrorResponse.self, from: body)
        let message = decoded?.message ?? decoded?.error ?? String(decoding: body.prefix(200), as: UTF8.self)
        return EtcdError(.server(grpcCode: decoded?.code ?? -1, httpStatus: status), message)
    }

    /// The `Authorization` header, authenticating first when credentials are configured.
    /// Blocking: runs on `queue` or a watch's thread.
    func authorizationHeaders() throws -> [String] {
        guard let credentials = configuration.credentials else { return [] }
        if let current = token.withLock({ $0 }) { return ["Authorization: \(current)"] }
        let payload = try JSONValue.object(["name": .string(credentials.username), "password": .string(credentials.password)]).data()
        let data = try send("/v3/auth/authenticate", payload, headers: [], idempotent: true)
        guard let fresh = (try? JSONDecoder().decode(Wire.AuthenticateResponse.self, from: data))?.token, !fresh.isEmpty else {
            throw EtcdError(.malformedResponse, "authentication returned no token")
        }
        token.withLock { $0 = fresh }
        return ["Authorization: \(fresh)"]
    }

    func forgetToken() {
        token.withLock { $0 = nil }
    }

    /// The endpoint to try first, and a way to move on from it.
    func endpointOrder() -> [String] {
        let endpoints = configuration.endpoints
        let first = preferredEndpoint.withLock { $0 }
        return (0..<endpoints.count).map { endpoints[(first + $0) % endpoints.count] }
    }
}
