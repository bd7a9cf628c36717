import EtcdClient
import Foundation
import MarinaTestSupport
import Testing
import Topology
import TopologyStore

/// A store under a key prefix of its own in the shared sandbox's etcd.
func isolatedStore(_ name: String, historyLimit: Int = 200) async throws -> TopologyStore {
    let sandbox = try await TestServers.shared()
    return TopologyStore(etcd: sandbox.etcdClient, keys: StoreKeys(root: uniquePrefix(name) + "marina/v1"), historyLimit: historyLimit)
}

func sampleTopology() -> Topology {
    Topology(
        datacenters: ["dc1"],
        sections: ["s1": Section(name: "s1", primary: "db1001", datacenter: "dc1", minReplicas: 1)],
        instances: [
            "db1001": Instance(name: "db1001", host: "10.0.0.1", datacenter: "dc1", sections: ["s1": Membership(pooled: true, weight: 0)]),
            "db1002": Instance(name: "db1002", host: "10.0.0.2", datacenter: "dc1", sections: ["s1": Membership(pooled: true, weight: 100)]),
            "db1003": Instance(
                name: "db1003", host: "10.0.0.3", port: 3307, datacenter: "dc1",
                sections: ["s1": Membership(pooled: true, weight: 200)]),
        ])
}

/// Every key under the store's root with its mod revision: equal fingerprints mean nothing
/// under the root was written or deleted (the shared etcd's global revision moves with other tests).
func fingerprint(_ store: TopologyStore) async throws -> [String: Int64] {
    let range = try await store.etcd.get(store.keys.root + "/", prefix: true, keysOnly: true)
    return Dictionary(uniqueKeysWithValues: range.kvs.map { ($0.key, $0.modRevision) })
}

let alice = ChangeAuthor(author: "alice", now: Date(timeIntervalSince1970: 1_800_000_000))
let bob = ChangeAuthor(author: "bob", now: Date(timeIntervalSince1970: 1_800_000_060))

@Suite("The source of truth in a real etcd")
struct StoreTests {
    @Test("edit, diff, commit, history and restore, read back from etcd")
    func wholeCycle() async throws {
        let store = try await isolatedStore("cycle")
        #expect(try await store.replaceStaged(with: sampleTopology(), by: alice, change: "import") != .conflict(readRevision: 0))
        let firstDiff = try await store.diff()
        #expect(firstDiff.issues.isEmpty)
        #expect(firstDiff.changes.map(\.entry) == ["s1", "db1001", "db1002", "db1003"])

        guard case .committed(let first) = try await store.commit(message: "initial", by: alice) else {
            Issue.record("the first commit did not happen")
            return
        }
        #expect(first.sequence == 1 && first.author == "alice" && first.message == "initial" && first.revision != nil)
        // What applications read is exactly the generated config, under generated/<dc>.
        let stored = try #require(try await store.etcd.value(store.keys.generated("dc1")))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(stored.value)) as? [String: Any])
        let config = try #require(object["config"] as? [String: Any])
        #expect((config["sectionLoads"] as? [String: Any])?["s1"] as? [[String: Int]] == [["db1001": 0], ["db1002": 100, "db1003": 200]])
        #expect((config["hostsByName"] as? [String: String])?["db1003"] == "10.0.0.3:3307")
        #expect(object["schema"] as? Int == 1)
        #expect(try await store.diff().changes.isEmpty)
        #expect(try await store.commit(message: "again", by: alice) == .nothingToCommit)

        #expect(try await store.apply(.depool(instance: "db1002", section: "s1", group: nil), by: bob) != .refused([]))
        let pending = try await store.diff().changes
        #expect(pending.map { "\($0.key) \($0.entry)" } == ["sectionLoads s1", "hostsByName db1002"])
        guard case .committed(let second) = try await store.commit(message: "depool db1002 for maintenance", by: bob) else {
            Issue.record("the second commit did not happen")
            return
        }
        #expect(second.sequence == 2 && second.changes == pending)

        let history = try await store.history()
        #expect(history.map(\.sequence) == [2, 1])
        #expect(history.map(\.author) == ["bob", "alice"])
        #expect(history.map(\.revision) == [second.revision, first.revision])
        #expect(history[1].at == alice.now)

        guard case .committed(let restored) = try await store.restore(revision: try #require(first.revision), message: "undo", by: alice) else {
            Issue.record("the restore did not happen")
            return
        }
        #expect(restored.sequence == 3 && restored.kind == .restore)
        #expect(restored.message == "restore of revision \(first.revision!): undo")
        let (staged, committed) = try await store.read()
        #expect(staged.topology == sampleTopology())
        #expect(committed.configs == sampleTopology().generatedConfigs())
        await #expect(throws: StoreError.unknownRevision(1)) { try await store.restore(revision: 1, message: "", by: alice) }
    }

