import EtcdClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import MarinaViews
import NIOCore
import Operations
import Topology
import TopologyStore

/// The handlers of `/api/v1`: each reads what the CLI command of the same name reads and
/// answers what its `--json` prints, or writes what it writes.
struct Routes: Sendable {
    let context: ControllerHTTP.Context

    // MARK: Reads

    /// Which controller answers and which leads (`leader` null: none leads right now).
    func controller() async throws -> Response {
        struct Leader: Codable {
            var id: String
            var since: String?
        }
        struct Leadership: Encodable {
            var id: String
            var leader: Leader?
            var leads: Bool

            func encode(to encoder: Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(id, forKey: .id)
                try container.encode(leader, forKey: .leader)  // null when none leads
                try container.encode(leads, forKey: .leads)
            }

            enum CodingKeys: String, CodingKey { case id, leader, leads }
        }
        var leader: Leader?
        if let kv = try await context.etcd.value(context.keys.leader) {
            do {
                leader = try JSONDecoder().decode(Leader.self, from: Data(kv.value))
            } catch {
                throw StoreError.corrupt(key: kv.key, problem: "is not a controller's leader record")
            }
        }
        return try .json(Leadership(id: context.controllerID, leader: leader, leads: leader?.id == context.controllerID))
    }

    /// `marina section list --json`: the staged sections.
    func sections() async throws -> Response {
        let topology = try await context.store.read().staged.topology
        return try .json(topology.sections.values.sorted { $0.name < $1.name })
    }

    /// `marina section show NAME --json`.
    func section(_ name: String) async throws -> Response {
        let topology = try await context.store.read().staged.topology
        guard let section = topology.sections[name] else { throw ViewProblem.unknownSection(name) }
        return try .json(section)
    }

    /// `marina instance list [--section S] --json`.
    func instances(section: String?) async throws -> Response {
        let topology = try await context.store.read().staged.topology
        var instances = topology.instances.values.sorted { $0.name < $1.name }
        if let section {
            guard topology.sections[section] != nil else { throw ViewProblem.unknownSection(section) }
            instances = instances.filter { $0.sections[section] != nil }
        }
        return try .json(instances)
    }

    /// `marina instance show NAME --json`.
    func instance(_ name: String) async throws -> Response {
        let topology = try await context.store.read().staged.topology
        guard let instance = topology.instances[name] else { throw ViewProblem.unknownInstance(name) }
        return try .json(instance)
    }

    /// `marina status [SECTION] --json`.
    func status(section: String?) async throws -> Response {
        let site = try await context.store.snapshot()
        return try .json(try StatusView.sections(site, section: section, now: Date()))
    }

    /// `marina drift [SECTION] [--max-lag N] [--heartbeat-stale N] [--stale-after N] --json`.
    func drift(_ query: FlatDictionary<Substring, Substring>) async throws -> Response {
        let thresholds = DriftView.Thresholds(
            maxLag: try Query.seconds(query, "max_lag") ?? 5, heartbeatStale: try Query.seconds(query, "heartbeat_stale") ?? 10,
            staleAfter: try Query.seconds(query, "stale_after") ?? 60)
        try thresholds.validate(names: ("max_lag", "heartbeat_stale", "stale_after"))
        let site = try await context.store.snapshot()
        let findings = try await DriftView.findings(
            site, store: context.store, section: query["section"].map(String.init), thresholds: thresholds, now: Date())
        return try .json(findings)
    }

    /// `marina operation list --limit N --json` (journals that cannot be read are left out, as there).
    func operations(limit: Int) async throws -> Response {
        let (records, _) = try await OperationsView.list(etcd: context.etcd, keys: context.keys, limit: limit)
        return .json(try OperationsView.listJSON(records))
    }

    /// `marina operation show ID --json`.
    func operation(_ id: String) async throws -> Response {
        .json(try OperationsView.json(try await OperationsView.show(etcd: context.etcd, keys: context.keys, id: id)))
    }

    /// `marina config history --limit N --json`.
    func history(limit: Int) async throws -> Response {
        try .json(try await context.store.history(limit: limit).map(HistoryLine.init))
    }

    /// `marina config diff --json`.
    func diff() async throws -> Response {
        let (changes, issues) = try await context.store.diff()
        return try .json(DiffOutput(changes: changes, issues: issues))
    }

    // MARK: Writes

