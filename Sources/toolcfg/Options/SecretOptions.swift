import ArgumentParser
import ToolConfigKit

extension SecretScheme: ExpressibleByArgument {}

/// `--secret-columns`: groups of columns holding secrets that the application's known groups and
/// the naming rule do not find.
struct SecretColumnsOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Declare one more group of columns holding a secret under the master key (repeatable).",
            valueName: "TABLE:CIPHERTEXT,SALT,NONCE"))
    var secretColumns: [String] = []

    func map() throws -> SecretColumnMap {
        SecretColumnMap(declared: try secretColumns.map(SecretColumnDeclaration.init(parsing:)))
    }

    func validate() throws {
        _ = try map()
    }
}

/// rotate's `--scheme`: keep each value's scheme, or write one for all.
enum SchemeChoice: String, ExpressibleByArgument, CaseIterable {
    case keep, v1, v2

    var scheme: SecretScheme? { SecretScheme(rawValue: rawValue) }
}