    @Test("two DBAs committing at once: one wins, the other gets a conflict and writes nothing")
    func concurrentCommits() async throws {
        let store = try await isolatedStore("race")
        _ = try await store.replaceStaged(with: sampleTopology(), by: alice, change: "import")
        _ = try await store.commit(message: "initial", by: alice)
        _ = try await store.apply(.setWeight(instance: "db1003", section: "s1", group: nil, weight: 50), by: alice)

        let alicesView = try await store.prepareCommit()
        let bobsView = try await store.prepareCommit()
        guard case .committed = try await store.commit(alicesView, message: "alice's", by: alice) else {
            Issue.record("the first commit lost")
            return
        }
        let before = try await fingerprint(store)
        #expect(try await store.commit(bobsView, message: "bob's", by: bob) == .conflict(readRevision: bobsView.staged.revision))
        #expect(try await fingerprint(store) == before)
        #expect(try await store.history().map(\.message) == ["alice's", "initial"])

        // A staged edit decided on a snapshot that another edit has since changed is refused whole.
        let stale = try await store.read().staged
        guard case .applied = try await store.apply(.depool(instance: "db1002", section: "s1", group: nil), by: alice) else {
            Issue.record("alice's edit was not applied")
            return
        }
        let afterAlice = try await fingerprint(store)
        #expect(
            try await store.apply(.setCandidate(instance: "db1003", candidate: true), over: stale, by: bob)
                == .conflict(readRevision: stale.revision))
        #expect(try await fingerprint(store) == afterAlice)
        #expect(try await store.read().staged.topology.instances["db1003"]?.candidatePrimary == false)
    }

    @Test("refused edits, invalid imports and invalid commits leave etcd at the same revision")
    func badInputChangesNothing() async throws {
        let store = try await isolatedStore("bad-input")
        _ = try await store.replaceStaged(with: sampleTopology(), by: alice, change: "import")
        _ = try await store.commit(message: "initial", by: alice)
        let before = try await fingerprint(store)

        #expect(
            try await store.apply(.depool(instance: "db1001", section: "s1", group: nil), by: bob)
                == .refused([TopologyIssue("sections.s1.primary", "the primary db1001 must stay pooled")]))
        #expect(
            try await store.apply(.setPercentage(instance: "db1002", section: "s1", percentage: 150), by: bob)
                == .refused([TopologyIssue("instances.db1002.sections.s1.percentage", "must be within 0-100 (is 150)")]))
        await #expect(throws: EditError("unknown instance db9999")) {
            try await store.apply(.setCandidate(instance: "db9999", candidate: true), by: bob)
        }
        var broken = sampleTopology()
        broken.instances["db1002"]!.sections["s1"]!.weight = -5
        broken.sections["s1"]!.minReplicas = 5
        guard case .refused(let issues) = try await store.replaceStaged(with: broken, by: bob, change: "import") else {
            Issue.record("an invalid import was accepted")
            return
        }
        #expect(issues.count == 2)
        #expect(try await fingerprint(store) == before)
    }

    @Test("garbage in etcd is refused naming the key, and nothing is written")
    func garbageInEtcd() async throws {
        let store = try await isolatedStore("garbage")
        _ = try await store.replaceStaged(with: sampleTopology(), by: alice, change: "import")
        try await store.etcd.put(store.keys.instance("db1009"), "{not json")
        let before = try await fingerprint(store)
        await #expect(throws: StoreError.corrupt(key: store.keys.instance("db1009"), problem: "is not a JSON object: {not json")) {
            try await store.commit(message: "x", by: alice)
        }
        try await store.etcd.put(store.keys.instance("db1009"), #"{"schema":1,"host":"10.0.0.9","datacenter":"dc1","wieght":3}"#)
        let error = await #expect(throws: StoreError.self) { try await store.apply(.setCandidate(instance: "db1002", candidate: true), by: alice) }
        #expect(error?.description.contains("unknown field \"wieght\"") == true)
        try await store.etcd.put(store.keys.section("s1"), #"{"schema":7,"datacenter":"dc1"}"#)
        let schema = await #expect(throws: StoreError.self) { try await store.read() }
        #expect(schema?.description.contains("has schema 7; this Marina reads schema 1") == true)
        var expected = before  // only the test's own two puts changed anything
        expected[store.keys.instance("db1009")] = try await store.etcd.value(store.keys.instance("db1009"))?.modRevision
        expected[store.keys.section("s1")] = try await store.etcd.value(store.keys.section("s1"))?.modRevision
        #expect(try await fingerprint(store) == expected)
    }

    @Test("history keeps the newest commits up to its limit")
    func historyLimit() async throws {
        let store = try await isolatedStore("history", historyLimit: 3)
        _ = try await store.replaceStaged(with: sampleTopology(), by: alice, change: "import")
        for weight in 1...5 {
            _ = try await store.apply(.setWeight(instance: "db1003", section: "s1", group: nil, weight: weight * 10), by: alice)
            guard case .committed = try await store.commit(message: "weight \(weight)", by: alice) else {
                Issue.record("commit \(weight) did not happen")
                return
            }
        }
        #expect(try await store.history(limit: 10).map(\.sequence) == [5, 4, 3])
    }
}
