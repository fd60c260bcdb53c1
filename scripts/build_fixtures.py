#!/usr/bin/env python3
"""Rebuilds the committed fixture databases of fixtures/ deterministically: fixed SQL, a
fixed seed for every "random" salt and nonce, fixed timestamps. `toolcfg migrate verify --fixtures
fixtures` runs every migration forwards and back on each of them, and a test checks that
the committed files hold exactly what this script builds (schema and rows).

  scripts/build_fixtures.py [OUT_DIR]          # default fixtures/
  scripts/build_fixtures.py --large N OUT.db   # a large pre-0007 database for timing (not committed)

Each fixture is a state a real installation can be in:
  empty.db                 a new file, nothing in it
  app-before-0007.db       the application's own tables before 0007, with data: api_model_aliases
                           with encrypted keys, and a sqlx ledger with versions 1..6
  app-after-0007.db        the same after 0007, with user_tool_configs rows (keys encrypted)
  app-after-0007-extras.db the same with a user-created index and view on user_tool_configs

and the same states for PostgreSQL in OUT_DIR/postgres/*.sql: scripts that build each in an empty
database (PostgreSQL's types, sqlx's PostgreSQL ledger, migrations/postgres/0007 as sqlx applies it,
the same rows and keys). `toolcfg migrate verify --fixtures fixtures/postgres --server URL` loads
each into a scratch database. Their extras fixture has the index but no view: PostgreSQL refuses to
drop a table a view depends on, so 0007's down fails there (a test shows it).
"""
import base64
import hashlib
import os
import random
import sqlite3
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 20261126
# The fixtures' master key (a test key, public on purpose): base64 of bytes 0..31.
MASTER_KEY = bytes(range(32))

APP_SCHEMA = """
CREATE TABLE api_model_aliases (
    id TEXT PRIMARY KEY,
    api_format TEXT NOT NULL DEFAULT 'openai',
    base_url TEXT NOT NULL,
    models_json TEXT NOT NULL,
    prefix TEXT,
    encrypted_api_key TEXT NOT NULL,
    salt TEXT NOT NULL,
    nonce TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE app_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE downloads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    filename TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'error')),
    created_at INTEGER NOT NULL
);
CREATE INDEX idx_downloads_status ON downloads(status);
"""

LEDGER_SQL = """
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);
"""

APP_MIGRATIONS = ["init", "app settings", "downloads", "api model aliases", "alias prefix", "download status"]


class Deterministic:
    def __init__(self, seed):
        self.random = random.Random(seed)

    def bytes(self, n):
        return bytes(self.random.getrandbits(8) for _ in range(n))

    def encrypt(self, plaintext):
        salt, nonce = self.bytes(32), self.bytes(12)
        key = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=1000).derive(MASTER_KEY)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), None)
        return tuple(base64.b64encode(x).decode() for x in (sealed, salt, nonce))


def connect(path):
    if os.path.exists(path):
        os.remove(path)
    con = sqlite3.connect(path, isolation_level=None)
    # Fixtures are committed: a rollback journal leaves no -wal/-shm files beside them.
    con.execute("PRAGMA journal_mode = DELETE")
    return con


def application(con, rng, aliases=3):
    con.executescript(LEDGER_SQL + APP_SCHEMA)
    for index, description in enumerate(APP_MIGRATIONS, start=1):
        con.execute("INSERT INTO _sqlx_migrations VALUES (?, ?, ?, 1, ?, ?)",
                    (index, description, f"2025-01-0{index} 10:00:00",
                     hashlib.sha384(f"-- application migration {index}: {description}\n".encode()).digest(), 1_000_000 + index))
    for index in range(1, aliases + 1):
        con.execute("INSERT INTO api_model_aliases VALUES (?, 'openai', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (f"alias-{index}", f"https://api{index}.example.invalid/v1", '["model-a","model-b"]',
                     None if index % 2 else f"p{index}/", *rng.encrypt(f"sk-alias-{index:04d}"), 1_735_000_000 + index, 1_735_000_000 + index))
    con.executemany("INSERT INTO app_settings VALUES (?, ?, 1735000000)", [("theme", "dark"), ("port", "1135")])
    con.executemany("INSERT INTO downloads (repo, filename, status, created_at) VALUES (?, ?, ?, 1735000000)",
                    [("org/model", "model.gguf", "completed"), ("org/other", "other.gguf", "pending")])


def migrate_0007(con):
    """Applies migrations/0007 as sqlx does: the script and its ledger row in one transaction."""
    path = os.path.join(ROOT, "migrations", "0007_tools_config.up.sql")
    sql = open(path, "rb").read()
    con.execute("BEGIN")
    for statement in sql.decode().split(";"):
        if statement.strip() and not all(line.strip().startswith("--") or not line.strip() for line in statement.splitlines()):
            con.execute(statement)
    con.execute("INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time)"
                " VALUES (7, 'tools config', '2025-02-01 10:00:00', 1, ?, 2000000)", (hashlib.sha384(sql).digest(),))
    con.execute("COMMIT")


def tool_rows(con, rng, count=6):
    for index in range(1, count + 1):
        key = rng.encrypt(f"exa_fixture_{index:04d}") if index % 3 else (None, None, None)
        con.execute("INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (f"user-{(index + 1) // 2}", "builtin-exa-web-search" if index % 2 else "builtin-weather",
                     index % 2, *key, 1_738_000_000 + index, 1_738_000_100 + index))


