#!/usr/bin/env python3
"""Builds fixtures/app-eras/: databases of each era of the real application (BodhiApp), from its
published migrations, with every secret column group filled under one fixed test master key.
Deterministic: fixed SQL, a fixed seed for every id, salt and nonce, fixed timestamps.

  scripts/build_app_fixtures.py [OUT_DIR]      # default fixtures/app-eras
  scripts/build_app_fixtures.py --self-check   # the secrets.yaml writer against the shared vector

What it writes (OUT_DIR):
  master.key           the fixtures' master key: standard base64 of 32 bytes (a test key, public)
  v0.0.45.db           the sqlx era (SQLite only): `_sqlx_migrations` as sqlx-sqlite creates it with
                       versions 1..7, api_model_aliases and toolsets keys in scheme v1
  secrets.yaml         that era's $BODHI_HOME/secrets.yaml (app_reg_info, app_status)
  v0.0.58.db           the sea-orm era: `seaql_migrations` with the 28 migrations m20250101_000000..27,
                       every table those migrations leave, every secret group filled, scheme v1
  v0.0.59.db           the same schema and ledger, values in scheme v2 ("v2:" + base64), and a few
                       legacy v1 values outside `tenants` (the application upgrades only tenants)
  postgres/v0.0.58.sql and postgres/v0.0.59.sql
                       the same states for an empty PostgreSQL database: the migrations' DDL as
                       sea-query renders it for PostgreSQL (citext, current_tenant_id(), row-level
                       security forced as the application sets it), the ledger, the same rows and
                       ciphertexts (inserted per tenant, with app.current_tenant_id set)
  manifest.json        per database, per secret column group: rows, NULL groups, v1 and v2 values,
                       and a plaintext digest; the secrets file's map digest
  releases.json        the ledger facts for telling a release from a database

The DDL is what the application's migrations (crates/services/migrations/*.sql for sqlx,
crates/services/src/db/sea_migrations/m2025*.rs for sea-orm, in BodhiSearch/BodhiApp) produce, as
far as the stored copies of those files show; releases.json's notes say what could not be pinned.

Plaintext digest: sha256 hex over the UTF-8 of the concatenation, in Python's string order, of the
records "table\\tprimary-key-value\\tciphertext-column\\tplaintext\\n", one per non-NULL group of every
row (for the secrets file: "secrets.yaml\\t\\tkey\\tvalue\\n" per map entry). A plaintext may itself hold
a newline: records, not lines, are what is sorted.
"""
import base64
import hashlib
import json
import os
import random
import sqlite3
import sys
import uuid

import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VECTORS_V2 = os.path.join(os.path.dirname(ROOT), "shared", "vectors", "bodhi-crypto-v2-vectors.json")
SEED = 20260822
# The fixtures' master key (a test key, public on purpose): SHA-256 of a fixed phrase.
MASTER_KEY = hashlib.sha256(b"toolcfg fixtures/app-eras master key (public test key)").digest()
assert MASTER_KEY != bytes(range(32))

# ---------------------------------------------------------------------------------------------
# Crypto (crates/services/src/db/encryption.rs, secret_service.rs)

KEK_SALT = b"bodhiapp:kek:v2"
ROW_INFO = b"bodhiapp:row:v2"


def b64(data):
    return base64.b64encode(data).decode()


def v1_row_key(master, salt):
    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=1000).derive(master)


def v2_kek(master):
    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=KEK_SALT, iterations=600_000).derive(master)


def v2_row_key(kek, salt):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=ROW_INFO).derive(kek)


class Sealer:
    """Fresh salt (32 B) and nonce (12 B) from a seeded generator for every value."""

    def __init__(self, seed, master=MASTER_KEY):
        self.random = random.Random(seed)
        self.master = master
        self._kek = None

    def bytes(self, n):
        return bytes(self.random.getrandbits(8) for _ in range(n))

    @property
    def kek(self):
        if self._kek is None:
            self._kek = v2_kek(self.master)
        return self._kek

    def seal(self, plaintext, scheme):
        salt, nonce = self.bytes(32), self.bytes(12)
        key = v1_row_key(self.master, salt) if scheme == "v1" else v2_row_key(self.kek, salt)
        sealed = b64(AESGCM(key).encrypt(nonce, plaintext.encode(), None))
        return ("v2:" + sealed if scheme == "v2" else sealed), b64(salt), b64(nonce)


def secrets_file_text(master, salt, nonce, secrets):
    """$BODHI_HOME/secrets.yaml: the YAML of a string map, AES-256-GCM under PBKDF2(master, salt,
    1000), in a YAML mapping of salt/nonce/data (standard base64), written as the shared vector
    file writes it (keys in name order; PyYAML's safe_dump for the inner map and the file)."""
    key = v1_row_key(master, salt)
    inner = yaml.safe_dump(dict(secrets), sort_keys=True, allow_unicode=True)
    data = AESGCM(key).encrypt(nonce, inner.encode(), None)
    return yaml.safe_dump({"salt": b64(salt), "nonce": b64(nonce), "data": b64(data)}, sort_keys=True)


def self_check():
    vectors = json.load(open(VECTORS_V2, encoding="utf-8"))
    vector = vectors["secrets_file"]
    parsed = yaml.safe_load(vector["file"])
    text = secrets_file_text(base64.b64decode(vector["master_key"]), base64.b64decode(parsed["salt"]),
                             base64.b64decode(parsed["nonce"]), vector["secrets"])
    if text != vector["file"]:
        raise SystemExit(f"secrets.yaml writer differs from the vector:\n{text!r}\n{vector['file']!r}")
    # v2 values: the same derivation as the vectors (one KEK per key).
    for v in vectors["v2"]["vectors"]:
        master, salt, nonce = (base64.b64decode(v[k]) for k in ("master_key", "salt", "nonce"))
        kek = v2_kek(master)
        assert kek.hex() == v["kek_hex"]
        row = v2_row_key(kek, salt)
        assert row.hex() == v["row_key_hex"]
        assert "v2:" + b64(AESGCM(row).encrypt(nonce, v["plaintext"].encode(), None)) == v["encrypted_value"]
    print("self-check: secrets.yaml writer reproduces the vector file byte for byte; v2 vectors reproduced")


# ---------------------------------------------------------------------------------------------
# Ids and times, as the application makes them

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class Ids:
    def __init__(self, seed):
        self.random = random.Random(seed)

    def ulid(self, millis):
        """The sea-orm era's ids: ULID text (48-bit ms time, 80 random bits, Crockford base32)."""
        value = (millis << 80) | self.random.getrandbits(80)
        return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))

    def uuid4(self):
        """The sqlx era's ids: UUID v4 text."""
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))


def ts(day, hour=10, minute=0):
    """A fixed 2026 timestamp as sqlx-sqlite writes a chrono DateTime<Utc> (RFC 3339, +00:00)."""
    month, day = (3, day) if day <= 31 else (4, day - 31)
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00+00:00"


def millis(day, hour=10):
    import datetime
    month, day = (3, day) if day <= 31 else (4, day - 31)
    return int(datetime.datetime(2026, month, day, hour, tzinfo=datetime.timezone.utc).timestamp() * 1000)


# ---------------------------------------------------------------------------------------------
# sea-query's rendering of the sea-orm migrations (sqlite / postgres)

TYPES = {
    "string": ("varchar", "varchar"),
    "text": ("text", "text"),
    "bool": ("boolean", "bool"),
    "bigint": ("bigint", "bigint"),
    "tstz": ("timestamp_with_timezone_text", "timestamp with time zone"),
    "json": ("json_text", "jsonb"),
}


def q(name):
    return '"' + name + '"'


def column(engine, name, kind, *options):
    """options, in the order the migration adds them: "NOT NULL", "NULL", ("DEFAULT", value),
    "PRIMARY KEY", "UNIQUE"."""
    parts = [q(name), TYPES[kind][0 if engine == "sqlite" else 1]]
    for option in options:
        if isinstance(option, tuple):
            value = option[1]
            if isinstance(value, bool):
                parts.append("DEFAULT " + ("TRUE" if value else "FALSE"))
            elif isinstance(value, int):
                parts.append(f"DEFAULT {value}")
            else:
                parts.append("DEFAULT '" + value.replace("'", "''") + "'")
        else:
            parts.append(option)
    return " ".join(parts)


NN, NUL, PK, UQ = "NOT NULL", "NULL", "PRIMARY KEY", "UNIQUE"


def D(value):
    return ("DEFAULT", value)


def create_table(engine, table, columns, foreign_keys=(), primary_key=None):
    """columns: (name, kind, *options); foreign_keys: (name or None, column, table, column, on_delete, on_update)."""
    items = [column(engine, *c) for c in columns]
    if primary_key:
        items.append("PRIMARY KEY (" + ", ".join(q(c) for c in primary_key) + ")")
    for name, col, ref_table, ref_col, on_delete, on_update in foreign_keys:
        fk = f"FOREIGN KEY ({q(col)}) REFERENCES {q(ref_table)} ({q(ref_col)})"
        if on_delete:
            fk += " ON DELETE " + on_delete
        if on_update:
            fk += " ON UPDATE " + on_update
        if name and engine == "postgres":
            fk = f"CONSTRAINT {q(name)} " + fk
        items.append(fk)
    return f"CREATE TABLE {q(table)} ( " + ", ".join(items) + " )"


def create_index(table, name, columns, unique=False):
    return f"CREATE {'UNIQUE ' if unique else ''}INDEX {q(name)} ON {q(table)} (" + ", ".join(q(c) for c in columns) + ")"


def add_column(engine, table, *col):
    return f"ALTER TABLE {q(table)} ADD COLUMN " + column(engine, *col)


def drop_column(table, name):
    return f"ALTER TABLE {q(table)} DROP COLUMN {q(name)}"


def rls(table):
    """The application's tenant policy (every tenant-scoped table; m20250101_000001 onwards)."""
    return [f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;",
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY;",
            f"CREATE POLICY tenant_isolation ON {table}\n"
            "   FOR ALL\n"
            "   USING (tenant_id = (SELECT current_tenant_id()))\n"
            "   WITH CHECK (tenant_id = (SELECT current_tenant_id()));"]


CASCADE = "CASCADE"


