import Controller
import Foundation
import MarinaHTTP
import MarinaSandbox
import MarinaTestSupport
import Testing

/// The controller's `http:` block, its token file and HTTPS, refused with the key's name when wrong.
@Suite("HTTP configuration")
struct HTTPConfigurationTests {
    static let base = """
        etcd:
          endpoints: ["http://127.0.0.1:2379"]
        mariadb:
          credentials_file: /etc/marina/credentials.cnf
          credentials_group: marina-controller
          replication_group: marina-replication
        playbooks: /usr/share/marina/playbooks

        """

    @Test("an http: block loads, and each bad key is refused by name")
    func configuration() throws {
        let good = try ControllerConfiguration.parse(
            Self.base + "http:\n  listen: 10.0.0.5:8470\n  token_file: /etc/marina/api-token\n", file: "c.yaml")
        #expect(good.http == .init(listen: "10.0.0.5:8470", tokenFile: "/etc/marina/api-token"))
        #expect(try ControllerConfiguration.parse(Self.base, file: "c.yaml").http == nil)
        let cases: [(String, String)] = [
            ("http:\n  listen: localhost\n", "http.listen must be an IPv4 address and a port"),
            ("http:\n  listen: 127.0.0.1:0\n", "http.listen must be an IPv4 address and a port"),
            ("http:\n  listen: 127.0.0.1:8470\n  certificate_file: /etc/marina/api.pem\n", "http.certificate_file and http.key_file go together"),
            ("http:\n  listen: 127.0.0.1:8470\n  token_file: api-token\n", "http.token_file must be an absolute path"),
            ("http:\n  listen: 127.0.0.1:8470\n  token: hunter2hunter2hunter2\n", "token"),
            ("http:\n  token_file: /etc/marina/api-token\n", "listen"),
        ]
        for (block, expected) in cases {
            #expect(throws: ControllerError.self, "\(block)") { try ControllerConfiguration.parse(Self.base + block, file: "c.yaml") }
            do {
                _ = try ControllerConfiguration.parse(Self.base + block, file: "c.yaml")
            } catch {
                #expect("\(error)".contains(expected), "\(block): \(error)")
                #expect(!"\(error)".contains("hunter2"), "a secret in an error: \(error)")
            }
        }
    }

    @Test("the token file must be private and hold a real token; only the exact token matches")
    func tokenFile() throws {
        let directory = NSTemporaryDirectory() + "marina-token-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/token"
        let secret = "s3cret-token-0123456789abcdef"
        FileManager.default.createFile(atPath: path, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o644])
        #expect {
            try AccessToken(file: path)
        } throws: { "\($0)".contains("chmod 600") && !"\($0)".contains(secret) }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let token = try AccessToken(file: path)
        #expect(token.matches(secret))
        for wrong in ["", secret.dropLast().description, secret + "x", "S3cret-token-0123456789abcdef", "Bearer " + secret] {
            #expect(!token.matches(wrong), "\(wrong) matched")
        }
        FileManager.default.createFile(atPath: path, contents: Data("short\n".utf8), attributes: [.posixPermissions: 0o600])
        #expect { try AccessToken(file: path) } throws: { "\($0)".contains("at least 16 characters") }
        #expect { try AccessToken(file: directory + "/missing") } throws: { "\($0)".contains("cannot read") }
    }

    @Test("a sandbox with TLS serves the API over HTTPS with its certificate, and refuses plain HTTP")
    func https() async throws {
        let sandbox = try await TestServers.privateSandbox("api-tls", tls: true, controller: true)
        defer { TestServers.stop(sandbox) }
        let url = try #require(sandbox.controllerURL)
        #expect(url.hasPrefix("https://"))
        let ca = try #require(sandbox.certificates).caFile
        var answer = (status: Int32(-1), stdout: "", stderr: "")
        for _ in 0..<100 {  // the listener starts with the controller
            answer = try curl(["--cacert", ca, url + "/api/v1/controller"])
            if answer.status == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(answer.status == 0 && answer.stdout.contains("\"id\""), "\(answer)")
        let plain = try curl([url.replacingOccurrences(of: "https://", with: "http://") + "/api/v1/controller"])
        #expect(plain.status != 0 || !plain.stdout.contains("\"id\""), "plain HTTP answered on the HTTPS listener: \(plain)")
        let unverified = try curl([url + "/api/v1/controller"])  // without the sandbox's CA: the certificate is not trusted
        #expect(unverified.status != 0, "\(unverified)")
    }

    private func curl(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sS", "--max-time", "10"] + arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }
}
