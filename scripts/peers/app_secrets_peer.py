#!/usr/bin/env python3
"""An independent checker of the application's stored secrets: opens every non-NULL column group of
every secret table a database has, in the scheme each value is in, and prints one JSON object.
It shares no code with toolcfg (Swift) or with scripts/build_app_fixtures.py.

  scripts/peers/app_secrets_peer.py --db PATH_OR_URL --key-env NAME [--secrets-file PATH] [--groups JSON_FILE]
  scripts/peers/app_secrets_peer.py --self-test [--vectors-dir DIR]

--db       an SQLite file, or a postgres:// / postgresql:// URL (psycopg 3, connecting as given)
--key-env  the name of an environment variable holding the master key: standard base64 of 32 bytes
--groups   a JSON list of extra groups [{"table", "ciphertext", "salt", "nonce"}] (optional "primary_key")

Schemes (BodhiApp crates/services/src/db/encryption.rs): a value is v2 exactly when its ciphertext
column starts with "v2:".
  v1: row key = PBKDF2-HMAC-SHA256(master, row salt, 1000, 32)
  v2: KEK = PBKDF2-HMAC-SHA256(master, "bodhiapp:kek:v2", 600000, 32), once; row key =
      HKDF-SHA256(salt = row salt, ikm = KEK, info = "bodhiapp:row:v2", 32)
  both: AES-256-GCM, 12-byte nonce, no associated data, ciphertext||tag; columns standard base64.
secrets.yaml (v0.0.45 and before): YAML {salt, nonce, data}; key PBKDF2(master, salt, 1000); data =
AES-256-GCM of the YAML of a string map.

Output, per group: table, ciphertext, rows, null (all three columns NULL), v1, v2, failed (present but
would not open), half_null (one or two of the three NULL), and a plaintext digest; over all groups the
same digest as fixtures/app-eras/manifest.json: sha256 hex over the UTF-8 of the sorted records
"table\\tprimary-key-value\\tciphertext-column\\tplaintext\\n". With --secrets-file also the file's map
digest (records "secrets.yaml\\t\\tkey\\tvalue\\n") and whether it opened.

Exit 0 when every value opened (no failure, no half-NULL group, the secrets file opened when given,
every table of a group read), 1 otherwise; --self-test exits 0 when the shared vectors pass.

On PostgreSQL the application forces row-level security on its tenant tables. A role that is a
superuser or has BYPASSRLS reads every row; any other role is read once per tenant id of `tenants`
(app.current_tenant_id set, as the application does) and the report says so ("rls": "per-tenant"),
since rows of a tenant id missing from `tenants` stay invisible to it.
"""
import argparse
import base64
import binascii
import hashlib
import json
import os
import sqlite3
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

# The known map: (table, ciphertext, salt, nonce, primary key).
KNOWN_GROUPS = [
    ("api_model_aliases", "encrypted_api_key", "salt", "nonce", "id"),
    ("toolsets", "encrypted_api_key", "salt", "nonce", "id"),
    ("tenants", "encrypted_client_secret", "salt_client_secret", "nonce_client_secret", "id"),
    ("mcp_oauth_tokens", "encrypted_access_token", "access_token_salt", "access_token_nonce", "id"),
    ("mcp_oauth_tokens", "encrypted_refresh_token", "refresh_token_salt", "refresh_token_nonce", "id"),
    ("mcp_oauth_config_details", "encrypted_client_secret", "client_secret_salt", "client_secret_nonce", "auth_config_id"),
    ("mcp_oauth_config_details", "encrypted_registration_access_token", "registration_access_token_salt",
     "registration_access_token_nonce", "auth_config_id"),
    ("mcp_auth_params", "encrypted_value", "value_salt", "value_nonce", "id"),
    ("api_model_oauth_credentials", "encrypted_access_token", "access_salt", "access_nonce", "api_alias_id"),
    ("api_model_oauth_credentials", "encrypted_refresh_token", "refresh_salt", "refresh_nonce", "api_alias_id"),
    # v0.0.46 only (dropped by m20250101_000016), and toolcfg's own table.
    ("mcp_auth_headers", "encrypted_header_value", "header_value_salt", "header_value_nonce", "id"),
    ("mcp_oauth_configs", "encrypted_client_secret", "client_secret_salt", "client_secret_nonce", "id"),
    ("mcp_oauth_configs", "encrypted_registration_access_token", "registration_access_token_salt",
     "registration_access_token_nonce", "id"),
    ("user_tool_configs", "encrypted_api_key", "salt", "nonce", "id"),
]

KEK_SALT, ROW_INFO, V2 = b"bodhiapp:kek:v2", b"bodhiapp:row:v2", "v2:"


