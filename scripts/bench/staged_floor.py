#!/usr/bin/env python3
"""The I/O floor of a rotation that keeps the write lock short, as SQL for the engine's own shell.

    staged_floor.py sqlite > floor.sql
    staged_floor.py postgres STAGE_FILE > floor.sql

`rotation-v2` in scripts/bench.sh times this beside toolcfg and the one-UPDATE peer. It does what
toolcfg's rotation must do with every value, with no cryptography at all (the new triple is a
fixed value of the same length, as in the UPDATE peer):

1. the snapshot: every value of every group read out of the table and staged beside its new
   triple, with no lock the application waits for (SQLite: a private temporary database; on
   PostgreSQL the values leave the server and come back, as toolcfg's do, through
   `\\copy ... TO STAGE_FILE` and `\\copy ... FROM STAGE_FILE` into a temporary table keyed by
   the table's key);
2. the write phase: one transaction, each group's UPDATE from its stage with the compare-and-swap
   on the old triple (SQLite: a correlated UPDATE from the staging table; PostgreSQL: UPDATE ...
   FROM with hash joins off), committed durably (SQLite: synchronous=FULL);
3. the read-back: every staged row compared with what was committed.

What toolcfg takes beyond this floor is its own work (deriving keys, AES-GCM, base64, moving rows
between threads); what the floor takes beyond the one UPDATE is the design's (reading and writing
every value twice before the lock, and reading it once more after the commit). On SQLite the floor
stages in a table, as toolcfg did until it moved its stage to a file read by C functions in step
with the UPDATE (which the sqlite3 shell cannot run): there the floor is the table stage's cost,
and toolcfg's write phase is now shorter than the floor's. PostgreSQL's floor writes one group at
a time, where toolcfg writes a table's groups in one UPDATE.
"""
import sys

# The groups of scripts/bench/bench_v2_database.py: table, key, ciphertext, salt, nonce.
GROUPS = [
    ("user_tool_configs", "id", "encrypted_api_key", "salt", "nonce"),
    ("mcp_oauth_tokens", "id", "encrypted_access_token", "access_token_salt", "access_token_nonce"),
    ("mcp_oauth_tokens", "id", "encrypted_refresh_token", "refresh_token_salt", "refresh_token_nonce"),
]
# PostgreSQL's type of each table's key, which the stage's key takes (as toolcfg's does).
KEY_TYPES = {"user_tool_configs": "BIGINT", "mcp_oauth_tokens": "TEXT"}
# The UPDATE peer's fixed values: a v2 ciphertext of a 22-byte key, a 32-byte salt, a 12-byte nonce.
FIXED = ("'v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='",
         "'BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB='", "'CCCCCCCCCCCCCCCC'")
STAGE_COLUMNS = ("rotate {boolean} NOT NULL, old_key TEXT, old_salt TEXT, old_nonce TEXT, "
                 "new_key TEXT NOT NULL, new_salt TEXT NOT NULL, new_nonce TEXT NOT NULL")


def sqlite() -> str:
    lines = ["PRAGMA journal_mode = WAL;", "ATTACH '' AS scratch;", "BEGIN;"]
    for index, (table, _, secret, salt, nonce) in enumerate(GROUPS):
        lines.append(f"CREATE TABLE scratch.s{index} (rid INTEGER PRIMARY KEY, {STAGE_COLUMNS.format(boolean='INTEGER')});")
        lines.append(f"INSERT INTO scratch.s{index} SELECT rowid, 1, {secret}, {salt}, {nonce}, {', '.join(FIXED)} "
                     f"FROM {table} WHERE {secret} IS NOT NULL ORDER BY rowid;")
    lines += ["COMMIT;", "PRAGMA synchronous = FULL;", "BEGIN IMMEDIATE;"]
    for index, (table, _, secret, salt, nonce) in enumerate(GROUPS):
        lines.append(
            f"UPDATE {table} AS t SET ({secret}, {salt}, {nonce}) = "
            f"(SELECT s.new_key, s.new_salt, s.new_nonce FROM scratch.s{index} AS s WHERE s.rid = t.rowid) "
            f"WHERE EXISTS (SELECT 1 FROM scratch.s{index} AS s WHERE s.rid = t.rowid AND s.rotate = 1 "
            f"AND s.old_key = t.{secret} AND s.old_salt = t.{salt} AND s.old_nonce = t.{nonce});")
    lines.append("COMMIT;")
    lines += [readback(table, "rowid", f"scratch.s{index}", "rid", secret, salt, nonce)
              for index, (table, _, secret, salt, nonce) in enumerate(GROUPS)]
    return "\n".join(lines) + "\n"


def postgres(stage_file: str) -> str:
    lines = ["\\set ON_ERROR_STOP 1", "SET client_min_messages = warning;"]
    for index, (table, key, secret, salt, nonce) in enumerate(GROUPS):
        lines.append(f"CREATE TEMP TABLE s{index} (k {KEY_TYPES[table]} PRIMARY KEY, {STAGE_COLUMNS.format(boolean='BOOLEAN')});")
    lines.append("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;")
    for index, (table, key, secret, salt, nonce) in enumerate(GROUPS):
        lines.append(f"\\copy (SELECT {key}, true, {secret}, {salt}, {nonce}, {', '.join(FIXED)} FROM {table} "
                     f"WHERE {secret} IS NOT NULL ORDER BY {key}) TO '{stage_file}.{index}'")
    lines.append("COMMIT;")
    lines += [f"\\copy s{index} FROM '{stage_file}.{index}'" for index in range(len(GROUPS))]
    lines += ["BEGIN;", "SET LOCAL enable_hashjoin = off;"]
    for index, (table, key, secret, salt, nonce) in enumerate(GROUPS):
        lines.append(
            f"UPDATE {table} AS t SET {secret} = s.new_key, {salt} = s.new_salt, {nonce} = s.new_nonce FROM s{index} AS s "
            f"WHERE s.rotate AND t.{key} = s.k AND t.{secret} = s.old_key AND t.{salt} = s.old_salt AND t.{nonce} = s.old_nonce;")
    lines.append("COMMIT;")
    lines += [readback(table, key, f"s{index}", "k", secret, salt, nonce)
              for index, (table, key, secret, salt, nonce) in enumerate(GROUPS)]
    return "\n".join(lines) + "\n"


def readback(table: str, key: str, stage: str, stage_key: str, secret: str, salt: str, nonce: str) -> str:
    """How many of the stage's rows the table holds as staged, read through the stage's key."""
    return (f"SELECT count(*) FROM {table} AS t JOIN {stage} AS s ON s.{stage_key} = t.{key} "
            f"WHERE t.{secret} = s.new_key AND t.{salt} = s.new_salt AND t.{nonce} = s.new_nonce;")


if __name__ == "__main__":
    if sys.argv[1:2] == ["sqlite"] and len(sys.argv) == 2:
        sys.stdout.write(sqlite())
    elif sys.argv[1:2] == ["postgres"] and len(sys.argv) == 3:
        sys.stdout.write(postgres(sys.argv[2]))
    else:
        sys.exit(__doc__.split("\n\n")[1])
