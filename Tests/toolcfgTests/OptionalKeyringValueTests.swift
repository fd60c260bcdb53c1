import Testing
@testable import toolcfg

/// `--master-key-keyring`, `--new-master-key-keyring` and `--keyring` take an optional value:
/// the application's service is filled in when none follows, before ArgumentParser parses.
@Suite("Optional keyring value")
struct OptionalKeyringValueTests {
    @Test(
        "no value (at the end, or before another flag): the default service; a value, or after --, as given",
        arguments: [
            (["rotate", "--master-key-keyring"], ["rotate", "--master-key-keyring", "Bodhi App"]),
            (["rotate", "--master-key-keyring", "--db", "a.db"], ["rotate", "--master-key-keyring", "Bodhi App", "--db", "a.db"]),
            (["rotate", "--new-master-key-keyring", "-q"], ["rotate", "--new-master-key-keyring", "Bodhi App", "-q"]),
            (["forget-old-key", "--keyring"], ["forget-old-key", "--keyring", "Bodhi App"]),
            (["rotate", "--master-key-keyring", "Bodhi App - Dev"], ["rotate", "--master-key-keyring", "Bodhi App - Dev"]),
            (["rotate", "--master-key-keyring=Other"], ["rotate", "--master-key-keyring=Other"]),
            (["rotate", "--", "--master-key-keyring"], ["rotate", "--", "--master-key-keyring"]),
            (["rotate", "--master-key-file", "k"], ["rotate", "--master-key-file", "k"])
        ])
    func fillsTheDefault(arguments: [String], expected: [String]) {
        #expect(OptionalKeyringValue.fillDefaults(arguments) == expected)
    }
}
