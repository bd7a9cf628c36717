import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Operations
import Testing
import TopologyStore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The controller's HTTP API against a sandbox: each read gives what the CLI's `--json` gives,
/// each write is the CLI's request, the token guards writes, bad input changes nothing, and
/// every response is what `docs/openapi.yaml` documents.
@Suite("HTTP API", .serialized)
struct HTTPAPITests {
    @Test("every read endpoint answers what the CLI's --json prints, as the OpenAPI document describes it")
    func readsMirrorTheCLI() async throws {
        let sandbox = try await TestServers.privateSandbox("api-reads", replicas: 2, controller: true, agentInterval: 0.2)
        defer { TestServers.stop(sandbox) }
        let api = try APIClient(sandbox)
        // One finished operation, so that the operation views have something to show.
        let switched = try switchover(sandbox, ["s1", "--to", "db1002", "--reason", "api test", "--yes"])
        #expect(switched.status == 0, "\(switched.stdout)\(switched.stderr)")
        let id = try #require(try await OperationsViewProbe.latest(sandbox))

        // (endpoint, CLI arguments, path template in the OpenAPI document)
        let pairs: [(String, [String], String)] = [
            ("/api/v1/sections", ["section", "list"], "/api/v1/sections"),
            ("/api/v1/sections/s1", ["section", "show", "s1"], "/api/v1/sections/{name}"),
            ("/api/v1/instances", ["instance", "list"], "/api/v1/instances"),
            ("/api/v1/instances?section=s1", ["instance", "list", "--section", "s1"], "/api/v1/instances"),
            ("/api/v1/instances/db1002", ["instance", "show", "db1002"], "/api/v1/instances/{name}"),
            ("/api/v1/status", ["status"], "/api/v1/status"),
            ("/api/v1/status?section=s1", ["status", "s1"], "/api/v1/status"),
            ("/api/v1/drift", ["drift"], "/api/v1/drift"),
            ("/api/v1/operations?limit=5", ["operation", "list", "--limit", "5"], "/api/v1/operations"),
            ("/api/v1/operations/\(id)", ["operation", "show", id], "/api/v1/operations/{id}"),
            ("/api/v1/history?limit=3", ["config", "history", "--limit", "3"], "/api/v1/history"),
            ("/api/v1/config/diff", ["config", "diff"], "/api/v1/config/diff"),
        ]
        for (path, arguments, template) in pairs {
            let response = try await api.get(path)
            #expect(response.status == 200, "\(path): \(response.status) \(response.text)")
            let cli = try runMarina(arguments + ["--json"], environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
            #expect(cli.status == 0, "marina \(arguments.joined(separator: " ")): \(cli.stderr)")
            #expect(
                try stable(response.body) == stable(Data(cli.stdout.utf8)),
                "\(path) differs from marina \(arguments.joined(separator: " ")) --json:\n\(response.text)\n---\n\(cli.stdout)")
            try OpenAPIDocument.validate(method: "GET", path: template, status: response.status, body: response.body)
        }

        let leadership = try await api.get("/api/v1/controller")
        let who = try #require(try JSONSerialization.jsonObject(with: leadership.body) as? [String: Any])
        #expect(who["id"] as? String == "sandbox-controller" && who["leads"] as? Bool == true, "\(leadership.text)")
        try OpenAPIDocument.validate(method: "GET", path: "/api/v1/controller", status: 200, body: leadership.body)

        // Errors: a stable code, a message naming the problem, the documented status.
        for (path, status, code, template) in [
            ("/api/v1/sections/s9", 404, "unknown_section", "/api/v1/sections/{name}"),
            ("/api/v1/instances/db9999", 404, "unknown_instance", "/api/v1/instances/{name}"),
            ("/api/v1/operations/nope", 404, "unknown_operation", "/api/v1/operations/{id}"),
            ("/api/v1/operations?limit=0", 400, "invalid_limit", "/api/v1/operations"),
            ("/api/v1/drift?max_lag=nan", 400, "invalid_threshold", "/api/v1/drift"),
            ("/api/v1/status?section=s9", 404, "unknown_section", "/api/v1/status"),
        ] {
            let response = try await api.get(path)
            #expect(response.status == status, "\(path): \(response.status) \(response.text)")
            #expect(try errorCode(response.body) == code, "\(path): \(response.text)")
            try OpenAPIDocument.validate(method: "GET", path: template, status: response.status, body: response.body)
        }
    }