def sea_migrations(engine):
    """The 29 sea-orm migrations known, in order: [(version, [statements])]. v0.0.58 and v0.0.59
    have the first 28 (m20250101_000028 is a later data-only step)."""
    pg = engine == "postgres"
    M = []

    def mig(name, statements):
        M.append(("m20250101_" + name, [s for s in statements if s]))

    # m000: PostgreSQL only.
    mig("000000_extensions", [
        "CREATE EXTENSION IF NOT EXISTS citext",
        "CREATE OR REPLACE FUNCTION current_tenant_id() RETURNS TEXT AS $$\n"
        "  SELECT NULLIF(current_setting('app.current_tenant_id', true), '')\n"
        "$$ LANGUAGE SQL SECURITY DEFINER STABLE;",
    ] if pg else [])

    mig("000001_download_requests", [
        create_table(engine, "download_requests", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("repo", "string", NN),
            ("filename", "string", NN), ("status", "string", NN), ("error", "string", NUL),
            ("total_bytes", "bigint", NUL), ("downloaded_bytes", "bigint", NN, D(0)),
            ("started_at", "tstz", NUL), ("created_at", "tstz", NN), ("updated_at", "tstz", NN)]),
        create_index("download_requests", "idx_download_requests_status", ["status"]),
        create_index("download_requests", "idx_download_requests_tenant_id", ["tenant_id"]),
        *(rls("download_requests") if pg else [])])

    mig("000002_api_model_aliases", [
        create_table(engine, "api_model_aliases", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("user_id", "string", NN),
            ("api_format", "string", NN), ("base_url", "string", NN), ("models", "json", NN),
            ("prefix", "string", NUL), ("forward_all_with_prefix", "bool", NN, D(False)),
            ("models_cache", "json", NN, D("[]")), ("cache_fetched_at", "tstz", NN),
            ("encrypted_api_key", "string", NUL), ("salt", "string", NUL), ("nonce", "string", NUL),
            ("created_at", "tstz", NN), ("updated_at", "tstz", NN)]),
        create_index("api_model_aliases", "idx_api_model_aliases_api_format", ["api_format"]),
        create_index("api_model_aliases", "idx_api_model_aliases_prefix", ["prefix"]),
        create_index("api_model_aliases", "idx_api_model_aliases_updated_at", ["updated_at"]),
        create_index("api_model_aliases", "idx_api_model_aliases_tenant_id", ["tenant_id"]),
        create_index("api_model_aliases", "idx_api_model_aliases_user_id", ["user_id"]),
        "CREATE UNIQUE INDEX IF NOT EXISTS idx_api_model_aliases_prefix_unique ON api_model_aliases(tenant_id, user_id, prefix)"
        " WHERE prefix IS NOT NULL AND prefix != ''",
        *(rls("api_model_aliases") if pg else [])])

    mig("000003_model_metadata", [
        create_table(engine, "model_metadata", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("source", "string", NN),
            ("repo", "string", NUL), ("filename", "string", NUL), ("snapshot", "string", NUL),
            ("api_model_id", "string", NUL), ("capabilities", "json", NUL), ("context", "json", NUL),
            ("architecture", "json", NUL), ("additional_metadata", "string", NUL),
            ("chat_template", "string", NUL), ("extracted_at", "tstz", NN), ("created_at", "tstz", NN),
            ("updated_at", "tstz", NN)]),
        create_index("model_metadata", "idx_model_metadata_unique_key",
                     ["tenant_id", "source", "repo", "filename", "snapshot", "api_model_id"], unique=True),
        create_index("model_metadata", "idx_model_metadata_tenant_id", ["tenant_id"]),
        create_index("model_metadata", "idx_model_metadata_source", ["source"]),
        create_index("model_metadata", "idx_model_metadata_repo", ["repo"]),
        create_index("model_metadata", "idx_model_metadata_api_model_id", ["api_model_id"]),
        *(rls("model_metadata") if pg else [])])

    mig("000004_access_requests", [
        create_table(engine, "user_access_requests", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("username", "string", NN),
            ("user_id", "string", NN), ("reviewer", "string", NUL), ("status", "string", NN, D("pending")),
            ("created_at", "tstz", NN), ("updated_at", "tstz", NN)]),
        create_index("user_access_requests", "idx_user_access_requests_user_id", ["user_id"]),
        create_index("user_access_requests", "idx_user_access_requests_status", ["status"]),
        create_index("user_access_requests", "idx_user_access_requests_tenant_id", ["tenant_id"]),
        *(rls("user_access_requests") if pg else [])])

    mig("000005_api_tokens", [
        create_table(engine, "api_tokens", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("user_id", "string", NN),
            ("name", "string", NN, D("")), ("token_prefix", "string", NN), ("token_hash", "string", NN),
            ("scopes", "string", NN), ("status", "string", NN), ("created_at", "tstz", NN),
            ("updated_at", "tstz", NN)]),
        create_index("api_tokens", "idx_api_tokens_token_prefix", ["token_prefix"]),
        create_index("api_tokens", "idx_api_tokens_tenant_id", ["tenant_id"]),
        create_index("api_tokens", "idx_api_tokens_tenant_id_token_prefix_unique", ["tenant_id", "token_prefix"], unique=True),
        *(rls("api_tokens") if pg else [])])

    mig("000006_toolsets", [
        create_table(engine, "toolsets", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("user_id", "string", NN),
            ("toolset_type", "string", NN), ("slug", "string", NN), ("description", "string", NUL),
            ("enabled", "bool", NN, D(False)), ("encrypted_api_key", "string", NUL),
            ("salt", "string", NUL), ("nonce", "string", NUL), ("created_at", "tstz", NN),
            ("updated_at", "tstz", NN)]),
        create_index("toolsets", "idx_toolsets_user_id", ["user_id"]),
        create_index("toolsets", "idx_toolsets_toolset_type", ["toolset_type"]),
        create_index("toolsets", "idx_toolsets_user_toolset_type", ["user_id", "toolset_type"]),
        create_index("toolsets", "idx_toolsets_tenant_id", ["tenant_id"]),
        create_index("toolsets", "idx_toolsets_tenant_user_type_slug", ["tenant_id", "user_id", "toolset_type", "slug"], unique=True),
        *(rls("toolsets") if pg else [])])

    mig("000007_app_toolset_configs", [
        create_table(engine, "app_toolset_configs", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("toolset_type", "string", NN),
            ("enabled", "bool", NN, D(False)), ("updated_by", "string", NN), ("created_at", "tstz", NN),
            ("updated_at", "tstz", NN)]),
        create_index("app_toolset_configs", "idx_app_toolset_configs_tenant_id", ["tenant_id"]),
        create_index("app_toolset_configs", "idx_app_toolset_configs_tenant_toolset_type", ["tenant_id", "toolset_type"], unique=True),
        *(rls("app_toolset_configs") if pg else [])])

    mig("000008_user_aliases", [
        create_table(engine, "user_aliases", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("user_id", "string", NN),
            ("alias", "string", NN), ("repo", "string", NN), ("filename", "string", NN),
            ("snapshot", "string", NN), ("request_params", "json", NN), ("context_params", "json", NN),
            ("created_at", "tstz", NN), ("updated_at", "tstz", NN)]),
        create_index("user_aliases", "idx_user_aliases_tenant_id", ["tenant_id"]),
        create_index("user_aliases", "idx_user_aliases_user_id", ["user_id"]),
        create_index("user_aliases", "idx_user_aliases_tenant_alias", ["tenant_id", "user_id", "alias"], unique=True),
        *(rls("user_aliases") if pg else [])])

    mig("000009_app_access_requests", [
        create_table(engine, "app_access_requests", [
            ("id", "string", NN, PK), ("tenant_id", "string", NUL), ("app_client_id", "string", NN),
            ("app_name", "string", NUL), ("app_description", "string", NUL), ("flow_type", "string", NN),
            ("redirect_uri", "string", NUL), ("status", "string", NN, D("draft")), ("requested", "string", NN),
            ("approved", "string", NUL), ("user_id", "string", NUL), ("requested_role", "string", NN),
            ("approved_role", "string", NUL), ("access_request_scope", "string", NUL),
            ("error_message", "string", NUL), ("expires_at", "tstz", NN), ("created_at", "tstz", NN),
            ("updated_at", "tstz", NN)]),
        create_index("app_access_requests", "idx_app_access_requests_status", ["status"]),
        create_index("app_access_requests", "idx_app_access_requests_app_client", ["app_client_id"]),
        create_index("app_access_requests", "idx_app_access_requests_tenant_id", ["tenant_id"]),
        "CREATE UNIQUE INDEX IF NOT EXISTS idx_access_request_scope_tenant_unique"
        " ON app_access_requests(tenant_id, access_request_scope) WHERE access_request_scope IS NOT NULL",
        *(["ALTER TABLE app_access_requests ENABLE ROW LEVEL SECURITY;",
           "ALTER TABLE app_access_requests FORCE ROW LEVEL SECURITY;",
           "CREATE POLICY app_access_requests_read ON app_access_requests\n   FOR SELECT USING (true);",
           "CREATE POLICY app_access_requests_insert ON app_access_requests\n   FOR INSERT\n"
           "   WITH CHECK (tenant_id IS NULL OR tenant_id = (SELECT current_tenant_id()));",
           "CREATE POLICY app_access_requests_update ON app_access_requests\n   FOR UPDATE\n"
           "   USING (tenant_id IS NULL OR tenant_id = (SELECT current_tenant_id()))\n"
           "   WITH CHECK (tenant_id IS NULL OR tenant_id = (SELECT current_tenant_id()));"] if pg else [])])

    unique_server = ("CREATE UNIQUE INDEX IF NOT EXISTS idx_mcp_servers_url_unique ON mcp_servers(tenant_id, LOWER(url))" if pg else
                     "CREATE UNIQUE INDEX IF NOT EXISTS idx_mcp_servers_url_unique ON mcp_servers(tenant_id, url COLLATE NOCASE)")
    unique_mcp = ("CREATE UNIQUE INDEX IF NOT EXISTS idx_mcps_user_id_slug_unique ON mcps(tenant_id, LOWER(user_id), LOWER(slug))" if pg else
                  "CREATE UNIQUE INDEX IF NOT EXISTS idx_mcps_user_id_slug_unique ON mcps(tenant_id, user_id COLLATE NOCASE, slug COLLATE NOCASE)")
    mig("000010_mcp_servers", [
        create_table(engine, "mcp_servers", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("url", "string", NN),
            ("name", "string", NN, D("")), ("description", "string", NUL), ("enabled", "bool", NN, D(False)),
            ("created_by", "string", NN), ("updated_by", "string", NN), ("created_at", "tstz", NN),
            ("updated_at", "tstz", NN)]),
        create_index("mcp_servers", "idx_mcp_servers_tenant_id", ["tenant_id"]),
        create_table(engine, "mcps", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("user_id", "string", NN),
            ("mcp_server_id", "string", NN), ("name", "string", NN), ("slug", "string", NN),
            ("description", "string", NUL), ("enabled", "bool", NN, D(True)), ("tools_cache", "string", NUL),
            ("tools_filter", "string", NUL), ("auth_type", "string", NN, D("public")),
            ("auth_uuid", "string", NUL), ("created_at", "tstz", NN), ("updated_at", "tstz", NN)],
            [("fk_mcps_mcp_server_id", "mcp_server_id", "mcp_servers", "id", CASCADE, CASCADE)]),
        create_index("mcps", "idx_mcps_user_id", ["user_id"]),
        create_index("mcps", "idx_mcps_mcp_server_id", ["mcp_server_id"]),
        create_index("mcps", "idx_mcps_tenant_id", ["tenant_id"]),
        unique_server, unique_mcp,
        *((rls("mcp_servers") + rls("mcps")) if pg else [])])

    mig("000011_mcp_auth_headers", [
        create_table(engine, "mcp_auth_headers", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("name", "string", NN, D("Header")),
            ("mcp_server_id", "string", NN), ("header_key", "string", NN),
            ("encrypted_header_value", "string", NN), ("header_value_salt", "string", NN),
            ("header_value_nonce", "string", NN), ("created_at", "tstz", NN), ("updated_at", "tstz", NN)],
            [("fk_mcp_auth_headers_mcp_server_id", "mcp_server_id", "mcp_servers", "id", CASCADE, CASCADE)]),
        create_index("mcp_auth_headers", "idx_mcp_auth_headers_mcp_server_id", ["mcp_server_id"]),
        create_index("mcp_auth_headers", "idx_mcp_auth_headers_tenant_id", ["tenant_id"]),
        ("CREATE UNIQUE INDEX IF NOT EXISTS idx_mcp_auth_headers_server_name_unique ON mcp_auth_headers(LOWER(mcp_server_id), LOWER(name))" if pg else
         "CREATE UNIQUE INDEX IF NOT EXISTS idx_mcp_auth_headers_server_name_unique ON mcp_auth_headers(mcp_server_id COLLATE NOCASE, name COLLATE NOCASE)"),
        *(rls("mcp_auth_headers") if pg else [])])

    mig("000012_mcp_oauth", [
        create_table(engine, "mcp_oauth_configs", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("name", "string", NN, D("OAuth")),
            ("mcp_server_id", "string", NN), ("registration_type", "string", NN, D("pre_registered")),
            ("client_id", "string", NN), ("encrypted_client_secret", "string", NUL),
            ("client_secret_salt", "string", NUL), ("client_secret_nonce", "string", NUL),
            ("authorization_endpoint", "string", NN), ("token_endpoint", "string", NN),
            ("registration_endpoint", "string", NUL), ("encrypted_registration_access_token", "string", NUL),
            ("registration_access_token_salt", "string", NUL), ("registration_access_token_nonce", "string", NUL),
            ("client_id_issued_at", "tstz", NUL), ("token_endpoint_auth_method", "string", NUL),
            ("scopes", "string", NUL), ("created_at", "tstz", NN), ("updated_at", "tstz", NN)],
            [("fk_mcp_oauth_configs_mcp_server_id", "mcp_server_id", "mcp_servers", "id", CASCADE, CASCADE)]),
        create_table(engine, "mcp_oauth_tokens", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("mcp_oauth_config_id", "string", NN),
            ("encrypted_access_token", "string", NN), ("access_token_salt", "string", NN),
            ("access_token_nonce", "string", NN), ("encrypted_refresh_token", "string", NUL),
            ("refresh_token_salt", "string", NUL), ("refresh_token_nonce", "string", NUL),
            ("scopes_granted", "string", NUL), ("expires_at", "tstz", NUL), ("user_id", "string", NN),
            ("created_at", "tstz", NN), ("updated_at", "tstz", NN)],
            [("fk_mcp_oauth_tokens_mcp_oauth_config_id", "mcp_oauth_config_id", "mcp_oauth_configs", "id", CASCADE, CASCADE)]),
        create_index("mcp_oauth_configs", "idx_mcp_oauth_configs_mcp_server_id", ["mcp_server_id"]),
        create_index("mcp_oauth_configs", "idx_mcp_oauth_configs_tenant_id", ["tenant_id"]),
        create_index("mcp_oauth_tokens", "idx_mcp_oauth_tokens_mcp_oauth_config_id", ["mcp_oauth_config_id"]),
        create_index("mcp_oauth_tokens", "idx_mcp_oauth_tokens_tenant_id", ["tenant_id"]),
        ("CREATE UNIQUE INDEX IF NOT EXISTS idx_mcp_oauth_configs_server_name_unique ON mcp_oauth_configs(LOWER(mcp_server_id), LOWER(name))" if pg else
         "CREATE UNIQUE INDEX IF NOT EXISTS idx_mcp_oauth_configs_server_name_unique ON mcp_oauth_configs(mcp_server_id COLLATE NOCASE, name COLLATE NOCASE)"),
        *((rls("mcp_oauth_configs") + rls("mcp_oauth_tokens")) if pg else [])])

    # m013: the stored copy read is the one numbered m20250101_000012_settings (same table).
    mig("000013_settings", [
        create_table(engine, "settings", [
            ("key", "string", NN, PK), ("value", "string", NN), ("value_type", "string", NN),
            ("created_at", "tstz", NN), ("updated_at", "tstz", NN)])])

    # m014: the tenant registry; no tenant_id and no row-level security.
    mig("000014_tenants", [
        create_table(engine, "tenants", [
            ("id", "string", NN, PK), ("client_id", "string", NN, UQ),
            ("encrypted_client_secret", "string", NUL), ("salt_client_secret", "string", NUL),
            ("nonce_client_secret", "string", NUL), ("name", "string", NN, D("")),
            ("description", "string", NUL), ("app_status", "string", NN, D("setup")),
            ("created_by", "string", NUL), ("created_at", "tstz", NN), ("updated_at", "tstz", NN)])])

    mig("000015_tenants_users", [
        create_table(engine, "tenants_users", [
            ("tenant_id", "string", NN), ("user_id", "string", NN), ("created_at", "tstz", NN),
            ("updated_at", "tstz", NN)],
            [(None, "tenant_id", "tenants", "id", CASCADE, None)], primary_key=["tenant_id", "user_id"]),
        create_index("tenants_users", "idx_tenants_users_user_id", ["user_id"]),
        *(["ALTER TABLE tenants_users ENABLE ROW LEVEL SECURITY;",
           "ALTER TABLE tenants_users FORCE ROW LEVEL SECURITY;",
           "CREATE POLICY tenants_users_read ON tenants_users FOR SELECT USING (true);",
           "CREATE POLICY tenants_users_mutation ON tenants_users\n   FOR ALL\n"
           "   USING (tenant_id = (SELECT current_tenant_id()))\n"
           "   WITH CHECK (tenant_id = (SELECT current_tenant_id()));"] if pg else [])])

    redesign = []
    if pg:
        redesign += [f"DROP POLICY IF EXISTS tenant_isolation ON {t};" for t in ("mcp_oauth_tokens", "mcp_oauth_configs", "mcp_auth_headers")]
    redesign += [f"DROP TABLE IF EXISTS {q(t)}" for t in ("mcp_oauth_tokens", "mcp_oauth_configs", "mcp_auth_headers")]
    redesign += [
        create_table(engine, "mcp_auth_configs", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("mcp_server_id", "string", NN),
            ("config_type", "string", NN), ("name", "string", NN), ("created_by", "string", NN),
            ("created_at", "tstz", NN), ("updated_at", "tstz", NN)],
            [("fk_mcp_auth_configs_mcp_server_id", "mcp_server_id", "mcp_servers", "id", CASCADE, CASCADE)]),
        create_index("mcp_auth_configs", "idx_mcp_auth_configs_mcp_server_id", ["mcp_server_id"]),
        create_index("mcp_auth_configs", "idx_mcp_auth_configs_tenant_id", ["tenant_id"]),
        create_table(engine, "mcp_auth_config_params", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("auth_config_id", "string", NN),
            ("param_type", "string", NN), ("param_key", "string", NN), ("created_at", "tstz", NN),
            ("updated_at", "tstz", NN)],
            [("fk_mcp_auth_config_params_auth_config_id", "auth_config_id", "mcp_auth_configs", "id", CASCADE, CASCADE)]),
        create_index("mcp_auth_config_params", "idx_mcp_auth_config_params_auth_config_id", ["auth_config_id"]),
        create_index("mcp_auth_config_params", "idx_mcp_auth_config_params_unique",
                     ["tenant_id", "auth_config_id", "param_type", "param_key"], unique=True),
        create_table(engine, "mcp_oauth_config_details", [
            ("auth_config_id", "string", NN, PK), ("tenant_id", "string", NN),
            ("registration_type", "string", NN, D("pre_registered")), ("client_id", "string", NN),
            ("encrypted_client_secret", "string", NUL), ("client_secret_salt", "string", NUL),
            ("client_secret_nonce", "string", NUL), ("authorization_endpoint", "string", NN),
            ("token_endpoint", "string", NN), ("registration_endpoint", "string", NUL),
            ("encrypted_registration_access_token", "string", NUL),
            ("registration_access_token_salt", "string", NUL), ("registration_access_token_nonce", "string", NUL),
            ("client_id_issued_at", "tstz", NUL), ("token_endpoint_auth_method", "string", NUL),
            ("scopes", "string", NUL), ("created_at", "tstz", NN), ("updated_at", "tstz", NN)],
            [("fk_mcp_oauth_config_details_auth_config_id", "auth_config_id", "mcp_auth_configs", "id", CASCADE, CASCADE)]),
        create_table(engine, "mcp_auth_params", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("mcp_id", "string", NN),
            ("param_type", "string", NN), ("param_key", "string", NN), ("encrypted_value", "string", NN),
            ("value_salt", "string", NN), ("value_nonce", "string", NN), ("created_at", "tstz", NN),
            ("updated_at", "tstz", NN)],
            [("fk_mcp_auth_params_mcp_id", "mcp_id", "mcps", "id", CASCADE, CASCADE)]),
        create_index("mcp_auth_params", "idx_mcp_auth_params_mcp_id", ["mcp_id"]),
        create_index("mcp_auth_params", "idx_mcp_auth_params_unique", ["tenant_id", "mcp_id", "param_type", "param_key"], unique=True),
        create_table(engine, "mcp_oauth_tokens", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("mcp_id", "string", NUL),
            ("auth_config_id", "string", NN), ("user_id", "string", NN),
            ("encrypted_access_token", "string", NN), ("access_token_salt", "string", NN),
            ("access_token_nonce", "string", NN), ("encrypted_refresh_token", "string", NUL),
            ("refresh_token_salt", "string", NUL), ("refresh_token_nonce", "string", NUL),
            ("scopes_granted", "string", NUL), ("expires_at", "tstz", NUL), ("created_at", "tstz", NN),
            ("updated_at", "tstz", NN)],
            [("fk_mcp_oauth_tokens_mcp_id", "mcp_id", "mcps", "id", CASCADE, CASCADE),
             ("fk_mcp_oauth_tokens_auth_config_id", "auth_config_id", "mcp_auth_configs", "id", CASCADE, CASCADE)]),
        create_index("mcp_oauth_tokens", "idx_mcp_oauth_tokens_mcp_id", ["mcp_id"]),
        create_index("mcp_oauth_tokens", "idx_mcp_oauth_tokens_auth_config_id", ["auth_config_id"]),
        create_index("mcp_oauth_tokens", "idx_mcp_oauth_tokens_tenant_id", ["tenant_id"]),
        drop_column("mcps", "auth_uuid"),
        add_column(engine, "mcps", "auth_config_id", "string", NUL),
    ]
    if pg:
        redesign.append("ALTER TABLE mcps ADD CONSTRAINT fk_mcps_auth_config_id FOREIGN KEY (auth_config_id)"
                        " REFERENCES mcp_auth_configs(id) ON DELETE SET NULL ON UPDATE CASCADE")
        redesign.append("CREATE UNIQUE INDEX IF NOT EXISTS idx_mcp_auth_configs_server_name_unique ON mcp_auth_configs(LOWER(mcp_server_id), LOWER(name))")
        for t in ("mcp_auth_configs", "mcp_auth_config_params", "mcp_oauth_config_details", "mcp_auth_params", "mcp_oauth_tokens"):
            redesign += rls(t)
    else:
        redesign.append("CREATE UNIQUE INDEX IF NOT EXISTS idx_mcp_auth_configs_server_name_unique"
                        " ON mcp_auth_configs(mcp_server_id COLLATE NOCASE, name COLLATE NOCASE)")
    mig("000016_mcp_auth_redesign", redesign)

    drop = []
    if pg:
        for t in ("app_toolset_configs", "toolsets"):
            drop += [f"DROP POLICY IF EXISTS tenant_isolation ON {t};", f"ALTER TABLE IF EXISTS {t} DISABLE ROW LEVEL SECURITY;"]
    drop += ['DROP TABLE IF EXISTS "app_toolset_configs"', 'DROP TABLE IF EXISTS "toolsets"']
    mig("000017_drop_toolsets", drop)
    mig("000018_drop_mcp_tools_columns", [drop_column("mcps", "tools_cache"), drop_column("mcps", "tools_filter")])
    mig("000019_drop_models_cache", [drop_column("api_model_aliases", "models_cache"),
                                     drop_column("api_model_aliases", "cache_fetched_at")])
    mig("000020_api_alias_extra_fields", [add_column(engine, "api_model_aliases", "extra_headers", "json", NUL),
                                          add_column(engine, "api_model_aliases", "extra_body", "json", NUL)])
    mig("000021_api_model_oauth_credentials", [
        create_table(engine, "api_model_oauth_credentials", [
            ("api_alias_id", "string", NN, PK), ("tenant_id", "string", NN), ("user_id", "string", NN),
            ("envelope_version", "string", NN), ("provider", "string", NN),
            ("encrypted_access_token", "string", NN), ("access_salt", "string", NN), ("access_nonce", "string", NN),
            ("encrypted_refresh_token", "string", NN), ("refresh_salt", "string", NN), ("refresh_nonce", "string", NN),
            ("expires_at", "tstz", NN), ("auth_in", "string", NN), ("auth_key", "string", NN),
            ("auth_scheme", "string", NN), ("oauth_authorize_url", "string", NN), ("oauth_token_url", "string", NN),
            ("oauth_revoke_url", "string", NUL), ("oauth_client_id", "string", NN),
            ("oauth_client_secret", "string", NUL), ("api_base_url", "string", NN), ("api_chat_url", "string", NN),
            ("api_models_url", "string", NUL), ("headers_json", "json", NN, D("{}")),
            ("body_json", "json", NN, D("{}")), ("extra_json", "json", NUL), ("created_at", "tstz", NN),
            ("updated_at", "tstz", NN)],
            [("fk_api_model_oauth_creds_alias_id", "api_alias_id", "api_model_aliases", "id", CASCADE, CASCADE)]),
        create_index("api_model_oauth_credentials", "idx_api_model_oauth_creds_provider", ["provider"]),
        create_index("api_model_oauth_credentials", "idx_api_model_oauth_creds_tenant_id", ["tenant_id"]),
        create_index("api_model_oauth_credentials", "idx_api_model_oauth_creds_expires_at", ["expires_at"]),
        *(rls("api_model_oauth_credentials") if pg else [])])
    mig("000022_model_router_aliases", [
        create_table(engine, "model_router_aliases", [
            ("id", "string", NN, PK), ("tenant_id", "string", NN), ("user_id", "string", NN),
            ("alias", "string", NN), ("targets", "json", NN), ("strategy", "json", NN),
            ("created_at", "tstz", NN), ("updated_at", "tstz", NN)]),
        create_index("model_router_aliases", "idx_model_router_aliases_tenant_id", ["tenant_id"]),
        create_index("model_router_aliases", "idx_model_router_aliases_user_id", ["user_id"]),
        create_index("model_router_aliases", "idx_model_router_aliases_updated_at", ["updated_at"]),
        "CREATE UNIQUE INDEX IF NOT EXISTS idx_model_router_aliases_alias_unique ON model_router_aliases(tenant_id, user_id, alias)",
        *(rls("model_router_aliases") if pg else [])])
    mig("000023_api_alias_name", [
        add_column(engine, "api_model_aliases", "name", "text", NN, D("")),
        "UPDATE api_model_aliases SET name = id",
        "ALTER TABLE api_model_aliases ALTER COLUMN name DROP DEFAULT" if pg else None])
    mig("000024_download_archived_at", [add_column(engine, "download_requests", "archived_at", "tstz", NUL)])
    mig("000025_token_grants", [
        add_column(engine, "api_tokens", "grants", "text", NN,
                   D('{"version":"1","list_models":true,"models":{"type":"all"},"list_mcps":true,"mcps":{"type":"all"}}')),
        add_column(engine, "api_tokens", "last_used_at", "tstz", NUL)])
    mig("000026_drop_app_access_request_flow_columns", [drop_column("app_access_requests", "flow_type"),
                                                         drop_column("app_access_requests", "redirect_uri")])
    mig("000027_app_access_request_source_id", [add_column(engine, "app_access_requests", "source_access_request_id", "text", NUL)])
    mig("000028_expire_stale_app_access_requests", [
        "UPDATE app_access_requests SET status = 'expired' WHERE status IN ('draft', 'failed')",
        "UPDATE app_access_requests SET status = 'revoked' WHERE status = 'approved'"
        " AND (access_request_scope IS NULL OR access_request_scope NOT LIKE '%.%')"])
    return M


