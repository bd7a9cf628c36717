import Observation

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What a load balancer asks an instance's health listener (`docs/agent.md`, "Health checks
/// for load balancers"), decided from plain facts: no clock, no I/O. `HealthService` gathers the
/// facts and writes the answer.
enum HealthCheck {
    /// The checks a health listener serves.
    enum Route: Sendable, Equatable {
        /// May this instance take writes now?
        case primary
        /// May this replica serve reads, with a heartbeat lag under `maxLag` seconds (nil: any
        /// known lag)?
        case replica(maxLag: Double?)
        /// Is the agent probing the instance?
        case health
        /// The agent's Prometheus metrics.
        case metrics
    }

    /// The route of a request, or the refusal to send: 405 for a method other than GET and
    /// HEAD, 404 for an unknown path (or a path that listener does not serve), 400 for a bad
    /// parameter, naming it.
    static func route(_ head: HTTPRequestHead, metricsOnly: Bool = false) -> Result<Route, Refusal> {
        guard head.method == "GET" || head.method == "HEAD" else {
            return .failure(
                Refusal(
                    status: .methodNotAllowed, reason: "\(head.method) is not served here: only GET and HEAD",
                    headers: [.init(name: "Allow", value: "GET, HEAD")]))
        }
        let paths = metricsOnly ? "/metrics" : "/primary, /replica?lag=SECONDS, /health and /metrics"
        switch head.path {
        case "/metrics":
            return noParameters(head).map { .metrics }
        case "/primary" where !metricsOnly:
            return noParameters(head).map { .primary }
        case "/health" where !metricsOnly:
            return noParameters(head).map { .health }
        case "/replica" where !metricsOnly:
            var maxLag: Double?
            for item in head.query {
                guard item.name == "lag" else {
                    return .failure(Refusal(status: .badRequest, reason: "unknown parameter \(item.name): /replica takes lag=SECONDS"))
                }
                guard maxLag == nil else { return .failure(Refusal(status: .badRequest, reason: "lag is given twice")) }
                guard let text = item.value, let seconds = Double(text), seconds.isFinite, seconds > 0, seconds <= 86400 else {
                    return .failure(
                        Refusal(
                            status: .badRequest,
                            reason: "lag must be a number of seconds above 0, at most 86400 (got \(item.value.map { "`\($0)`" } ?? "nothing"))"))
                }
                maxLag = seconds
            }
            return .success(.replica(maxLag: maxLag))
        default:
            return .failure(Refusal(status: .notFound, reason: "no such check: \(head.path) (served here: \(paths))"))
        }
    }

    private static func noParameters(_ head: HTTPRequestHead) -> Result<Void, Refusal> {
        guard let item = head.query.first else { return .success(()) }
        return .failure(Refusal(status: .badRequest, reason: "unknown parameter \(item.name): \(head.path) takes none"))
    }

    /// A request refused before any check.
    struct Refusal: Error, Sendable, Equatable {
        var status: HTTPStatus
        var reason: String
        var headers: [HTTPRequestHead.Header] = []

        var response: HTTPResponse { .error(status, reason, headers: headers) }
    }

    /// `read_only` as read on a session of the agent's when the request came.
    enum LiveReadOnly: Sendable, Equatable {
        case value(Bool)
        /// The query failed (the server refused it, the connection broke).
        case failed(String)
        /// No answer within this many seconds.
        case timedOut(Double)
        /// Too many reads already in flight on this instance (a server that hangs).
        case busy(Int)
    }

    /// The primary lease of the instance's section, as its keeper last knew it.
    struct Lease: Sendable, Equatable {
        /// Whether the agent holds the lease in etcd.
        var held: Bool
        /// Seconds before the keeper fences the instance (nil: no deadline yet).
        var secondsLeft: Double?
        /// Why the keeper keeps the instance read-only, while it does.
        var selfFence: String?
    }

    /// The committed configuration of the instance's section, as the agent last read it.
    struct Committed: Sendable, Equatable {
        /// Seconds since it was read from etcd.
        var age: Double
        var primary: String?
        /// The effective weight of each pooled replica.
        var replicas: [String: Int]
    }

    /// Everything a check is decided on.
    struct Facts: Sendable, Equatable {
        var instance: String
        /// Its section (the `shard` of its configuration); nil: none.
        var section: String?
        /// The latest probe and its age in seconds (nil: none yet).
        var observation: Observation?
        var observationAge: Double?
        /// How old an observation may be (`maxObservationAge`).
        var observationLimit: Double
        /// The section's committed configuration (nil: never read, or the section is absent).
        var committed: Committed?
        /// Why the committed configuration is unknown, when it is.
        var committedError: String?
        /// How old the committed configuration may be.
        var committedLimit: Double
        /// The primary lease; nil when `fencing:` is not configured.
        var lease: Lease?
        var fencingConfigured: Bool
        /// Only for `/primary`: `read_only` read at request time (nil: not read).
        var liveReadOnly: LiveReadOnly?
    }

