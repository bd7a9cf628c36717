import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An initialised MariaDB data directory, made once per MariaDB build and copied for each
/// new instance: `mariadb-install-db` is the slow part of starting one.
///
/// The template lives in `$MARINA_CACHE_DIR`, else `$XDG_CACHE_HOME/marina`, else
/// `~/.cache/marina`, named after the `mariadbd` binary's size and modification time, so an
/// upgraded server gets a fresh template. Builders take an exclusive `flock` on a lock file
/// in the cache first, so one builds while the others (threads or processes) wait and then
/// reuse it; the template is built in a private folder and renamed into place, so nobody
/// ever sees half of one. Blocking: call it from a `BlockingQueue`.
public enum DatadirTemplate {
    public static func ensure(_ toolchain: Toolchain, fallbackDirectory: String) throws -> String {
        let cache = cacheDirectory(fallback: fallbackDirectory)
        let attributes = try? FileManager.default.attributesOfItem(atPath: toolchain.mariadbd)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
        let modified = Int((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
        let template = "\(cache)/mariadb-datadir-\(size)-\(modified)"
        let isComplete = { FileManager.default.fileExists(atPath: template + "/mysql/global_priv.frm") }
        if isComplete() { return template }

        let lock = open(cache + "/template.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard lock >= 0 else {
            throw SandboxError.directoryNotWritable(cache, reason: String(cString: strerror(errno)))
        }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 && errno == EINTR {}
        defer { flock(lock, LOCK_UN) }
        // Someone else may have built it while this one waited.
        if isComplete() { return template }

        let building = "\(template).building-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.removeItem(atPath: building)
        let log = building + ".log"
        let status = try ChildProcess.run(
            toolchain.installDB,
            [
                "--no-defaults", "--user=root", "--datadir=\(building)", "--auth-root-authentication-method=normal",
                "--skip-test-db", "--skip-name-resolve",
            ], logFile: log)
        guard status == 0 else {
            let tail = ChildProcess.logTail([log], characters: 500)
            throw SandboxError.setupFailed(what: "the MariaDB data directory template", detail: "mariadb-install-db exited \(status): \(tail)")
        }
        try? FileManager.default.removeItem(atPath: log)
        try? FileManager.default.removeItem(atPath: template)  // a half-copied leftover, if any
        try FileManager.default.moveItem(atPath: building, toPath: template)
        return template
    }

    static func cacheDirectory(fallback: String) -> String {
        let environment = ProcessInfo.processInfo.environment
        let candidates = [
            environment["MARINA_CACHE_DIR"],
            environment["XDG_CACHE_HOME"].map { $0 + "/marina" },
            environment["HOME"].map { $0 + "/.cache/marina" },
        ].compactMap { $0 }
        for candidate in candidates {
            if (try? FileManager.default.createDirectory(atPath: candidate, withIntermediateDirectories: true)) != nil,
                FileManager.default.isWritableFile(atPath: candidate)
            {
                return candidate
            }
        }
        return fallback + "/.cache"
    }
}
