import Testing

@testable import Agent

@Suite("Reading SHOW GRANTS for the heartbeat writer")
struct WriterPrivilegesTests {
    /// Lines as MariaDB 10.11 prints them (and a few it could), with the grants that write
    /// through read_only found in each.
    @Test(
        "global grants that write through read_only are found, nothing else",
        arguments: [
            ("GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION", ["ALL PRIVILEGES ON *.*"]),
            (
                "GRANT ALL PRIVILEGES ON *.* TO `marina`@`127.0.0.1` IDENTIFIED BY PASSWORD '*0123456789ABCDEF' WITH GRANT OPTION",
                ["ALL PRIVILEGES ON *.*"]
            ),
            ("grant all on *.* to 'x'@'%'", ["ALL ON *.*"]),
            ("GRANT SUPER, READ_ONLY ADMIN ON *.* TO `a`@`localhost`", ["SUPER ON *.*", "READ_ONLY ADMIN ON *.*"]),
            (
                "GRANT RELOAD, SUPER, READ_ONLY ADMIN ON *.* TO `a3`@`localhost` IDENTIFIED BY PASSWORD '*B69027D44F6E5EDC'",
                ["SUPER ON *.*", "READ_ONLY ADMIN ON *.*"]
            ),
            (
                "GRANT READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, SLAVE MONITOR, RELOAD ON *.* TO `marina_controller`@`127.0.0.1`",
                ["READ_ONLY ADMIN ON *.*"]
            ),
            ("GRANT read only admin ON *.* TO `a`@`h`", ["READ ONLY ADMIN ON *.*"]),
            ("GRANT SUPER ON  * . *  TO `a`@`h`", ["SUPER ON *.*"]),
            ("GRANT READ_ONLY ADMIN ON *.* TO `heartbeat_admin`", ["READ_ONLY ADMIN ON *.* (granted to role `heartbeat_admin`)"]),
            ("GRANT SUPER ON *.* TO PUBLIC", ["SUPER ON *.* (granted to PUBLIC)"]),
            // Not global, or not a privilege that writes through read_only.
            ("GRANT SLAVE MONITOR ON *.* TO `marina_agent`@`localhost` IDENTIFIED BY PASSWORD '*B69027D44F6E5EDC'", []),
            ("GRANT USAGE ON *.* TO `marina_agent`@`localhost`", []),
            ("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `repl`@`127.0.0.1` WITH GRANT OPTION", []),
            ("GRANT SELECT ON `heartbeat`.* TO `marina_agent`@`localhost`", []),
            ("GRANT INSERT, UPDATE ON `heartbeat`.`heartbeat` TO `marina_agent`@`localhost`", []),
            ("GRANT ALL PRIVILEGES ON `heartbeat`.* TO `a`@`%`", []),
            ("GRANT SUPER ON `db`.`t` TO `a`@`%`", []),
            ("GRANT SELECT (`user`, `host`), UPDATE (`x`) ON `mysql`.`user` TO `a`@`h`", []),
            ("GRANT EXECUTE ON PROCEDURE `db`.`p` TO `a`@`h`", []),
            ("GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION", []),
            ("GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON `test\\_%`.* TO PUBLIC", []),
            ("GRANT `heartbeat_admin` TO `marina_agent`@`localhost`", []),
            ("SET DEFAULT ROLE `heartbeat_admin` FOR `marina_agent`@`localhost`", []),
            // Names that look like keywords or privileges, quoted as SHOW GRANTS quotes them.
            ("GRANT USAGE ON *.* TO `ON *.* TO`@`SUPER`", []),
            ("GRANT SELECT ON `SUPER`.* TO `ALL PRIVILEGES`@`%`", []),
            ("GRANT USAGE ON *.* TO `we``ird, SUPER`@`h`", []),
            // Not a well-formed line: nothing is read from it.
            ("GRANT SUPER ON *.* TO `a", []),
            ("GRANT SUPER ON *.*", []),
            ("", []),
        ])
    func findings(line: String, expected: [String]) {
        #expect(WriterPrivileges.findings(in: [line]).map(\.description) == expected)
    }

    @Test(
        "a line is read into its privileges, object and grantee",
        arguments: [
            (
                "GRANT SELECT (`a`, `b`), INSERT ON `db`.`t` TO `u`@`h`",
                GrantLine.Kind.privileges(["SELECT", "INSERT"], object: "`db`.`t`"), "`u`@`h`", true
            ),
            ("GRANT DELETE HISTORY, SUPER ON *.* TO `r`", .privileges(["DELETE HISTORY", "SUPER"], object: "*.*"), "`r`", false),
            ("GRANT EXECUTE ON PROCEDURE `db`.`p` TO 'u'@'%'", .privileges(["EXECUTE"], object: "PROCEDURE `db`.`p`"), "'u'@'%'", true),
            ("GRANT `outer1` TO `a1`@`localhost` WITH ADMIN OPTION", .roles(["outer1"]), "`a1`@`localhost`", true),
            ("GRANT `inner1` TO `outer1`", .roles(["inner1"]), "`outer1`", false),
            ("GRANT `pubr` TO PUBLIC", .roles(["pubr"]), "PUBLIC", false),
            ("GRANT `we``ird` TO `u`@`h`", .roles(["we`ird"]), "`u`@`h`", true),
        ])
    func parse(line: String, kind: GrantLine.Kind, grantee: String, account: Bool) throws {
        let grant = try #require(GrantLine(parsing: line))
        #expect(grant.kind == kind)
        #expect(grant.grantee == grantee && grant.granteeIsAccount == account)
    }

    @Test("what SHOW GRANTS of an account says as a whole")
    func wholeOutput() {
        // SHOW GRANTS of an account with a role enabled at login, as MariaDB 10.11 prints it.
        let lines = [
            "GRANT `heartbeat_admin` TO `marina_agent`@`localhost`",
            "GRANT `outer1` TO `marina_agent`@`localhost` WITH ADMIN OPTION",
            "GRANT SLAVE MONITOR ON *.* TO `marina_agent`@`localhost` IDENTIFIED BY PASSWORD '*B69027D44F6E5EDC'",
            "GRANT SELECT ON `heartbeat`.* TO `marina_agent`@`localhost`",
            "GRANT INSERT, UPDATE ON `heartbeat`.`heartbeat` TO `marina_agent`@`localhost`",
            "GRANT `inner1` TO `outer1`",
            "GRANT USAGE ON *.* TO `outer1`",
            "GRANT SUPER ON *.* TO `inner1`",
            "GRANT `pubr` TO PUBLIC",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON `test`.* TO PUBLIC",
            "SET DEFAULT ROLE `outer1` FOR `marina_agent`@`localhost`",
        ]
        #expect(WriterPrivileges.findings(in: lines).map(\.description) == ["SUPER ON *.* (granted to role `inner1`)"])
        // Only roles granted to the account itself are enabled one by one: the others' grants
        // show whenever those of the role (or PUBLIC) they are granted to show.
        #expect(WriterPrivileges.grantedRoles(in: lines) == ["heartbeat_admin", "outer1"])
        #expect(WriterPrivileges.findings(in: Array(lines[2...4])).isEmpty)
    }
}