    /// The body of a write, once the token is checked: 401 without the right token, 403 when
    /// this controller has none (its API is read-only), 413 above `largestBody`.
    func authorizedBody(_ request: Request, allowEmpty: Bool = false) async throws -> Body {
        guard let token = context.token else {
            throw APIError(
                status: .forbidden, code: "read_only",
                message: "this controller's API is read-only: its configuration names no http.token_file")
        }
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        guard header.hasPrefix(prefix), token.matches(String(header.dropFirst(prefix.count))) else {
            throw APIError(
                status: .unauthorized, code: "unauthorized",
                message: header.isEmpty ? "this endpoint needs the access token: Authorization: Bearer <token>" : "the access token is wrong",
                headers: [.wwwAuthenticate: "Bearer realm=\"marina\""])
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: ControllerHTTP.largestBody)
        } catch is NIOTooManyBytesError {
            throw APIError(
                status: .contentTooLarge, code: "body_too_large", message: "the body is larger than \(ControllerHTTP.largestBody) bytes")
        }
        let data = Data(buffer: buffer)
        if data.isEmpty && allowEmpty { return Body(fields: [:]) }
        return try Body(data)
    }

    /// `marina switchover SECTION --to C --reason R [--skip-replica X] [--dry-run]`: 202 with the request's record.
    func switchover(section: String, _ body: Body) async throws -> Response {
        try body.allow(["to", "reason", "skip_replicas", "dry_run", "force_long_transactions", "author"])
        let record = try OperationRequest.switchover(
            section: section, to: try body.string("to", required: true) ?? "", reason: try body.string("reason") ?? "",
            skipReplicas: try body.strings("skip_replicas"), dryRun: try body.bool("dry_run") ?? false,
            forceLongTransactions: try body.bool("force_long_transactions") ?? false, author: try author(body), at: Date())
        return try await submit(record)
    }

    /// `marina failover SECTION [--to C] --reason R [--dry-run]`: 202 with the request's record.
    func failover(section: String, _ body: Body) async throws -> Response {
        try body.allow(["to", "reason", "dry_run", "author"])
        let record = try OperationRequest.failover(
            section: section, to: try body.string("to"), reason: try body.string("reason") ?? "", dryRun: try body.bool("dry_run") ?? false,
            author: try author(body), at: Date())
        return try await submit(record)
    }

    private func submit(_ record: OperationRecord) async throws -> Response {
        try await OperationRequest.submit(record, etcd: context.etcd, keys: context.keys)
        return .json(
            try OperationsView.json(record), status: .accepted,
            headers: [.location: "/api/v1/operations/\(record.id)"])
    }

    /// `marina failover ack SECTION`.
    func acknowledgeFailover(section: String) async throws -> Response {
        struct Output: Encodable {
            var outcome: String
            var operation: String?
        }
        switch try await FailoverAcknowledgement.acknowledge(section: section, etcd: context.etcd, keys: context.keys) {
        case .notBlocked: return try .json(Output(outcome: "not blocked"))
        case .acknowledged(let operation): return try .json(Output(outcome: "acknowledged", operation: operation))
        }
    }

    /// `marina instance depool|pool NAME --section S [--group G] [--percentage P]`: staged, as there.
    func pooling(instance: String, pooled: Bool, _ body: Body) async throws -> Response {
        try body.allow(pooled ? ["section", "group", "percentage", "author"] : ["section", "group", "author"])
        let section = try body.string("section", required: true) ?? ""
        let group = try body.string("group")
        let edit: TopologyEdit
        if pooled {
            let percentage = try body.int("percentage")
            if group != nil && percentage != nil { throw APIError.badRequest("invalid_body", "percentage applies to the section, not to a group") }
            edit = .pool(instance: instance, section: section, group: group, percentage: percentage)
        } else {
            edit = .depool(instance: instance, section: section, group: group)
        }
        switch try await context.store.apply(edit, by: ChangeAuthor(author: try author(body), now: Date())) {
        case .applied(let revision):
            return try .json(EditOutput(outcome: "applied", revision: String(revision)))
        case .refused(let issues):
            throw APIError(
                status: .unprocessableContent, code: "refused", message: "refused, nothing was written; the change would break rules",
                issues: issues)
        case .conflict(let revision):
            throw APIError(
                status: .conflict, code: "conflict",
                message: "the staged topology changed since it was read at revision \(revision); nothing was written: re-run")
        }
    }

    /// `marina config commit -m MESSAGE`: every datacenter's configuration with a history entry, then the site mirror.
    func commit(_ body: Body) async throws -> Response {
        try body.allow(["message", "author"])
        let message = try body.string("message", required: true) ?? ""
        guard !message.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw APIError.badRequest("invalid_body", "message must say why")
        }
        let prepared = try await context.store.prepareCommit()
        let outcome: CommitOutcome
        do {
            outcome = try await context.store.commit(prepared, message: message, by: ChangeAuthor(author: try author(body), now: Date()))
        } catch let failure as MirrorWriteFailed {
            throw APIError(status: .badGateway, code: "mirror_not_written", message: failure.description)
        }
        switch outcome {
        case .committed(let entry):
            // As `marina config commit --json`: the mirrors written (the site's; the API writes no file mirror).
            let site = try? await context.store.siteMirror()
            let mirrored = ConfigMirror(v2Prefix: site?.v2Prefix).targets(datacenters: Array(entry.topology.topology.datacenters))
            return try .json(CommitOutput(outcome: "committed", revision: entry.revision, sequence: entry.sequence, mirrored: mirrored))
        case .nothingToCommit:
            return try .json(CommitOutput(outcome: "nothing to commit"))
        case .invalid(let issues):
            throw APIError(
                status: .unprocessableContent, code: "invalid", message: "refused, nothing was written; the staged objects break rules",
                issues: issues)
        case .conflict(let revision):
            throw APIError(
                status: .conflict, code: "conflict", message: "changed since it was read at revision \(revision); nothing was written: re-run")
        }
    }

    /// Who makes the change: the body's `author`, else the API itself through this controller.
    private func author(_ body: Body) throws -> String {
        if let author = try body.string("author") {
            guard !author.isEmpty, author.count <= 200, !author.contains(where: \.isNewline) else {
                throw APIError.badRequest("invalid_body", "author must be one line of at most 200 characters")
            }
            // Whoever holds the token names themselves; the record says it came through the API.
            return "\(author) via http-api@\(context.controllerID)"
        }
        return "http-api@\(context.controllerID)"
    }
}

