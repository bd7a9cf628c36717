import BlockingIO
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// One answer of a watch: the events of one or more revisions, in order.
public struct WatchResponse: Sendable, Equatable {
    public var events: [WatchEvent]
    /// The store revision when etcd sent this answer.
    public var headerRevision: Int64

    public init(events: [WatchEvent], headerRevision: Int64) {
        self.events = events
        self.headerRevision = headerRevision
    }
}

extension EtcdClient {
    /// Watches one key, or every key under a prefix, from `startRevision` (or from now).
    ///
    /// The stream yields every change in revision order. When the HTTP stream breaks (an etcd
    /// member restarts, the connection drops) the watch reconnects, to the next endpoint if
    /// needed, from the revision after the last event it delivered, so nothing is skipped and
    /// nothing repeated. It ends by throwing `EtcdError` with kind `.compacted` when the
    /// revision it needs has been compacted away; the caller then re-reads and watches again.
    /// Cancelling the consuming task (or dropping the stream) stops the watch within a second.
    public func watch(
        _ key: String, prefix: Bool = false, startRevision: Int64? = nil, previousValues: Bool = false,
        reconnectDelay: Duration = .milliseconds(100)
    ) -> AsyncThrowingStream<WatchResponse, Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: WatchResponse.self, throwing: Error.self)
        let cancelled = CancellationFlag()
        continuation.onTermination = { _ in cancelled.set() }
        let thread = BlockingQueue(label: "etcd watch \(key)")
        let loop = WatchLoop(
            client: self, key: key, prefix: prefix, nextRevision: startRevision, previousValues: previousValues,
            reconnectDelay: reconnectDelay, cancelled: cancelled, continuation: continuation)
        thread.start { loop.run() }
        return stream
    }
}

/// Set once, read from any thread.
final class CancellationFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// The blocking loop behind `watch`: one streaming request at a time, reconnecting from the
/// next revision it owes the caller.
private struct WatchLoop: Sendable {
    let client: EtcdClient
    let key: String
    let prefix: Bool
    let nextRevision: Int64?
    let previousValues: Bool
    let reconnectDelay: Duration
    let cancelled: CancellationFlag
    let continuation: AsyncThrowingStream<WatchResponse, Error>.Continuation

    /// Why one stream ended.
    private enum Ending {
        case dropped
        case finished(Error?)
    }

    func run() {
        var next = nextRevision
        var failures = 0
        var endpointOffset = 0
        while !cancelled.isSet {
            let endpoints = client.endpointOrder()
            let endpoint = endpoints[endpointOffset % endpoints.count]
            var delivered = false
            switch stream(from: endpoint, next: &next, delivered: &delivered) {
            case .finished(let error):
                if error != nil { EtcdMetrics.failed(.watch) }
                continuation.finish(throwing: error)
                return
            case .dropped:
                if !cancelled.isSet { EtcdMetrics.failed(.watch) }
                failures = delivered ? 1 : failures + 1
                endpointOffset += 1
                pause(attempt: failures)
            }
        }
        continuation.finish()
    }

    private func stream(from endpoint: String, next: inout Int64?, delivered: inout Bool) -> Ending {
        var create = Wire.rangeBody(key, prefix: prefix)
        if let revision = next { create["start_revision"] = .string(String(revision)) }
        if previousValues { create["prev_kv"] = true }
        var ending: Ending?
        do {
            let headers = try client.authorizationHeaders()
            let payload = try JSONValue.object(["create_request": .object(create)]).data()
            let request = try CurlRequest(
                url: endpoint + "/v3/watch", body: payload, headers: headers, tls: client.configuration.tls,
                connectTimeout: client.configuration.connectTimeout, totalTimeout: nil)
            var owed = next
            var sawEvents = false
            defer {
                next = owed
                delivered = delivered || sawEvents
            }
            _ = try request.stream(isCancelled: { cancelled.isSet || ending != nil }) { line in
                ending = handle(line, next: &owed, delivered: &sawEvents)
            }
        } catch let error as EtcdError where error.kind == .malformedResponse {
            return .finished(error)
        } catch {
            // A transport failure or an unreachable endpoint: reconnect.
        }
        return ending ?? .dropped
    }

    /// Handles one message of the stream; returns an ending when the stream must stop.
    private func handle(_ line: Data, next: inout Int64?, delivered: inout Bool) -> Ending? {
        guard let message = try? JSONDecoder().decode(Wire.WatchMessage.self, from: line) else {
            return .finished(EtcdError(.malformedResponse, "watch message: \(String(decoding: line.prefix(200), as: UTF8.self))"))
        }
        if let error = message.error {
            if error.grpc_code == GRPCCode.unauthenticated { client.forgetToken() }
            return .dropped
        }
        guard let result = message.result else { return nil }
        if result.canceled == true {
            let compacted = Wire.int(result.compact_revision)
            if compacted > 0 {
                return .finished(EtcdError(.compacted(compactRevision: compacted), "watch of \(key) from revision \(next ?? 0)"))
            }
            return .finished(
                EtcdError(.server(grpcCode: -1, httpStatus: 200), "watch of \(key) canceled: \(result.cancel_reason ?? "no reason given")"))
        }
        let headerRevision = Wire.int(result.header?.revision)
        if result.created == true, next == nil {
            next = headerRevision + 1
        }
        guard let rawEvents = result.events, !rawEvents.isEmpty else { return nil }
        do {
            let events = try rawEvents.map { event in
                WatchEvent(
                    kind: event.type == "DELETE" ? .delete : .put, kv: try (event.kv ?? Wire.KV()).model(),
                    previous: try event.prev_kv?.model())
            }
            if let last = events.last { next = last.kv.modRevision + 1 }
            delivered = true
            continuation.yield(WatchResponse(events: events, headerRevision: headerRevision))
            return nil
        } catch {
            return .finished(error)
        }
    }

    /// Waits before reconnecting, longer after each failure in a row (capped at 2 s), waking
    /// early when the watch is cancelled.
    private func pause(attempt: Int) {
        let base = Double(reconnectDelay.components.attoseconds) / 1e18 + Double(reconnectDelay.components.seconds)
        var remaining = min(base * Double(1 << min(max(attempt - 1, 0), 20)), 2.0)
        while remaining > 0, !cancelled.isSet {
            let step = min(remaining, 0.05)
            usleep(UInt32(step * 1_000_000))
            remaining -= step
        }
    }
}
