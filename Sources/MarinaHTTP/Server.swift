import Controller
import EtcdClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import MarinaViews
import NIOSSL
import Operations
import Synchronization
import Topology
import TopologyStore

#if canImport(Glibc)
    import Glibc
#endif

/// The controller's HTTP listener: the JSON API under `/api/v1` (the same views as the CLI's
/// `--json`, and the same etcd writes as its commands), `/metrics`, and the web page at `/`.
/// Every controller serves it, leader or not: reads come from etcd, and writes are requests
/// the leader takes from etcd, as the CLI's are. The API is described in `docs/openapi.yaml`.
public enum ControllerHTTP {
    /// The largest request body accepted, in bytes.
    public static let largestBody = 64 * 1024
    /// Requests answered at once; more get 503 `busy` at once. Each read takes a snapshot of
    /// etcd: a crowd of pages or scripts must not hold the threads the leader's own etcd calls
    /// (its lease keep-alive, its journal) need.
    public static let maximumInFlight = 8

    /// Checks that `listen` can be bound, before the controller campaigns: a port in use stops
    /// it at start with the key's name, rather than later with the network library's words.
    public static func checkListen(_ configuration: ControllerConfiguration.HTTP) throws {
        guard let endpoint = configuration.endpoint else {
            throw ControllerError.configuration("http.listen must be an IPv4 address and a port (got \(configuration.listen))")
        }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ControllerError.configuration("http.listen: no socket: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var on: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(endpoint.port.bigEndian)
        address.sin_addr.s_addr = inet_addr(endpoint.address)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            throw ControllerError.configuration("http.listen \(configuration.listen): cannot listen there: \(String(cString: strerror(errno)))")
        }
    }

    /// What the routes need.
    public struct Context: Sendable {
        public var store: TopologyStore
        public var etcd: EtcdClient
        public var keys: StoreKeys
        /// The name this controller leads under.
        public var controllerID: String
        public var token: AccessToken?
        public var metrics: ControllerMetrics

        public init(
            store: TopologyStore, etcd: EtcdClient, keys: StoreKeys = StoreKeys(), controllerID: String, token: AccessToken?,
            metrics: ControllerMetrics
        ) {
            self.store = store
            self.etcd = etcd
            self.keys = keys
            self.controllerID = controllerID
            self.token = token
            self.metrics = metrics
        }
    }

    /// The application to run as a service next to the controller. Reads the token and the
    /// TLS files now, so that a bad file stops the controller at start with its name.
    public static func application(
        _ configuration: ControllerConfiguration.HTTP, context: Context, logger: Logger
    ) throws -> some ApplicationProtocol {
        guard let endpoint = configuration.endpoint else {
            throw ControllerError.configuration("http.listen must be an IPv4 address and a port (got \(configuration.listen))")
        }
        let server: HTTPServerBuilder
        if let certificateFile = configuration.certificateFile, let keyFile = configuration.keyFile {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { NIOSSLCertificateSource.certificate($0) }
                let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
                server = try .tls(.http1(), tlsConfiguration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
            } catch {
                throw ControllerError.configuration("http: cannot use the certificate \(certificateFile) and key \(keyFile): \(error)")
            }
        } else {
            server = .http1()
        }
        return Application(
            router: router(context),
            server: server,
            configuration: .init(address: .hostname(endpoint.address, port: Int(endpoint.port)), serverName: "marina"),
            logger: logger)
    }

    /// Every route. Handlers throw `APIError` or `ViewProblem`; `JSONErrorMiddleware` answers
    /// both (and anything else) as `{"error": {"code", "message"}}`.
    public static func router(_ context: Context) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: ConcurrencyLimit(limit: maximumInFlight))
        let routes = Routes(context: context)

        router.get("/") { _, _ in Response.page(WebPage.html) }
        router.get("/metrics") { _, _ in
            Response.text(try await context.metrics.render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }

        let api = router.group("api/v1")
        api.get("controller") { _, _ in try await routes.controller() }
        api.get("sections") { _, _ in try await routes.sections() }
        api.get("sections/:name") { _, context in try await routes.section(try context.parameters.require("name")) }
        api.get("instances") { request, _ in try await routes.instances(section: request.uri.queryParameters["section"].map(String.init)) }
        api.get("instances/:name") { _, context in try await routes.instance(try context.parameters.require("name")) }
        api.get("status") { request, _ in try await routes.status(section: request.uri.queryParameters["section"].map(String.init)) }
        api.get("drift") { request, _ in try await routes.drift(request.uri.queryParameters) }
        api.get("operations") { request, _ in try await routes.operations(limit: try Query.limit(request.uri.queryParameters)) }
        api.get("operations/:id") { _, context in try await routes.operation(try context.parameters.require("id")) }
        api.get("history") { request, _ in try await routes.history(limit: try Query.limit(request.uri.queryParameters)) }
        api.get("config/diff") { _, _ in try await routes.diff() }

        api.post("sections/:name/switchover") { request, context in
            let body = try await routes.authorizedBody(request)
            return try await routes.switchover(section: try context.parameters.require("name"), body)
        }
        api.post("sections/:name/failover") { request, context in
            let body = try await routes.authorizedBody(request)
            return try await routes.failover(section: try context.parameters.require("name"), body)
        }
        api.post("sections/:name/failover/ack") { request, context in
            try await routes.authorizedBody(request, allowEmpty: true).allow([])
            return try await routes.acknowledgeFailover(section: try context.parameters.require("name"))
        }
        api.post("instances/:name/depool") { request, context in
            let body = try await routes.authorizedBody(request)
            return try await routes.pooling(instance: try context.parameters.require("name"), pooled: false, body)
        }
        api.post("instances/:name/pool") { request, context in
            let body = try await routes.authorizedBody(request)
            return try await routes.pooling(instance: try context.parameters.require("name"), pooled: true, body)
        }
        api.post("config/commit") { request, _ in
            let body = try await routes.authorizedBody(request)
            return try await routes.commit(body)
        }
        return router
    }
}