    /// How old the latest probe may be for a check to trust it: two probe intervals, and at
    /// least one interval plus a second (a probe takes time, and a loaded host is late).
    static func maxObservationAge(interval: Double) -> Double { max(2 * interval, interval + 1) }

    /// The answer to one check.
    struct Answer: Sendable, Equatable {
        var status: HTTPStatus
        var body: Body
    }

    /// The JSON body of every check: the instance, the answer and the reason, and what it was
    /// decided on.
    struct Body: Encodable, Sendable, Equatable {
        var instance: String
        var check: String
        var ok: Bool
        var reason: String
        var section: String?
        var role: String?
        var writable: Bool?
        var readOnly: Bool?
        var lease: String?
        var lag: Double?
        var maxLag: Double?
        var ioThread: String?
        var sqlThread: String?
        var observationAge: Double?

        enum CodingKeys: String, CodingKey {
            case instance, check, ok, reason, section, role, writable
            case readOnly = "read_only"
            case lease, lag
            case maxLag = "max_lag"
            case ioThread = "io_thread"
            case sqlThread = "sql_thread"
            case observationAge = "observation_age"
        }
    }

    // MARK: /primary

    /// 200 only when the instance is the committed primary of its section (read from etcd no
    /// longer ago than the limit), the agent holds the section's primary lease with time left
    /// (when `fencing:` is configured), and `read_only` read at request time is OFF.
    static func primary(_ facts: Facts) -> Answer {
        var body = Body(instance: facts.instance, check: "primary", ok: false, reason: "", section: facts.section)
        func refuse(_ reason: String) -> Answer {
            body.reason = reason
            return Answer(status: .serviceUnavailable, body: body)
        }
        if let refusal = committedRefusal(facts) { return refuse(refusal) }
        guard let section = facts.section, let committed = facts.committed else { return refuse("unreachable") }
        guard committed.primary == facts.instance else {
            body.role = committed.replicas[facts.instance] != nil ? "replica" : "not the primary"
            return refuse(
                "not the committed primary of \(section)" + (committed.primary.map { " (\($0) is)" } ?? " (it has none)"))
        }
        body.role = "primary"
        if facts.fencingConfigured {
            guard let lease = facts.lease else { return refuse("the primary lease of \(section) is not known yet") }
            if let fence = lease.selfFence { return refuse("self-fenced: \(fence)") }
            guard lease.held else { return refuse("this agent does not hold the primary lease of \(section)") }
            guard let left = lease.secondsLeft, left > 0 else { return refuse("the primary lease of \(section) has no time left") }
            body.lease = "held, \(seconds(left)) s left"
        } else {
            body.lease = "not checked: fencing is not configured"
        }
        switch facts.liveReadOnly {
        case nil:
            return refuse("read_only was not read")
        case .value(true)?:
            body.writable = false
            body.readOnly = true
            return refuse("read_only is ON")
        case .value(false)?:
            body.writable = true
            body.readOnly = false
        case .failed(let error)?:
            return refuse("read_only cannot be read: \(error)")
        case .timedOut(let limit)?:
            return refuse("read_only could not be read within \(seconds(limit)) s")
        case .busy(let count)?:
            return refuse("\(count) reads of read_only are already waiting for the server")
        }
        body.ok = true
        body.reason = "the committed primary of \(section), writable"
        return Answer(status: .ok, body: body)
    }

    /// Whether `/primary` depends on the live `read_only` alone: every other condition holds,
    /// so the server must be asked (otherwise the answer is 503 without asking it).
    static func primaryNeedsLiveRead(_ facts: Facts) -> Bool {
        var writable = facts
        writable.liveReadOnly = .value(false)
        return primary(writable).status == .ok
    }

    // MARK: /replica

