/// The statements the twin understands, parsed from tokens.
enum Statement: Sendable {
    case select(SelectStatement)
    /// `SELECT MASTER_GTID_WAIT(position[, timeout]) [AS alias]`.
    case waitForPosition(String, timeout: Double?, alias: String)
    /// `ServerSessions.privilegedUsersSQL`: the accounts that write through `read_only`.
    case privilegedUsers
    case showSlaveStatus(all: Bool)
    case showStatus(like: String?)
    case showVariables(like: String?)
    /// `SET GLOBAL name = value, ...` (names lowercased).
    case setGlobal([(name: String, value: String)])
    case stopSlave(io: Bool, sql: Bool)
    case startSlave(io: Bool, sql: Bool)
    case resetSlave(all: Bool)
    /// `CHANGE MASTER TO option = value, ...` (options uppercased).
    case changeMaster([(option: String, value: String)])
    case kill(connection: Bool, id: UInt)
    case killUser(String)
    case begin, commit, rollback
    /// `INSERT`, `REPLACE`, `UPDATE`, `DELETE` on `table`, with the inserted values by column when given.
    case write(table: String, values: [String: String])
}

/// A value inside a query.
enum SQLValue: Sendable, Equatable {
    case null
    case text(String)
    case number(Double)
    /// A point in fleet time (`NOW()`, a timestamp column).
    case time(Duration)

    var rendered: String? {
        switch self {
        case .null: nil
        case .text(let text): text
        case .number(let number): number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case .time(let time): String(Double(time.components.seconds) + Double(time.components.attoseconds) / 1e18)
        }
    }
}

indirect enum SQLExpression: Sendable {
    case column(String)
    case variable(String)
    case literal(SQLValue)
    case call(String, [SQLExpression])
    case star
}

enum SQLCondition: Sendable {
    case compare(SQLExpression, String, SQLExpression)
    case among(SQLExpression, [SQLExpression], negated: Bool)
    case isNull(SQLExpression, negated: Bool)
}

struct SelectStatement: Sendable {
    var items: [(expression: SQLExpression, name: String)]
    var distinct = false
    /// Lowercased `schema.table`, nil without `FROM`.
    var table: String?
    var joinsTransactions = false
    var conditions = [SQLCondition]()
    var order: (expression: SQLExpression, descending: Bool)?
    var limit: Int?
}

extension Statement {
    static func parse(_ sql: String) throws -> Statement {
        let tokens = try SQLLexer.tokens(sql)
        var cursor = SQLCursor(tokens)
        if cursor.accept("WITH") {
            let text = sql.lowercased()
            guard text.contains("mysql.global_priv"), text.contains("mysql.roles_mapping"),
                text.contains("select distinct name from privileged")
            else { throw SQLSyntaxError(detail: "only the privileged-users query is known") }
            return .privilegedUsers
        }
        if cursor.accept("SELECT") { return try select(&cursor) }
        if cursor.accept("SHOW") { return try show(&cursor) }
        if cursor.accept("SET") { return try set(&cursor) }
        if cursor.accept("STOP") || cursor.accept("START") {
            let stop = tokens[0].isWord("STOP")
            if !stop, cursor.accept("TRANSACTION") {
                try cursor.expectEnd()
                return .begin
            }
            let (io, sql) = try threads(&cursor)
            return stop ? .stopSlave(io: io, sql: sql) : .startSlave(io: io, sql: sql)
        }
        if cursor.accept("RESET") {
            guard cursor.accept("SLAVE") || cursor.accept("REPLICA") else { throw SQLSyntaxError(detail: "RESET of what") }
            let all = cursor.accept("ALL")
            try cursor.expectEnd()
            return .resetSlave(all: all)
        }
        if cursor.accept("CHANGE") { return try changeMaster(&cursor) }
        if cursor.accept("KILL") { return try kill(&cursor) }
        if cursor.accept("BEGIN") {
            _ = cursor.accept("WORK")
            try cursor.expectEnd()
            return .begin
        }
        if cursor.accept("COMMIT") {
            _ = cursor.accept("WORK")
            try cursor.expectEnd()
            return .commit
        }
        if cursor.accept("ROLLBACK") {
            _ = cursor.accept("WORK")
            try cursor.expectEnd()
            return .rollback
        }
        for verb in ["INSERT", "REPLACE", "UPDATE", "DELETE"] where cursor.accept(verb) { return try write(verb, &cursor) }
        throw SQLSyntaxError(detail: "unknown statement")
    }

