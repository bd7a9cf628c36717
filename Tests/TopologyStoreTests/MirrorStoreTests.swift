import EtcdClient
import Foundation
import MarinaTestSupport
import Observation
import Testing
import Topology
import TopologyStore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The v2 value at `<prefix>/<dc>/dbconfig`, decoded, or nil when absent.
func mirrored(_ store: TopologyStore, prefix: String, datacenter: String = "dc1") async throws -> GeneratedConfig? {
    guard let node = try await store.etcd.v2Get(ConfigMirror.v2Path(prefix: prefix, datacenter: datacenter), recursive: false), let value = node.value
    else { return nil }
    return try ConfigMirror.decodeV2Value(value)
}

/// Deletes a v2 key (`DELETE /v2/keys/<path>`), as a DBA's `etcdctl` would; the shared sandbox has no TLS.
func v2Delete(_ store: TopologyStore, _ path: String) async throws {
    let etcd = try #require(store.etcd as? EtcdClient)
    var request = URLRequest(url: URL(string: "\(etcd.configuration.endpoints[0])/v2/keys/\(path)")!)
    request.httpMethod = "DELETE"
    let (_, response) = try await URLSession.shared.data(for: request)
    #expect((response as? HTTPURLResponse)?.statusCode == 200)
}

/// A v2 prefix no other test uses.
func uniqueV2Prefix(_ name: String) -> String { "marina-tests/\(name)-\(UInt64.random(in: 0...UInt64.max))" }

@Suite("The site mirror and one-read snapshots in a real etcd")
struct MirrorStoreTests {
    @Test("every commit path writes the site mirror: commit, restore, prepared edits; none without a setting")
    func everyCommitWritesTheSiteMirror() async throws {
        let store = try await isolatedStore("site-mirror")
        let prefix = uniqueV2Prefix("site")
        #expect(try await store.siteMirror() == nil)
        #expect(try await store.replaceStaged(with: sampleTopology(), by: alice, change: "import") != .conflict(readRevision: 0))
        guard case .committed = try await store.commit(message: "initial", by: alice) else { throw StoreTestFailure("no first commit") }
        #expect(try await mirrored(store, prefix: prefix) == nil)  // no setting, no mirror

        try await store.setSiteMirror(try SiteMirror(v2Prefix: "/" + prefix + "/", author: "alice", at: alice.now))
        #expect(try await store.siteMirror()?.v2Prefix == prefix)
        #expect(try await store.read().committed.siteMirror?.v2Prefix == prefix)
        _ = try await store.apply(.depool(instance: "db1002", section: "s1", group: nil), by: alice)
        guard case .committed(let second) = try await store.commit(message: "depool db1002", by: alice) else { throw StoreTestFailure("no commit") }
        #expect(try await mirrored(store, prefix: prefix) == second.topology.topology.generatedConfigs()["dc1"])

        guard
            case .success(let edits) = try await store.prepare(
                [.setWeight(instance: "db1003", section: "s1", group: nil, weight: 50)],
                message: "automatic", by: bob)
        else { throw StoreTestFailure("not prepared") }
        guard case .committed = try await store.commit(edits) else { throw StoreTestFailure("prepared edits not committed") }
        #expect(try await mirrored(store, prefix: prefix)?.sectionLoads["s1"]?.last?["db1003"] == 50)

        let first = try #require(try await store.history().last?.revision)
        guard case .committed = try await store.restore(revision: first, message: "undo", by: alice) else { throw StoreTestFailure("no restore") }
        #expect(try await mirrored(store, prefix: prefix) == sampleTopology().generatedConfigs()["dc1"])

        // A prepared commit that leaves the mirror to its caller (a switchover's window).
        guard
            case .success(let later) = try await store.prepare(
                [.depool(instance: "db1003", section: "s1", group: nil)],
                message: "in a window", by: bob)
        else { throw StoreTestFailure("not prepared") }
        guard case .committed = try await store.commit(later, writeMirror: false) else { throw StoreTestFailure("not committed") }
        #expect(try await mirrored(store, prefix: prefix) == sampleTopology().generatedConfigs()["dc1"])
        #expect(try await store.writeMirror(later.configs) == ["etcd v2 /v2/keys/\(prefix)/dc1/dbconfig"])
        #expect(try await mirrored(store, prefix: prefix) == later.configs["dc1"])

        try await store.setSiteMirror(nil)
        #expect(try await store.siteMirror() == nil)
    }

