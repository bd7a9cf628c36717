import ConfigurationFiles
import Foundation
import Testing

@Suite("Option files")
struct OptionFileTests {
    @Test("groups, comments, quotes, escapes, bare keys, - and _ alike, the last value wins")
    func parses() throws {
        let file = try OptionFile(
            parsing: """
                # a comment
                ; another
                [client]
                user = marina
                password="se#cret \\"quoted\\""
                host=127.0.0.1   # the comment after a value is not part of it
                skip-ssl
                [marina-replication]
                user='repl'
                password=first
                password=second
                ssl_ca=/etc/ca.pem
                [client]
                port=3307
                """, path: "f.cnf")
        #expect(file.account() == ("marina", "se#cret \"quoted\""))
        #expect(file.value("host", in: "client") == "127.0.0.1")
        #expect(file.value("skip_ssl", in: "client") == "")
        #expect(file.value("port", in: "client") == "3307")
        #expect(file.account(in: "marina-replication") == ("repl", "second"))
        #expect(file.value("ssl-ca", in: "marina-replication") == "/etc/ca.pem")
        #expect(file.account(in: "nowhere") == (nil, nil))
        #expect(try OptionFile(parsing: "[client]\npassword=a\\sb\\\\c\\qd\n", path: "f").value("password", in: "client") == "a b\\c\\qd")
    }

    @Test(
        "what the client would not accept is refused with the file and the line, never the value",
        arguments: [
            ("password=hunter2\n[client]\n", "f.cnf line 1: an option before any [group]"),
            ("[client\npassword=hunter2\n", "f.cnf line 1: a group header must be [name]"),
            ("[]\n", "f.cnf line 1: a group header must be [name]"),
            ("[client]\npassword=\"hunter2\n", "f.cnf line 2: a value's quote is not closed"),
            ("[client]\n=hunter2\n", "f.cnf line 2: an option without a name"),
            ("[client]\n!include /etc/other.cnf\n", "f.cnf line 2: directives such as !include are not supported here: put the options in this file"),
        ])
    func refused(text: String, message: String) {
        #expect(throws: ConfigurationError(message: message)) { try OptionFile(parsing: text, path: "f.cnf") }
    }

    @Test("a file that cannot be read is named")
    func unreadable() {
        #expect(throws: ConfigurationError(message: "cannot read the credentials file /nonexistent/agent.cnf")) {
            try OptionFile.load("/nonexistent/agent.cnf")
        }
    }
}
