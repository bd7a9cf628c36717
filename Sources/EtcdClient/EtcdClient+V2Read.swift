#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A node of etcd's v2 keyspace as `GET /v2/keys/<path>` answers: a value, or a directory of nodes.
public struct V2Node: Sendable, Equatable, Decodable {
    /// The whole path, with a leading `/`.
    public var key: String
    public var value: String?
    public var dir: Bool
    public var nodes: [V2Node]

    enum CodingKeys: String, CodingKey { case key, value, dir, nodes }

    public init(key: String, value: String? = nil, dir: Bool = false, nodes: [V2Node] = []) {
        self.key = key
        self.value = value
        self.dir = dir
        self.nodes = nodes
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = try c.decodeIfPresent(String.self, forKey: .key) ?? "/"
        value = try c.decodeIfPresent(String.self, forKey: .value)
        dir = try c.decodeIfPresent(Bool.self, forKey: .dir) ?? false
        nodes = try c.decodeIfPresent([V2Node].self, forKey: .nodes) ?? []
    }

    /// Every value under this node (itself included), by full path.
    public var leaves: [String: String] {
        var leaves = [String: String]()
        if let value, !dir { leaves[key] = value }
        for node in nodes { leaves.merge(node.leaves) { first, _ in first } }
        return leaves
    }
}

extension EtcdClient {
    /// Reads one key or directory through etcd's **v2** API (`GET /v2/keys/<path>`), as
    /// MediaWiki's `EtcdConfig` does; with `recursive`, a directory's whole subtree. Gives nil
    /// when the key does not exist (v2 error 100). etcd must run with `--enable-v2=true`;
    /// without it etcd answers 404 with no v2 error code, which is an error saying so.
    public func v2Get(_ path: String, recursive: Bool = false) async throws -> V2Node? {
        try await EtcdMetrics.measure(.v2Get) { try await v2GetUnmeasured(path, recursive: recursive) }
    }

    private func v2GetUnmeasured(_ path: String, recursive: Bool) async throws -> V2Node? {
        let trimmed = path.hasPrefix("/") ? String(path.dropFirst()) : path
        let headers = try authorizationHeaders()
        var attempts = [String]()
        for endpoint in endpointOrder() {
            let configuration = self.configuration
            let url = "\(endpoint)/v2/keys/\(trimmed)" + (recursive ? "?recursive=true" : "")
            let response: (status: Int, body: Data)
            do {
                response = try await blockingV2 {
                    try CurlRequest(
                        url: url, body: Data(), headers: headers, tls: configuration.tls,
                        connectTimeout: configuration.connectTimeout, totalTimeout: configuration.requestTimeout,
                        method: "GET"
                    ).perform()
                }
            } catch let failure as CurlRequest.TransportFailure {
                attempts.append("\(endpoint): \(failure.message)")
                continue
            }
            struct Answer: Decodable { var node: V2Node }
            struct Failure: Decodable {
                var errorCode: Int
                var message: String?
            }
            if response.status == 200 {
                do {
                    return try JSONDecoder().decode(Answer.self, from: response.body).node
                } catch {
                    throw EtcdError(.malformedResponse, "v2 GET \(trimmed): \(error)")
                }
            }
            if let failure = try? JSONDecoder().decode(Failure.self, from: response.body) {
                if failure.errorCode == 100 { return nil }  // key not found
                throw EtcdError(
                    .server(grpcCode: -1, httpStatus: response.status),
                    "v2 GET \(trimmed): error \(failure.errorCode) \(failure.message ?? "")")
            }
            let text = String(String(decoding: response.body.prefix(300), as: UTF8.self).filter { $0 != "\n" && $0 != "\r" })
            throw EtcdError(
                .server(grpcCode: -1, httpStatus: response.status),
                "v2 GET \(trimmed): \(text) (is etcd's v2 API on? etcd needs --enable-v2=true)")
        }
        throw EtcdError(.unavailable(attempts: attempts), "no endpoint answered the v2 GET of \(trimmed)")
    }
}