SEA_ORM_SHIPPED = 28  # v0.0.58 and v0.0.59: m20250101_000000 .. m20250101_000027

SEAQL_LEDGER = {
    "sqlite": 'CREATE TABLE IF NOT EXISTS "seaql_migrations" ( "version" varchar NOT NULL PRIMARY KEY, "applied_at" bigint NOT NULL )',
    "postgres": 'CREATE TABLE IF NOT EXISTS "seaql_migrations" ( "version" varchar NOT NULL PRIMARY KEY, "applied_at" bigint NOT NULL )',
}

# Illustrative applied_at (Unix seconds) of an installation set up on the first sea-orm release and
# upgraded since; which release shipped which migration is in releases.json, as far as known.
APPLIED_AT = [1772618400] * 16 + [1773223200] + [1773828000] * 4 + [1774432800] * 2 + [1775037600] * 5

# ---------------------------------------------------------------------------------------------
# The sqlx era (v0.0.45): crates/services/migrations/*.up.sql as stored; SQLite only.

SQLX_SQLITE_LEDGER = """CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);"""

SQLX_MIGRATIONS = [
    (1, "download-requests", """CREATE TABLE IF NOT EXISTS download_requests (
    id TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    filename TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    total_bytes INTEGER,
    downloaded_bytes INTEGER DEFAULT 0,
    started_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_download_requests_status ON download_requests(status);
"""),
    (2, "pending-access-requests", """CREATE TABLE access_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL,
    user_id TEXT NOT NULL,
    reviewer TEXT DEFAULT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
"""),
    (3, "create api tokens", """-- Add up migration script here

-- Create the api_tokens table
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT DEFAULT '',
    token_prefix TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

-- Create index on token_prefix for faster lookups
CREATE INDEX idx_api_tokens_token_prefix ON api_tokens(token_prefix);
"""),
    # 0004: the schema 0005's down recreates ("original schema (from 0004 migration)"): api_format,
    # prefix, the key triple nullable. The exact text of that file version is not in the stored copies.
    (4, "api models", """-- Add up migration script here

-- Create the api_model_aliases table for storing remote API configuration
CREATE TABLE api_model_aliases (
    id TEXT PRIMARY KEY NOT NULL,
    api_format TEXT NOT NULL,
    prefix TEXT,
    base_url TEXT NOT NULL,
    models_json TEXT NOT NULL,
    encrypted_api_key TEXT,
    salt TEXT,
    nonce TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Create index on api_format for faster lookups when filtering by api format
CREATE INDEX idx_api_model_aliases_api_format ON api_model_aliases(api_format);

-- Add index for prefix-based lookups to optimize routing performance
CREATE INDEX idx_api_model_aliases_prefix ON api_model_aliases(prefix);

-- Create index on updated_at for faster sorting by modification time
CREATE INDEX idx_api_model_aliases_updated_at ON api_model_aliases(updated_at);
"""),
    (5, "api model forward all", """-- Add up migration script here

-- Add forward_all_with_prefix column to api_model_aliases table
ALTER TABLE api_model_aliases ADD COLUMN forward_all_with_prefix BOOLEAN NOT NULL DEFAULT 0;

-- Add unique constraint on non-null prefix (allows multiple NULL/empty values)
CREATE UNIQUE INDEX idx_api_model_aliases_prefix_unique
ON api_model_aliases(prefix)
WHERE prefix IS NOT NULL AND prefix != '';
"""),
    (6, "model metadata", """-- Model metadata table for local GGUF and remote API models
CREATE TABLE model_metadata (
  -- Primary key
  id INTEGER PRIMARY KEY AUTOINCREMENT,

  -- Model identification
  source TEXT NOT NULL,        -- AliasSource: "local", "api"
  repo TEXT,                   -- HuggingFace repo (e.g., "microsoft/phi-3") - NULL for API models
  filename TEXT,               -- GGUF file path - NULL for API models
  snapshot TEXT,               -- Snapshot identifier for change detection - NULL for API models
  api_model_id TEXT,           -- Remote model ID (e.g., "gpt-4") - NULL for local models

  -- Core capabilities (nullable - NULL = unknown/not determined)
  capabilities_vision INTEGER,
  capabilities_audio INTEGER,
  capabilities_thinking INTEGER,
  capabilities_function_calling INTEGER,
  capabilities_structured_output INTEGER,

  -- Context limits (flattened for queryable filters)
  context_max_input_tokens INTEGER,
  context_max_output_tokens INTEGER,

  -- Architecture and additional metadata (JSON for flexibility)
  architecture TEXT,           -- JSON: ModelArchitecture
  additional_metadata TEXT,    -- JSON: Future extensibility (pricing, etc.)
  chat_template TEXT,          -- Chat template from GGUF file (can be large)

  -- Timestamps
  extracted_at TEXT NOT NULL,  -- When metadata was extracted/synced
  created_at TEXT NOT NULL,    -- Record creation timestamp
  updated_at TEXT NOT NULL,    -- Record update timestamp

  -- Composite unique constraint
  -- For local models: unique on (source, repo, filename, snapshot) where source='local'
  -- For API models: api_model_id is unique where source='api'
  UNIQUE(source, repo, filename, snapshot, api_model_id)
);

-- Indexes for common queries
CREATE INDEX idx_model_metadata_source ON model_metadata(source);
CREATE INDEX idx_model_metadata_repo ON model_metadata(repo);
CREATE INDEX idx_model_metadata_filename ON model_metadata(filename);
CREATE INDEX idx_model_metadata_api_model_id ON model_metadata(api_model_id);
CREATE INDEX idx_model_metadata_vision ON model_metadata(capabilities_vision) WHERE capabilities_vision = 1;
CREATE INDEX idx_model_metadata_audio ON model_metadata(capabilities_audio) WHERE capabilities_audio = 1;
CREATE INDEX idx_model_metadata_function_calling ON model_metadata(capabilities_function_calling) WHERE capabilities_function_calling = 1;
"""),
    (7, "toolsets config", """-- Migration 0007: Toolset Configuration Tables
-- Creates tables for user toolset instances and app-level toolset configuration

-- Create the toolsets table for user-owned toolset instances
CREATE TABLE IF NOT EXISTS toolsets (
    id TEXT PRIMARY KEY,                   -- UUID as TEXT
    user_id TEXT NOT NULL,                 -- JWT 'sub' claim (no FK)
    toolset_type TEXT,                     -- Toolset type identifier (e.g., 'builtin-exa-search')
    name TEXT NOT NULL,                    -- user-defined instance name
    description TEXT,                      -- optional instance description
    enabled INTEGER NOT NULL DEFAULT 0,    -- boolean as integer
    -- Encrypted API key storage (same pattern as api_model_aliases)
    encrypted_api_key TEXT,
    salt TEXT,
    nonce TEXT,
    created_at INTEGER NOT NULL,           -- Unix timestamp
    updated_at INTEGER NOT NULL,
    UNIQUE(user_id, name COLLATE NOCASE)   -- case-insensitive uniqueness per user
);

-- Create index on user_id for faster lookups by user
CREATE INDEX IF NOT EXISTS idx_toolsets_user_id ON toolsets(user_id);

-- Create index on toolset_type for faster lookups by type
CREATE INDEX IF NOT EXISTS idx_toolsets_toolset_type ON toolsets(toolset_type);

-- Create composite index on user_id and toolset_type for efficient filtering
CREATE INDEX IF NOT EXISTS idx_toolsets_user_toolset_type ON toolsets(user_id, toolset_type);

-- Create the app_toolset_configs table for app-level toolset configuration (admin-controlled)
CREATE TABLE IF NOT EXISTS app_toolset_configs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    toolset_type TEXT NOT NULL,            -- Toolset type identifier (e.g., 'builtin-exa-search')
    enabled INTEGER NOT NULL DEFAULT 0,    -- boolean as integer
    updated_by TEXT NOT NULL,              -- user_id of admin who last updated
    created_at INTEGER NOT NULL,           -- Unix timestamp
    updated_at INTEGER NOT NULL
);

-- Create UNIQUE index on toolset_type
CREATE UNIQUE INDEX idx_app_toolset_configs_toolset_type ON app_toolset_configs(toolset_type);
"""),
]

