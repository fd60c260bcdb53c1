#!/usr/bin/env python3
"""The peer for toolcfg's rotation benchmark on PostgreSQL (scripts/bench.sh rotation-postgres):
the rotation an operator would script with psycopg 3 and `cryptography`, in one transaction, with
the stored-secret format of scripts/bench/bench_rotation_peer.py (PBKDF2-HMAC-SHA256, 1000 iterations,
AES-256-GCM, base64). Also fills the benchmark's table, and checks a rotation's result on its own.

  bench_rotation_peer_pg.py make URL ROWS MASTER_KEY_FILE     # ROWS keyed rows in user_tool_configs
  bench_rotation_peer_pg.py rotate URL OLD_KEY_FILE NEW_KEY_FILE
  bench_rotation_peer_pg.py check URL MASTER_KEY_FILE         # every triple of every table opens

`check` finds every table with the columns encrypted_api_key, salt and nonce through the catalog,
decrypts each row's triple (on all cores) and prints one JSON line, {"ok": true, "rows": N,
"failed": 0, "tables": {"schema.table": rows}, "salts_reused": 0, "nonces_reused": 0}; a row that
does not open (or holds part of a triple, or a salt not of 32 bytes or a nonce not of 12) is named
on standard error by table and primary key, and the exit status is 1. It refuses (exit 2) when
row-level security would hide rows from the connecting role, since it would then check a subset.
"""
import base64
import binascii
import json
import multiprocessing
import sys

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import sql

from bench_rotation_peer import encrypt, key, row_key

# Distinct triples that `make` derives, then repeats over the rows: a million distinct PBKDF2
# derivations in Python take minutes, and a rotation does the same work per row either way (each
# row is decrypted and re-encrypted on its own).
DISTINCT_TRIPLES = 1000


def make(url, rows, master_path):
    master = key(master_path)
    triples = [encrypt(master, f"sk-{i:08d}-{'x' * 24}".encode()) for i in range(min(rows, DISTINCT_TRIPLES))]
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy("COPY user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)"
                         " FROM STDIN") as copy:
            # Text format, written in blocks: base64 and these ids need no escaping.
            block = []
            for i in range(rows):
                sealed, salt, nonce = triples[i % len(triples)]
                block.append(f"user-{i}\ttool-{i % 10}\t{'t' if i % 2 else 'f'}\t{sealed}\t{salt}\t{nonce}\t1700000000\t1700000000\n")
                if len(block) == 10000:
                    copy.write("".join(block))
                    block = []
            copy.write("".join(block))


def rotate(url, old_path, new_path):
    old, new = key(old_path), key(new_path)
    with psycopg.connect(url) as connection, connection.transaction(), connection.cursor() as cursor:
        rows = cursor.execute("SELECT id, encrypted_api_key, salt, nonce FROM user_tool_configs"
                              " WHERE encrypted_api_key IS NOT NULL FOR UPDATE").fetchall()
        updates = []
        for row_id, sealed, salt, nonce in rows:
            plaintext = AESGCM(row_key(old, base64.b64decode(salt))).decrypt(base64.b64decode(nonce), base64.b64decode(sealed), None)
            updates.append((*encrypt(new, plaintext), row_id))
        cursor.executemany("UPDATE user_tool_configs SET encrypted_api_key = %s, salt = %s, nonce = %s WHERE id = %s", updates)


def tables_with_triple(connection):
    """(schema, table, primary-key columns, row-level security on) of every ordinary or
    partitioned table that has the three columns; not temporary tables (another session's, such
    as a rotation's staging table, cannot be read)."""
    return connection.execute("""
        SELECT n.nspname, c.relname,
               coalesce((SELECT array_agg(a.attname ORDER BY k.ordinality)
                           FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, ordinality), pg_attribute a
                          WHERE i.indrelid = c.oid AND i.indisprimary AND a.attrelid = c.oid AND a.attnum = k.attnum), '{}'),
               c.relrowsecurity
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence <> 't'
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
           AND (SELECT count(*) FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attname IN ('encrypted_api_key', 'salt', 'nonce')) = 3
         ORDER BY 1, 2""").fetchall()


def b64(text):
    return base64.b64decode(text, validate=True)


def open_rows(master, rows):
    """The (row, reason) of each row of `rows` (row, sealed, salt, nonce) whose triple does not open."""
    failures = []
    for row, sealed, salt, nonce in rows:
        if sealed is None or salt is None or nonce is None:
            failures.append((row, "part of the triple is NULL"))
            continue
        try:
            salt, nonce = b64(salt), b64(nonce)
            if (len(salt), len(nonce)) != (32, 12):
                failures.append((row, f"a {len(salt)}-byte salt and {len(nonce)}-byte nonce (32 and 12 wanted)"))
                continue
            AESGCM(row_key(master, salt)).decrypt(nonce, b64(sealed), None)
        except binascii.Error:
            failures.append((row, "a column is not base64"))
        except InvalidTag:
            failures.append((row, "does not authenticate under the key (wrong key, or altered)"))
    return failures


def reused(values):
    """How many of the non-NULL values repeat an earlier one."""
    present = [value for value in values if value is not None]
    return len(present) - len(set(present))


def check(url, master_path):
    master = key(master_path)
    rows_by_table = {}
    with psycopg.connect(url) as connection:
        bypasses = connection.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        tables = tables_with_triple(connection)
        hidden = [f"{schema}.{table}" for schema, table, _, rls in tables if rls and not bypasses]
        if hidden:
            print(f"check: row-level security may hide rows of {', '.join(hidden)} from role "
                  f"{connection.info.user}; connect as a superuser or a role with BYPASSRLS", file=sys.stderr)
            return 2
        for schema, table, key_columns, _ in tables:
            row = (sql.SQL("concat_ws(',', {})").format(sql.SQL(", ").join(map(sql.Identifier, key_columns)))
                   if key_columns else sql.SQL("ctid::text"))
            rows_by_table[(f"{schema}.{table}", ",".join(key_columns) or "ctid")] = connection.execute(sql.SQL(
                "SELECT {}, encrypted_api_key, salt, nonce FROM {} WHERE num_nonnulls(encrypted_api_key, salt, nonce) > 0").format(
                    row, sql.Identifier(schema, table))).fetchall()
    failed = 0
    with multiprocessing.Pool() as pool:
        for (name, key_columns), rows in rows_by_table.items():
            chunks = [(master, rows[i:i + 2000]) for i in range(0, len(rows), 2000)]
            for chunk_failures in pool.starmap(open_rows, chunks):
                for row, reason in chunk_failures:
                    print(f"check: {name} row {key_columns}={row} does not open: {reason}", file=sys.stderr)
                failed += len(chunk_failures)
    every = [row for rows in rows_by_table.values() for row in rows]
    print(json.dumps({"ok": failed == 0, "rows": len(every), "failed": failed,
                      "tables": {name: len(rows) for (name, _), rows in rows_by_table.items()},
                      # Rows whose salt or nonce another row (of any table) holds too: fresh ones never repeat.
                      "salts_reused": reused(row[2] for row in every), "nonces_reused": reused(row[3] for row in every)}))
    return 1 if failed else 0


def main():
    modes = {"make": 3, "rotate": 3, "check": 2}
    if len(sys.argv) < 2 or modes.get(sys.argv[1]) != len(sys.argv) - 2:
        print(__doc__, file=sys.stderr)
        return 64
    mode, url, *rest = sys.argv[1:]
    if mode == "make":
        make(url, int(rest[0]), rest[1])
    elif mode == "rotate":
        rotate(url, *rest)
    else:
        return check(url, rest[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
