/// The rows one statement returned, with their column names. A SQL `NULL` is `nil`, never
/// an empty string; values keep their exact bytes (a NUL inside a string survives).
public struct QueryResult: Sendable, Equatable {
    public var columns: [String]
    public var rows: [Row]
    /// Rows changed by a statement that returns no rows (`UPDATE`, `INSERT`, ...).
    public var affectedRows: UInt64

    public init(columns: [String], rows: [Row], affectedRows: UInt64) {
        self.columns = columns
        self.rows = rows
        self.affectedRows = affectedRows
    }

    /// The first row, for queries that return at most one.
    public var first: Row? { rows.first }
}

/// One row: values by position or by column name.
public struct Row: Sendable, Equatable {
    public let columns: [String]
    public let values: [[UInt8]?]

    public init(columns: [String], values: [[UInt8]?]) {
        self.columns = columns
        self.values = values
    }

    /// The raw bytes of column `index`, `nil` for SQL `NULL`.
    public func bytes(_ index: Int) -> [UInt8]? { values[index] }

    /// The raw bytes of the first column named `name` (case-insensitive, as MariaDB compares
    /// column names), `nil` for `NULL` or a column the row does not have.
    public func bytes(_ name: String) -> [UInt8]? {
        guard let index = index(of: name) else { return nil }
        return values[index]
    }

    public subscript(index: Int) -> String? { values[index].map { String(decoding: $0, as: UTF8.self) } }

    public subscript(name: String) -> String? { bytes(name).map { String(decoding: $0, as: UTF8.self) } }

    public func int(_ name: String) -> Int? { self[name].flatMap { Int($0) } }

    public func double(_ name: String) -> Double? { self[name].flatMap { Double($0) } }

    /// `true` when the column exists in this row (its value may still be `NULL`).
    public func has(_ name: String) -> Bool { index(of: name) != nil }

    private func index(of name: String) -> Int? {
        columns.firstIndex { $0.caseInsensitiveEquals(name) }
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        self.count == other.count && self.lowercased() == other.lowercased()
    }
}
