#!/usr/bin/env python3
"""An independent implementation of the stored-secret format (Python 'cryptography' over OpenSSL),
used by the test suite to check toolcfg both ways, as the owning application (not Swift) would.

  crypto_peer.py encrypt   stdin: {"master_key": b64, "plaintexts": [str]}   stdout: [{"encrypted_api_key","salt","nonce"}]
  crypto_peer.py decrypt   stdin: {"master_key": b64, "secrets": [triple]}    stdout: [str]
  crypto_peer.py pbkdf2    stdin: {"password": b64, "salt": b64, "iterations": n, "length": n}  stdout: hex
  crypto_peer.py argon2id  stdin: {"passphrase": b64, "salt": b64, "memory_kib", "iterations", "lanes", "length"}  stdout: hex
"""
import base64
import json
import os
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC


def row_key(master: bytes, salt: bytes) -> bytes:
    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=1000).derive(master)


def encrypt(master: bytes, plaintext: str) -> dict:
    salt, nonce = os.urandom(32), os.urandom(12)
    sealed = AESGCM(row_key(master, salt)).encrypt(nonce, plaintext.encode("utf-8"), None)
    b64 = lambda b: base64.b64encode(b).decode("ascii")
    return {"encrypted_api_key": b64(sealed), "salt": b64(salt), "nonce": b64(nonce)}


def decrypt(master: bytes, secret: dict) -> str:
    d = lambda k: base64.b64decode(secret[k], validate=True)
    return AESGCM(row_key(master, d("salt"))).decrypt(d("nonce"), d("encrypted_api_key"), None).decode("utf-8")


def main() -> None:
    mode = sys.argv[1]
    request = json.load(sys.stdin)
    if mode == "encrypt":
        master = base64.b64decode(request["master_key"], validate=True)
        result = [encrypt(master, p) for p in request["plaintexts"]]
    elif mode == "decrypt":
        master = base64.b64decode(request["master_key"], validate=True)
        result = [decrypt(master, s) for s in request["secrets"]]
    elif mode == "pbkdf2":
        kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=request["length"],
                         salt=base64.b64decode(request["salt"]), iterations=request["iterations"])
        result = kdf.derive(base64.b64decode(request["password"])).hex()
    elif mode == "argon2id":
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
        kdf = Argon2id(salt=base64.b64decode(request["salt"]), length=request["length"],
                       iterations=request["iterations"], lanes=request["lanes"],
                       memory_cost=request["memory_kib"])
        result = kdf.derive(base64.b64decode(request["passphrase"])).hex()
    else:
        sys.exit(f"unknown mode {mode}")
    json.dump(result, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
