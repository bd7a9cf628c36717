import EtcdClient
import Foundation

/// A single-member etcd on loopback, for the sandbox and the tests.
public enum EtcdServer {
    /// Starts etcd with its data in `dataDirectory`; the v2 API is on for MediaWiki's
    /// EtcdConfig, which reads it.
    public static func start(_ toolchain: Toolchain, dataDirectory: String, clientPort: Int, peerPort: Int, logFile: String) throws -> Int32 {
        let client = "http://127.0.0.1:\(clientPort)"
        let peer = "http://127.0.0.1:\(peerPort)"
        return try ChildProcess.spawn(toolchain.etcd, [
            "--name", "marina-sandbox",
            "--data-dir", dataDirectory,
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "marina-sandbox=\(peer)",
            "--enable-v2=true",
        ], logFile: logFile)
    }

    /// Waits until etcd answers a status request, or throws naming its log.
    public static func waitReady(url: String, pid: Int32, marker: String, logFile: String, timeout: Double = 20) async throws {
        let client = EtcdClient(EtcdConfiguration(endpoints: [url], connectTimeout: 0.5, requestTimeout: 1))
        let deadline = Date().addingTimeInterval(timeout)
        var lastError = "no answer"
        while Date() < deadline {
            guard ChildProcess.isRunning(pid, marker: marker) else {
                throw SandboxError.notReady(what: "etcd at \(url)", log: logFile, detail: "the process exited")
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
