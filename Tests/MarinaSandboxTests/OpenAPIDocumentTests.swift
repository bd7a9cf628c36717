import Foundation
import Testing

/// `docs/openapi.yaml` against itself and against the router: the document is a valid OpenAPI
/// 3.1 document whose schemas are valid JSON Schema and whose references resolve, and it lists
/// exactly the routes `Sources/MarinaHTTP/Server.swift` registers, so that it cannot drift
/// from the code. No server is needed; the responses themselves are checked against the
/// document by the HTTP API tests.
@Suite("OpenAPI document")
struct OpenAPIDocumentTests {
    @Test("docs/openapi.yaml is valid: every schema is JSON Schema 2020-12 and every $ref resolves")
    func documentIsValid() throws {
        let result = try OpenAPISource.runValidator(["--check"])
        #expect(result.status == 0, "validate_openapi.py --check exited \(result.status):\n\(result.output)")
        #expect(result.output.contains("GET    /api/v1/status"), "the operations listed: \(result.output)")
    }

    @Test("every route the router registers is documented, and every documented operation is a route")
    func documentMatchesTheRouter() throws {
        let routes = try OpenAPISource.routes()
        let documented = try OpenAPISource.documentedOperations()
        #expect(routes.count >= 19, "too few routes found in Server.swift (has its shape changed?): \(routes.sorted())")
        let undocumented = routes.subtracting(documented).sorted()
        let unserved = documented.subtracting(routes).sorted()
        #expect(undocumented.isEmpty, "routes of Server.swift missing from docs/openapi.yaml: \(undocumented)")
        #expect(unserved.isEmpty, "operations of docs/openapi.yaml that Server.swift does not serve: \(unserved)")
    }

    @Test("the validator fails a document with a dangling $ref, and a body that breaks the schema, naming where")
    func validatorCanFail() throws {
        let document = try String(contentsOfFile: OpenAPISource.document, encoding: .utf8)
        let broken = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: broken) }
        let dangling = document.replacingOccurrences(
            of: "$ref: \"#/components/schemas/TopologyIssue\"", with: "$ref: \"#/components/schemas/NoSuchSchema\"")
        #expect(dangling != document, "the document no longer refers to TopologyIssue: pick another schema for this test")
        try dangling.write(toFile: broken, atomically: true, encoding: .utf8)
        let check = try OpenAPISource.runValidator(["--check"], document: broken)
        #expect(check.status != 0 && check.output.contains("NoSuchSchema"), "\(check.status): \(check.output)")

        let leadership = #"{"id": "c1", "leader": {"id": "c2", "since": "2025-01-02T03:04:05.678Z"}, "leads": false}"#
        let valid = try OpenAPISource.runValidator(["GET", "/api/v1/controller", "200"], input: leadership)
        #expect(valid.status == 0 && valid.output.isEmpty, "\(valid.status): \(valid.output)")
        let wrong = try OpenAPISource.runValidator(
            ["GET", "/api/v1/controller", "200"], input: #"{"id": "c1", "leader": {"id": "c2", "since": "yesterday"}, "leads": "yes"}"#)
        #expect(wrong.status == 1, "\(wrong.status): \(wrong.output)")
        #expect(wrong.output.contains("$.leads") && wrong.output.contains("$.leader.since"), "\(wrong.output)")
        let undocumented = try OpenAPISource.runValidator(["GET", "/api/v1/controller", "418"], input: "{}")
        #expect(undocumented.status != 0 && undocumented.output.contains("does not document status 418"), "\(undocumented.output)")
    }
}

/// The package's files this suite reads, and the validator script.
enum OpenAPISource {
    static let document = packageRoot + "/docs/openapi.yaml"
    static let server = packageRoot + "/Sources/MarinaHTTP/Server.swift"
    static let validator = testScripts + "/validate_openapi.py"

    /// `METHOD /path/{param}` for every `router.get("...")`, `router.post(...)` and every
    /// `api.get(...)`, `api.post(...)` (the `/api/v1` group) in Server.swift: Hummingbird's
    /// `:name` written as OpenAPI's `{name}`.
    static func routes() throws -> Set<String> {
        let source = try String(contentsOfFile: server, encoding: .utf8)
        let groups = try groupPrefixes(source)
        let call = try Regex(#"\b(\w+)\.(get|post|put|patch|delete|head)\(\s*"([^"]*)""#)
        var routes = Set<String>()
        for match in source.matches(of: call) {
            guard let receiver = match.output[1].substring.map(String.init), let prefix = groups[receiver],
                let method = match.output[2].substring, let path = match.output[3].substring
            else { continue }
            routes.insert("\(method.uppercased()) \(join(prefix, String(path)))")
        }
        return routes
    }

    /// `router` → "", and each `let X = router.group("...")` → its prefix.
    static func groupPrefixes(_ source: String) throws -> [String: String] {
        var prefixes = ["router": ""]
        let group = try Regex(#"let\s+(\w+)\s*=\s*router\.group\(\s*"([^"]*)"\s*\)"#)
        for match in source.matches(of: group) {
            if let name = match.output[1].substring, let path = match.output[2].substring {
                prefixes[String(name)] = join("", String(path))
            }
        }
        return prefixes
    }

    /// `/api/v1` + `sections/:name` → `/api/v1/sections/{name}`.
    static func join(_ prefix: String, _ path: String) -> String {
        let components = (prefix.split(separator: "/") + path.split(separator: "/")).map { component in
            component.hasPrefix(":") ? "{\(component.dropFirst())}" : String(component)
        }
        return "/" + components.joined(separator: "/")
    }

    /// `METHOD /path` of every operation the document lists (from `validate_openapi.py --check`).
    static func documentedOperations() throws -> Set<String> {
        let result = try runValidator(["--check"])
        guard result.status == 0 else { throw DocumentInvalid(output: result.output) }
        var operations = Set<String>()
        for line in result.output.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, fields[1].hasPrefix("/"), fields[0].allSatisfy(\.isUppercase) else { continue }
            operations.insert("\(fields[0]) \(fields[1])")
        }
        return operations
    }

    struct DocumentInvalid: Error, CustomStringConvertible {
        var output: String
        var description: String { "docs/openapi.yaml is not valid:\n\(output)" }
    }

    /// Runs the validator with Debian's python3 (python3-jsonschema, python3-yaml) on
    /// `document`; standard output and error together.
    static func runValidator(_ arguments: [String], document: String = document, input: String = "") throws -> (status: Int32, output: String) {
        let run = try runPython([validator, document] + arguments, input: Data(input.utf8))
        return (run.status, String(decoding: run.output, as: UTF8.self) + run.errors)
    }
}