def build(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    connect(os.path.join(out_dir, "empty.db")).close()

    con = connect(os.path.join(out_dir, "app-before-0007.db"))
    application(con, Deterministic(SEED))
    con.close()

    con = connect(os.path.join(out_dir, "app-after-0007.db"))
    rng = Deterministic(SEED)
    application(con, rng)
    migrate_0007(con)
    tool_rows(con, rng)
    con.close()

    con = connect(os.path.join(out_dir, "app-after-0007-extras.db"))
    rng = Deterministic(SEED)
    application(con, rng)
    migrate_0007(con)
    tool_rows(con, rng)
    con.executescript("""
        CREATE INDEX idx_user_tool_configs_updated ON user_tool_configs(updated_at);
        CREATE VIEW enabled_tools AS SELECT user_id, tool_id FROM user_tool_configs WHERE enabled = 1;
    """)
    con.close()

    build_postgres(os.path.join(out_dir, "postgres"))


# PostgreSQL: the same application tables in PostgreSQL's types, and sqlx-postgres's ledger.
PG_LEDGER_SQL = """CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);
"""

PG_APP_SCHEMA = """CREATE TABLE api_model_aliases (
    id TEXT PRIMARY KEY,
    api_format TEXT NOT NULL DEFAULT 'openai',
    base_url TEXT NOT NULL,
    models_json TEXT NOT NULL,
    prefix TEXT,
    encrypted_api_key TEXT NOT NULL,
    salt TEXT NOT NULL,
    nonce TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE app_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE downloads (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    repo TEXT NOT NULL,
    filename TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'error')),
    created_at BIGINT NOT NULL
);
CREATE INDEX idx_downloads_status ON downloads(status);
"""


def pg_literal(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "'\\x" + value.hex() + "'"
    return "'" + value.replace("'", "''") + "'"


def pg_insert(table, columns, rows):
    return "".join(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(pg_literal(v) for v in row)});\n" for row in rows)


def pg_application(rng, aliases=3):
    """The application before 0007, as SQL: what application() builds in SQLite."""
    sql = PG_LEDGER_SQL + PG_APP_SCHEMA
    sql += pg_insert("_sqlx_migrations", ["version", "description", "installed_on", "success", "checksum", "execution_time"], [
        (index, description, f"2025-01-0{index} 10:00:00+00", True,
         hashlib.sha384(f"-- application migration {index}: {description}\n".encode()).digest(), 1_000_000 + index)
        for index, description in enumerate(APP_MIGRATIONS, start=1)])
    sql += pg_insert("api_model_aliases", ["id", "api_format", "base_url", "models_json", "prefix", "encrypted_api_key", "salt",
                                           "nonce", "created_at", "updated_at"], [
        (f"alias-{index}", "openai", f"https://api{index}.example.invalid/v1", '["model-a","model-b"]',
         None if index % 2 else f"p{index}/", *rng.encrypt(f"sk-alias-{index:04d}"), 1_735_000_000 + index, 1_735_000_000 + index)
        for index in range(1, aliases + 1)])
    sql += pg_insert("app_settings", ["key", "value", "updated_at"], [("theme", "dark", 1735000000), ("port", "1135", 1735000000)])
    sql += pg_insert("downloads", ["repo", "filename", "status", "created_at"], [
        ("org/model", "model.gguf", "completed", 1735000000), ("org/other", "other.gguf", "pending", 1735000000)])
    return sql


def pg_migrate_0007_with_rows(rng, count=6):
    """migrations/postgres/0007 as sqlx applies it (its script, then its ledger row), and tool_rows()."""
    up = open(os.path.join(ROOT, "migrations", "postgres", "0007_tools_config.up.sql"), "rb").read()
    sql = up.decode() + "\n"
    sql += pg_insert("_sqlx_migrations", ["version", "description", "installed_on", "success", "checksum", "execution_time"],
                     [(7, "tools config", "2025-02-01 10:00:00+00", True, hashlib.sha384(up).digest(), 2000000)])
    rows = []
    for index in range(1, count + 1):
        key = rng.encrypt(f"exa_fixture_{index:04d}") if index % 3 else (None, None, None)
        rows.append((f"user-{(index + 1) // 2}", "builtin-exa-web-search" if index % 2 else "builtin-weather",
                     index % 2 == 1, *key, 1_738_000_000 + index, 1_738_000_100 + index))
    sql += pg_insert("user_tool_configs", ["user_id", "tool_id", "enabled", "encrypted_api_key", "salt", "nonce", "created_at",
                                           "updated_at"], rows)
    return sql


def write_pg(out_dir, name, description, sql):
    with open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="\n") as f:
        f.write(f"-- {description}\n-- Built by scripts/build_fixtures.py; do not edit by hand.\n" + sql)


def build_postgres(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    write_pg(out_dir, "empty.sql", "A new, empty database.", "")
    write_pg(out_dir, "app-before-0007.sql", "The application's tables before 0007, with data and a sqlx ledger of versions 1 to 6.",
             pg_application(Deterministic(SEED)))
    rng = Deterministic(SEED)
    after = pg_application(rng) + pg_migrate_0007_with_rows(rng)
    write_pg(out_dir, "app-after-0007.sql", "The same after 0007, with user_tool_configs rows.", after)
    write_pg(out_dir, "app-after-0007-extras.sql", "The same with a user-created index on user_tool_configs.",
             after + "CREATE INDEX idx_user_tool_configs_updated ON user_tool_configs(updated_at);\n")


def build_large(rows, path):
    con = connect(path)
    application(con, Deterministic(SEED), aliases=rows)
    con.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--large":
        build_large(int(sys.argv[2]), sys.argv[3])
    else:
        build(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fixtures"))
