import CPostgres

/// A statement prepared on its connection (`PostgresConnection.prepare`): parsed and planned by
/// the server once, run with new parameters each time. The parameters' types are the ones the
/// server inferred from the SQL when it was prepared.
public final class PostgresStatement {
    let name: String
    public let sql: String
    private unowned let connection: PostgresConnection

    init(name: String, sql: String, connection: PostgresConnection) {
        self.name = name
        self.sql = sql
        self.connection = connection
    }

    @discardableResult
    public func run(_ parameters: [PostgresValue] = [], context: String? = nil) throws(PostgresError) -> PostgresRows {
        let handle = try connection.openHandle(context: context)
        let encoded = EncodedParameters(parameters)
        let result = encoded.withArrays { _, values, lengths, formats in
            PQexecPrepared(handle, name, encoded.count, values, lengths, formats, 0)
        }
        return PostgresRows(
            handle: try connection.checked(
                result, accepting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK],
                context: context ?? PostgresConnection.abbreviate(sql)),
            database: connection.url.redacted)
    }
}
