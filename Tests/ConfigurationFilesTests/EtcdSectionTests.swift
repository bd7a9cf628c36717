import ConfigurationFiles
import Foundation
import Testing

@Suite("The etcd: section")
struct EtcdSectionTests {
    func temporaryDirectory() throws -> String {
        let directory = NSTemporaryDirectory() + "marina-etcd-section-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test("what a sandbox writes (yamlLines) reads back as the same section, through the agent's YAML subset")
    func roundTrip() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let section = EtcdSection(
            endpoints: ["https://127.0.0.1:2379", "https://127.0.0.1:2380"], caFile: directory + "/ca \"1\".pem",
            certFile: "/c.pem", keyFile: "/k.pem", root: "/marina/v1")
        try (["# a comment"] + section.yamlLines()).joined(separator: "\n").write(
            toFile: SandboxEtcd.path(in: directory), atomically: true, encoding: .utf8)
        #expect(try SandboxEtcd.section(in: directory) == section)
        #expect(try section.clientConfiguration().tls?.caFile == directory + "/ca \"1\".pem")
    }

    @Test("no sandbox there: the directory and the way to start one are named")
    func noSandbox() throws {
        #expect(
            throws: ConfigurationError(
                message: "no sandbox runs in /nonexistent/sb (no etcd.yaml there): start one with `marina sandbox up --dir /nonexistent/sb`")
        ) {
            try SandboxEtcd.section(in: "/nonexistent/sb")
        }
    }

    @Test(
        "one validation for the agent and the controller: each problem names its key",
        arguments: [
            (EtcdSection(endpoints: []), "etcd.endpoints must list at least one URL (such as http://127.0.0.1:2379)"),
            (
                EtcdSection(endpoints: ["http://x"], user: "marina"),
                "etcd.user needs etcd.password_file (a password is never written in the configuration)"
            ),
            (EtcdSection(endpoints: ["http://x"], certFile: "/c.pem"), "etcd.cert_file and etcd.key_file go together: give both or neither"),
            (
                EtcdSection(endpoints: ["http://x"], root: "marina/"),
                "etcd.root must start with / and not end with / (got marina/, default /marina/v1)"
            ),
        ])
    func problems(section: EtcdSection, message: String) {
        #expect(section.problems() == [message])
        #expect(throws: ConfigurationError(message: message)) { try section.clientConfiguration() }
    }

    @Test("a file with another key, or an unknown key in the section, is refused naming the file and the key")
    func strict() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/etcd.yaml"
        try "etcd:\n  endpoints: [http://x]\n  ca: /ca.pem\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(
            throws: ConfigurationError(
                message: "\(path): etcd.ca: unknown key (known: ca_file, cert_file, endpoints, key_file, password_file, root, user)")
        ) {
            try EtcdSection.load(file: path)
        }
        try "etcd:\n  endpoints: [http://x]\nmariadb: {}\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError(message: "\(path): mariadb: unknown key (known: etcd)")) { try EtcdSection.load(file: path) }
    }
}
