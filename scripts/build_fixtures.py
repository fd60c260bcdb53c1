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


def build_large(rows, path):
    con = connect(path)
    application(con, Deterministic(SEED), aliases=rows)
    con.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--large":
        build_large(int(sys.argv[2]), sys.argv[3])
    else:
        build(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fixtures"))
