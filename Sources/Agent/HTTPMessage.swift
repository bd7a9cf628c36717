import ConfigurationFiles

/// The request line and headers of one HTTP/1.1 request, as the agent's health listener reads
/// them (`HealthListener`): no body, no keep-alive, nothing but what a load balancer's check or
/// a Prometheus scrape sends.
struct HTTPRequestHead: Sendable, Equatable {
    var method: String
    /// The path of the target, without its query (`/replica`).
    var path: String
    /// The query's `name=value` pairs in order (`lag=5`), undecoded.
    var query: [QueryItem]
    var headers: [Header]

    struct QueryItem: Sendable, Equatable {
        var name: String
        var value: String?
    }

    struct Header: Sendable, Equatable {
        var name: String
        var value: String
    }

    /// What the bytes read so far make.
    enum Parse: Sendable, Equatable {
        /// Not all of the head yet: read more.
        case incomplete
        case complete(HTTPRequestHead)
        /// Refused with this status and reason; nothing more is read.
        case refused(HTTPStatus, String)
    }

    /// The most bytes a request line and its headers may take together.
    static let limit = 8192

    /// Parses the head of a request from the first bytes of a connection. Lines end in CRLF (a
    /// bare LF is taken too); the head ends at the first empty line. Anything but an origin-form
    /// GET-like request line and `name: value` headers of printable ASCII is refused.
    static func parse(_ bytes: [UInt8], limit: Int = HTTPRequestHead.limit) -> Parse {
        guard let end = headEnd(bytes) else {
            if bytes.count >= limit { return .refused(.headerFieldsTooLarge, "the request line and headers exceed \(limit) bytes") }
            if let invalid = bytes.first(where: { !isAllowed($0) }) {
                return .refused(.badRequest, "byte \(invalid) is not allowed in a request line or header")
            }
            return .incomplete
        }
        guard end <= limit else { return .refused(.headerFieldsTooLarge, "the request line and headers exceed \(limit) bytes") }
        if let invalid = bytes[..<end].first(where: { !isAllowed($0) }) {
            return .refused(.badRequest, "byte \(invalid) is not allowed in a request line or header")
        }
        let text = String(decoding: bytes[..<end], as: UTF8.self)
        // "\r\n" is one Character in Swift: split on both it and a bare "\n".
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\r\n" || $0 == "\n" })
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let requestLine = lines.first, !requestLine.isEmpty else { return .refused(.badRequest, "no request line") }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .refused(.badRequest, "the request line is not METHOD TARGET HTTP/1.1") }
        let (method, target, version) = (String(parts[0]), parts[1], parts[2])
        guard !method.isEmpty, method.utf8.allSatisfy(isTokenByte) else { return .refused(.badRequest, "the method is not a token") }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            return .refused(.versionNotSupported, "only HTTP/1.1 and HTTP/1.0 are served")
        }
        guard target.hasPrefix("/") else { return .refused(.badRequest, "the target must be a path such as /primary") }
        var headers = [Header]()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                return .refused(.badRequest, "a header line is not `name: value`")
            }
            let name = line[..<colon]
            guard name.utf8.allSatisfy(isTokenByte) else { return .refused(.badRequest, "a header name is not a token") }
            let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            headers.append(Header(name: String(name), value: String(value.reversed().drop { $0 == " " || $0 == "\t" }.reversed())))
        }
        let path: Substring
        var query = [QueryItem]()
        if let mark = target.firstIndex(of: "?") {
            path = target[..<mark]
            for pair in target[target.index(after: mark)...].split(separator: "&") {
                if let equals = pair.firstIndex(of: "=") {
                    query.append(QueryItem(name: String(pair[..<equals]), value: String(pair[pair.index(after: equals)...])))
                } else {
                    query.append(QueryItem(name: String(pair), value: nil))
                }
            }
        } else {
            path = target
        }
        return .complete(HTTPRequestHead(method: method, path: String(path), query: query, headers: headers))
    }

    /// The index just past the empty line that ends the head, if the bytes hold one.
    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        var index = 0
        while index < bytes.count {
            if bytes[index] == 10 {
                if index + 1 < bytes.count, bytes[index + 1] == 10 { return index + 2 }
                if index + 2 < bytes.count, bytes[index + 1] == 13, bytes[index + 2] == 10 { return index + 3 }
            }
            index += 1
        }
        return nil
    }

    /// Printable ASCII, space, tab, CR and LF.
    private static func isAllowed(_ byte: UInt8) -> Bool { (32...126).contains(byte) || byte == 9 || byte == 10 || byte == 13 }

    /// RFC 9110's `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

/// The statuses the health listener answers with.
struct HTTPStatus: Sendable, Equatable, CustomStringConvertible {
    var code: Int
    var phrase: String

    static let ok = HTTPStatus(code: 200, phrase: "OK")
    static let badRequest = HTTPStatus(code: 400, phrase: "Bad Request")
    static let notFound = HTTPStatus(code: 404, phrase: "Not Found")
    static let methodNotAllowed = HTTPStatus(code: 405, phrase: "Method Not Allowed")
    static let requestTimeout = HTTPStatus(code: 408, phrase: "Request Timeout")
    static let headerFieldsTooLarge = HTTPStatus(code: 431, phrase: "Request Header Fields Too Large")
    static let internalServerError = HTTPStatus(code: 500, phrase: "Internal Server Error")
    static let serviceUnavailable = HTTPStatus(code: 503, phrase: "Service Unavailable")
    static let versionNotSupported = HTTPStatus(code: 505, phrase: "HTTP Version Not Supported")

    var description: String { "\(code) \(phrase)" }
}

/// One answer of the health listener: always `Connection: close` and a `Content-Length`.
struct HTTPResponse: Sendable, Equatable {
    var status: HTTPStatus
    var contentType: String
    var body: [UInt8]
    var headers: [HTTPRequestHead.Header] = []

    init(status: HTTPStatus, contentType: String = "application/json", body: [UInt8], headers: [HTTPRequestHead.Header] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    /// A JSON error body `{"error": reason}`.
    static func error(_ status: HTTPStatus, _ reason: String, headers: [HTTPRequestHead.Header] = []) -> HTTPResponse {
        HTTPResponse(status: status, body: Array(("{\"error\":" + JSONText.quoted(reason) + "}\n").utf8), headers: headers)
    }

    /// The bytes on the wire; a response to HEAD has the same headers and no body.
    func serialized(head: Bool = false) -> [UInt8] {
        var text = "HTTP/1.1 \(status.code) \(status.phrase)\r\n"
        text += "Content-Type: \(contentType)\r\n"
        text += "Content-Length: \(body.count)\r\n"
        text += "Cache-Control: no-store\r\n"
        text += "Connection: close\r\n"
        for header in headers { text += "\(header.name): \(header.value)\r\n" }
        text += "\r\n"
        return Array(text.utf8) + (head ? [] : body)
    }
}
