#!/usr/bin/env python3
"""Builds the database of the v2 rotation benchmark (scripts/bench.sh rotation-v2): ROWS values in
scheme v2 spread over three column groups of two tables, as an installation of the application's
v0.0.59 keeps them: user_tool_configs (encrypted_api_key / salt / nonce, half the values) and
mcp_oauth_tokens (the access and the refresh token, a quarter of the rows each holding both).
Every value is one valid v2 triple (made here with Python's cryptography under KEY_FILE's key):
a rotation does the same work for each, and the build takes seconds, not minutes.

  bench_v2_database.py sqlite DB ROWS KEY_FILE     # a migrated SQLite database
  bench_v2_database.py postgres URL ROWS KEY_FILE  # a migrated PostgreSQL database
"""
import base64
import os
import subprocess
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC


def v2_triple(master: bytes) -> tuple:
    kek = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=b"bodhiapp:kek:v2", iterations=600_000).derive(master)
    salt, nonce = os.urandom(32), os.urandom(12)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"bodhiapp:row:v2").derive(kek)
    sealed = AESGCM(key).encrypt(nonce, b"sk-bench-key-0123456789abcdef", None)
    b64 = lambda b: base64.b64encode(b).decode("ascii")
    return "v2:" + b64(sealed), b64(salt), b64(nonce)


def main() -> None:
    engine, target, rows, key_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    master = base64.b64decode(open(key_file).read().strip(), validate=True)
    ct, salt, nonce = ("'%s'" % v for v in v2_triple(master))
    configs, tokens = rows // 2, rows // 4
    text_type = "TEXT" if engine == "sqlite" else "text"
    sql = f"""
        CREATE TABLE mcp_oauth_tokens (id {text_type} PRIMARY KEY, mcp_server_id {text_type} NOT NULL,
            encrypted_access_token {text_type} NOT NULL, access_token_salt {text_type} NOT NULL, access_token_nonce {text_type} NOT NULL,
            encrypted_refresh_token {text_type}, refresh_token_salt {text_type}, refresh_token_nonce {text_type},
            created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
    """
    if engine == "sqlite":
        sql += f"""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {configs})
        INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
        SELECT 'user-' || i, 'tool-' || (i % 10), i % 2, {ct}, {salt}, {nonce}, 1700000000, 1700000000 FROM n;
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {tokens})
        INSERT INTO mcp_oauth_tokens SELECT printf('tok-%08d', i), 'server-' || (i % 7), {ct}, {salt}, {nonce}, {ct}, {salt}, {nonce},
            1700000000, 1700000000 FROM n;
        """
        subprocess.run(["sqlite3", target], input=sql, text=True, check=True)
    else:
        sql += f"""
        INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
        SELECT 'user-' || i, 'tool-' || (i % 10), i % 2 = 0, {ct}, {salt}, {nonce}, 1700000000, 1700000000 FROM generate_series(1, {configs}) i;
        INSERT INTO mcp_oauth_tokens SELECT 'tok-' || lpad(i::text, 8, '0'), 'server-' || (i % 7), {ct}, {salt}, {nonce}, {ct}, {salt}, {nonce},
            1700000000, 1700000000 FROM generate_series(1, {tokens}) i;
        VACUUM ANALYZE;
        """
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", target], input=sql, text=True, check=True)


if __name__ == "__main__":
    main()
