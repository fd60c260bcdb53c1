import Foundation

extension PostgresConnection {
    /// Runs `body` in a new, empty database created on the server of `server` (whose own database
    /// is used only to create and drop it: the role needs CREATEDB), and drops it afterwards
    /// however `body` ends, sessions still in it included.
    public static func withScratchDatabase<T>(on server: PostgresURL, options: Options, _ body: (PostgresConnection) throws -> T) throws
        -> T
    {
        let admin = try PostgresConnection(url: server, options: options)
        let name = "toolcfg_scratch_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try admin.execute("CREATE DATABASE \(quotedIdentifier(name))", context: "creating a scratch database")
        defer { try? admin.execute("DROP DATABASE IF EXISTS \(quotedIdentifier(name)) WITH (FORCE)") }
        let connection = try PostgresConnection(url: try server.replacingDatabase(with: name), options: options)
        defer { connection.close() }
        return try body(connection)
    }
}
