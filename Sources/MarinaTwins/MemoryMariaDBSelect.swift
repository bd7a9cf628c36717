import MariaDBClient

/// `SELECT` over the twin's virtual tables: no table (variables, literals), the processlist
/// (optionally joined with `INNODB_TRX`), `information_schema.COLUMNS` and the heartbeat table.
extension StatementContext {
    typealias VirtualRow = [String: SQLValue]

    func select(_ select: SelectStatement) throws -> QueryResult {
        var rows: [VirtualRow]
        if let table = select.table {
            rows = try self.rows(of: table, transactions: select.joinsTransactions)
            rows = try rows.filter { row in try select.conditions.allSatisfy { try holds($0, row) } }
        } else {
            guard select.conditions.isEmpty else { throw SQLSyntaxError(detail: "WHERE without FROM") }
            rows = [[:]]
        }
        if let order = select.order {
            let keyed = try rows.map { (try evaluate(order.expression, $0), $0) }
            rows = keyed.sorted { order.descending ? Self.less($1.0, $0.0) : Self.less($0.0, $1.0) }.map(\.1)
        }
        let columns = select.items.map(\.name)
        var output: [[String?]]
        if select.items.contains(where: { if case .call("COUNT", _) = $0.expression { true } else { false } }) {
            output = [
                try select.items.map { item in
                    if case .call("COUNT", _) = item.expression { return "\(rows.count)" }
                    return try rows.first.map { try evaluate(item.expression, $0).rendered } ?? nil
                }
            ]
        } else {
            output = try rows.map { row in try select.items.map { try evaluate($0.expression, row).rendered } }
        }
        if select.distinct {
            var seen = Set<[String?]>()
            output = output.filter { seen.insert($0).inserted }
        }
        if let limit = select.limit { output = Array(output.prefix(limit)) }
        return Self.table(columns, output)
    }

    private func rows(of table: String, transactions: Bool) throws -> [VirtualRow] {
        switch table {
        case "information_schema.processlist":
            return me.sessions.values.sorted { $0.id < $1.id }.map { session in
                var row: VirtualRow = [
                    "id": .number(Double(session.id)), "user": .text(session.user), "host": .text(session.host), "db": .null,
                    "command": .text(session.command), "time": .number(Double((now - session.since).components.seconds)),
                    "state": .text(session.running ? "executing" : ""), "info": session.info.map { .text($0) } ?? .null,
                ]
                if transactions {
                    row["trx_started"] = session.transactionSince.map { .time($0) } ?? .null
                    row["trx_mysql_thread_id"] = session.transactionSince == nil ? .null : .number(Double(session.id))
                }
                return row
            }
        case "information_schema.columns":
            guard let heartbeat = me.heartbeatTable else { return [] }
            let parts = heartbeat.split(separator: ".", maxSplits: 1).map(String.init)
            let names = ["ts", "server_id"] + (me.heartbeatHasShardColumns ? ["shard", "datacenter"] : [])
            return names.map { ["table_schema": .text(parts[0]), "table_name": .text(parts.count > 1 ? parts[1] : ""), "column_name": .text($0)] }
        case let name where name == me.heartbeatTable?.lowercased():
            return me.heartbeat.values.sorted { $0.serverID < $1.serverID }.map { row in
                var values: VirtualRow = ["ts": .time(row.ts), "server_id": .number(Double(row.serverID))]
                if me.heartbeatHasShardColumns {
                    values["shard"] = row.shard.map { .text($0) } ?? .null
                    values["datacenter"] = row.datacenter.map { .text($0) } ?? .null
                }
                return values
            }
        case let name where name.hasPrefix("heartbeat."):
            throw error(1146, "Table '\(name)' doesn't exist", state: "42S02")
        default:
            throw SQLSyntaxError(detail: "unknown table \(table)")
        }
    }

    private func holds(_ condition: SQLCondition, _ row: VirtualRow) throws -> Bool {
        switch condition {
        case .compare(let left, let operation, let right):
            let a = try evaluate(left, row)
            let b = try evaluate(right, row)
            if a == .null || b == .null { return false }
            switch operation {
            case "=": return Self.equal(a, b)
            case "<>", "!=": return !Self.equal(a, b)
            case "<": return Self.less(a, b)
            case ">": return Self.less(b, a)
            case "<=": return !Self.less(b, a)
            default: return !Self.less(a, b)
            }
        case .among(let left, let list, let negated):
            let value = try evaluate(left, row)
            if value == .null { return false }
            let found = try list.contains { Self.equal(value, try evaluate($0, row)) }
            return found != negated
        case .isNull(let expression, let negated):
            return (try evaluate(expression, row) == .null) != negated
        }
    }

    func evaluate(_ expression: SQLExpression, _ row: VirtualRow) throws -> SQLValue {
        switch expression {
        case .literal(let value): return value
        case .star: throw SQLSyntaxError(detail: "* outside COUNT(*)")
        case .variable(let name):
            let bare = name.split(separator: ".").last.map(String.init) ?? name
            guard let value = me.variable(bare) else { throw error(1193, "Unknown system variable '\(bare)'") }
            return .text(value)
        case .column(let name):
            let bare = name.split(separator: ".").last.map(String.init) ?? name
            guard let value = row[bare] else { throw error(1054, "Unknown column '\(name)' in 'field list'", state: "42S22") }
            return value
        case .call(let function, let arguments):
            let values = { try arguments.map { try self.evaluate($0, row) } }
            switch function {
            case "CONNECTION_ID": return .number(Double(thread))
            case "NOW", "UTC_TIMESTAMP", "CURRENT_TIMESTAMP", "SYSDATE": return .time(now)
            case "LEFT":
                let given = try values()
                guard given.count == 2, case .number(let count) = given[1] else { throw SQLSyntaxError(detail: "LEFT(text, n)") }
                guard let text = given[0].rendered else { return .null }
                return .text(String(text.prefix(Int(count))))
            case "TIMESTAMPDIFF":
                guard arguments.count == 3, case .column(let unit) = arguments[0] else { throw SQLSyntaxError(detail: "TIMESTAMPDIFF(unit, a, b)") }
                guard case .time(let start) = try evaluate(arguments[1], row), case .time(let end) = try evaluate(arguments[2], row) else {
                    return .null
                }
                let elapsed = end - start
                let microseconds = Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds / 1_000_000_000_000)
                switch unit.uppercased() {
                case "MICROSECOND": return .number(microseconds.rounded(.towardZero))
                case "SECOND": return .number((microseconds / 1e6).rounded(.towardZero))
                default: throw SQLSyntaxError(detail: "TIMESTAMPDIFF unit \(unit)")
                }
            default:
                throw SQLSyntaxError(detail: "unknown function \(function)")
            }
        }
    }

    private static func number(_ value: SQLValue) -> Double? {
        switch value {
        case .number(let number): number
        case .text(let text): Double(text)
        default: nil
        }
    }

    static func equal(_ a: SQLValue, _ b: SQLValue) -> Bool {
        if let x = number(a), let y = number(b) { return x == y }
        if case .time(let x) = a, case .time(let y) = b { return x == y }
        return a.rendered?.lowercased() == b.rendered?.lowercased()
    }

    static func less(_ a: SQLValue, _ b: SQLValue) -> Bool {
        if a == .null { return b != .null }
        if let x = number(a), let y = number(b) { return x < y }
        if case .time(let x) = a, case .time(let y) = b { return x < y }
        return (a.rendered ?? "").lowercased() < (b.rendered ?? "").lowercased()
    }
}
