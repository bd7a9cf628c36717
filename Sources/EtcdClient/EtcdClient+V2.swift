#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension EtcdClient {
    /// Writes one key through etcd's **v2** API (`PUT /v2/keys/<path>`), which MediaWiki's
    /// `EtcdConfig` reads. Only for mirroring: v2 keys live apart from v3 keys and take no
    /// part in v3 transactions. etcd must run with `--enable-v2=true`.
    public func v2Put(_ path: String, _ value: String) async throws {
        try await EtcdMetrics.measure(.v2Put) { try await v2PutUnmeasured(path, value) }
    }

    private func v2PutUnmeasured(_ path: String, _ value: String) async throws {
        let trimmed = path.hasPrefix("/") ? String(path.dropFirst()) : path
        let encoded = Self.formEncode(value)
        let body = Data("value=\(encoded)".utf8)
        let headers = try authorizationHeaders()
        var attempts = [String]()
        for endpoint in endpointOrder() {
            let configuration = self.configuration
            let response: (status: Int, body: Data)
            do {
                response = try await blockingV2 {
                    try CurlRequest(
                        url: "\(endpoint)/v2/keys/\(trimmed)", body: body, headers: headers, tls: configuration.tls,
                        connectTimeout: configuration.connectTimeout, totalTimeout: configuration.requestTimeout,
                        method: "PUT", contentType: "application/x-www-form-urlencoded"
                    ).perform()
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

    /// `application/x-www-form-urlencoded` value: every byte but unreserved ASCII as %XX.
    static func formEncode(_ value: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes = [UInt8]()
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                bytes.append(byte)
            default:
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