    @Test("a switchover requested over HTTP with the token runs and is journaled; without it, 401 and nothing is written")
    func switchoverOverHTTP() async throws {
        let sandbox = try await TestServers.privateSandbox("api-switch", replicas: 2, controller: true, agentInterval: 0.2)
        defer { TestServers.stop(sandbox) }
        let api = try APIClient(sandbox)
        let request = #"{"to": "db1002", "reason": "moved over HTTP", "author": "dba@example"}"#

        // Without the token, and with a wrong one: 401, and no key of operations, requests or
        // the source of truth changed.
        let before = try await writableKeys(sandbox)
        for token in [nil, "not-the-token-at-all"] {
            let refused = try await api.post("/api/v1/sections/s1/switchover", body: request, token: token)
            #expect(refused.status == 401, "\(refused.text)")
            #expect(try errorCode(refused.body) == "unauthorized")
            #expect(refused.headers["WWW-Authenticate"]?.hasPrefix("Bearer") == true, "\(refused.headers)")
            try OpenAPIDocument.validate(method: "POST", path: "/api/v1/sections/{name}/switchover", status: 401, body: refused.body)
        }
        #expect(try await writableKeys(sandbox) == before, "a refused request wrote to etcd")

        let accepted = try await api.post("/api/v1/sections/s1/switchover", body: request, token: api.token)
        #expect(accepted.status == 202, "\(accepted.text)")
        try OpenAPIDocument.validate(method: "POST", path: "/api/v1/sections/{name}/switchover", status: 202, body: accepted.body)
        let requested = try OperationJSON.decode(Array(accepted.body), key: "response")
        #expect(accepted.headers["Location"] == "/api/v1/operations/\(requested.id)")
        #expect(
            requested.requestedBy == "dba@example via http-api@sandbox-controller" && requested.candidate == "db1002"
                && requested.reason == "moved over HTTP")

        // The leader runs it: the journal (read over HTTP) ends done, and the servers agree.
        var final: OperationRecord?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let journal = try await api.get("/api/v1/operations/\(requested.id)")
            let record = try OperationJSON.decode(Array(journal.body), key: "journal")
            if record.state.isFinished {
                final = record
                try OpenAPIDocument.validate(method: "GET", path: "/api/v1/operations/{id}", status: 200, body: journal.body)
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let done = try #require(final, "the switchover requested over HTTP did not finish")
        #expect(done.state == .done, "\(done.state): \(done.steps.compactMap(\.error))")
        #expect(done.steps.allSatisfy { $0.state == .done } && done.windowMilliseconds != nil)
        #expect(done.requestedBy == "dba@example via http-api@sandbox-controller")
        try await expectPrimary("db1002", sandbox)
    }