# The sqlx migrations the sea-orm switch replaced ("28 sqlx migration files", 14 up/down pairs).
SQLX_ALL = [(v, d) for v, d, _ in SQLX_MIGRATIONS] + [
    (8, "user aliases"), (9, "app access requests"), (10, "mcp servers"), (11, "mcp auth headers"),
    (12, "mcp oauth"), (13, "settings"), (14, "apps")]

# ---------------------------------------------------------------------------------------------
# Secret column groups: (table, ciphertext, salt, nonce, primary key, nullable)

GROUPS = [
    ("api_model_aliases", "encrypted_api_key", "salt", "nonce", "id", True),
    ("toolsets", "encrypted_api_key", "salt", "nonce", "id", True),
    ("tenants", "encrypted_client_secret", "salt_client_secret", "nonce_client_secret", "id", True),
    ("mcp_oauth_tokens", "encrypted_access_token", "access_token_salt", "access_token_nonce", "id", False),
    ("mcp_oauth_tokens", "encrypted_refresh_token", "refresh_token_salt", "refresh_token_nonce", "id", True),
    ("mcp_oauth_config_details", "encrypted_client_secret", "client_secret_salt", "client_secret_nonce", "auth_config_id", True),
    ("mcp_oauth_config_details", "encrypted_registration_access_token", "registration_access_token_salt",
     "registration_access_token_nonce", "auth_config_id", True),
    ("mcp_auth_params", "encrypted_value", "value_salt", "value_nonce", "id", False),
    ("api_model_oauth_credentials", "encrypted_access_token", "access_salt", "access_nonce", "api_alias_id", False),
    ("api_model_oauth_credentials", "encrypted_refresh_token", "refresh_salt", "refresh_nonce", "api_alias_id", False),
]


