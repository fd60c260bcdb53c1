#!/usr/bin/env python3
"""The peer for toolcfg's rotation benchmark: the same rotation as an operator would script it
with Python's sqlite3 and `cryptography`, in one transaction. Also builds the benchmark database.

  bench_rotation_peer.py make DB ROWS MASTER_KEY_FILE    # rows in user_tool_configs, keys encrypted
  bench_rotation_peer.py rotate DB OLD_KEY_FILE NEW_KEY_FILE
"""
import base64
import os
import sqlite3
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC


def key(path):
    return base64.b64decode(open(path).read().strip(), validate=True)


def row_key(master, salt):
    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=1000).derive(master)


def encrypt(master, plaintext):
    salt, nonce = os.urandom(32), os.urandom(12)
    sealed = AESGCM(row_key(master, salt)).encrypt(nonce, plaintext, None)
    return base64.b64encode(sealed).decode(), base64.b64encode(salt).decode(), base64.b64encode(nonce).decode()


def make(db, rows, master_path):
    master = key(master_path)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)"
        " VALUES (?, ?, 1, ?, ?, ?, 1700000000, 1700000000)",
        ((f"user-{i}", f"tool-{i % 10}", *encrypt(master, f"sk-{i:08d}-{'x' * 24}".encode())) for i in range(rows)))
    con.execute("COMMIT")


def rotate(db, old_path, new_path):
    old, new = key(old_path), key(new_path)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA synchronous = FULL")
    con.execute("BEGIN IMMEDIATE")
    rows = con.execute("SELECT id, encrypted_api_key, salt, nonce FROM user_tool_configs WHERE encrypted_api_key IS NOT NULL").fetchall()
    for row_id, sealed, salt, nonce in rows:
        plaintext = AESGCM(row_key(old, base64.b64decode(salt))).decrypt(base64.b64decode(nonce), base64.b64decode(sealed), None)
        con.execute("UPDATE user_tool_configs SET encrypted_api_key = ?, salt = ?, nonce = ? WHERE id = ?",
                    (*encrypt(new, plaintext), row_id))
    con.execute("COMMIT")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        rotate(sys.argv[2], sys.argv[3], sys.argv[4])
