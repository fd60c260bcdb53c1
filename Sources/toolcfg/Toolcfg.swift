import ArgumentParser
import ToolConfigKit

@main
struct Toolcfg: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "toolcfg",
        abstract: "Operate on the per-user tool settings of an application's SQLite database.",
        discussion: """
            Secrets never travel in argv: the master key comes from --master-key-file PATH (- for \
            standard input) or TOOLCFG_MASTER_KEY. --db also reads TOOLCFG_DB. Exit status follows \
            sysexits.h: 64 usage, 65 bad input data, 66 input missing, 74 I/O error, 75 database busy.
            """,
        subcommands: [Keygen.self, Migrate.self, Export.self, Import.self, Rotate.self, VerifyKeys.self, Stress.self, StressWorkerCommand.self]
    )
}