class Secret:
    """A plaintext to seal into a group when the rows are rendered; scheme per value."""

    def __init__(self, plaintext, scheme=None):
        self.plaintext, self.scheme = plaintext, scheme


def rows_sqlx(ids):
    """v0.0.45's rows: {table: [ {column: value} ]}; Secret(...) under the group's ciphertext column."""
    user, admin = ids.uuid4(), ids.uuid4()
    t = 1769400000  # 2026-01-26
    data = {
        "download_requests": [
            dict(id=ids.uuid4(), repo="bartowski/Qwen2.5-7B-Instruct-GGUF", filename="Qwen2.5-7B-Instruct-Q4_K_M.gguf",
                 status="completed", error=None, total_bytes=4683073952, downloaded_bytes=4683073952,
                 started_at=t + 60, created_at=t + 60, updated_at=t + 900)],
        "access_requests": [dict(email="dev@example.invalid", user_id=user, reviewer=admin, status="approved",
                                 created_at="2026-01-26 10:05:00", updated_at="2026-01-26 10:07:00")],
        "api_tokens": [dict(id=ids.uuid4(), user_id=admin, name="ci pipeline", token_prefix="bodhiapp_Qm9kaGlUb2",
                            token_hash=hashlib.sha256(b"fixture token").hexdigest(), scopes="scope_token_user",
                            status="active", created_at="2026-01-26 11:00:00", updated_at="2026-01-26 11:00:00")],
        "api_model_aliases": [
            dict(id="openai", api_format="openai", prefix=None, base_url="https://api.openai.com/v1",
                 models_json='["gpt-4o","gpt-4o-mini"]', encrypted_api_key=Secret("sk-proj-fixture-0001-openai"),
                 created_at="2026-01-26T10:20:00+00:00", updated_at="2026-01-26T10:20:00+00:00", forward_all_with_prefix=0),
            dict(id="openrouter", api_format="openai", prefix="or/", base_url="https://openrouter.ai/api/v1",
                 models_json='["anthropic/claude-sonnet-4"]', encrypted_api_key=Secret("sk-or-v1-fixture-0002"),
                 created_at="2026-01-26T10:25:00+00:00", updated_at="2026-01-27T08:00:00+00:00", forward_all_with_prefix=1),
            dict(id="groq-llama", api_format="openai", prefix="groq/", base_url="https://api.groq.com/openai/v1",
                 models_json='["llama-3.3-70b-versatile"]', encrypted_api_key=Secret("gsk_fixture_0003 with spaces, \"quotes\" and ünïcödé"),
                 created_at="2026-01-27T09:00:00+00:00", updated_at="2026-01-27T09:00:00+00:00", forward_all_with_prefix=0)],
        "model_metadata": [dict(source="api", repo=None, filename=None, snapshot=None, api_model_id="gpt-4o",
                                capabilities_vision=1, capabilities_function_calling=1, context_max_input_tokens=128000,
                                extracted_at="2026-01-26T10:21:00+00:00", created_at="2026-01-26T10:21:00+00:00",
                                updated_at="2026-01-26T10:21:00+00:00")],
        "toolsets": [
            dict(id=ids.uuid4(), user_id=user, toolset_type="builtin-exa-search", name="exa-web", description="Exa web search",
                 enabled=1, encrypted_api_key=Secret("exa_fixture_key_0001"), created_at=t + 3600, updated_at=t + 3600),
            dict(id=ids.uuid4(), user_id=admin, toolset_type="builtin-exa-search", name="exa-research", description=None,
                 enabled=1, encrypted_api_key=Secret("exa_fixture_key_0002"), created_at=t + 7200, updated_at=t + 7300),
            dict(id=ids.uuid4(), user_id=user, toolset_type="builtin-exa-search", name="exa-unconfigured", description="no key yet",
                 enabled=0, encrypted_api_key=None, created_at=t + 8000, updated_at=t + 8000)],
        "app_toolset_configs": [dict(toolset_type="builtin-exa-search", enabled=1, updated_by=admin, created_at=t + 3000, updated_at=t + 3000)],
    }
    return data


