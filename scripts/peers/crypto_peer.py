#!/usr/bin/env python3
"""An independent implementation of the stored-secret format (Python 'cryptography' over OpenSSL),
used by the test suite to check toolcfg both ways, as the owning application (not Swift) would.

  crypto_peer.py encrypt   stdin: {"master_key": b64, "plaintexts": [str], "scheme"?: "v1"|"v2"}   stdout: [{"encrypted_api_key","salt","nonce"}]
  crypto_peer.py decrypt   stdin: {"master_key": b64, "secrets": [triple]}    stdout: [str]  (each triple in its scheme: v2 when "v2:")
  crypto_peer.py v2cases   stdin: {"count": n}   stdout: [{"master_key","plaintext","salt","nonce","encrypted_value","kek_hex","row_key_hex"}]
                           random v2 vectors made here, for the Swift side to reproduce exactly
  crypto_peer.py pbkdf2    stdin: {"password": b64, "salt": b64, "iterations": n, "length": n}  stdout: hex
  crypto_peer.py argon2id  stdin: {"passphrase": b64, "salt": b64, "memory_kib", "iterations", "lanes", "length"}  stdout: hex
"""
import base64
import json
import os
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

KEKS = {}


def kek(master: bytes) -> bytes:
    """Scheme v2's key-encryption key (application v0.0.59, encryption.rs), once per master key."""
    if master not in KEKS:
        KEKS[master] = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=b"bodhiapp:kek:v2", iterations=600_000).derive(master)
    return KEKS[master]


def row_key(master: bytes, salt: bytes, scheme: str = "v1") -> bytes:
    if scheme == "v2":
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"bodhiapp:row:v2").derive(kek(master))
    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=1000).derive(master)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encrypt(master: bytes, plaintext: str, scheme: str = "v1") -> dict:
    salt, nonce = os.urandom(32), os.urandom(12)
    sealed = AESGCM(row_key(master, salt, scheme)).encrypt(nonce, plaintext.encode("utf-8"), None)
    return {"encrypted_api_key": ("v2:" if scheme == "v2" else "") + b64(sealed), "salt": b64(salt), "nonce": b64(nonce)}


def decrypt(master: bytes, secret: dict) -> str:
    ciphertext = secret["encrypted_api_key"]
    scheme = "v2" if ciphertext.startswith("v2:") else "v1"
    d = lambda text: base64.b64decode(text, validate=True)
    return AESGCM(row_key(master, d(secret["salt"]), scheme)).decrypt(
        d(secret["nonce"]), d(ciphertext[3:] if scheme == "v2" else ciphertext), None).decode("utf-8")


def v2_case(plaintext: str) -> dict:
    master, salt, nonce = os.urandom(32), os.urandom(32), os.urandom(12)
    key = row_key(master, salt, "v2")
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), None)
    return {"master_key": b64(master), "plaintext": plaintext, "salt": b64(salt), "nonce": b64(nonce),
            "encrypted_value": "v2:" + b64(sealed), "kek_hex": kek(master).hex(), "row_key_hex": key.hex()}


def main() -> None:
    mode = sys.argv[1]
    request = json.load(sys.stdin)
    if mode == "encrypt":
        master = base64.b64decode(request["master_key"], validate=True)
        result = [encrypt(master, p, request.get("scheme", "v1")) for p in request["plaintexts"]]
    elif mode == "decrypt":
        master = base64.b64decode(request["master_key"], validate=True)
        result = [decrypt(master, s) for s in request["secrets"]]
    elif mode == "v2cases":
        texts = ["sk-" + os.urandom(12).hex(), "", "clé 🔑 \"quoted\", with\nnewline", "x" * 1000]
        result = [v2_case(texts[i % len(texts)]) for i in range(request["count"])]
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