    private static func select(_ cursor: inout SQLCursor) throws -> Statement {
        var statement = SelectStatement(items: [])
        statement.distinct = cursor.accept("DISTINCT")
        let start = cursor.position
        var depth = 0
        while let token = cursor.peek, !(depth == 0 && token.isWord("FROM")) {
            if token == .symbol("(") { depth += 1 } else if token == .symbol(")") { depth -= 1 }
            cursor.position += 1
        }
        for part in SQLCursor.split(cursor.tokens[start..<cursor.position]) {
            statement.items.append(try item(part))
        }
        if case .call(let function, let arguments) = statement.items.first?.expression, function == "MASTER_GTID_WAIT" {
            guard statement.items.count == 1, cursor.atEnd, let position = arguments.first, case .literal(.text(let text)) = position else {
                throw SQLSyntaxError(detail: "MASTER_GTID_WAIT(position[, timeout]) alone")
            }
            var timeout: Double?
            if arguments.count > 1 {
                guard case .literal(.number(let seconds)) = arguments[1] else { throw SQLSyntaxError(detail: "MASTER_GTID_WAIT timeout") }
                timeout = seconds
            }
            return .waitForPosition(text, timeout: timeout, alias: statement.items[0].name)
        }
        guard cursor.accept("FROM") else {
            try cursor.expectEnd()
            return .select(statement)
        }
        statement.table = try cursor.qualifiedName().lowercased()
        let clauses = ["WHERE", "LEFT", "JOIN", "INNER", "ORDER", "LIMIT", "GROUP"]
        if case .word(let alias) = cursor.peek, !clauses.contains(alias.uppercased()) { cursor.position += 1 }
        if cursor.accept("LEFT") {
            _ = cursor.accept("OUTER")
            try cursor.expect("JOIN")
            guard try cursor.qualifiedName().lowercased() == "information_schema.innodb_trx" else {
                throw SQLSyntaxError(detail: "only a join on INNODB_TRX")
            }
            statement.joinsTransactions = true
            while let token = cursor.peek, !token.isWord("WHERE"), !token.isWord("ORDER"), !token.isWord("LIMIT") { cursor.position += 1 }
        }
        if cursor.accept("WHERE") {
            let start = cursor.position
            while let token = cursor.peek, !token.isWord("ORDER"), !token.isWord("LIMIT") { cursor.position += 1 }
            statement.conditions = try SQLCursor.split(cursor.tokens[start..<cursor.position], keyword: "AND").map(condition)
        }
        if cursor.accept("ORDER", "BY") {
            let start = cursor.position
            while let token = cursor.peek, !token.isWord("ASC"), !token.isWord("DESC"), !token.isWord("LIMIT") { cursor.position += 1 }
            let key = try expression(cursor.tokens[start..<cursor.position])
            let descending = cursor.accept("DESC")
            _ = descending || cursor.accept("ASC")
            statement.order = (key, descending)
        }
        if cursor.accept("LIMIT") {
            guard case .number(let text) = cursor.next(), let limit = Int(text) else { throw SQLSyntaxError(detail: "LIMIT n") }
            statement.limit = limit
        }
        try cursor.expectEnd()
        return .select(statement)
    }

    /// One select item: `expression [AS alias]`.
    private static func item(_ tokens: ArraySlice<SQLToken>) throws -> (expression: SQLExpression, name: String) {
        var body = tokens
        var alias: String?
        if body.count >= 3, body[body.endIndex - 2].isWord("AS"), let name = body.last?.name {
            alias = name
            body = body.dropLast(2)
        }
        let expression = try expression(body)
        switch expression {
        case .column(let name): return (expression, alias ?? String(name.split(separator: ".").last ?? ""))
        case .variable(let name): return (expression, alias ?? "@@" + name)
        case .literal(let value): return (expression, alias ?? value.rendered ?? "NULL")
        default: return (expression, alias ?? "expression")
        }
    }