class Keys:
    def __init__(self, master):
        self.master = master
        self._kek = None

    @property
    def kek(self):
        if self._kek is None:
            self._kek = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=KEK_SALT, iterations=600_000).derive(self.master)
        return self._kek

    def v1(self, salt):
        return PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=1000).derive(self.master)

    def v2(self, salt):
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=ROW_INFO).derive(self.kek)


class OpenError(Exception):
    pass


def strict_b64(text, what):
    if not isinstance(text, str):
        raise OpenError(f"{what} is not text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise OpenError(f"{what} is not standard base64")


def open_value(keys, ciphertext, salt, nonce):
    """(scheme, plaintext) or OpenError."""
    scheme, body = ("v2", ciphertext[len(V2):]) if ciphertext.startswith(V2) else ("v1", ciphertext)
    salt_b, nonce_b = strict_b64(salt, "salt"), strict_b64(nonce, "nonce")
    sealed = strict_b64(body, "ciphertext")
    if len(nonce_b) != 12:
        raise OpenError(f"nonce of {len(nonce_b)} bytes")
    if len(sealed) < 16:
        raise OpenError("ciphertext shorter than the tag")
    key = keys.v2(salt_b) if scheme == "v2" else keys.v1(salt_b)
    try:
        plain = AESGCM(key).decrypt(nonce_b, sealed, None)
    except InvalidTag:
        raise OpenError("authentication failed (wrong key, or altered)")
    try:
        return scheme, plain.decode("utf-8")
    except UnicodeDecodeError:
        raise OpenError("plaintext is not UTF-8")


def digest(records):
    return hashlib.sha256("".join(sorted(records)).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Databases

class SQLiteSource:
    engine = "sqlite"

    def __init__(self, path):
        if not os.path.exists(path):
            raise SystemExit(f"app_secrets_peer: no such database file: {path}")
        self.con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self.rls = {}

    def tables(self):
        return {r[0] for r in self.con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def columns(self, table):
        return [r[1] for r in self.con.execute(f'PRAGMA table_info("{table}")')]

    def primary_key(self, table):
        pk = sorted((r[5], r[1]) for r in self.con.execute(f'PRAGMA table_info("{table}")') if r[5])
        return [name for _, name in pk] or ["rowid"]

    def rows(self, table, columns):
        sql = "SELECT " + ", ".join(quote(c) for c in columns) + f" FROM {quote(table)}"
        return [tuple(r) for r in self.con.execute(sql)]

    def ledger(self):
        tables = self.tables()
        if "seaql_migrations" in tables:
            return {"table": "seaql_migrations", "versions": [r[0] for r in self.con.execute(
                "SELECT version FROM seaql_migrations ORDER BY version")]}
        if "_sqlx_migrations" in tables:
            return {"table": "_sqlx_migrations", "versions": [r[0] for r in self.con.execute(
                "SELECT version FROM _sqlx_migrations ORDER BY version")]}
        return None


class PostgresSource:
    engine = "postgres"

    def __init__(self, url):
        try:
            import psycopg
        except ImportError:
            raise SystemExit("app_secrets_peer: psycopg 3 is needed for PostgreSQL (pip install 'psycopg[binary]')")
        self.con = psycopg.connect(url, autocommit=True)
        row = self.con.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
        self.bypass = bool(row and row[0])
        self.rls = {}
        self._tenants = None

    def tables(self):
        return {r[0] for r in self.con.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()")}

    def columns(self, table):
        return [r[0] for r in self.con.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum", (quote(table),))]

    def primary_key(self, table):
        rows = self.con.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
            (quote(table),)).fetchall()
        return [r[0] for r in rows] or ["ctid"]

    def tenant_ids(self):
        if self._tenants is None:
            self._tenants = []
            if "tenants" in self.tables():
                self._tenants = [r[0] for r in self.con.execute("SELECT id FROM tenants ORDER BY id")]
        return self._tenants

    def rows(self, table, columns):
        sql = "SELECT " + ", ".join(quote(c) for c in columns) + f" FROM {quote(table)}"
        row = self.con.execute("SELECT relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner) = current_user "
                               "FROM pg_class WHERE oid = to_regclass(%s)", (quote(table),)).fetchone()
        enabled, forced, owner = row
        if not enabled or self.bypass or (owner and not forced):
            self.rls[table] = "bypassed" if enabled else "not-enabled"
            return [tuple(r) for r in self.con.execute(sql)]
        # Subject to the policies: read as each tenant, the way the application does.
        self.rls[table] = "per-tenant"
        seen = {}
        for tenant in [""] + self.tenant_ids():
            with self.con.transaction():
                self.con.execute("SELECT set_config('app.current_tenant_id', %s, true)", (tenant,))
                for r in self.con.execute(sql):
                    seen[tuple(r)] = None
        return list(seen)

    def ledger(self):
        tables = self.tables()
        for name in ("seaql_migrations", "_sqlx_migrations"):
            if name in tables:
                return {"table": name, "versions": [r[0] for r in self.con.execute(f"SELECT version FROM {name} ORDER BY version")]}
        return None


def quote(name):
    return '"' + name.replace('"', '""') + '"'


def check_database(source, keys, extra_groups):
    groups = [dict(table=t, ciphertext=c, salt=s, nonce=n, primary_key=pk) for t, c, s, n, pk in KNOWN_GROUPS]
    known = {(g["table"], g["ciphertext"]) for g in groups}
    for g in extra_groups:
        if (g["table"], g["ciphertext"]) not in known:
            groups.append(dict(g))
    tables = source.tables()
    report, all_records, ok = [], [], True
    for g in groups:
        table = g["table"]
        if table not in tables:
            continue
        columns = source.columns(table)
        wanted = [g["ciphertext"], g["salt"], g["nonce"]]
        missing = [c for c in wanted if c not in columns]
        if len(missing) == 3 and (table, g["ciphertext"]) in known and table != "user_tool_configs":
            continue  # a same-named table of another shape: not this group
        entry = dict(table=table, ciphertext=g["ciphertext"], salt=g["salt"], nonce=g["nonce"], rows=0, null=0, v1=0, v2=0,
                     failed=0, half_null=0)
        if missing:
            entry["error"] = "missing columns: " + ", ".join(missing)
            ok = False
            report.append(entry)
            continue
        pk = [g["primary_key"]] if g.get("primary_key") in columns else source.primary_key(table)
        entry["primary_key"] = ",".join(pk)
        try:
            rows = source.rows(table, pk + wanted)
        except Exception as error:  # noqa: BLE001 - reported, not hidden
            entry["error"] = f"could not read: {error}"
            ok = False
            report.append(entry)
            continue
        records, failures = [], []
        for row in rows:
            key = ",".join("" if v is None else str(v) for v in row[:len(pk)])
            ct, salt, nonce = row[len(pk):]
            entry["rows"] += 1
            nulls = [v is None for v in (ct, salt, nonce)]
            if all(nulls):
                entry["null"] += 1
                continue
            if any(nulls):
                entry["half_null"] += 1
                failures.append({"primary_key": key, "error": "part of the group is NULL"})
                continue
            try:
                scheme, plaintext = open_value(keys, ct, salt, nonce)
            except OpenError as error:
                entry["failed"] += 1
                failures.append({"primary_key": key, "error": str(error)})
                continue
            entry[scheme] += 1
            records.append(f"{table}\t{key}\t{g['ciphertext']}\t{plaintext}\n")
        entry["plaintext_digest"] = digest(records)
        if table in source.rls:
            entry["rls"] = source.rls[table]
        if failures:
            entry["failures"] = failures[:20]
            ok = False
        all_records += records
        report.append(entry)
    return report, digest(all_records), ok


def check_secrets_file(path, keys):
    import yaml
    result = {"path": path, "opened": False}
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        doc = yaml.safe_load(text)
        if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in ("salt", "nonce", "data")):
            raise OpenError("not a mapping of salt, nonce and data")
        salt, nonce, data = (strict_b64(doc[k], k) for k in ("salt", "nonce", "data"))
        if len(nonce) != 12:
            raise OpenError(f"nonce of {len(nonce)} bytes")
        try:
            plain = AESGCM(keys.v1(salt)).decrypt(nonce, data, None)
        except InvalidTag:
            raise OpenError("authentication failed (wrong key, or altered)")
        secrets = yaml.safe_load(plain.decode("utf-8"))
        if secrets is None:
            secrets = {}
        if not isinstance(secrets, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in secrets.items()):
            raise OpenError("the decrypted YAML is not a map of strings")
        result.update(opened=True, keys=sorted(secrets),
                      digest=digest(f"secrets.yaml\t\t{k}\t{v}\n" for k, v in secrets.items()))
    except (OSError, UnicodeDecodeError, OpenError, yaml.YAMLError) as error:
        result["error"] = str(error)
    return result


# ---------------------------------------------------------------------------------------------
# Self-test against the shared vectors

def self_test(vectors_dir):
    import yaml
    results, ok = [], True

    def check(name, condition):
        nonlocal ok
        results.append({"check": name, "ok": bool(condition)})
        ok = ok and bool(condition)

    v1 = json.load(open(os.path.join(vectors_dir, "bodhi-crypto-vectors.json"), encoding="utf-8"))
    for i, v in enumerate(v1["vectors"]):
        keys = Keys(base64.b64decode(v["master_key"]))
        check(f"v1[{i}] row key", keys.v1(base64.b64decode(v["salt"])).hex() == v["derived_key_hex"])
        try:
            scheme, plain = open_value(keys, v["encrypted_api_key"], v["salt"], v["nonce"])
            check(f"v1[{i}] opens", scheme == "v1" and plain == v["plaintext"])
        except OpenError:
            check(f"v1[{i}] opens", False)
        wrong = Keys(bytes(32))
        try:
            open_value(wrong, v["encrypted_api_key"], v["salt"], v["nonce"])
            check(f"v1[{i}] refuses a wrong key", False)
        except OpenError:
            check(f"v1[{i}] refuses a wrong key", True)
    v2 = json.load(open(os.path.join(vectors_dir, "bodhi-crypto-v2-vectors.json"), encoding="utf-8"))
    for i, v in enumerate(v2["v2"]["vectors"]):
        keys = Keys(base64.b64decode(v["master_key"]))
        check(f"v2[{i}] KEK", keys.kek.hex() == v["kek_hex"])
        check(f"v2[{i}] row key", keys.v2(base64.b64decode(v["salt"])).hex() == v["row_key_hex"])
        try:
            scheme, plain = open_value(keys, v["encrypted_value"], v["salt"], v["nonce"])
            check(f"v2[{i}] opens", scheme == "v2" and plain == v["plaintext"])
        except OpenError:
            check(f"v2[{i}] opens", False)
        try:  # the same bytes without the prefix are a v1 value: they must not open
            open_value(keys, v["encrypted_value"][3:], v["salt"], v["nonce"])
            check(f"v2[{i}] without 'v2:' does not open as v1", False)
        except OpenError:
            check(f"v2[{i}] without 'v2:' does not open as v1", True)
    for i, v in enumerate(v2["text_keys"]["vectors"]):
        check(f"text key[{i}]", base64.b64encode(hashlib.sha256(v["text"].encode()).digest()).decode() == v["master_key"])
    sf = v2["secrets_file"]
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as f:
        f.write(sf["file"])
    try:
        opened = check_secrets_file(f.name, Keys(base64.b64decode(sf["master_key"])))
    finally:
        os.unlink(f.name)
    check("secrets_file opens", opened["opened"])
    check("secrets_file map", opened.get("digest") == digest(f"secrets.yaml\t\t{k}\t{v}\n" for k, v in sf["secrets"].items()))
    print(json.dumps({"self_test": results, "ok": ok}, indent=1))
    return 0 if ok else 1


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db")
    parser.add_argument("--key-env")
    parser.add_argument("--secrets-file")
    parser.add_argument("--groups")
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("--vectors-dir", default=os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(here))), "shared", "vectors"))
    args = parser.parse_args()
    if args.self_test:
        return self_test(args.vectors_dir)
    if not args.db or not args.key_env:
        parser.error("--db and --key-env are required (or --self-test)")
    text = os.environ.get(args.key_env)
    if text is None:
        parser.error(f"the environment variable {args.key_env} is not set")
    try:
        master = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        parser.error(f"{args.key_env} is not standard base64")
    if len(master) != 32:
        parser.error(f"{args.key_env} holds {len(master)} bytes, not 32")
    extra = []
    if args.groups:
        extra = json.load(open(args.groups, encoding="utf-8"))
        if not isinstance(extra, list) or not all(isinstance(g, dict) and all(isinstance(g.get(k), str) for k in
                                                  ("table", "ciphertext", "salt", "nonce")) for g in extra):
            parser.error("--groups: a JSON list of {table, ciphertext, salt, nonce}")
    keys = Keys(master)
    source = PostgresSource(args.db) if args.db.startswith(("postgres://", "postgresql://")) else SQLiteSource(args.db)
    groups, total, ok = check_database(source, keys, extra)
    out = {"database": args.db if source.engine == "sqlite" else "(postgresql url)", "engine": source.engine,
           "master_key_sha256": hashlib.sha256(master).hexdigest(), "ledger": source.ledger(), "groups": groups,
           "plaintext_digest": total}
    if source.engine == "postgres":
        out["rls_bypass"] = source.bypass
    if args.secrets_file:
        out["secrets_file"] = check_secrets_file(args.secrets_file, keys)
        ok = ok and out["secrets_file"]["opened"]
    out["ok"] = ok
    print(json.dumps(out, indent=1, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