def rows_sea(ids):
    """The sea-orm era's rows (the same in v0.0.58 and v0.0.59, whose schemes differ)."""
    T = [ids.ulid(millis(4, 9)), ids.ulid(millis(5, 9)), ids.ulid(millis(6, 9))]
    U = [ids.uuid4() for _ in range(4)]  # Keycloak subjects
    tenants = [
        dict(id=T[0], client_id="resource-" + ids.uuid4(), encrypted_client_secret=Secret("kc-client-secret-T1-7Hq2vN"),
             name="Bodhi App", description="desktop installation", app_status="ready", created_by=U[0],
             created_at=ts(4, 9), updated_at=ts(4, 9, 5)),
        dict(id=T[1], client_id="resource-" + ids.uuid4(), encrypted_client_secret=Secret("kc-client-secret-T2-xP9/+=="),
             name="Research team", description=None, app_status="ready", created_by=U[2],
             created_at=ts(5, 9), updated_at=ts(5, 9, 5)),
        dict(id=T[2], client_id="resource-" + ids.uuid4(), encrypted_client_secret=None,
             name="", description=None, app_status="setup", created_by=None, created_at=ts(6, 9), updated_at=ts(6, 9)),
    ]
    aliases = [
        dict(id=ids.ulid(millis(7)), tenant_id=T[0], user_id=U[0], api_format="openai", base_url="https://api.openai.com/v1",
             models='["gpt-4o","gpt-4o-mini"]', prefix=None, forward_all_with_prefix=False,
             encrypted_api_key=Secret("sk-proj-fixture-0001-openai"), created_at=ts(7), updated_at=ts(7),
             extra_headers=None, extra_body=None, name="openai"),
        dict(id=ids.ulid(millis(8)), tenant_id=T[0], user_id=U[0], api_format="anthropic", base_url="https://api.anthropic.com/v1",
             models='["claude-sonnet-4-5"]', prefix="claude/", forward_all_with_prefix=True,
             encrypted_api_key=Secret("sk-ant-api03-fixture-0002"), created_at=ts(8), updated_at=ts(9),
             extra_headers='{"anthropic-version":"2023-06-01"}', extra_body=None, name="anthropic"),
        dict(id=ids.ulid(millis(10)), tenant_id=T[0], user_id=U[1], api_format="openai", base_url="http://localhost:11434/v1",
             models='["llama3.2"]', prefix="ollama/", forward_all_with_prefix=False, encrypted_api_key=None,
             created_at=ts(10), updated_at=ts(10), extra_headers=None, extra_body=None, name="local ollama (no key)"),
        dict(id=ids.ulid(millis(11)), tenant_id=T[1], user_id=U[2], api_format="openai", base_url="https://openrouter.ai/api/v1",
             models='["google/gemini-2.5-pro"]', prefix="or/", forward_all_with_prefix=True,
             encrypted_api_key=Secret("sk-or-v1-fixture ünïcödé \"quoted\", comma", "v1"), created_at=ts(11), updated_at=ts(11),
             extra_headers=None, extra_body='{"provider":{"sort":"price"}}', name="openrouter"),
        dict(id=ids.ulid(millis(12)), tenant_id=T[0], user_id=U[0], api_format="openai", base_url="https://chatgpt.com/backend-api/codex",
             models='["gpt-5-codex"]', prefix="codex/", forward_all_with_prefix=False, encrypted_api_key=None,
             created_at=ts(12), updated_at=ts(12), extra_headers=None, extra_body=None, name="chatgpt subscription"),
    ]
    oauth_creds = [
        dict(api_alias_id=aliases[4]["id"], tenant_id=T[0], user_id=U[0], envelope_version="1", provider="openai-codex",
             encrypted_access_token=Secret("eyJhbGciOiJSUzI1NiJ9.fixture-access-0001.sig"),
             encrypted_refresh_token=Secret("rt_fixture_refresh_0001"), expires_at=ts(12, 20),
             auth_in="header", auth_key="Authorization", auth_scheme="Bearer",
             oauth_authorize_url="https://auth.openai.com/oauth/authorize", oauth_token_url="https://auth.openai.com/oauth/token",
             oauth_revoke_url=None, oauth_client_id="app_fixture_codex_cli", oauth_client_secret=None,
             api_base_url="https://chatgpt.com/backend-api/codex", api_chat_url="https://chatgpt.com/backend-api/codex/responses",
             api_models_url=None, headers_json='{"OpenAI-Beta":"responses=experimental"}', body_json="{}", extra_json=None,
             created_at=ts(12), updated_at=ts(13)),
        dict(api_alias_id=aliases[2]["id"], tenant_id=T[0], user_id=U[1], envelope_version="1", provider="custom",
             encrypted_access_token=Secret("ya29.fixture-access-0002"), encrypted_refresh_token=Secret("1//fixture-refresh-0002"),
             expires_at=ts(13, 11), auth_in="header", auth_key="Authorization", auth_scheme="Bearer",
             oauth_authorize_url="https://accounts.example.invalid/o/oauth2/auth", oauth_token_url="https://oauth2.example.invalid/token",
             oauth_revoke_url="https://oauth2.example.invalid/revoke", oauth_client_id="fixture-client.apps.example.invalid",
             oauth_client_secret="plaintext-by-design-GOCSPX-fixture", api_base_url="http://localhost:11434/v1",
             api_chat_url="http://localhost:11434/v1/chat/completions", api_models_url="http://localhost:11434/v1/models",
             headers_json="{}", body_json="{}", extra_json='{"note":"fixture"}', created_at=ts(13), updated_at=ts(13)),
    ]
    servers = [
        dict(id=ids.ulid(millis(14)), tenant_id=T[0], url="https://mcp.deepwiki.com/mcp", name="DeepWiki", description=None,
             enabled=True, created_by=U[0], updated_by=U[0], created_at=ts(14), updated_at=ts(14)),
        dict(id=ids.ulid(millis(15)), tenant_id=T[0], url="https://mcp.notion.com/mcp", name="Notion", description="OAuth",
             enabled=True, created_by=U[0], updated_by=U[0], created_at=ts(15), updated_at=ts(15)),
        dict(id=ids.ulid(millis(16)), tenant_id=T[1], url="https://api.githubcopilot.com/mcp/", name="GitHub", description=None,
             enabled=True, created_by=U[2], updated_by=U[2], created_at=ts(16), updated_at=ts(16)),
    ]
    configs = [
        dict(id=ids.ulid(millis(17)), tenant_id=T[0], mcp_server_id=servers[1]["id"], config_type="oauth", name="Notion OAuth",
             created_by=U[0], created_at=ts(17), updated_at=ts(17)),
        dict(id=ids.ulid(millis(18)), tenant_id=T[0], mcp_server_id=servers[0]["id"], config_type="oauth", name="DeepWiki DCR",
             created_by=U[0], created_at=ts(18), updated_at=ts(18)),
        dict(id=ids.ulid(millis(19)), tenant_id=T[1], mcp_server_id=servers[2]["id"], config_type="oauth", name="GitHub app",
             created_by=U[2], created_at=ts(19), updated_at=ts(19)),
        dict(id=ids.ulid(millis(20)), tenant_id=T[1], mcp_server_id=servers[2]["id"], config_type="header", name="GitHub PAT",
             created_by=U[2], created_at=ts(20), updated_at=ts(20)),
    ]
    config_params = [dict(id=ids.ulid(millis(20, 11)), tenant_id=T[1], auth_config_id=configs[3]["id"], param_type="header",
                          param_key="Authorization", created_at=ts(20), updated_at=ts(20))]
    details = [
        dict(auth_config_id=configs[0]["id"], tenant_id=T[0], registration_type="pre_registered", client_id="notion-fixture-client",
             encrypted_client_secret=Secret("notion-secret-fixture-0001"), encrypted_registration_access_token=None,
             authorization_endpoint="https://api.notion.com/v1/oauth/authorize", token_endpoint="https://api.notion.com/v1/oauth/token",
             registration_endpoint=None, client_id_issued_at=None, token_endpoint_auth_method="client_secret_post",
             scopes=None, created_at=ts(17), updated_at=ts(17)),
        dict(auth_config_id=configs[1]["id"], tenant_id=T[0], registration_type="dynamic_registration",
             client_id="dcr-" + ids.uuid4(), encrypted_client_secret=Secret("dcr-secret-fixture-0002"),
             encrypted_registration_access_token=Secret("reg-access-token-fixture-0002", "v1"),
             authorization_endpoint="https://mcp.deepwiki.com/authorize", token_endpoint="https://mcp.deepwiki.com/token",
             registration_endpoint="https://mcp.deepwiki.com/register", client_id_issued_at=ts(18),
             token_endpoint_auth_method="client_secret_basic", scopes="openid offline_access", created_at=ts(18), updated_at=ts(18)),
        dict(auth_config_id=configs[2]["id"], tenant_id=T[1], registration_type="pre_registered", client_id="Iv1.fixture0003",
             encrypted_client_secret=None, encrypted_registration_access_token=None,
             authorization_endpoint="https://github.com/login/oauth/authorize", token_endpoint="https://github.com/login/oauth/access_token",
             registration_endpoint=None, client_id_issued_at=None, token_endpoint_auth_method="none", scopes="repo read:org",
             created_at=ts(19), updated_at=ts(19)),
    ]
    mcps = [
        dict(id=ids.ulid(millis(21)), tenant_id=T[0], user_id=U[0], mcp_server_id=servers[1]["id"], name="Notion", slug="notion",
             description=None, enabled=True, auth_type="oauth", created_at=ts(21), updated_at=ts(21), auth_config_id=configs[0]["id"]),
        dict(id=ids.ulid(millis(22)), tenant_id=T[0], user_id=U[1], mcp_server_id=servers[0]["id"], name="DeepWiki", slug="deepwiki",
             description="docs", enabled=True, auth_type="header", created_at=ts(22), updated_at=ts(22), auth_config_id=None),
        dict(id=ids.ulid(millis(23)), tenant_id=T[1], user_id=U[2], mcp_server_id=servers[2]["id"], name="GitHub", slug="github",
             description=None, enabled=True, auth_type="header", created_at=ts(23), updated_at=ts(23), auth_config_id=configs[3]["id"]),
        dict(id=ids.ulid(millis(24)), tenant_id=T[1], user_id=U[3], mcp_server_id=servers[2]["id"], name="GitHub (oauth)",
             slug="github-oauth", description=None, enabled=False, auth_type="oauth", created_at=ts(24), updated_at=ts(24),
             auth_config_id=configs[2]["id"]),
    ]
    params = [
        dict(id=ids.ulid(millis(22, 12)), tenant_id=T[0], mcp_id=mcps[1]["id"], param_type="header", param_key="X-Api-Key",
             encrypted_value=Secret("dw-fixture-header-0001", "v1"), created_at=ts(22), updated_at=ts(22)),
        dict(id=ids.ulid(millis(22, 13)), tenant_id=T[0], mcp_id=mcps[1]["id"], param_type="query", param_key="token",
             encrypted_value=Secret("dw-fixture-query-0002"), created_at=ts(22), updated_at=ts(22)),
        dict(id=ids.ulid(millis(23, 12)), tenant_id=T[1], mcp_id=mcps[2]["id"], param_type="header", param_key="Authorization",
             encrypted_value=Secret("Bearer ghp_fixture0003"), created_at=ts(23), updated_at=ts(23)),
    ]
    tokens = [
        dict(id=ids.ulid(millis(25)), tenant_id=T[0], mcp_id=mcps[0]["id"], auth_config_id=configs[0]["id"], user_id=U[0],
             encrypted_access_token=Secret("ntn_fixture_access_0001"), encrypted_refresh_token=Secret("ntn_fixture_refresh_0001"),
             scopes_granted=None, expires_at=ts(25, 11), created_at=ts(25), updated_at=ts(25)),
        dict(id=ids.ulid(millis(26)), tenant_id=T[0], mcp_id=None, auth_config_id=configs[1]["id"], user_id=U[1],
             encrypted_access_token=Secret("dw_fixture_access_0002", "v1"), encrypted_refresh_token=Secret("dw_fixture_refresh_0002", "v1"),
             scopes_granted="openid offline_access", expires_at=ts(26, 11), created_at=ts(26), updated_at=ts(26)),
        dict(id=ids.ulid(millis(27)), tenant_id=T[1], mcp_id=mcps[3]["id"], auth_config_id=configs[2]["id"], user_id=U[3],
             encrypted_access_token=Secret("gho_fixture_access_0003"), encrypted_refresh_token=None,
             scopes_granted="repo read:org", expires_at=None, created_at=ts(27), updated_at=ts(27)),
        dict(id=ids.ulid(millis(28)), tenant_id=T[0], mcp_id=mcps[0]["id"], auth_config_id=configs[0]["id"], user_id=U[1],
             encrypted_access_token=Secret(""), encrypted_refresh_token=None,
             scopes_granted=None, expires_at=ts(28, 11), created_at=ts(28), updated_at=ts(28)),
    ]
    data = {
        "tenants": tenants,
        "tenants_users": [dict(tenant_id=T[0], user_id=U[0], created_at=ts(4, 9, 5), updated_at=ts(4, 9, 5)),
                          dict(tenant_id=T[0], user_id=U[1], created_at=ts(4, 12), updated_at=ts(4, 12)),
                          dict(tenant_id=T[1], user_id=U[2], created_at=ts(5, 9, 5), updated_at=ts(5, 9, 5)),
                          dict(tenant_id=T[1], user_id=U[3], created_at=ts(5, 12), updated_at=ts(5, 12))],
        "settings": [dict(key="BODHI_EXEC_VARIANT", value="cpu", value_type="string", created_at=ts(4, 9), updated_at=ts(4, 9)),
                     dict(key="BODHI_KEEP_ALIVE_SECS", value="600", value_type="number", created_at=ts(4, 9), updated_at=ts(9))],
        "download_requests": [dict(id=ids.ulid(millis(6, 12)), tenant_id=T[0], repo="unsloth/gemma-3-4b-it-GGUF",
                                   filename="gemma-3-4b-it-Q4_K_M.gguf", status="completed", error=None, total_bytes=2489894016,
                                   downloaded_bytes=2489894016, started_at=ts(6, 12), created_at=ts(6, 12), updated_at=ts(6, 12, 30),
                                   archived_at=None)],
        "user_access_requests": [dict(id=ids.ulid(millis(5, 11)), tenant_id=T[1], username="researcher@example.invalid", user_id=U[3],
                                      reviewer=U[2], status="approved", created_at=ts(5, 11), updated_at=ts(5, 12))],
        "api_tokens": [dict(id=ids.ulid(millis(9, 14)), tenant_id=T[0], user_id=U[0], name="ci", token_prefix="bodhiapp_9fQ2xK1a",
                            token_hash=hashlib.sha256(b"fixture token 1").hexdigest(), scopes="scope_token_user", status="active",
                            created_at=ts(9, 14), updated_at=ts(9, 14),
                            grants='{"version":"1","list_models":true,"models":{"type":"all"},"list_mcps":true,"mcps":{"type":"all"}}',
                            last_used_at=ts(29, 8))],
        "user_aliases": [dict(id=ids.ulid(millis(6, 13)), tenant_id=T[0], user_id=U[0], alias="gemma3:4b", repo="unsloth/gemma-3-4b-it-GGUF",
                              filename="gemma-3-4b-it-Q4_K_M.gguf", snapshot="main", request_params='{"temperature":0.7}',
                              context_params='["--ctx-size","8192"]', created_at=ts(6, 13), updated_at=ts(6, 13))],
        "model_metadata": [dict(id=ids.ulid(millis(7, 11)), tenant_id=T[0], source="api", repo=None, filename=None, snapshot=None,
                                api_model_id="gpt-4o", capabilities='{"vision":true,"tools":true}', context='{"max_input_tokens":128000}',
                                architecture=None, additional_metadata=None, chat_template=None, extracted_at=ts(7, 11),
                                created_at=ts(7, 11), updated_at=ts(7, 11))],
        "app_access_requests": [dict(id=ids.ulid(millis(29)), tenant_id=T[0], app_client_id="app-fixture-client", app_name="Fixture App",
                                     app_description=None, status="approved", requested='{"version":"1"}', approved='{"version":"1"}',
                                     user_id=U[0], requested_role="scope_user_user", approved_role="scope_user_user",
                                     access_request_scope="scope_access_request:resource-fixture.01JFIXTURE", error_message=None,
                                     expires_at=ts(29, 11), created_at=ts(29), updated_at=ts(29, 10, 2), source_access_request_id=None)],
        "model_router_aliases": [dict(id=ids.ulid(millis(30)), tenant_id=T[0], user_id=U[0], alias="smart",
                                      targets='["openai/gpt-4o","claude/claude-sonnet-4-5"]', strategy='{"type":"fallback"}',
                                      created_at=ts(30), updated_at=ts(30))],
        "api_model_aliases": aliases,
        "api_model_oauth_credentials": oauth_creds,
        "mcp_servers": servers,
        "mcps": mcps,
        "mcp_auth_configs": configs,
        "mcp_auth_config_params": config_params,
        "mcp_oauth_config_details": details,
        "mcp_auth_params": params,
        "mcp_oauth_tokens": tokens,
    }
    return data