    @Test("a mirror etcd refuses: the commit stands and MirrorWriteFailed says which key; sync writes it once fixed")
    func failedMirrorIsAnError() async throws {
        let store = try await isolatedStore("site-mirror-fails")
        let prefix = uniqueV2Prefix("refused")
        #expect(try await store.replaceStaged(with: sampleTopology(), by: alice, change: "import") != .conflict(readRevision: 0))
        try await store.setSiteMirror(try SiteMirror(v2Prefix: prefix))
        // A v2 file where the datacenter's directory must be: etcd refuses `<prefix>/dc1/dbconfig` (v2 error 104, not a directory).
        try await store.etcd.v2Put(prefix + "/dc1", "a file")
        do {
            _ = try await store.commit(message: "initial", by: alice)
            Issue.record("a commit whose mirror was refused did not throw")
        } catch let failure as MirrorWriteFailed {
            #expect(failure.entry?.sequence == 1 && failure.entry?.revision != nil)
            #expect(failure.failures.map(\.target) == ["etcd v2 /v2/keys/\(prefix)/dc1/dbconfig"])
            #expect(failure.failures.first?.message.contains("Not a directory") == true, "\(failure)")
            #expect(failure.v2Failed)
            #expect(failure.description.contains("commit #1"))
        }
        #expect(try await store.read().committed.sequence == 1)  // the commit stands
        #expect(try await store.diff().changes.isEmpty)

        // The same for prepared edits (what a controller commits).
        guard
            case .success(let edits) = try await store.prepare(
                [.depool(instance: "db1002", section: "s1", group: nil)],
                message: "automatic", by: bob)
        else { throw StoreTestFailure("not prepared") }
        await #expect(throws: MirrorWriteFailed.self) { try await store.commit(edits) }
        #expect(try await store.read().committed.sequence == 2)
        await #expect(throws: MirrorWriteFailed.self) { try await store.syncMirror() }

        try await v2Delete(store, prefix + "/dc1")
        #expect(try await store.syncMirror() == ["etcd v2 /v2/keys/\(prefix)/dc1/dbconfig"])
        #expect(try await mirrored(store, prefix: prefix)?.sectionLoads["s1"]?.last?["db1002"] == nil)
    }

    @Test("the site mirror setting is validated, and a corrupt one stops commits before anything is written")
    func settingValidation() async throws {
        for bad in ["", "/", "a//b", "a/../b", "_hidden/x", "a b", "a?x"] {
            #expect(throws: SiteMirror.InvalidPrefix.self, "\(bad)") { try SiteMirror(v2Prefix: bad) }
        }
        #expect(try SiteMirror(v2Prefix: "/conftool/v1/mediawiki-config/").v2Prefix == "conftool/v1/mediawiki-config")

        let store = try await isolatedStore("site-mirror-corrupt")
        #expect(try await store.replaceStaged(with: sampleTopology(), by: alice, change: "import") != .conflict(readRevision: 0))
        try await store.etcd.put(store.keys.siteMirror, #"{"schema":1,"v2_prefx":"x"}"#)
        let before = try await fingerprint(store)
        await #expect(throws: StoreError.self) { try await store.commit(message: "x", by: alice) }
        #expect(try await fingerprint(store) == before)
        try await store.etcd.put(store.keys.siteMirror, #"{"schema":1,"v2_prefix":"a/../b"}"#)
        do {
            _ = try await store.siteMirror()
            Issue.record("a prefix with .. was read")
        } catch let error as StoreError {
            #expect(error.description.contains("v2_prefix"), "\(error)")
        }
    }

    @Test("the snapshot reads the committed topology, observations and locks at one revision; staged changes are only a diff")
    func snapshotIsCommitted() async throws {
        let store = try await isolatedStore("snapshot")
        #expect(try await store.replaceStaged(with: sampleTopology(), by: alice, change: "import") != .conflict(readRevision: 0))
        #expect(try await store.snapshot().committedTopology == nil)
        guard case .committed = try await store.commit(message: "initial", by: alice) else { throw StoreTestFailure("no commit") }
        _ = try await store.apply(.setPrimary(section: "s1", instance: "db1002"), by: bob)
        let observation = Observation(instance: "db1001", agent: "host", agentStartedAt: alice.now, observedAt: alice.now, reachable: true)
        try await store.etcd.put(store.keys.observed + "db1001", try ObservationJSON.encode(observation))
        try await store.etcd.put(store.keys.lock("s1"), "op-1")

        let snapshot = try await store.snapshot()
        #expect(snapshot.committedTopology?.sections["s1"]?.primary == "db1001")
        #expect(snapshot.staged.topology.sections["s1"]?.primary == "db1002")
        #expect(snapshot.uncommitted.contains { $0.key == "sectionLoads" && $0.entry == "s1" })
        #expect(snapshot.observations["db1001"]?.observedAt == alice.now)
        #expect(snapshot.locks == ["s1": "op-1"])
        #expect(snapshot.policyState == nil)
        #expect(snapshot.revision == snapshot.staged.revision)
    }
}

struct StoreTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
