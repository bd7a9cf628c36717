import ConfigurationFiles
import Foundation
import Observation
import Testing

@testable import Agent

/// The agent's managed option file, pure: the comparison rule, what goes into the file, its
/// text, and the `variables:` configuration key.
@Suite("Managed option file")
struct OptionFileRenderingTests {
    @Test(
        "values compare as MariaDB normalizes them",
        arguments: [
            ("2", "2.000000", true), ("0.5", "0.500000", true), ("ON", "1", true), ("off", "0", true), ("TRUE", "ON", true),
            ("64M", "67108864", true), ("1k", "1024", true), ("row", "ROW", true), ("'ROW'", "ROW", true),
            ("STRICT_TRANS_TABLES,NO_ZERO_DATE", "NO_ZERO_DATE,STRICT_TRANS_TABLES", true), ("2", "3", false), ("ON", "2", false),
            ("MIXED", "ROW", false), ("64M", "67108865", false), ("STRICT_TRANS_TABLES", "STRICT_TRANS_TABLES,NO_ZERO_DATE", false),
            ("", "0", false), ("1e3", "1000", true),
        ])
    func comparison(_ desired: String, _ runtime: String, _ same: Bool) {
        #expect(SystemVariableValue.same(desired, runtime) == same, "\(desired) vs \(runtime)")
        #expect(SystemVariableValue.same(runtime, desired) == same, "symmetric: \(runtime) vs \(desired)")
    }

    @Test("a variable goes in the file once applied at runtime, or at once when only a restart sets it; otherwise the file keeps its value")
    func rule() {
        let desired = ["long_query_time": "2", "max_connections": "500", "thread_stack": "512K", "back_log": "80", "no_such": "1"]
        let runtime = [
            "long_query_time": RuntimeVariable(value: "2.000000", settable: true),  // applied: written
            "max_connections": RuntimeVariable(value: "151", settable: true),  // not yet applied: the file keeps its 400
            "thread_stack": RuntimeVariable(value: "299008", settable: false),  // only a restart: written, pending
            "back_log": RuntimeVariable(value: "80", settable: false),  // read-only and already so: written, not pending
            "slow_query_log": RuntimeVariable(value: "OFF", settable: true),  // not desired: not reported
        ]
        let file = ManagedOptionFile(options: ["max_connections": "400", "long_query_time": "10", "innodb_io_capacity": "300"])
        let outcome = VariableSync.outcome(desired: desired, runtime: runtime, file: file)
        #expect(outcome.file.options == ["long_query_time": "2", "max_connections": "400", "thread_stack": "512K", "back_log": "80"])
        #expect(outcome.pendingRestart == ["thread_stack"])
        #expect(outcome.unknown == ["no_such"])
        #expect(outcome.runtime == ["long_query_time": "2.000000", "max_connections": "151", "thread_stack": "299008", "back_log": "80"])

        // A sync rolled back (runtime back to 151) leaves the file as before; one that is not
        // in the file at all stays out of it.
        let fresh = VariableSync.outcome(desired: ["max_connections": "500"], runtime: runtime, file: ManagedOptionFile())
        #expect(fresh.file.options.isEmpty)
        #expect(fresh.pendingRestart.isEmpty)
        // Nothing desired any more: every variable leaves the file.
        #expect(VariableSync.outcome(desired: [:], runtime: runtime, file: file).file.options.isEmpty)
    }

