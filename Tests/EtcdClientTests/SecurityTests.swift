import EtcdClient
import Foundation
import MarinaSandbox
import MarinaTestSupport
import Testing

@Suite("EtcdClient TLS and authentication against a real etcd")
struct SecurityTests {
    @Test("HTTPS with a client certificate works; no certificate, a wrong CA or plain HTTP do not")
    func clientCertificates() async throws {
        let sandbox = try await TestServers.privateSandbox("etcd-tls", sections: 0, tls: true)
        defer { TestServers.stop(sandbox) }
        let certificates = try #require(sandbox.certificates)
        #expect(sandbox.etcd.url.hasPrefix("https://"))

        let trusted = EtcdClient(EtcdConfiguration(endpoints: [sandbox.etcd.url], tls: certificates.etcdClientTLS))
        try await trusted.put("/tls/key", "over TLS")
        #expect(try await trusted.value("/tls/key")?.stringValue == "over TLS")

        let noCertificate = EtcdClient(EtcdConfiguration(endpoints: [sandbox.etcd.url], tls: .init(caFile: certificates.caFile)))
        let rejected = try await #require(throws: EtcdError.self) { try await noCertificate.value("/tls/key") }
        #expect(rejected.isUnavailable)

        let stranger = try Certificates.create(in: sandbox.directory + "/other-ca")
        let wrongCA = EtcdClient(EtcdConfiguration(endpoints: [sandbox.etcd.url], tls: stranger.etcdClientTLS))
        let unverified = try await #require(throws: EtcdError.self) { try await wrongCA.value("/tls/key") }
        guard case .unavailable(let attempts) = unverified.kind else {
            Issue.record("expected unavailable, got \(unverified)")
            return
        }
        #expect(attempts.first?.lowercased().contains("certificate") == true)

        let plain = EtcdClient(endpoints: [sandbox.etcd.url.replacingOccurrences(of: "https://", with: "http://")])
        await #expect(throws: EtcdError.self) { try await plain.value("/tls/key") }
    }

    @Test("username/password: refused without, accepted with, and re-authenticated after etcd restarts")
    func authentication() async throws {
        let sandbox = try await TestServers.privateSandbox("etcd-auth", sections: 0)
        defer { TestServers.stop(sandbox) }
        let password = "pw-\(UInt64.random(in: 0...UInt64.max))"
        try etcdctl(sandbox, ["user", "add", "root", "--interactive=false"], input: password + "\n")
        try etcdctl(sandbox, ["role", "add", "root"])
        try etcdctl(sandbox, ["user", "grant-role", "root", "root"])
        try etcdctl(sandbox, ["auth", "enable"])

        let anonymous = EtcdClient(endpoints: [sandbox.etcd.url])
        let refused = try await #require(throws: EtcdError.self) { try await anonymous.put("/auth/key", "x") }
        #expect(refused.grpcCode == GRPCCode.invalidArgument)
        #expect(refused.message.contains("user name is empty"))

        let wrong = EtcdClient(EtcdConfiguration(endpoints: [sandbox.etcd.url], credentials: .init(username: "root", password: "nope")))
        let denied = try await #require(throws: EtcdError.self) { try await wrong.put("/auth/key", "x") }
        #expect(denied.message.contains("authentication failed"))
        #expect(!denied.description.contains("nope"))

        let configuration = EtcdConfiguration(endpoints: [sandbox.etcd.url], credentials: .init(username: "root", password: password))
        #expect(!configuration.description.contains(password))
        let authenticated = EtcdClient(configuration)
        try await authenticated.put("/auth/key", "written with a token")
        #expect(try await authenticated.value("/auth/key")?.stringValue == "written with a token")

        // etcd's simple tokens do not survive a restart: the client must get a new one by itself.
        try await Sandbox.stopEtcd(directory: sandbox.directory)
        try await Sandbox.startEtcd(directory: sandbox.directory)
        try await authenticated.put("/auth/key", "after restart")
        #expect(try await authenticated.value("/auth/key")?.stringValue == "after restart")
    }
}

/// Runs etcdctl against the sandbox's etcd; secrets go through standard input, never argv.
private func etcdctl(_ sandbox: SandboxState, _ arguments: [String], input: String = "") throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try Toolchain.find("etcdctl", package: "etcd-client", in: Toolchain.defaultSearchPath))
    process.arguments = ["--endpoints", sandbox.etcd.url] + arguments
    process.environment = ["ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"]
    let stdin = Pipe()
    process.standardInput = stdin
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    stdin.fileHandleForWriting.write(Data(input.utf8))
    try stdin.fileHandleForWriting.close()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "etcdctl \(arguments.joined(separator: " "))")
}
