import Foundation

extension EtcdClient {
    /// Writes one key through etcd's **v2** API (`PUT /v2/keys/<path>`), which MediaWiki's
    /// `EtcdConfig` reads. Only for mirroring: v2 keys live apart from v3 keys and take no
    /// part in v3 transactions. etcd must run with `--enable-v2=true`.
    public func v2Put(_ path: String, _ value: String) async throws {
        let trimmed = path.hasPrefix("/") ? String(path.dropFirst()) : path
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encoded = value.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
        let body = Data("value=\(encoded)".utf8)
        let headers = try authorizationHeaders()
        var attempts = [String]()
        for endpoint in endpointOrder() {
            let configuration = self.configuration
            let response: (status: Int, body: Data)
            do {
                response = try await blockingV2 {
                    try CurlRequest(url: "\(endpoint)/v2/keys/\(trimmed)", body: body, headers: headers, tls: configuration.tls,
                                    connectTimeout: configuration.connectTimeout, totalTimeout: configuration.requestTimeout,
                                    method: "PUT", contentType: "application/x-www-form-urlencoded").perform()
                }
            } catch let failure as CurlRequest.TransportFailure {
                attempts.append("\(endpoint): \(failure.message)")
                continue
            }
            guard response.status == 200 || response.status == 201 else {
                let message = String(decoding: response.body.prefix(300), as: UTF8.self)
                throw EtcdError(.server(grpcCode: -1, httpStatus: response.status), "v2 PUT \(trimmed): \(message)")
            }
            return
        }
        throw EtcdError(.unavailable(attempts: attempts), "no endpoint answered the v2 PUT of \(trimmed)")
    }
}