    @Test("the file: a header, [mariadbd], one variable a line sorted; values quoted when needed; read back as written")
    func rendering() throws {
        let file = ManagedOptionFile(options: [
            "long_query_time": "2", "binlog_format": "'ROW'", "init_connect": "SET NAMES utf8mb4 # x", "sql_mode": "A,B",
            "path": #"a"b\c"#,
        ])
        let text = file.rendered(instance: "db1001")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0].hasPrefix("# Managed by the marina agent for db1001"))
        #expect(lines.filter { $0.hasPrefix("#") }.count == 3)
        #expect(
            Array(lines[3...])
                == [
                    "[mariadbd]", "binlog_format = ROW", #"init_connect = "SET NAMES utf8mb4 # x""#, "long_query_time = 2",
                    #"path = "a\"b\\c""#, "sql_mode = A,B", "",
                ])
        let back = try ManagedOptionFile(parsing: text, path: "99-marina.cnf")
        #expect(
            back.options == [
                "long_query_time": "2", "binlog_format": "ROW", "init_connect": "SET NAMES utf8mb4 # x", "sql_mode": "A,B", "path": #"a"b\c"#,
            ])
        #expect(back.rendered(instance: "db1001") == text, "rendering is stable: no rewrite when nothing changed")
        #expect(ManagedOptionFile().rendered(instance: "db1001").hasSuffix("[mariadbd]\n"))
        // Options of other groups, and dashes, as a DBA may have written them.
        let edited = try ManagedOptionFile(parsing: "[client]\nuser=x\n[mariadbd]\nlong-query-time = 3\n", path: "f")
        #expect(edited.options == ["long_query_time": "3"])
    }

    @Test("the file is replaced whole, and read back; a missing file reads as none")
    func atomicWrite() throws {
        let directory = NSTemporaryDirectory() + "marina-option-file-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/99-marina.cnf"
        #expect(try AtomicFile.read(path) == nil)
        try AtomicFile.write("[mariadbd]\nlong_query_time = 2\n", to: path)
        try AtomicFile.write("[mariadbd]\nlong_query_time = 3\n", to: path)
        #expect(try AtomicFile.read(path) == "[mariadbd]\nlong_query_time = 3\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["99-marina.cnf"], "no temporary file left")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o644)
        #expect(throws: AtomicFile.FileError.self) { try AtomicFile.write("x", to: directory + "/missing/99-marina.cnf") }
    }

    static let base = """
        etcd:
          endpoints: [http://127.0.0.1:2379]
        instances:
          - {name: db1001, socket: /run/mysqld/mysqld.sock, credentials_file: /etc/marina/agent.cnf}

        """

    @Test("variables.option_file: absolute, {instance} with several instances, unknown keys refused")
    func configuration() throws {
        let one = try AgentConfiguration.parse(Self.base + "variables:\n  option_file: /etc/mysql/conf.d/99-marina.cnf\n", file: "agent.yaml")
        #expect(one.variables?.optionFile(for: "db1001") == "/etc/mysql/conf.d/99-marina.cnf")
        #expect(try AgentConfiguration.parse(Self.base, file: "agent.yaml").variables == nil)
        let two = Self.base + "  - {name: \"db1002:3307\", socket: /run/mysqld/2.sock, credentials_file: /etc/marina/agent.cnf}\n"
        let placeholder = try AgentConfiguration.parse(
            two + "variables:\n  option_file: \"/srv/{instance}/conf.d/99-marina.cnf\"\n", file: "agent.yaml")
        #expect(placeholder.variables?.optionFile(for: "db1002:3307") == "/srv/db1002:3307/conf.d/99-marina.cnf")
        let refusals: [(String, String)] = [
            (
                Self.base + "variables:\n  option_file: conf.d/99-marina.cnf\n",
                "agent.yaml: variables.option_file must be an absolute path (got conf.d/99-marina.cnf)"
            ),
            (Self.base + "variables:\n  option_file: /etc/mysql/conf.d/\n", "agent.yaml: variables.option_file must name a file, not a directory"),
            (
                two + "variables:\n  option_file: /etc/mysql/conf.d/99-marina.cnf\n",
                "agent.yaml: variables.option_file must contain {instance} when the agent watches several instances"
            ),
            (Self.base + "variables:\n  optionfile: /x\n", "agent.yaml: variables.optionfile: unknown key"),
            (Self.base + "variables: {}\n", "agent.yaml: variables.option_file is required"),
        ]
        for (text, message) in refusals {
            #expect(throws: ConfigurationError.self) { try AgentConfiguration.parse(text, file: "agent.yaml") }
            do {
                _ = try AgentConfiguration.parse(text, file: "agent.yaml")
            } catch {
                #expect("\(error)".hasPrefix(message), "\(error)")
            }
        }
    }
}
