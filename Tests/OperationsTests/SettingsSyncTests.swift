import Operations
import Testing

/// Grant and variable sync as data: the order of instances, the steps, the `SET GLOBAL`
/// statements, and the sync playbooks' checks.
@Suite("Operations: grant and variable sync plans")
struct SettingsSyncTests {
    @Test("replicas first by name, the primary last; a skipped member is absent")
    func order() {
        #expect(SettingsSync.order(members: ["db1003", "db1001", "db1002"], primary: "db1001") == ["db1002", "db1003", "db1001"])
        #expect(SettingsSync.order(members: ["db1003", "db1002"], primary: "db1001") == ["db1002", "db1003"])
    }

    @Test("one step per instance that has statements, none after a point of no return, hooks where the playbook puts them")
    func plan() throws {
        let playbook = try Playbook.parse(
            """
            operation: grant-sync
            steps:
              - action: exec
                name: before
                command: [echo, "{section}"]
                timeout: 3
              - action: apply-grants
                timeout: 7
            """, file: "grant-sync.yaml")
        let steps = SettingsSync.plan(
            playbook, order: ["db1002", "db1003", "db1001"], statements: ["db1002": ["GRANT SELECT ON *.* TO 'u'@'%'"], "db1001": ["X"]],
            undo: ["db1002": ["restore"]], section: "s1")
        #expect(steps.map(\.name) == ["before", "apply-grants db1002", "apply-grants db1001"])
        #expect(steps[0].command == ["echo", "s1"])
        #expect(steps[1].timeout == 7 && steps[1].subject == "db1002" && steps[1].undo == ["restore"])
        #expect(!steps.contains { $0.pointOfNoReturn })
    }

    @Test("a sync playbook needs its action once; a switchover action in it is refused")
    func playbookChecks() {
        #expect(throws: PlaybookError.self) { try Playbook.parse("operation: grant-sync\nsteps: []\n", file: "f") }
        #expect(throws: PlaybookError.self) {
            try Playbook.parse("operation: variable-sync\nsteps:\n  - action: apply-variables\n  - action: commit-primary\n", file: "f")
        }
        #expect(throws: PlaybookError.self) { try Playbook.parse("operation: grants\nsteps:\n  - action: apply-grants\n", file: "f") }
    }

    @Test("SET GLOBAL only for what differs and may change at runtime; replication-thread variables inside a stopped SQL thread")
    func variableStatements() {
        let live = [
            "long_query_time": LiveVariable(value: "10.000000", readOnly: false),
            "slave_parallel_threads": LiveVariable(value: "0", readOnly: false),
            "back_log": LiveVariable(value: "80", readOnly: true),
            "max_allowed_packet": LiveVariable(value: "67108864", readOnly: false),
        ]
        let desired = ["long_query_time": "2", "slave_parallel_threads": "4", "back_log": "100", "max_allowed_packet": "64M"]
        #expect(
            VariableStatements.statements(desired: desired, live: live, replicating: true) == [
                "SET GLOBAL long_query_time = 2", "STOP SLAVE SQL_THREAD", "SET GLOBAL slave_parallel_threads = 4", "START SLAVE SQL_THREAD",
            ])
        #expect(
            VariableStatements.statements(desired: desired, live: live, replicating: false) == [
                "SET GLOBAL long_query_time = 2", "SET GLOBAL slave_parallel_threads = 4",
            ])
        #expect(VariableStatements.statements(desired: ["long_query_time": "10"], live: live, replicating: true).isEmpty)
    }

    @Test("values: numbers as they are, suffixes multiplied out, anything else quoted")
    func literals() {
        #expect(VariableStatements.literal("2") == "2")
        #expect(VariableStatements.literal("0.5") == "0.5")
        #expect(VariableStatements.literal("64M") == "67108864")
        #expect(VariableStatements.literal("ON") == "'ON'")
        #expect(VariableStatements.literal("STRICT_TRANS_TABLES,NO_ZERO_DATE").hasPrefix("'STRICT"))
    }
}