    static func expression(_ tokens: ArraySlice<SQLToken>) throws -> SQLExpression {
        var cursor = SQLCursor(Array(tokens))
        let parsed = try primary(&cursor)
        try cursor.expectEnd()
        return parsed
    }

    private static func primary(_ cursor: inout SQLCursor) throws -> SQLExpression {
        if cursor.accept(symbol: "*") { return .star }
        if cursor.accept(symbol: "-") {
            guard case .number(let text) = cursor.next(), let number = Double(text) else { throw SQLSyntaxError(detail: "a number after -") }
            return .literal(.number(-number))
        }
        switch cursor.peek {
        case .string(let text):
            cursor.position += 1
            return .literal(.text(text))
        case .number(let text):
            cursor.position += 1
            guard let number = Double(text) else { throw SQLSyntaxError(detail: "bad number \(text)") }
            return .literal(.number(number))
        case .variable(let name):
            cursor.position += 1
            return .variable(name)
        case .word(let word) where word.uppercased() == "NULL":
            cursor.position += 1
            return .literal(.null)
        case .word, .quotedName:
            let name = try cursor.qualifiedName()
            guard cursor.accept(symbol: "(") else { return .column(name.lowercased()) }
            var arguments = [SQLExpression]()
            if !cursor.accept(symbol: ")") {
                repeat { arguments.append(try primary(&cursor)) } while cursor.accept(symbol: ",")
                try cursor.expect(symbol: ")")
            }
            return .call(name.uppercased(), arguments)
        default:
            throw SQLSyntaxError(detail: "expected an expression")
        }
    }

    private static func condition(_ tokens: ArraySlice<SQLToken>) throws -> SQLCondition {
        var cursor = SQLCursor(Array(tokens))
        let left = try primary(&cursor)
        if cursor.accept("IS") {
            let negated = cursor.accept("NOT")
            try cursor.expect("NULL")
            try cursor.expectEnd()
            return .isNull(left, negated: negated)
        }
        let negated = cursor.accept("NOT")
        if cursor.accept("IN") {
            try cursor.expect(symbol: "(")
            var list = [SQLExpression]()
            repeat { list.append(try primary(&cursor)) } while cursor.accept(symbol: ",")
            try cursor.expect(symbol: ")")
            try cursor.expectEnd()
            return .among(left, list, negated: negated)
        }
        guard !negated, case .symbol(let operation) = cursor.next(), ["=", "<>", "!=", "<", ">", "<=", ">="].contains(operation) else {
            throw SQLSyntaxError(detail: "a condition must be a comparison, IN or IS NULL")
        }
        let right = try primary(&cursor)
        try cursor.expectEnd()
        return .compare(left, operation, right)
    }

    private static func show(_ cursor: inout SQLCursor) throws -> Statement {
        if cursor.accept("ALL") {
            guard cursor.accept("SLAVES") || cursor.accept("REPLICAS") else { throw SQLSyntaxError(detail: "SHOW ALL SLAVES STATUS") }
            try cursor.expect("STATUS")
            try cursor.expectEnd()
            return .showSlaveStatus(all: true)
        }
        if cursor.accept("SLAVE") || cursor.accept("REPLICA") {
            if case .string(let name) = cursor.peek, name.isEmpty { cursor.position += 1 }
            try cursor.expect("STATUS")
            try cursor.expectEnd()
            return .showSlaveStatus(all: false)
        }
        _ = cursor.accept("GLOBAL")
        let status = cursor.accept("STATUS")
        if !status { try cursor.expect("VARIABLES") }
        var pattern: String?
        if cursor.accept("LIKE") {
            guard case .string(let text) = cursor.next() else { throw SQLSyntaxError(detail: "LIKE 'pattern'") }
            pattern = text
        }
        try cursor.expectEnd()
        return status ? .showStatus(like: pattern) : .showVariables(like: pattern)
    }

    private static func set(_ cursor: inout SQLCursor) throws -> Statement {
        var assignments = [(name: String, value: String)]()
        for part in SQLCursor.split(cursor.rest) {
            var item = SQLCursor(Array(part))
            let name: String
            if item.accept("GLOBAL") {
                name = try item.qualifiedName().lowercased()
            } else if case .variable(let variable) = item.next(), variable.hasPrefix("global.") {
                name = String(variable.dropFirst("global.".count))
            } else {
                throw SQLSyntaxError(detail: "only SET GLOBAL")
            }
            try item.expect(symbol: "=")
            let value = try item.literal()
            try item.expectEnd()
            assignments.append((name, value))
        }
        return .setGlobal(assignments)
    }

