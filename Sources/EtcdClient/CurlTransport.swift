import CCurl
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One HTTP POST over libcurl: the only code in Marina that calls libcurl.
///
/// A `CurlRequest` owns its easy handle and frees it in `deinit`; it is used on one thread
/// (the blocking queue that performs it) and is not `Sendable`.
final class CurlRequest {
    /// What went wrong below HTTP: the code libcurl returned and its message.
    struct TransportFailure: Error {
        var code: CURLcode
        var message: String

        /// No byte of the request reached a server, so it is safe to send it to another one.
        var requestNotSent: Bool {
            code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_SSL_CONNECT_ERROR
        }
    }

    private let handle: UnsafeMutableRawPointer
    private var headers: UnsafeMutablePointer<curl_slist>?
    private var body: [CChar]
    private var sink = ResponseSink()

    init(
        url: String, body: Data, headers extraHeaders: [String], tls: EtcdConfiguration.TLS?,
        connectTimeout: Double, totalTimeout: Double?, method: String = "POST",
        contentType: String = "application/json"
    ) throws {
        Self.globalInit()
        guard let handle = curl_easy_init() else {
            throw TransportFailure(code: CURLE_FAILED_INIT, message: "curl_easy_init returned no handle")
        }
        self.handle = handle
        self.body = Array(body).map { CChar(bitPattern: $0) }
        for header in ["Content-Type: \(contentType)", "Expect:"] + extraHeaders {
            headers = curl_slist_append(headers, header)
        }

        try set(CURLOPT_URL, url)
        try set(CURLOPT_POST, 1)
        if method != "POST" { try set(CURLOPT_CUSTOMREQUEST, method) }
        try set(CURLOPT_NOSIGNAL, 1)
        try set(CURLOPT_TCP_NODELAY, 1)
        try set(CURLOPT_TCP_KEEPALIVE, 1)
        try set(CURLOPT_CONNECTTIMEOUT_MS, Int(connectTimeout * 1000))
        if let totalTimeout { try set(CURLOPT_TIMEOUT_MS, Int(totalTimeout * 1000)) }
        try check(marina_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headers))
        try set(CURLOPT_POSTFIELDSIZE, self.body.count)
        try self.body.withUnsafeMutableBufferPointer { buffer in
            // COPYPOSTFIELDS copies the bytes into the handle, so the buffer need not outlive this call.
            try check(marina_curl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(buffer.baseAddress)))
        }
        if let tls {
            if let ca = tls.caFile { try set(CURLOPT_CAINFO, ca) }
            if let cert = tls.certificateFile { try set(CURLOPT_SSLCERT, cert) }
            if let key = tls.keyFile { try set(CURLOPT_SSLKEY, key) }
            try set(CURLOPT_SSL_VERIFYPEER, tls.verifyServer ? 1 : 0)
            try set(CURLOPT_SSL_VERIFYHOST, tls.verifyServer ? 2 : 0)
        }
    }

    deinit {
        curl_easy_cleanup(handle)
        curl_slist_free_all(headers)
    }

    /// Performs the request and returns the HTTP status and the whole body.
    func perform() throws -> (status: Int, body: Data) {
        let code = withSink { curl_easy_perform(handle) }
        guard code == CURLE_OK else { throw failure(code) }
        return (status(), Data(sink.buffer))
    }

    /// Performs a streaming request: `onLine` gets each newline-terminated message as it
    /// arrives. Returns when the server ends the stream; throws when the transport fails or
    /// `isCancelled` turns true (checked at least once a second).
    func stream(isCancelled: @escaping () -> Bool, onLine: @escaping (Data) -> Void) throws -> Int {
        sink.onLine = onLine
        sink.isCancelled = isCancelled
        try set(CURLOPT_NOPROGRESS, 0)
        try check(
            marina_curl_setopt_xferinfo_function(handle) { userdata, _, _, _, _ in
                guard let userdata else { return 0 }
                let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
                return sink.isCancelled?() == true ? 1 : 0
            })
        let code = withSink { curl_easy_perform(handle) }
        guard code == CURLE_OK else { throw failure(code) }
        return status()
    }

    private func withSink(_ body: () -> CURLcode) -> CURLcode {
        let opaque = Unmanaged.passUnretained(sink).toOpaque()
        _ = marina_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, opaque)
        _ = marina_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, opaque)
        _ = marina_curl_setopt_write_function(handle) { data, size, count, userdata in
            guard let userdata, let data else { return 0 }
            let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
            let length = size * count
            sink.receive(UnsafeRawBufferPointer(start: data, count: length))
            return length
        }
        return withExtendedLifetime(sink) { body() }
    }

    private func status() -> Int {
        var code = 0
        _ = marina_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code)
        return code
    }

    private func failure(_ code: CURLcode) -> TransportFailure {
        TransportFailure(code: code, message: String(cString: curl_easy_strerror(code)))
    }

    private func set(_ option: CURLoption, _ value: Int) throws {
        try check(marina_curl_setopt_long(handle, option, value))
    }

    private func set(_ option: CURLoption, _ value: String) throws {
        // libcurl copies string options (since 7.17), so the temporary C string may go.
        try check(value.withCString { marina_curl_setopt_string(handle, option, $0) })
    }

    private func check(_ code: CURLcode) throws {
        guard code == CURLE_OK else { throw failure(code) }
    }

    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    private static func globalInit() { _ = initialized }
}

/// Collects a response body, or splits a stream into lines for a watch.
private final class ResponseSink {
    var buffer = [UInt8]()
    var onLine: ((Data) -> Void)?
    var isCancelled: (() -> Bool)?

    func receive(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
        guard let onLine else { return }
        while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
            let line = Data(buffer[..<newline])
            buffer.removeSubrange(...newline)
            if !line.isEmpty { onLine(line) }
        }
    }
}

extension EtcdClient {
    /// The version of libcurl this program runs with.
    public static var transportVersion: String { String(cString: curl_version()) }
}
