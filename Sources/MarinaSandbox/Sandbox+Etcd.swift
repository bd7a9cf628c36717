import Foundation

extension Sandbox {
    /// Stops the sandbox's etcd (SIGTERM, or SIGKILL with `kill`), keeping its data, to
    /// simulate an etcd outage. The state file keeps the old pid until `startEtcd`.
    public static func stopEtcd(directory: String, kill: Bool = false) async throws {
        let state = try state(directory: directory)
        try await blocking.run { stopEtcd(state, kill: kill) }
    }

    private static func stopEtcd(_ state: SandboxState, kill: Bool) {
        ChildProcess.stop(state.etcd.pid, marker: marker(state.directory), grace: kill ? 0 : 15)
    }

    /// Starts the sandbox's etcd again on the same ports and data (and, in namespaces mode, on
    /// the bridge's address too), and waits for it.
    public static func startEtcd(directory: String) async throws {
        var state = try state(directory: directory)
        guard !ChildProcess.isRunning(state.etcd.pid, marker: marker(state.directory)) else { return }
        let toolchain = try Toolchain.locate()
        state.etcd.pid = try EtcdServer.start(
            toolchain, dataDirectory: state.etcd.dataDirectory, clientPort: state.etcd.clientPort,
            peerPort: state.etcd.peerPort, logFile: state.etcd.logFile, tls: state.certificates,
            bridgeAddress: state.etcd.bridgeAddress)
        try state.save()
        try await EtcdServer.waitReady(
            url: state.etcd.url, pid: state.etcd.pid, marker: marker(state.directory),
            logFile: state.etcd.logFile, tls: state.certificates)
    }
}
