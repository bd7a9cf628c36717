import Foundation
import MariaDBClient
import Operations
import Synchronization
import Topology

/// The controller's connections to the instances it acts on: one per instance, opened on
/// first use over TCP with the controller's account, dropped after any failure or timeout
/// (a query abandoned at its deadline leaves its connection in an unknown state).
public actor Hosts {
    public struct Account: Sendable {
        public var user: String
        public var password: String?
        public var connectTimeout: Int
        public var tls: MariaDBConfiguration.TLS?

        public init(user: String, password: String?, connectTimeout: Int = 2, tls: MariaDBConfiguration.TLS? = nil) {
            self.user = user
            self.password = password
            self.connectTimeout = connectTimeout
            self.tls = tls
        }
    }

    let account: Account
    private var clients = [String: MariaDBClient]()

    public init(account: Account) { self.account = account }

    public func configuration(for instance: Instance, readTimeout: Int = 30) -> MariaDBConfiguration {
        MariaDBConfiguration(endpoint: .tcp(host: instance.host, port: instance.port), user: account.user, password: account.password,
                             connectTimeout: account.connectTimeout, readTimeout: readTimeout, writeTimeout: readTimeout, tls: account.tls)
    }

    /// Runs `sql` on `instance`, failing with the host's name if it takes longer than `timeout` seconds.
    @discardableResult
    public func query(_ instance: Instance, _ sql: String, timeout: Double) async throws -> QueryResult {
        let client = try await client(for: instance, timeout: timeout)
        do {
            return try await deadline(timeout, host: instance.name) { try await client.query(sql) }
        } catch {
            await forget(instance.name, client)
            throw ControllerError.stepFailed(host: instance.name, message: Self.describe(error, sql: sql))
        }
    }

    /// One value of the first row.
    public func value(_ instance: Instance, _ sql: String, column: String, timeout: Double) async throws -> String? {
        try await query(instance, sql, timeout: timeout).first?[column]
    }

    private func client(for instance: Instance, timeout: Double) async throws -> MariaDBClient {
        if let client = clients[instance.name] { return client }
        let configuration = configuration(for: instance)
        do {
            let client = try await deadline(timeout, host: instance.name) { try await MariaDBClient.connect(configuration) }
            clients[instance.name] = client
            return client
        } catch {
            throw ControllerError.stepFailed(host: instance.name, message: Self.describe(error, sql: nil))
        }
    }

    private func forget(_ name: String, _ client: MariaDBClient) async {
        if clients[name] === client { clients[name] = nil }
        Task { await client.close() }
    }

    public func closeAll() async {
        for client in clients.values { await client.close() }
        clients.removeAll()
    }

    static func describe(_ error: Error, sql: String?) -> String {
        if case ControllerError.stepFailed(_, let message) = error { return message }
        if let error = error as? MariaDBError {
            return sql.map { "\($0): \(error)" } ?? "\(error)"
        }
        return "\(error)"
    }
}

/// Runs `body`, giving up after `seconds`: the caller gets a timeout error at once, while a
/// blocking C call left behind finishes (or fails) on its own thread.
func deadline<T: Sendable>(_ seconds: Double, host: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let once = Once<T>()
    return try await withCheckedThrowingContinuation { continuation in
        once.set(continuation)
        let timer = Task {
            do { try await Task.sleep(for: .milliseconds(Int(seconds * 1000))) } catch { return }
            once.resume(.failure(ControllerError.stepFailed(host: host, message: "no answer within \(Seconds.format(seconds)) s")))
        }
        Task {
            do { once.resume(.success(try await body())) } catch { once.resume(.failure(error)) }
            timer.cancel()
        }
    }
}

/// A continuation resumed by whichever of two tasks finishes first.
final class Once<T: Sendable>: Sendable {
    private let state = Mutex<CheckedContinuation<T, Error>?>(nil)
    func set(_ continuation: CheckedContinuation<T, Error>) { state.withLock { $0 = continuation } }
    @discardableResult
    func resume(_ result: Result<T, Error>) -> Bool {
        guard let continuation = state.withLock({ value -> CheckedContinuation<T, Error>? in
            defer { value = nil }
            return value
        }) else { return false }
        continuation.resume(with: result)
        return true
    }
}

extension Seconds {
    /// Milliseconds since `start`.
    static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }
}
