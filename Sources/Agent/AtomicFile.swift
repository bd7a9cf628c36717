#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Whole-file reads and atomic writes, with POSIX calls (the agent links no full Foundation).
/// Blocking: called on a `BlockingQueue`, never on the cooperative pool.
enum AtomicFile {
    /// A file's text; nil when it does not exist.
    static func read(_ path: String) throws -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw FileError(operation: "open", path: path, code: errno)
        }
        defer { close(descriptor) }
        var bytes = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = buffer.withUnsafeMutableBytes { posixRead(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw FileError(operation: "read", path: path, code: errno)
            }
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Replaces `path` with `text`: written to a temporary file in the same directory, flushed
    /// to disk (`fsync`), renamed over `path`, and the directory flushed; a crash leaves the old
    /// file or the new one, never a part. Mode 0644: the server's user reads it.
    static func write(_ text: String, to path: String) throws {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) }.flatMap { $0.isEmpty ? "/" : $0 } ?? "."
        let temporary = "\(path).marina-\(getpid()).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw FileError(operation: "create", path: temporary, code: errno) }
        var closed = false
        defer {
            if !closed { close(descriptor) }
        }
        do {
            let bytes = Array(text.utf8)
            var written = 0
            while written < bytes.count {
                let count = bytes.withUnsafeBytes { posixWrite(descriptor, $0.baseAddress! + written, $0.count - written) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw FileError(operation: "write", path: temporary, code: errno)
                }
                written += count
            }
            guard fchmod(descriptor, 0o644) == 0 else { throw FileError(operation: "chmod", path: temporary, code: errno) }
            guard fsync(descriptor) == 0 else { throw FileError(operation: "fsync", path: temporary, code: errno) }
            closed = true
            guard close(descriptor) == 0 else { throw FileError(operation: "close", path: temporary, code: errno) }
            guard rename(temporary, path) == 0 else { throw FileError(operation: "rename", path: path, code: errno) }
        } catch {
            unlink(temporary)
            throw error
        }
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// A failed system call on a file, with its `errno`.
    struct FileError: Error, CustomStringConvertible {
        var operation: String
        var path: String
        var code: Int32

        var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
    }
}

/// `read(2)` and `write(2)`, which `AtomicFile`'s own `read` and `write` hide.
private func posixRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
        Glibc.read(descriptor, buffer, count)
    #else
        Darwin.read(descriptor, buffer, count)
    #endif
}

private func posixWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
        Glibc.write(descriptor, buffer, count)
    #else
        Darwin.write(descriptor, buffer, count)
    #endif
}