    /// 200 only on a committed, pooled replica (a weight above 0 in its section's loads) whose
    /// latest probe, no older than the limit, saw every replication connection's IO and SQL
    /// threads running and a known heartbeat lag, under `maxLag` when given.
    static func replica(_ facts: Facts, maxLag: Double?) -> Answer {
        var body = Body(instance: facts.instance, check: "replica", ok: false, reason: "", section: facts.section, maxLag: maxLag)
        func refuse(_ reason: String) -> Answer {
            body.reason = reason
            return Answer(status: .serviceUnavailable, body: body)
        }
        // A replica keeps serving reads on the last configuration it read while etcd is away: no
        // depool can be committed meanwhile, and an etcd outage must not take every replica out
        // of the readers' pool. Only `/primary` needs a fresh one (a switchover may have moved it).
        if let refusal = committedRefusal(facts, requireFresh: false) { return refuse(refusal) }
        guard let section = facts.section, let committed = facts.committed else { return refuse("unreachable") }
        if committed.primary == facts.instance {
            body.role = "primary"
            return refuse("the committed primary of \(section), not a replica")
        }
        guard let weight = committed.replicas[facts.instance], weight > 0 else {
            body.role = "depooled"
            return refuse(
                committed.replicas[facts.instance] == nil
                    ? "not pooled in \(section) (depooled, or not a member)" : "pooled in \(section) with weight 0")
        }
        body.role = "replica"
        if let refusal = observationRefusal(facts, into: &body) { return refuse(refusal) }
        guard let observation = facts.observation else { return refuse("unreachable") }
        guard let channel = observation.replication.first(where: { !$0.isRunning }) ?? observation.replication.first else {
            return refuse("not replicating: no replication connection")
        }
        body.ioThread = channel.ioThread
        body.sqlThread = channel.sqlThread
        guard channel.isRunning else {
            let name = channel.name.isEmpty ? "" : " (connection \(channel.name))"
            if channel.sqlThread != "Yes" {
                return refuse(
                    "replication SQL thread not running\(name): \(channel.sqlThread)"
                        + (channel.lastSQLError.isEmpty ? "" : ": \(channel.lastSQLError)"))
            }
            return refuse(
                "replication IO thread not running\(name): \(channel.ioThread)" + (channel.lastIOError.isEmpty ? "" : ": \(channel.lastIOError)"))
        }
        guard let lag = observation.heartbeatLag else {
            return refuse("heartbeat lag unknown" + (observation.heartbeatError.map { ": \($0)" } ?? ""))
        }
        body.lag = rounded(lag)
        if let maxLag, !(lag < maxLag) {
            return refuse("heartbeat lag \(seconds(lag)) s is not under \(seconds(maxLag)) s")
        }
        body.ok = true
        body.reason =
            "a pooled replica of \(section), replicating, heartbeat lag \(seconds(lag)) s" + (maxLag.map { " under \(seconds($0)) s" } ?? "")
        return Answer(status: .ok, body: body)
    }

    // MARK: /health

    /// 200 while the latest probe of the instance succeeded and is no older than the limit.
    static func health(_ facts: Facts) -> Answer {
        var body = Body(instance: facts.instance, check: "health", ok: false, reason: "", section: facts.section)
        if let observation = facts.observation {
            body.role = observedRole(observation)
            body.readOnly = observation.readOnly
            body.lag = observation.heartbeatLag.map(rounded)
        }
        if let refusal = observationRefusal(facts, into: &body) {
            body.reason = refusal
            return Answer(status: .serviceUnavailable, body: body)
        }
        body.ok = true
        body.reason = "the agent probes it"
        return Answer(status: .ok, body: body)
    }

    /// What the server says it is: `primary` (writable, replicating from nobody), `replica`,
    /// `writable replica`, or `read-only, not replicating`.
    static func observedRole(_ observation: Observation) -> String? {
        guard observation.reachable, let readOnly = observation.readOnly else { return nil }
        if observation.replication.isEmpty { return readOnly ? "read-only, not replicating" : "primary" }
        return readOnly ? "replica" : "writable replica"
    }

    // MARK: Shared

    private static func committedRefusal(_ facts: Facts, requireFresh: Bool = true) -> String? {
        guard let section = facts.section else { return "no section: the agent's configuration gives this instance no shard" }
        guard let committed = facts.committed else {
            return "the committed configuration of \(section) is unknown" + (facts.committedError.map { ": \($0)" } ?? "")
        }
        if requireFresh && !(committed.age <= facts.committedLimit) {
            return "the committed configuration was read from etcd \(seconds(committed.age)) s ago (limit \(seconds(facts.committedLimit)) s)"
                + (facts.committedError.map { ": \($0)" } ?? "")
        }
        return nil
    }

    private static func observationRefusal(_ facts: Facts, into body: inout Body) -> String? {
        guard let observation = facts.observation, let age = facts.observationAge else { return "not probed yet" }
        body.observationAge = rounded(age)
        if !(age <= facts.observationLimit) {
            return "too old: the latest probe is \(seconds(age)) s old (limit \(seconds(facts.observationLimit)) s)"
        }
        guard observation.reachable else { return "unreachable: " + (observation.error ?? "the probe failed") }
        return nil
    }

    /// Seconds for a person, to a tenth (`4.2`).
    static func seconds(_ value: Double) -> String {
        guard value.isFinite else { return "\(value)" }
        let tenths = (value * 10).rounded()
        return tenths.truncatingRemainder(dividingBy: 10) == 0 ? "\(Int(tenths / 10))" : "\(tenths / 10)"
    }

    /// Seconds in a body, to the millisecond.
    static func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
}

extension HealthCheck.Answer {
    /// The answer as a response: its body as one line of JSON.
    var response: HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(body)) ?? Data("{}".utf8)
        return HTTPResponse(status: status, body: Array(data) + [10])
    }
}