# Insertion order (foreign keys), sea-orm era.
SEA_TABLE_ORDER = ["tenants", "tenants_users", "settings", "download_requests", "user_access_requests", "api_tokens",
                   "user_aliases", "model_metadata", "app_access_requests", "model_router_aliases", "api_model_aliases",
                   "api_model_oauth_credentials", "mcp_servers", "mcp_auth_configs", "mcp_auth_config_params",
                   "mcp_oauth_config_details", "mcps", "mcp_auth_params", "mcp_oauth_tokens"]
SQLX_TABLE_ORDER = ["download_requests", "access_requests", "api_tokens", "api_model_aliases", "model_metadata", "toolsets",
                    "app_toolset_configs"]


def seal_rows(data, sealer, default_scheme, legacy=True):
    """Replaces every Secret with its three columns; returns {table: [row dicts]} (new dicts).
    A Secret's own scheme ("v1") marks a legacy value; with legacy=False every value uses default_scheme."""
    groups = {(g[0], g[1]): g for g in GROUPS}
    sealed = {}
    for table, rows in data.items():
        out = []
        for row in rows:
            new = {}
            for col, value in row.items():
                group = groups.get((table, col))
                if group:
                    _, ct, salt, nonce, _, _ = group
                    if value is None:
                        new.update({ct: None, salt: None, nonce: None})
                    else:
                        scheme = value.scheme if (legacy and value.scheme) else default_scheme
                        new.update(zip((ct, salt, nonce), sealer.seal(value.plaintext, scheme)))
                else:
                    new[col] = value
            out.append(new)
        sealed[table] = out
    return sealed


# ---------------------------------------------------------------------------------------------
# Statistics and digests (what manifest.json holds; scripts/peers/app_secrets_peer.py computes the same)

def open_value(master, kek_cache, ct, salt, nonce):
    salt_b, nonce_b = base64.b64decode(salt, validate=True), base64.b64decode(nonce, validate=True)
    if ct.startswith("v2:"):
        if "kek" not in kek_cache:
            kek_cache["kek"] = v2_kek(master)
        key, body = v2_row_key(kek_cache["kek"], salt_b), ct[3:]
    else:
        key, body = v1_row_key(master, salt_b), ct
    return AESGCM(key).decrypt(nonce_b, base64.b64decode(body, validate=True), None).decode()


def digest(records):
    return hashlib.sha256("".join(sorted(records)).encode()).hexdigest()


def manifest_for(sealed, master, groups_present):
    kek_cache, groups, all_records = {}, [], []
    for table, ct, salt, nonce, pk, nullable in GROUPS:
        if (table, ct) not in groups_present:
            continue
        rows = sealed.get(table, [])
        stats = dict(table=table, ciphertext=ct, salt=salt, nonce=nonce, primary_key=pk, nullable=nullable,
                     rows=len(rows), null=0, v1=0, v2=0)
        records = []
        for row in rows:
            if row[ct] is None:
                stats["null"] += 1
                continue
            stats["v2" if row[ct].startswith("v2:") else "v1"] += 1
            plaintext = open_value(master, kek_cache, row[ct], row[salt], row[nonce])
            records.append(f"{table}\t{row[pk]}\t{ct}\t{plaintext}\n")
        stats["plaintext_digest"] = digest(records)
        all_records += records
        groups.append(stats)
    return groups, digest(all_records)


# ---------------------------------------------------------------------------------------------
# Writers

def connect(path):
    if os.path.exists(path):
        os.remove(path)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = DELETE")
    return con


def sqlite_value(value):
    return int(value) if isinstance(value, bool) else value


def insert_sqlite(con, table, rows):
    for row in rows:
        cols = list(row)
        con.execute(f'INSERT INTO "{table}" (' + ", ".join(f'"{c}"' for c in cols) + ") VALUES (" +
                    ", ".join("?" for _ in cols) + ")", [sqlite_value(row[c]) for c in cols])


