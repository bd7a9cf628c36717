import MariaDBClient
import MarinaSandbox
import MarinaTestSupport
import Testing

@Suite("MariaDBClient over TLS against a real mariadbd")
struct TLSTests {
    @Test("TLS with a verified server certificate, a wrong CA refused, REQUIRE X509 honoured")
    func tls() async throws {
        let sandbox = try await TestServers.privateSandbox("mariadb-tls", tls: true)
        defer { TestServers.stop(sandbox) }
        let certificates = try #require(sandbox.certificates)
        var configuration = try sandbox.adminConfiguration("db1001")

        // Plain TCP: the server offers TLS but this client did not ask.
        let plain = try await MariaDBClient.connect(configuration)
        #expect(try await plain.query("SHOW SESSION STATUS LIKE 'Ssl_version'").first?["Value"] == "")
        await plain.close()

        // TLS, verifying the server's certificate against the sandbox's CA.
        configuration.tls = .init(caFile: certificates.caFile, verifyServerCertificate: true)
        let encrypted = try await MariaDBClient.connect(configuration)
        let version = try #require(try await encrypted.query("SHOW SESSION STATUS LIKE 'Ssl_version'").first?["Value"])
        #expect(version.hasPrefix("TLSv1."))
        await encrypted.close()

        // A CA that did not sign the server's certificate: refused, never silently plain.
        let stranger = try Certificates.create(in: sandbox.directory + "/other-ca")
        configuration.tls = .init(caFile: stranger.caFile, verifyServerCertificate: true)
        let refused = try await #require(throws: MariaDBError.self) { try await MariaDBClient.connect(configuration) }
        #expect(refused.code == 2026)  // CR_SSL_CONNECTION_ERROR
        #expect(refused.operation == .connect)

        // An account that requires a client certificate.
        let root = try await sandbox.root("db1001")
        try await root.execute("CREATE USER 'x509user'@'127.0.0.1' IDENTIFIED BY 'pw-x509' REQUIRE X509")
        await root.close()
        let port = try #require(sandbox.instance(named: "db1001")).port
        var x509 = MariaDBConfiguration(
            endpoint: .tcp(host: "127.0.0.1", port: port), user: "x509user", password: "pw-x509",
            tls: .init(caFile: certificates.caFile))
        let withoutCertificate = try await #require(throws: MariaDBError.self) { try await MariaDBClient.connect(x509) }
        #expect(withoutCertificate.isAccessDenied)
        x509.tls = .init(caFile: certificates.caFile, certificateFile: certificates.clientCertificate, keyFile: certificates.clientKey)
        let withCertificate = try await MariaDBClient.connect(x509)
        #expect(try await withCertificate.query("SELECT CURRENT_USER() AS u").first?["u"] == "x509user@127.0.0.1")
        await withCertificate.close()
    }
}
