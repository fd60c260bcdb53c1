import CFastPBKDF2

/// What keeps master keys and decrypted secrets out of core files and away from other processes of
/// the same user, as Vault and gpg do: no core file (RLIMIT_CORE 0) and not dumpable
/// (PR_SET_DUMPABLE 0, which also refuses their ptrace and /proc/PID/mem). Long-lived key material
/// sits in locked pages besides (`SecureBytes(locking:)`). Row keys and decrypted values live for
/// a moment in ordinary memory, which these two settings keep from disk and from debuggers.
public enum ProcessHardening {
    /// Applies both settings to this process (and the core limit to its children). Returns nil, or
    /// why the system refused (the process then runs as before: a warning, not an error).
    public static func forbidCoreDumps() -> String? {
        let failure = toolcfg_forbid_core_dumps()
        return failure == 0 ? nil : "core dumps could not be turned off (errno \(failure)): a crash may write key material to a core file"
    }

    /// Whether the process may still dump core or be traced by its user.
    public static var isDumpable: Bool { toolcfg_dumpable() != 0 }

    /// Pages of key material locked in RAM right now.
    public static var lockedKeyPages: Int { SecureBytes.lockedPages.load(ordering: .relaxed) }
}
