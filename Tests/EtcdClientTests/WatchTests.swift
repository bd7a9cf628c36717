import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Synchronization
import Testing

/// Collects `count` events from a watch, failing the test instead of waiting forever.
func collect(_ count: Int, from stream: AsyncThrowingStream<WatchResponse, Error>) async throws -> [WatchEvent] {
    try await withThrowingTaskGroup(of: [WatchEvent]?.self) { group in
        group.addTask {
            var events = [WatchEvent]()
            for try await response in stream {
                events += response.events
                if events.count >= count { break }
            }
            return events
        }
        group.addTask {
            try await Task.sleep(for: .seconds(30))
            return nil
        }
        let first = try await group.next()!
        group.cancelAll()
        return try #require(first, "timed out waiting for \(count) events")
    }
}

@Suite("EtcdClient watches against a real etcd")
struct WatchTests {
    @Test("a prefix watch sees every put and delete, in order, with previous values")
    func seesEveryChangeInOrder() async throws {
        let etcd = try await TestServers.shared().etcdClient
        let prefix = uniquePrefix("watch")
        let start = try await etcd.put(prefix.dropLast() + "-before", "not watched")
        let stream = etcd.watch(prefix, prefix: true, startRevision: start + 1, previousValues: true)
        var expected = [(WatchEvent.Kind, String, String)]()
        var current = [String: String]()
        var firstDeletedValue: String?
        for index in 0..<40 {
            let key = prefix + "k\(index % 7)"
            if index % 5 == 4, let value = current[key] {
                try await etcd.delete(key)
                current[key] = nil
                firstDeletedValue = firstDeletedValue ?? value
                expected.append((.delete, key, ""))
            } else {
                current[key] = "v\(index)"
                try await etcd.put(key, "v\(index)")
                expected.append((.put, key, "v\(index)"))
            }
        }
        try await etcd.put(prefix.dropLast() + "-after", "not watched")
        let events = try await collect(expected.count, from: stream)
        #expect(events.count == expected.count)
        for (event, want) in zip(events, expected) {
            #expect(event.kind == want.0 && event.kv.key == want.1 && event.kv.stringValue == want.2)
        }
        #expect(events.map(\.kv.modRevision) == events.map(\.kv.modRevision).sorted())
        // prev_kv is carried for the delete of a key that existed.
        let firstDelete = try #require(events.first { $0.kind == .delete })
        #expect(firstDelete.previous?.stringValue == firstDeletedValue)
        #expect(firstDeletedValue != nil)
    }

    @Test("a watch resumes after its stream is cut by an etcd restart, skipping and repeating nothing")
    func resumesAfterStreamCut() async throws {
        let sandbox = try await TestServers.privateSandbox("watch-cut", sections: 0)
        defer { TestServers.stop(sandbox) }
        let etcd = EtcdClient(EtcdConfiguration(endpoints: [sandbox.etcd.url], connectTimeout: 0.5))
        let prefix = uniquePrefix("cut")
        let stream = etcd.watch(
            prefix, prefix: true, startRevision: try await etcd.status().revision + 1,
            reconnectDelay: .milliseconds(300))
        for index in 0..<5 { try await etcd.put(prefix + "\(index)", "before") }
        let before = try await collect(5, from: stream)
        #expect(before.count == 5)

        try await Sandbox.stopEtcd(directory: sandbox.directory, kill: true)
        try await Sandbox.startEtcd(directory: sandbox.directory)
        // Written while the watch is still reconnecting (it waits 300 ms first).
        for index in 5..<10 { try await etcd.put(prefix + "\(index)", "after") }

        let after = try await collect(5, from: stream)
        #expect(after.map(\.kv.key) == (5..<10).map { prefix + "\($0)" })
        #expect(after.allSatisfy { $0.kv.stringValue == "after" })
    }

    @Test("a watch from a compacted revision ends with a compaction error")
    func reportsCompaction() async throws {
        let sandbox = try await TestServers.privateSandbox("watch-compact", sections: 0)
        defer { TestServers.stop(sandbox) }
        let etcd = sandbox.etcdClient
        let prefix = uniquePrefix("compact")
        let first = try await etcd.put(prefix + "a", "1")
        try await etcd.put(prefix + "a", "2")
        let last = try await etcd.put(prefix + "a", "3")
        try await etcd.compact(last)

        var received = [WatchResponse]()
        let error = await #expect(throws: EtcdError.self) {
            for try await response in etcd.watch(prefix, prefix: true, startRevision: first) { received.append(response) }
        }
        #expect(error?.kind == .compacted(compactRevision: last))
        #expect(received.isEmpty)

        // Watching from the compaction revision on works.
        let stream = etcd.watch(prefix, prefix: true, startRevision: last)
        let events = try await collect(1, from: stream)
        #expect(events.first?.kv.stringValue == "3")
    }

    @Test("cancelling the consuming task ends the watch")
    func cancellation() async throws {
        let etcd = try await TestServers.shared().etcdClient
        let prefix = uniquePrefix("cancel")
        let seen = Mutex(0)
        let consumer = Task {
            for try await response in etcd.watch(prefix, prefix: true) { seen.withLock { $0 += response.events.count } }
        }
        // The watch is established once it delivers a write (one written before it starts is not delivered).
        let deadline = Date().addingTimeInterval(15)
        while seen.withLock({ $0 }) == 0 && Date() < deadline {
            try await etcd.put(prefix + "key", "value")
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(seen.withLock { $0 } > 0, "the watch never delivered an event")
        consumer.cancel()
        // The stream finishes instead of hanging.
        try await consumer.value
    }
}