def pg_literal(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def build_sqlx(out_dir, ids_seed, seal_seed):
    con = connect(os.path.join(out_dir, "v0.0.45.db"))
    con.execute("BEGIN")
    con.execute(SQLX_SQLITE_LEDGER)
    for version, description, sql in SQLX_MIGRATIONS:
        for statement in split_sql(sql):
            con.execute(statement)
        con.execute("INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time)"
                    " VALUES (?, ?, ?, 1, ?, ?)",
                    (version, description, f"2026-01-26 09:00:0{version}", hashlib.sha384(sql.encode()).digest(),
                     1_200_000 + 137_000 * version))
    data = seal_rows(rows_sqlx(Ids(ids_seed)), Sealer(seal_seed), "v1")
    for table in SQLX_TABLE_ORDER:
        insert_sqlite(con, table, data[table])
    con.execute("COMMIT")
    con.close()
    return data


def split_sql(sql):
    """Statements of a migration file (no semicolons inside literals in these files)."""
    out = []
    for statement in sql.split(";"):
        body = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--")).strip()
        if body:
            out.append(statement.strip())
    return out


def build_sea_sqlite(path, sealed):
    con = connect(path)
    con.execute("BEGIN")
    con.execute(SEAQL_LEDGER["sqlite"])
    for (version, statements), applied in zip(sea_migrations("sqlite")[:SEA_ORM_SHIPPED], APPLIED_AT):
        for statement in statements:
            con.execute(statement)
        con.execute('INSERT INTO "seaql_migrations" ("version", "applied_at") VALUES (?, ?)', (version, applied))
    for table in SEA_TABLE_ORDER:
        insert_sqlite(con, table, sealed[table])
    con.execute("COMMIT")
    con.close()


def build_sea_postgres(path, sealed, title):
    lines = [f"-- {title}", "-- Built by scripts/build_app_fixtures.py; do not edit by hand.",
             "-- Load into an empty database as a role that may CREATE EXTENSION citext (e.g. the owner on PostgreSQL 13+,",
             "-- where citext is trusted) with psql -v ON_ERROR_STOP=1 -1 -f FILE.",
             "SET client_encoding = 'UTF8';", "SET standard_conforming_strings = on;",
             SEAQL_LEDGER["postgres"] + ";"]
    for (version, statements), applied in zip(sea_migrations("postgres")[:SEA_ORM_SHIPPED], APPLIED_AT):
        lines.append(f"-- {version}")
        lines += [s if s.endswith(";") else s + ";" for s in statements]
        lines.append(f"INSERT INTO \"seaql_migrations\" (\"version\", \"applied_at\") VALUES ('{version}', {applied});")
    lines.append("-- Rows, written per tenant as the application writes them (app.current_tenant_id set), so that a loading")
    lines.append("-- role subject to the forced row-level security passes the policies too.")
    tenants = [t["id"] for t in sealed["tenants"]]
    for table in ["tenants", "settings"]:
        for row in sealed[table]:
            lines.append(pg_insert(table, row))
    for tenant in tenants:
        rows = [(table, row) for table in SEA_TABLE_ORDER if table not in ("tenants", "settings")
                for row in sealed[table] if row.get("tenant_id") == tenant]
        if not rows:
            continue
        lines.append(f"SELECT set_config('app.current_tenant_id', '{tenant}', false);")
        lines += [pg_insert(table, row) for table, row in rows]
    lines.append("SELECT set_config('app.current_tenant_id', '', false);")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def pg_insert(table, row):
    cols = list(row)
    return f'INSERT INTO "{table}" (' + ", ".join(f'"{c}"' for c in cols) + ") VALUES (" + \
        ", ".join(pg_literal(row[c]) for c in cols) + ");"


def releases():
    sea = [v for v, _ in sea_migrations("sqlite")]
    first = {0: "v0.0.46", 1: "v0.0.46", 2: "v0.0.46", 3: "v0.0.46", 4: "v0.0.46", 5: "v0.0.46", 6: "v0.0.46",
             7: "v0.0.46", 8: "v0.0.46", 9: "v0.0.46", 10: "v0.0.46", 11: "v0.0.46", 12: "v0.0.46", 13: "v0.0.46",
             14: "v0.0.46", 16: "v0.0.47", 17: "v0.0.49", 21: "v0.0.53"}
    return {
        "sqlx": [{"version": v, "description": d, "first_release": None} for v, d in SQLX_ALL],
        "sea_orm": [{"version": v, "first_release": first.get(i)} for i, v in enumerate(sea)],
        "notes": [
            "Eras (app-secrets.md): sqlx ledger _sqlx_migrations in v0.0.40 - v0.0.45; sea-orm ledger seaql_migrations from v0.0.46; "
            "v0.0.58 and v0.0.59 both hold m20250101_000000 .. m20250101_000027 (28 rows); only the ciphertexts ('v2:' from v0.0.59, "
            "commit 773cd7d0) tell them apart. No code bridges a sqlx database to sea-orm.",
            "sqlx: the 14 migrations (0001-0014) the sea-orm switch (commit d49357535, plan dated 2026-02-27) replaced, descriptions "
            "as sqlx derives them from the file names. Which release first shipped each could not be established: the index holds no "
            "tags or commit dates. getbodhi.app/public/releases.json dates app/v0.0.45 to 2026-01-25T19:46:41Z; a later migration "
            "consolidation plan in the repository says 'Migrations 0001-0005 are released. Migrations 0006-0013 have never been "
            "released' (written after 2026-02-12), which contradicts app-secrets.md's toolsets (0007) in v0.0.44 - v0.0.45. "
            "0014_apps (commit 85b851a9, which removed secrets.yaml) and 0010-0013 (mcp, settings) are not in any sqlx release.",
            "sqlx: the files were rewritten in place several times (renumbering 0006-0013, 0004 api_models edited: provider -> "
            "api_format, optional key); the checksums written into v0.0.45.db are SHA-384 of the texts this script embeds (the "
            "stored copies; 0004 reconstructed from 0005's down migration), not necessarily a real installation's.",
            "sea_orm first_release: m000-m014 v0.0.46 (tenants, mcp_auth_headers and mcp_oauth_tokens in v0.0.46), m016 v0.0.47 "
            "(drops mcp_auth_headers/mcp_oauth_configs, creates mcp_oauth_config_details/mcp_auth_params), m017 v0.0.49 (toolsets "
            "last in v0.0.48), m021 v0.0.53 (api_model_oauth_credentials): derived from app-secrets.md's table eras, which its "
            "author read from the release tags; not re-checked against tags here. m015 is v0.0.46 or v0.0.47; m018-m020 between "
            "v0.0.49 and v0.0.53; m022-m027 between v0.0.53 and v0.0.58: null where not pinned.",
            "m20250101_000028_expire_stale_app_access_requests (data-only, no DDL) is not in v0.0.58: its own test migrates 28 "
            "migrations before it. app-secrets.md says v0.0.59 has the same 28; its first release is not known.",
            "Migration numbering was changed during development before release (e.g. m20250101_000007_user_aliases, "
            "m20250101_000012_settings, m20250101_000014_rls existed in earlier commits); the list here is the final one "
            "(mod.rs after m020 plus files m021-m028).",
        ],
    }


def build(out_dir):
    os.makedirs(os.path.join(out_dir, "postgres"), exist_ok=True)
    with open(os.path.join(out_dir, "master.key"), "w", encoding="ascii", newline="\n") as f:
        f.write(b64(MASTER_KEY) + "\n")

    manifest = {
        "master_key_file": "master.key",
        "master_key_sha256": hashlib.sha256(MASTER_KEY).hexdigest(),
        "digest": "sha256 hex over the UTF-8 of the sorted records 'table\\tprimary-key\\tciphertext-column\\tplaintext\\n' of "
                  "every non-NULL group (secrets file: 'secrets.yaml\\t\\tkey\\tvalue\\n')",
        "databases": {},
    }

    # The sqlx era.
    sqlx_rows = build_sqlx(out_dir, SEED + 1, SEED + 2)
    groups, total = manifest_for(sqlx_rows, MASTER_KEY, {("api_model_aliases", "encrypted_api_key"), ("toolsets", "encrypted_api_key")})
    manifest["databases"]["v0.0.45.db"] = {
        "engine": "sqlite", "release": "v0.0.45", "ledger": "_sqlx_migrations",
        "ledger_versions": [v for v, _, _ in SQLX_MIGRATIONS], "groups": groups, "plaintext_digest": total}

    sealer = Sealer(SEED + 3)
    secrets = {"app_reg_info": "client_id: resource-7f8c3a52-0c1e-4d0b-9a51-3e2f6b1d4c88\n"
                               "client_secret: kc-fixture-secret-Zr4t9Qw2\n",
               "app_status": "ready"}
    text = secrets_file_text(MASTER_KEY, sealer.bytes(32), sealer.bytes(12), secrets)
    with open(os.path.join(out_dir, "secrets.yaml"), "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    manifest["secrets_file"] = {"path": "secrets.yaml", "era": "v0.0.40 - v0.0.45", "keys": sorted(secrets),
                                "digest": digest(f"secrets.yaml\t\t{k}\t{v}\n" for k, v in secrets.items())}

    # The sea-orm era: one set of rows, sealed per scheme.
    present = {(g[0], g[1]) for g in GROUPS if g[0] != "toolsets"}
    for release, scheme, seed in (("v0.0.58", "v1", SEED + 4), ("v0.0.59", "v2", SEED + 5)):
        sealed = seal_rows(rows_sea(Ids(SEED + 10)), Sealer(seed), scheme, legacy=(scheme == "v2"))
        build_sea_sqlite(os.path.join(out_dir, f"{release}.db"), sealed)
        build_sea_postgres(os.path.join(out_dir, "postgres", f"{release}.sql"), sealed,
                           f"BodhiApp {release}: the sea-orm schema of 28 migrations, rows in scheme {scheme}"
                           + (" (a few legacy v1 values outside tenants)" if scheme == "v2" else "") + ".")
        groups, total = manifest_for(sealed, MASTER_KEY, present)
        entry = {"release": release, "ledger": "seaql_migrations",
                 "ledger_versions": [v for v, _ in sea_migrations("sqlite")[:SEA_ORM_SHIPPED]],
                 "groups": groups, "plaintext_digest": total}
        manifest["databases"][f"{release}.db"] = dict(engine="sqlite", **entry)
        manifest["databases"][f"postgres/{release}.sql"] = dict(engine="postgres", **entry)

    with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(out_dir, "releases.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(releases(), f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--self-check":
        self_check()
    else:
        self_check()
        build(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fixtures", "app-eras"))
