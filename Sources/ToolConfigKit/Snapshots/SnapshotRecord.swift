/// What a record carries for its API key.
public enum KeyMaterial: Sendable, Hashable {
    case none
    case plaintext(String)
    case encrypted(StoredSecret)
    /// base64(nonce || ciphertext || tag), sealed under the snapshot's passphrase-derived key.
    case sealed(String)
}

/// One `user_tool_configs` row as a snapshot holds it, keyed by (user_id, tool_id).
public struct SnapshotRecord: Sendable, Hashable {
    public var id: Int64?
    public var userID: String
    public var toolID: String
    public var enabled: Bool
    /// nil on import means "now" (new rows) or "keep" (created_at of existing rows is always kept).
    public var createdAt: Int64?
    public var updatedAt: Int64?
    public var key: KeyMaterial

    public init(
        id: Int64? = nil, userID: String, toolID: String, enabled: Bool = false,
        createdAt: Int64? = nil, updatedAt: Int64? = nil, key: KeyMaterial = .none
    ) {
        self.id = id
        self.userID = userID
        self.toolID = toolID
        self.enabled = enabled
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.key = key
    }
}

extension SnapshotRecord {
    /// The triple an encrypted record carries, stored as it is.
    var storedSecret: StoredSecret? {
        if case .encrypted(let secret) = key { secret } else { nil }
    }
}

extension KeyMaterial {
    /// No key or a stored triple: what goes into a row without any key work.
    var isStoredAsIs: Bool {
        switch self {
        case .none, .encrypted: true
        case .plaintext, .sealed: false
        }
    }
}

/// The snapshot field names of the command-line contract, in export order.
public enum SnapshotField {
    public static let id = "id"
    public static let userID = "user_id"
    public static let toolID = "tool_id"
    public static let enabled = "enabled"
    public static let apiKey = "api_key"
    public static let encryptedAPIKey = "encrypted_api_key"
    public static let salt = "salt"
    public static let nonce = "nonce"
    public static let sealedAPIKey = "sealed_api_key"
    public static let createdAt = "created_at"
    public static let updatedAt = "updated_at"

    public static let all: Set<String> = [
        id, userID, toolID, enabled, apiKey, encryptedAPIKey, salt, nonce, sealedAPIKey, createdAt, updatedAt
    ]
    /// Fields whose values are never repeated in an error message.
    public static let secret: Set<String> = [apiKey, encryptedAPIKey, salt, nonce, sealedAPIKey]

    /// The columns an export writes for a key mode.
    public static func exported(_ keys: KeyMode) -> [String] {
        let keyFields: [String] =
            switch keys {
            case .encrypted: [encryptedAPIKey, salt, nonce]
            case .plaintext: [apiKey]
            case .sealed: [sealedAPIKey]
            case .omit: []
            }
        return [id, userID, toolID, enabled] + keyFields + [createdAt, updatedAt]
    }
}

/// A field value as a reader found it: CSV yields text only; JSON yields typed values.
public enum FieldValue: Sendable, Hashable {
    case text(String)
    case integer(Int64)
    case bool(Bool)
    case null
    /// A JSON value of a kind no snapshot field takes (number with a fraction, array, object).
    case unsupported(String)
}

/// One record as read, before validation.
public struct RawRecord: Sendable {
    public var location: SnapshotLocation
    /// Field names in file order: a CSV reader shares its header's array across all records.
    public let names: [String]
    public let values: [FieldValue]
    /// The slot of each field, when the reader knows them for the whole file (CSV's header).
    let slots: [FieldSlot]?
}
