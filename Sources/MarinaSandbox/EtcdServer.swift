import EtcdClient
import Foundation

/// A single-member etcd on loopback, for the sandbox and the tests.
public enum EtcdServer {
    /// Starts etcd with its data in `dataDirectory`; the v2 API is on for MediaWiki's
    /// EtcdConfig, which reads it.
    /// With `tls`, clients must use HTTPS and present a certificate signed by the sandbox's CA.
    /// With `bridgeAddress` (namespaces mode), clients are served there too, on the same port.
    public static func start(
        _ toolchain: Toolchain, dataDirectory: String, clientPort: Int, peerPort: Int, logFile: String,
        tls: Certificates? = nil, bridgeAddress: String? = nil
    ) throws -> Int32 {
        let client = (["127.0.0.1"] + (bridgeAddress.map { [$0] } ?? []))
            .map { "\(tls == nil ? "http" : "https")://\($0):\(clientPort)" }.joined(separator: ",")
        let peer = "http://127.0.0.1:\(peerPort)"
        let tlsArguments =
            tls.map {
                ["--cert-file", $0.serverCertificate, "--key-file", $0.serverKey, "--trusted-ca-file", $0.caFile, "--client-cert-auth"]
            } ?? []
        return try ChildProcess.spawn(
            toolchain.etcd,
            tlsArguments + [
                "--name", "marina-sandbox",
                "--data-dir", dataDirectory,
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "marina-sandbox=\(peer)",
                "--enable-v2=true",
                // Atomic imports and restores of large topologies are single transactions.
                "--max-txn-ops", "10000", "--max-request-bytes", "33554432",
            ], logFile: logFile)
    }

    /// Waits until etcd answers a status request, or throws naming its log.
    public static func waitReady(
        url: String, pid: Int32, marker: String, logFile: String, tls: Certificates? = nil,
        timeout: Double = 20
    ) async throws {
        let client = EtcdClient(EtcdConfiguration(endpoints: [url], tls: tls?.etcdClientTLS, connectTimeout: 0.5, requestTimeout: 1))
        let deadline = Date().addingTimeInterval(timeout)
        var lastError = "no answer"
        while Date() < deadline {
            guard ChildProcess.isRunning(pid, marker: marker) else {
                throw SandboxError.notReady(
                    what: "etcd at \(url)", log: logFile,
                    detail: "the process \(ChildProcess.ending(of: pid)): \(ChildProcess.logTail([logFile], characters: 600))")
            }
            do {
                _ = try await client.status()
                return
            } catch {
                lastError = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw SandboxError.notReady(what: "etcd at \(url)", log: logFile, detail: "no answer within \(Int(timeout)) s: \(lastError)")
    }
}

extension Certificates {
    /// What an etcd client of the sandbox presents: the CA to trust and the client certificate.
    public var etcdClientTLS: EtcdConfiguration.TLS {
        EtcdConfiguration.TLS(caFile: caFile, certificateFile: clientCertificate, keyFile: clientKey)
    }
}