    @Test("malformed bodies and refused changes answer 4xx with a code, and nothing is written")
    func badInputChangesNothing() async throws {
        let sandbox = try await TestServers.privateSandbox("api-bad", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let api = try APIClient(sandbox)
        let before = try await writableKeys(sandbox)
        let cases: [(path: String, body: String, status: Int, code: String, template: String)] = [
            ("/api/v1/sections/s1/switchover", "{\"to\": ", 400, "invalid_body", "/api/v1/sections/{name}/switchover"),
            ("/api/v1/sections/s1/switchover", "[1, 2]", 400, "invalid_body", "/api/v1/sections/{name}/switchover"),
            ("/api/v1/sections/s1/switchover", "", 400, "invalid_body", "/api/v1/sections/{name}/switchover"),
            ("/api/v1/sections/s1/switchover", #"{"reason": "no target"}"#, 400, "missing_field", "/api/v1/sections/{name}/switchover"),
            ("/api/v1/sections/s1/switchover", #"{"to": "db1002", "dry-run": true}"#, 400, "unknown_field", "/api/v1/sections/{name}/switchover"),
            ("/api/v1/sections/s1/switchover", #"{"to": 1002}"#, 400, "invalid_field", "/api/v1/sections/{name}/switchover"),
            ("/api/v1/sections/s1/switchover", #"{"to": "db1002; DROP"}"#, 400, "invalid_name", "/api/v1/sections/{name}/switchover"),
            ("/api/v1/sections/s1/switchover", #"{"to": "db1002", "dry_run": "yes"}"#, 400, "invalid_field", "/api/v1/sections/{name}/switchover"),
            ("/api/v1/instances/db1002/depool", #"{}"#, 400, "missing_field", "/api/v1/instances/{name}/depool"),
            ("/api/v1/instances/db1002/depool", #"{"section": "s9"}"#, 422, "refused", "/api/v1/instances/{name}/depool"),
            ("/api/v1/instances/db1002/pool", #"{"section": "s1", "percentage": 1e300}"#, 400, "invalid_field", "/api/v1/instances/{name}/pool"),
            ("/api/v1/config/commit", #"{"message": "   "}"#, 400, "invalid_body", "/api/v1/config/commit"),
            ("/api/v1/config/commit", #"{}"#, 400, "missing_field", "/api/v1/config/commit"),
            ("/api/v1/sections/s1/failover/ack", #"{"bogus": 1}"#, 400, "unknown_field", "/api/v1/sections/{name}/failover/ack"),
        ]
        for item in cases {
            let response = try await api.post(item.path, body: item.body, token: api.token)
            #expect(response.status == item.status, "\(item.path) \(item.body): \(response.status) \(response.text)")
            #expect(try errorCode(response.body) == item.code, "\(item.path) \(item.body): \(response.text)")
            try OpenAPIDocument.validate(method: "POST", path: item.template, status: response.status, body: response.body)
        }
        let huge = try await api.post(
            "/api/v1/config/commit", body: "{\"message\": \"" + String(repeating: "x", count: 100_000) + "\"}", token: api.token)
        #expect(huge.status == 413, "\(huge.status) \(huge.text)")
        #expect(try await writableKeys(sandbox) == before, "a refused request wrote to etcd")

        // A depool and a commit over HTTP: the same staged edit and commit as the CLI's.
        let depooled = try await api.post("/api/v1/instances/db1002/depool", body: #"{"section": "s1", "author": "dba"}"#, token: api.token)
        #expect(depooled.status == 200, "\(depooled.text)")
        try OpenAPIDocument.validate(method: "POST", path: "/api/v1/instances/{name}/depool", status: 200, body: depooled.body)
        let diff = try runMarina(["config", "diff"], environment: ["MARINA_SANDBOX_DIR": sandbox.directory])
        #expect(diff.status == 6 && diff.stdout.contains("db1002"), "\(diff.stdout)")
        let committed = try await api.post("/api/v1/config/commit", body: #"{"message": "depooled over HTTP", "author": "dba"}"#, token: api.token)
        #expect(committed.status == 200, "\(committed.text)")
        try OpenAPIDocument.validate(method: "POST", path: "/api/v1/config/commit", status: 200, body: committed.body)
        let config = try await TopologyStore(etcd: sandbox.etcdClient).read().committed.configs[sandbox.datacenter]
        #expect(
            config?.sectionLoads["s1"]?.dropFirst().contains { $0["db1002"] != nil } == false, "db1002 still pooled: \(String(describing: config))")
        let history = try await TopologyStore(etcd: sandbox.etcdClient).history(limit: 1)
        #expect(history.first?.message == "depooled over HTTP" && history.first?.author == "dba via http-api@sandbox-controller")
        // Depooling the last pooled replica breaks the section's minimum: refused with the rule, nothing staged.
        let staged = try await writableKeys(sandbox)
        let last = try await api.post("/api/v1/instances/db1003/depool", body: #"{"section": "s1"}"#, token: api.token)
        let lastCode = try errorCode(last.body)
        #expect(last.status == 422 && lastCode == "refused" && last.text.contains("min"), "\(last.text)")
        try OpenAPIDocument.validate(method: "POST", path: "/api/v1/instances/{name}/depool", status: 422, body: last.body)
        #expect(try await writableKeys(sandbox) == staged, "a refused depool wrote to etcd")
        let again = try await api.post("/api/v1/config/commit", body: #"{"message": "nothing"}"#, token: api.token)
        #expect(again.status == 200 && again.text.contains("nothing to commit"), "\(again.text)")

        let ack = try await api.post("/api/v1/sections/s1/failover/ack", body: "", token: api.token)
        #expect(ack.status == 200 && ack.text.contains("not blocked"), "\(ack.text)")
        try OpenAPIDocument.validate(method: "POST", path: "/api/v1/sections/{name}/failover/ack", status: 200, body: ack.body)
    }
}

/// Requests to the sandbox controller's API.
struct APIClient {
    let base: String
    let token: String

    init(_ sandbox: SandboxState) throws {
        let http = try #require(sandbox.http, "the sandbox serves no HTTP")
        base = try #require(sandbox.controllerURL)
        token = try String(contentsOfFile: http.tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    struct Answer {
        var status: Int
        var body: Data
        var headers: [String: String]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    func get(_ path: String) async throws -> Answer { try await send("GET", path, body: nil, token: nil) }

    func post(_ path: String, body: String, token: String?) async throws -> Answer { try await send("POST", path, body: body, token: token) }

    private func send(_ method: String, _ path: String, body: String?, token: String?) async throws -> Answer {
        var request = URLRequest(url: try #require(URL(string: base + path)))
        request.httpMethod = method
        request.timeoutInterval = 30
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = try #require(response as? HTTPURLResponse)
        var headers = [String: String]()
        for (key, value) in http.allHeaderFields {
            if let key = key as? String, let value = value as? String { headers[key] = value }
        }
        return Answer(status: http.statusCode, body: data, headers: headers)
    }
}

/// Validates a response against `docs/openapi.yaml` with the validator script (Python's
/// jsonschema), failing the test with each violation.
enum OpenAPIDocument {
    static func validate(
        method: String, path: String, status: Int, body: Data, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let result = try OpenAPISource.runValidator([method, path, String(status)], input: String(decoding: body, as: UTF8.self))
        #expect(
            result.status == 0, "\(method) \(path) \(status) does not match docs/openapi.yaml:\n\(result.output)", sourceLocation: sourceLocation)
    }
}

/// The newest operation's id, as `marina operation list` orders them.
enum OperationsViewProbe {
    static func latest(_ sandbox: SandboxState) async throws -> String? {
        var newest: OperationRecord?
        for kv in try await sandbox.etcdClient.get(StoreKeys().operations, prefix: true).kvs {
            let record = try OperationJSON.decode(kv.value, key: kv.key)
            if newest == nil || record.requestedAt > newest!.requestedAt { newest = record }
        }
        return newest?.id
    }
}

/// The error body's code.
private func errorCode(_ body: Data) throws -> String? {
    let object = try JSONSerialization.jsonObject(with: body) as? [String: Any]
    return (object?["error"] as? [String: Any])?["code"] as? String
}

/// A JSON document without what changes from one read to the next (observation times and
/// ages, heartbeat lag, GTID positions move with every heartbeat), for comparing two reads.
private func stable(_ data: Data) throws -> String {
    let volatile: Set<String> = ["ageSeconds", "observedAt", "lastGoodProbeAt", "heartbeatLag", "gtidCurrentPos", "since", "observed"]
    func strip(_ value: Any) -> Any {
        if let object = value as? [String: Any] {
            return object.filter { !volatile.contains($0.key) }.mapValues(strip)
        }
        if let array = value as? [Any] { return array.map(strip) }
        return value
    }
    let object = strip(try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]))
    return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
}

/// Every key a write endpoint may write (operations, requests, staged objects, committed
/// state, history, failover blocks), with its revision.
private func writableKeys(_ sandbox: SandboxState) async throws -> [String: Int64] {
    let keys = StoreKeys()
    var found = [String: Int64]()
    let prefixes = [
        keys.operations, keys.requests, keys.datacenters, keys.sections, keys.instances, keys.staged, keys.grants, keys.variables,
        keys.generated, keys.history, keys.committed, keys.failoverBlocks,
    ]
    for prefix in prefixes {
        for kv in try await sandbox.etcdClient.get(prefix, prefix: true).kvs { found[kv.key] = kv.modRevision }
    }
    return found
}
