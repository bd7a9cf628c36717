import Foundation

/// A private certificate authority for a TLS sandbox, made with the `openssl` command:
/// a CA, a server certificate valid for `127.0.0.1` and `localhost` (and, in namespaces mode,
/// the bridge's and every host's address), and a client
/// certificate (CN `marina`). EC P-256 keys, valid for 30 days. Keys are mode 600.
public struct Certificates: Codable, Sendable, Equatable {
    public var caFile: String
    public var serverCertificate: String
    public var serverKey: String
    public var clientCertificate: String
    public var clientKey: String

    /// `addresses`: more IP addresses the server certificate is valid for.
    public static func create(in directory: String, addresses: [String] = []) throws -> Certificates {
        let openssl = try Toolchain.find("openssl", package: "openssl", in: Toolchain.defaultSearchPath)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let log = directory + "/openssl.log"
        func run(_ arguments: [String]) throws {
            let status = try ChildProcess.run(openssl, arguments, logFile: log)
            guard status == 0 else {
                throw SandboxError.setupFailed(what: "TLS certificates", detail: "openssl \(arguments.first ?? "") exited \(status) (see \(log))")
            }
        }
        let path = { (name: String) in directory + "/" + name }
        let extensions = path("server.ext")
        let names = (["IP:127.0.0.1", "DNS:localhost"] + addresses.map { "IP:" + $0 }).joined(separator: ",")
        try "subjectAltName=\(names)\nextendedKeyUsage=serverAuth,clientAuth\n"
            .write(toFile: extensions, atomically: true, encoding: .utf8)
        let clientExtensions = path("client.ext")
        try "extendedKeyUsage=clientAuth\n".write(toFile: clientExtensions, atomically: true, encoding: .utf8)

        try run([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
            "-subj", "/CN=Marina sandbox CA", "-keyout", path("ca-key.pem"), "-out", path("ca.pem"),
        ])
        for (name, subject, ext) in [("server", "/CN=127.0.0.1", extensions), ("client", "/CN=marina", clientExtensions)] {
            try run([
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", subject,
                "-keyout", path("\(name)-key.pem"), "-out", path("\(name).csr"),
            ])
            try run([
                "x509", "-req", "-in", path("\(name).csr"), "-CA", path("ca.pem"), "-CAkey", path("ca-key.pem"),
                "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", path("\(name).pem"),
            ])
        }
        for key in ["ca-key.pem", "server-key.pem", "client-key.pem"] {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path(key))
        }
        try? FileManager.default.removeItem(atPath: log)
        return Certificates(
            caFile: path("ca.pem"), serverCertificate: path("server.pem"), serverKey: path("server-key.pem"),
            clientCertificate: path("client.pem"), clientKey: path("client-key.pem"))
    }
}
