/// Turns a raw record into a validated SnapshotRecord, by the rules of the contract: required
/// non-empty ids, booleans, integer timestamps, and an api_key OR a complete encrypted triple
/// (base64, salt 32 bytes, nonce 12, ciphertext at least the tag), never both.
/// CSV gives text, where an empty cell means "absent"; JSON gives typed values.
struct RecordDecoder {
    let format: SnapshotFormat
    /// The key mode a file's header declared, if any: its records must match it.
    let declaredKeys: KeyMode?

    /// Timestamps beyond year 9999 are a mistake (milliseconds, most likely).
    static let maximumTimestamp: Int64 = 253_402_300_799

    func decode(_ raw: RawRecord) throws(SnapshotError) -> SnapshotRecord {
        var values = FieldValues()
        for (name, value) in raw.fields {
            guard let slot = FieldValues.slot(name) else {
                throw SnapshotError(raw.location.with(field: String(name.prefix(64))), "unknown field")
            }
            values.slots[slot] = value
        }
        let at = raw.location
        let userID = try requiredText(SnapshotField.userID, values, at)
        let toolID = try requiredText(SnapshotField.toolID, values, at)
        var record = SnapshotRecord(userID: userID, toolID: toolID)
        record.id = try integer(SnapshotField.id, values, at, minimum: 1)
        record.enabled = try boolean(SnapshotField.enabled, values, at)
        record.createdAt = try integer(SnapshotField.createdAt, values, at, minimum: 0, maximum: Self.maximumTimestamp)
        record.updatedAt = try integer(SnapshotField.updatedAt, values, at, minimum: 0, maximum: Self.maximumTimestamp)

        // An empty api_key ("" in JSON, a quoted "" in CSV) is a key; null or an empty CSV cell is none.
        let apiKey = try optionalText(SnapshotField.apiKey, values, at, emptyIsAbsent: false)
        let encrypted = try optionalText(SnapshotField.encryptedAPIKey, values, at)
        let salt = try optionalText(SnapshotField.salt, values, at)
        let nonce = try optionalText(SnapshotField.nonce, values, at)
        let sealed = try optionalText(SnapshotField.sealedAPIKey, values, at)
        let tripleParts = [(SnapshotField.encryptedAPIKey, encrypted), (SnapshotField.salt, salt), (SnapshotField.nonce, nonce)]
        let hasTriple = tripleParts.contains { $0.1 != nil }
        let given = [apiKey != nil, hasTriple, sealed != nil].filter { $0 }.count
        if given > 1 {
            throw SnapshotError(at.with(field: SnapshotField.apiKey), "a record carries either api_key, or encrypted_api_key/salt/nonce, or sealed_api_key, never more than one")
        }
        if let apiKey {
            record.key = .plaintext(apiKey)
        } else if hasTriple {
            if let missing = tripleParts.first(where: { $0.1 == nil }) {
                throw SnapshotError(at.with(field: missing.0), "missing: an encrypted key needs encrypted_api_key, salt and nonce together")
            }
            let secret = StoredSecret(encryptedAPIKey: encrypted!, salt: salt!, nonce: nonce!)
            do {
                try secret.validate()
            } catch {
                let field = [SnapshotField.salt, SnapshotField.nonce].first { error.description.hasPrefix($0 + ":") } ?? SnapshotField.encryptedAPIKey
                throw SnapshotError(at.with(field: field), String(error.description.drop(while: { $0 != ":" }).dropFirst(2)))
            }
            record.key = .encrypted(secret)
        } else if let sealed {
            record.key = .sealed(sealed)
        }
        if let declaredKeys {
            let actual: KeyMode? = switch record.key {
            case .none: nil
            case .plaintext: .plaintext
            case .encrypted: .encrypted
            case .sealed: .sealed
            }
            if let actual, actual != declaredKeys {
                throw SnapshotError(at.with(field: actual == .plaintext ? SnapshotField.apiKey : actual == .sealed ? SnapshotField.sealedAPIKey : SnapshotField.encryptedAPIKey),
                                    "a \(actual.rawValue) key in a snapshot whose header declares keys \(declaredKeys.rawValue)")
            }
        } else if case .sealed = record.key {
            throw SnapshotError(at.with(field: SnapshotField.sealedAPIKey), "a sealed key outside a sealed snapshot (no sealing parameters to open it)")
        }
        return record
    }