/// Query parameters, checked.
enum Query {
    /// `limit`: 1 to 1000, default 20.
    static func limit(_ query: FlatDictionary<Substring, Substring>) throws -> Int {
        guard let text = query["limit"].map(String.init) else { return 20 }
        guard let limit = Int(text), (1...1000).contains(limit) else {
            throw APIError.badRequest("invalid_limit", "limit must be a whole number from 1 to 1000 (got \(text))")
        }
        return limit
    }

    /// A number of seconds, finite and above 0.
    static func seconds(_ query: FlatDictionary<Substring, Substring>, _ name: String) throws -> Double? {
        guard let text = query[Substring(name)].map(String.init) else { return nil }
        guard let value = Double(text), value.isFinite, value > 0 else {
            throw APIError.badRequest("invalid_threshold", "\(name) must be a finite number of seconds above 0 (got \(text))")
        }
        return value
    }
}

/// A JSON object body, read once; every accessor names the field it refuses.
struct Body: Sendable {
    enum Value: Decodable, Sendable {
        case string(String)
        case number(Double)
        case bool(Bool)
        case null
        case array([Value])
        case object([String: Value])

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Double.self) {
                self = .number(value)
            } else if let value = try? container.decode(String.self) {
                self = .string(value)
            } else if let value = try? container.decode([Value].self) {
                self = .array(value)
            } else {
                self = .object(try container.decode([String: Value].self))
            }
        }

        var kind: String {
            switch self {
            case .string: "a string"
            case .number: "a number"
            case .bool: "a boolean"
            case .null: "null"
            case .array: "an array"
            case .object: "an object"
            }
        }
    }

    let fields: [String: Value]

    init(fields: [String: Value]) { self.fields = fields }

    init(_ data: Data) throws {
        guard !data.isEmpty else { throw APIError.badRequest("invalid_body", "the body must be a JSON object") }
        do {
            fields = try JSONDecoder().decode([String: Value].self, from: data)
        } catch {
            throw APIError.badRequest("invalid_body", "the body is not a JSON object: \(Self.describe(error))")
        }
    }

    /// Refuses a field the endpoint does not know, so that a misspelt option is never ignored.
    func allow(_ names: Set<String>) throws {
        if let unknown = fields.keys.sorted().first(where: { !names.contains($0) }) {
            throw APIError.badRequest("unknown_field", "unknown field \(unknown) (this endpoint takes \(names.sorted().joined(separator: ", ")))")
        }
    }

    func string(_ name: String, required: Bool = false) throws -> String? {
        switch fields[name] {
        case nil, .null?:
            if required { throw APIError.badRequest("missing_field", "\(name) is required") }
            return nil
        case .string(let value)?:
            if required && value.isEmpty { throw APIError.badRequest("missing_field", "\(name) must not be empty") }
            return value
        case let other?:
            throw APIError.badRequest("invalid_field", "\(name) must be a string (got \(other.kind))")
        }
    }

    func strings(_ name: String) throws -> [String] {
        switch fields[name] {
        case nil, .null?: return []
        case .array(let values)?:
            return try values.map {
                guard case .string(let value) = $0 else { throw APIError.badRequest("invalid_field", "\(name) must be an array of strings") }
                return value
            }
        case let other?:
            throw APIError.badRequest("invalid_field", "\(name) must be an array of strings (got \(other.kind))")
        }
    }

    func bool(_ name: String) throws -> Bool? {
        switch fields[name] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        case let other?: throw APIError.badRequest("invalid_field", "\(name) must be true or false (got \(other.kind))")
        }
    }

    func int(_ name: String) throws -> Int? {
        switch fields[name] {
        case nil, .null?: return nil
        case .number(let value)?:
            guard value.isFinite, value.rounded() == value, abs(value) < 1e9 else {
                throw APIError.badRequest("invalid_field", "\(name) must be a whole number (got \(value))")
            }
            return Int(value)
        case let other?: throw APIError.badRequest("invalid_field", "\(name) must be a whole number (got \(other.kind))")
        }
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context): context.underlyingError.map { "\($0.localizedDescription)" } ?? context.debugDescription
        case DecodingError.typeMismatch(_, let context): context.debugDescription
        default: "\(error)"
        }
    }
}
