#!/usr/bin/env python3
"""The peer for toolcfg's CSV import benchmark: what an operator would script in an afternoon.
Python's csv module + sqlite3 executemany doing the same upsert in one transaction.

  bench_import_peer.py DB CSV
"""
import csv
import sqlite3
import sys


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            yield (r["user_id"], r["tool_id"], int(r["enabled"]), r["encrypted_api_key"] or None,
                   r["salt"] or None, r["nonce"] or None, int(r["created_at"]), int(r["updated_at"]))


def main():
    db, path = sys.argv[1], sys.argv[2]
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("BEGIN IMMEDIATE")
    con.executemany(
        """INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(user_id, tool_id) DO UPDATE SET enabled = excluded.enabled,
             encrypted_api_key = excluded.encrypted_api_key, salt = excluded.salt, nonce = excluded.nonce,
             updated_at = excluded.updated_at""",
        rows(path))
    con.execute("COMMIT")
    con.close()


if __name__ == "__main__":
    main()