    private func requiredText(_ name: String, _ values: FieldValues, _ at: SnapshotLocation) throws(SnapshotError) -> String {
        guard let text = try optionalText(name, values, at) else {
            throw SnapshotError(at.with(field: name), values[name] == nil ? "missing (required)" : "empty (required)")
        }
        return text
    }

    /// Text, or nil when absent, null or (unless `emptyIsAbsent` is false) empty.
    private func optionalText(_ name: String, _ values: FieldValues, _ at: SnapshotLocation,
                              emptyIsAbsent: Bool = true) throws(SnapshotError) -> String? {
        switch values[name] {
        case nil, .null?: return nil
        case .text(let text)?: return text.isEmpty && emptyIsAbsent ? nil : text
        case let other?: throw SnapshotError(at.with(field: name), "expected a string, found \(describe(other))")
        }
    }

    private func boolean(_ name: String, _ values: FieldValues, _ at: SnapshotLocation) throws(SnapshotError) -> Bool {
        switch values[name] {
        case nil, .null?: return false
        case .bool(let b)?: return b
        case .integer(0)?: return false
        case .integer(1)?: return true
        case .text(let text)? where format == .csv:
            switch text.lowercased() {
            case "", "0", "false": return false
            case "1", "true": return true
            default: throw SnapshotError(at.with(field: name), "expected 1, 0, true or false, found \(quoted(text))")
            }
        case let other?:
            throw SnapshotError(at.with(field: name), format == .csv ? "expected 1, 0, true or false" : "expected true or false (or 0/1), found \(describe(other))")
        }
    }

    private func integer(_ name: String, _ values: FieldValues, _ at: SnapshotLocation,
                         minimum: Int64, maximum: Int64 = .max) throws(SnapshotError) -> Int64? {
        let value: Int64
        switch values[name] {
        case nil, .null?: return nil
        case .integer(let i)?: value = i
        case .text(let text)? where format == .csv:
            if text.isEmpty { return nil }
            guard text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) || (text.hasPrefix("-") && text.count > 1 && text.dropFirst().utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })),
                  let parsed = Int64(text) else {
                throw SnapshotError(at.with(field: name), "expected an integer, found \(quoted(text))")
            }
            value = parsed
        case let other?:
            throw SnapshotError(at.with(field: name), "expected an integer, found \(describe(other))")
        }
        guard value >= minimum, value <= maximum else {
            throw SnapshotError(at.with(field: name), "\(value) is out of range (\(minimum)...\(maximum))")
        }
        return value
    }

    private func describe(_ value: FieldValue) -> String {
        switch value {
        case .text: "a string"
        case .integer: "an integer"
        case .bool: "a boolean"
        case .null: "null"
        case .unsupported(let kind): kind
        }
    }

    private func quoted(_ text: String) -> String {
        "\"" + String(text.prefix(40)) + (text.count > 40 ? "...\"" : "\"")
    }
}

/// A record's values by field, in a fixed array rather than a dictionary: decoding runs once per
/// row of million-row imports, and hashing eleven names per row showed in profiles.
struct FieldValues {
    var slots = [FieldValue?](repeating: nil, count: 11)

    static func slot(_ name: String) -> Int? {
        switch name {
        case SnapshotField.id: 0
        case SnapshotField.userID: 1
        case SnapshotField.toolID: 2
        case SnapshotField.enabled: 3
        case SnapshotField.apiKey: 4
        case SnapshotField.encryptedAPIKey: 5
        case SnapshotField.salt: 6
        case SnapshotField.nonce: 7
        case SnapshotField.sealedAPIKey: 8
        case SnapshotField.createdAt: 9
        case SnapshotField.updatedAt: 10
        default: nil
        }
    }

    subscript(name: String) -> FieldValue? {
        slots[Self.slot(name)!]
    }
}