    /// `[SLAVE | REPLICA | ALL SLAVES] [IO_THREAD | SQL_THREAD [, ...]]`: which threads.
    private static func threads(_ cursor: inout SQLCursor) throws -> (io: Bool, sql: Bool) {
        if cursor.accept("ALL") {
            guard cursor.accept("SLAVES") || cursor.accept("REPLICAS") else { throw SQLSyntaxError(detail: "ALL SLAVES") }
        } else {
            guard cursor.accept("SLAVE") || cursor.accept("REPLICA") else { throw SQLSyntaxError(detail: "STOP/START SLAVE") }
        }
        guard !cursor.atEnd else { return (true, true) }
        var io = false
        var sql = false
        repeat {
            if cursor.accept("IO_THREAD") {
                io = true
            } else if cursor.accept("SQL_THREAD") {
                sql = true
            } else {
                throw SQLSyntaxError(detail: "only IO_THREAD and SQL_THREAD")
            }
        } while cursor.accept(symbol: ",")
        try cursor.expectEnd()
        return (io, sql)
    }

    private static func changeMaster(_ cursor: inout SQLCursor) throws -> Statement {
        guard cursor.accept("MASTER") || cursor.accept("REPLICATION", "SOURCE") else { throw SQLSyntaxError(detail: "CHANGE MASTER") }
        if case .string(let name) = cursor.peek, name.isEmpty { cursor.position += 1 }
        try cursor.expect("TO")
        var options = [(option: String, value: String)]()
        for part in SQLCursor.split(cursor.rest) {
            var item = SQLCursor(Array(part))
            guard case .word(let option) = item.next() else { throw SQLSyntaxError(detail: "CHANGE MASTER option") }
            try item.expect(symbol: "=")
            let value = try item.literal()
            try item.expectEnd()
            options.append((option.uppercased(), value))
        }
        return .changeMaster(options)
    }

    private static func kill(_ cursor: inout SQLCursor) throws -> Statement {
        _ = cursor.accept("HARD") || cursor.accept("SOFT")
        let query = cursor.accept("QUERY")
        if !query { _ = cursor.accept("CONNECTION") }
        if cursor.accept("USER") {
            guard !query, case .string(let user) = cursor.next() else { throw SQLSyntaxError(detail: "KILL CONNECTION USER 'name'") }
            try cursor.expectEnd()
            return .killUser(user)
        }
        _ = cursor.accept("ID")
        guard case .number(let text) = cursor.next(), let id = UInt(text) else { throw SQLSyntaxError(detail: "KILL needs a thread id") }
        try cursor.expectEnd()
        return .kill(connection: !query, id: id)
    }

    private static func write(_ verb: String, _ cursor: inout SQLCursor) throws -> Statement {
        if verb == "DELETE" { try cursor.expect("FROM") } else if verb != "UPDATE" { _ = cursor.accept("INTO") }
        let table = try cursor.qualifiedName().lowercased()
        var values = [String: String]()
        if verb == "INSERT" || verb == "REPLACE", cursor.accept(symbol: "(") {
            var columns = [String]()
            repeat {
                guard let name = cursor.next()?.name else { throw SQLSyntaxError(detail: "a column name") }
                columns.append(name.lowercased())
            } while cursor.accept(symbol: ",")
            try cursor.expect(symbol: ")")
            try cursor.expect("VALUES")
            try cursor.expect(symbol: "(")
            let start = cursor.position
            var depth = 1
            while let token = cursor.next() {
                if token == .symbol("(") {
                    depth += 1
                } else if token == .symbol(")") {
                    depth -= 1
                    if depth == 0 { break }
                }
            }
            let parts = SQLCursor.split(cursor.tokens[start..<(cursor.position - 1)])
            for (column, part) in zip(columns, parts) where part.count == 1 {
                if case .string(let text) = part.first { values[column] = text }
            }
        }
        return .write(table: table, values: values)
    }
}