/// The access token of write endpoints, compared in constant time.
public struct AccessToken: Sendable {
    private let bytes: [UInt8]

    /// The token in `path`: its first line, at least 16 characters; the file must be readable
    /// by its owner only (a token others can read is no secret).
    public init(file path: String) throws {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let text = try? String(contentsOfFile: path, encoding: .utf8)
        else {
            throw ControllerError.configuration("http.token_file: cannot read \(path)")
        }
        if let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
            throw ControllerError.configuration(
                "http.token_file: \(path) is readable by others (mode \(String(mode, radix: 8))): chmod 600 it")
        }
        let token = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard token.count >= 16, !token.contains(where: \.isWhitespace) else {
            throw ControllerError.configuration("http.token_file: \(path) must hold a token of at least 16 characters, no spaces")
        }
        bytes = Array(token.utf8)
    }

    public init(_ token: String) { bytes = Array(token.utf8) }

    /// Whether `candidate` is the token: every byte is compared whatever differs first, so
    /// the time taken does not tell how much of a guess was right.
    public func matches(_ candidate: String) -> Bool {
        let given = Array(candidate.utf8)
        var difference = UInt8(given.count == bytes.count ? 0 : 1)
        for index in bytes.indices { difference |= bytes[index] ^ (index < given.count ? given[index] : 0) }
        return difference == 0
    }
}

/// An answer other than success, with its status and a stable code.
struct APIError: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    /// Validation problems, when a change was refused for breaking rules.
    var issues: [TopologyIssue]? = nil
    /// Extra headers (`WWW-Authenticate`).
    var headers: HTTPFields = [:]

    static func badRequest(_ code: String, _ message: String) -> APIError { APIError(status: .badRequest, code: code, message: message) }
}

/// Answers 503 `busy` beyond `limit` requests at once.
struct ConcurrencyLimit: RouterMiddleware {
    typealias Context = BasicRequestContext
    let limit: Int
    private let inFlight = InFlight()

    init(limit: Int) { self.limit = limit }

    final class InFlight: Sendable {
        let count = Atomic<Int>(0)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard inFlight.count.add(1, ordering: .relaxed).newValue <= limit else {
            inFlight.count.subtract(1, ordering: .relaxed)
            return Response.error(
                APIError(
                    status: .serviceUnavailable, code: "busy", message: "\(limit) requests are being answered already: retry in a moment",
                    headers: [.retryAfter: "1"]))
        }
        defer { inFlight.count.subtract(1, ordering: .relaxed) }
        return try await next(request, context)
    }
}

/// Turns every error into the JSON error body.
struct JSONErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return Response.error(error)
        } catch let problem as ViewProblem {
            let status: HTTPResponse.Status =
                switch problem.kind {
                case .notFound: .notFound
                case .badRequest: .badRequest
                case .conflict: .conflict
                }
            return Response.error(APIError(status: status, code: problem.code, message: problem.description))
        } catch let error as StoreError {
            if case .sectionBusy = error { return Response.error(APIError(status: .conflict, code: "section_busy", message: "\(error)")) }
            return Response.error(APIError(status: .serviceUnavailable, code: "store_error", message: "\(error)"))
        } catch let error as HTTPError {
            let code =
                switch error.status {
                case .notFound: "not_found"
                case .methodNotAllowed: "method_not_allowed"
                case .contentTooLarge: "body_too_large"
                default: "http_\(error.status.code)"
                }
            let message =
                error.status == .notFound
                ? "no such resource: \(request.method) \(request.uri.path)" : error.body ?? error.status.reasonPhrase
            return Response.error(APIError(status: error.status, code: code, message: message))
        } catch let error as EditError {
            // The edit names something that does not exist, or already does: refused, nothing written.
            return Response.error(APIError(status: .unprocessableContent, code: "refused", message: error.description))
        } catch let error as UnreadableRecord {
            return Response.error(APIError(status: .serviceUnavailable, code: "store_error", message: "\(error)"))
        } catch let error as EtcdError {
            return Response.error(APIError(status: .serviceUnavailable, code: "etcd_unavailable", message: "etcd: \(error)"))
        } catch {
            return Response.error(APIError(status: .internalServerError, code: "internal", message: "\(error)"))
        }
    }
}

extension Response {
    static func json(_ text: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.cacheControl] = "no-store"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    static func json<Value: Encodable>(_ value: Value, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        json(try JSONView.string(value), status: status, headers: headers)
    }

    static func text(_ text: String, contentType: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: contentType, .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// The page, with a policy that lets it reach this controller only.
    static func page(_ html: String) -> Response {
        var headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"]
        headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func error(_ error: APIError) -> Response {
        struct Body: Encodable {
            struct Detail: Encodable {
                var code: String
                var message: String
                var issues: [TopologyIssue]?
            }
            var error: Detail
        }
        let text =
            (try? JSONView.string(Body(error: .init(code: error.code, message: error.message, issues: error.issues))))
            ?? #"{"error": {"code": "internal", "message": "the error could not be encoded"}}"#
        return json(text, status: error.status, headers: error.headers)
    }
}
