import MariaDBClient

extension Prober {
    /// One global system variable as the server reports it.
    public struct SystemVariable: Sendable, Equatable {
        /// `GLOBAL_VALUE` (empty for NULL).
        public var value: String
        /// `READ_ONLY = 'YES'`: only a restart changes it.
        public var readOnly: Bool

        public init(value: String, readOnly: Bool) {
            self.value = value
            self.readOnly = readOnly
        }
    }

    /// The global value and settability of each variable of `names` the server has, keyed by
    /// lowercase name, from `information_schema.SYSTEM_VARIABLES` (no privilege needed; session-only
    /// variables left out). On the probe's connection: a connection-level failure closes it,
    /// as a probe's does.
    public func systemVariables(_ names: [String]) async throws -> [String: SystemVariable] {
        guard !names.isEmpty else { return [:] }
        let client = try await connected()
        let list = try names.sorted().map { try SQL.format("?", [.string($0.uppercased())]) }.joined(separator: ", ")
        do {
            let rows = try await client.query(
                """
                SELECT LOWER(VARIABLE_NAME) AS name, GLOBAL_VALUE AS value, READ_ONLY AS read_only
                FROM information_schema.SYSTEM_VARIABLES
                WHERE VARIABLE_NAME IN (\(list)) AND VARIABLE_SCOPE <> 'SESSION ONLY'
                """
            ).rows
            var variables = [String: SystemVariable]()
            for row in rows {
                guard let name = row["name"] else { continue }
                variables[name] = SystemVariable(value: row["value"] ?? "", readOnly: row["read_only"] == "YES")
            }
            return variables
        } catch let error as MariaDBError where error.isConnectionLost || error.isTimeout {
            await disconnect()
            throw error
        }
    }
}
