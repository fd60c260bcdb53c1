import CKeyutils
import Foundation
import Synchronization

/// One entry of the Linux kernel key service as the application's keyring crate (keyring-rs,
/// `linux-native`) keeps it: key type `user`, description `keyring-rs:USER@SERVICE`, added to the
/// session keyring and linked into the user's persistent keyring (which outlives the session,
/// e.g. a cron job's). Found as the crate finds it: searched from the session keyring, then from
/// the persistent one.
public struct KeyringEntry: Sendable, Equatable {
    /// The application's service name in production builds (`Bodhi App - Dev` in development).
    public static let defaultService = "Bodhi App"
    /// The application's entry user (`keyring_service.rs`).
    public static let applicationUser = "secret_key"
    static let keyType = "user"

    public let service: String
    public let user: String
    /// Whether the user's persistent keyring is searched and new entries linked into it. Only
    /// tests turn it off (`sessionOnlyInProcess`, and TOOLCFG_TEST_KEYRING_SESSION_ONLY=1 for the
    /// processes they start, in debug builds only), so that they never touch the real user's
    /// keyring.
    let usesPersistentKeyring: Bool
    package static let sessionOnlyInProcess = Atomic<Bool>(false)

    public init(service: String = defaultService, user: String = applicationUser) {
        self.service = service
        self.user = user
        usesPersistentKeyring = !Self.sessionOnlyForTests
    }

    /// The entry the application reads its key from.
    public static func application(service: String) -> KeyringEntry { KeyringEntry(service: service) }
    /// Where a rotation keeps the new key from before its commit until the switch.
    public static func next(service: String) -> KeyringEntry { KeyringEntry(service: service, user: applicationUser + ".next") }
    /// Where the switch keeps the old key until `forget-old-key`.
    public static func previous(service: String) -> KeyringEntry { KeyringEntry(service: service, user: applicationUser + ".previous") }

    public var description: String { "keyring-rs:\(user)@\(service)" }

    private static var sessionOnlyForTests: Bool {
        #if DEBUG
            sessionOnlyInProcess.load(ordering: .relaxed) || ProcessInfo.processInfo.environment["TOOLCFG_TEST_KEYRING_SESSION_ONLY"] == "1"
        #else
            // A release build always links new entries into the persistent keyring: a variable left
            // set must not put a new key where it dies with the session.
            sessionOnlyInProcess.load(ordering: .relaxed)
        #endif
    }

    var searched: String { usesPersistentKeyring ? "the session keyring or the user's persistent keyring" : "the session keyring" }

    /// The entry's key id, or nil when no keyring reachable holds it.
    func find() throws(SecretError) -> key_serial_t? {
        let found = keyctl_search(toolcfg_session_keyring(), Self.keyType, description, 0)
        if found >= 0 { return key_serial_t(found) }
        try requireMissing(errno)
        guard let persistent = try persistentKeyring() else { return nil }
        let inPersistent = keyctl_search(persistent, Self.keyType, description, 0)
        if inPersistent >= 0 { return key_serial_t(inPersistent) }
        try requireMissing(errno)
        return nil
    }

    /// The user's persistent keyring, linked (as keyring-rs does) into this process's own
    /// keyring, which goes away with the process.
    private func persistentKeyring() throws(SecretError) -> key_serial_t? {
        guard usesPersistentKeyring else { return nil }
        let keyring = keyctl_get_persistent(uid_t.max, toolcfg_process_keyring())
        if keyring >= 0 { return key_serial_t(keyring) }
        // A kernel without persistent keyrings: the session keyring is all there is.
        if errno == EOPNOTSUPP || errno == ENOSYS { return nil }
        throw failure("cannot open the user's persistent keyring", errno)
    }

    /// ENOKEY, EKEYEXPIRED and EKEYREVOKED all mean the application would not find it either.
    private func requireMissing(_ code: Int32) throws(SecretError) {
        if code == ENOKEY || code == EKEYEXPIRED || code == EKEYREVOKED || code == EACCES { return }
        throw failure("the kernel key service refused the search", code)
    }

    private func failure(_ what: String, _ code: Int32) -> SecretError {
        let reason =
            code == ENOSYS
            ? "the kernel has no key service here (\(String(cString: strerror(code))))" : "\(what): \(String(cString: strerror(code)))"
        return .keyringUnavailable(description: description, reason: reason)
    }

    /// The entry's value, or nil when it is missing. Wiped from the library's buffer at once.
    public func read() throws(SecretError) -> SecureBytes? {
        guard let key = try find() else { return nil }
        var buffer: UnsafeMutableRawPointer?
        let length = Int(keyctl_read_alloc(key, &buffer))
        guard length >= 0, let buffer else {
            if errno == ENOKEY || errno == EKEYEXPIRED || errno == EKEYREVOKED { return nil }
            throw failure("cannot read it", errno)
        }
        defer {
            toolcfgSecureZero(UnsafeMutableRawBufferPointer(start: buffer, count: length))
            free(buffer)
        }
        return SecureBytes(count: length) { out in out.copyMemory(from: UnsafeRawBufferPointer(start: buffer, count: length)) }
    }

    /// The key the entry holds (base64 text of its 32 bytes, as the application writes it).
    public func masterKey() throws(SecretError) -> MasterKey? {
        guard let value = try read() else { return nil }
        let text = value.withBytes { String(decoding: $0, as: UTF8.self) }
        return try MasterKey(text: text, source: .keyring(description))
    }

    public func requireMasterKey() throws(SecretError) -> MasterKey {
        guard let key = try masterKey() else { throw .keyringEntryMissing(description: description, searched: searched) }
        return key
    }

    /// Stores `key` as the application would: an existing entry is updated in place (every
    /// keyring linking it sees the new value at once); a new one is added to the session keyring
    /// and linked into the persistent keyring, which outlives the session.
    public func store(_ key: MasterKey) throws(SecretError) {
        let text = Array(key.base64Text.utf8)
        if let existing = try find() {
            let updated = text.withUnsafeBytes { keyctl_update(existing, $0.baseAddress, $0.count) }
            guard updated == 0 else { throw failure("cannot update it", errno) }
            return
        }
        let added = text.withUnsafeBytes { add_key(Self.keyType, description, $0.baseAddress, $0.count, toolcfg_session_keyring()) }
        guard added >= 0 else { throw failure("cannot add it to the session keyring", errno) }
        if let persistent = try persistentKeyring(), keyctl_link(added, persistent) != 0 {
            throw failure("cannot link it into the user's persistent keyring", errno)
        }
    }

    /// Removes the entry from every keyring (as keyring-rs deletes: invalidation). False when it
    /// was not there.
    @discardableResult
    public func remove() throws(SecretError) -> Bool {
        guard let key = try find() else { return false }
        guard keyctl_invalidate(key) == 0 else { throw failure("cannot remove it", errno) }
        return true
    }

    /// Gives the calling thread a new, empty session keyring (its children inherit it), so that
    /// nothing it does reaches the user's own: for tests, and scripts that want the same.
    public static func joinNewSessionKeyring() throws(SecretError) {
        guard keyctl_join_session_keyring(nil) >= 0 else {
            throw .keyringUnavailable(description: "(a new session keyring)", reason: String(cString: strerror(errno)))
        }
    }
}
