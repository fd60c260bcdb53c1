#!/usr/bin/env python3
"""A stand-in for the application in a Docker installation, for the scheduled-rotation test.

Like the application it takes its master key from BODHI_ENCRYPTION_KEY, read from an env file at
start (key = SHA-256 of the text's UTF-8), and keeps it until it is restarted. While it runs it
writes every 20 ms through its own SQLite connection (5 s busy timeout, as sqlx): it stores a new
API key for one of 20 users in user_tool_configs, encrypted under its key in scheme v1 (PBKDF2
1000, AES-256-GCM, fresh salt and nonce), as the application stores secrets.

  stand_in_app.py start   DB ENV_FILE STATE_DIR   start it in the background (pid in STATE_DIR)
  stand_in_app.py stop    DB ENV_FILE STATE_DIR   stop it; its writes are counted in STATE_DIR/writes
  stand_in_app.py restart DB ENV_FILE STATE_DIR   stop, then start: what recreating the container does
"""
import base64
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def key_from(env_file):
    for line in open(env_file, encoding="utf-8").read().splitlines():
        if line.startswith("BODHI_ENCRYPTION_KEY="):
            return hashlib.sha256(line.split("=", 1)[1].encode()).digest()
    sys.exit(f"stand_in_app: no BODHI_ENCRYPTION_KEY in {env_file}")


def run(db, env_file, state):
    key = key_from(env_file)
    connection = sqlite3.connect(db, timeout=5.0, isolation_level=None)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    # A parent that blocks SIGTERM (a test runner's threads may) passes its mask on through exec.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    writes = 0
    while not stopping:
        salt, nonce = os.urandom(32), os.urandom(12)
        row_key = hashlib.pbkdf2_hmac("sha256", key, salt, 1000, 32)
        sealed = AESGCM(row_key).encrypt(nonce, f"sk-app-{writes}".encode(), None)
        now = int(time.time())
        connection.execute(
            "INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)"
            " VALUES (?, 'app-tool', 1, ?, ?, ?, ?, ?) ON CONFLICT (user_id, tool_id) DO UPDATE SET"
            " encrypted_api_key = excluded.encrypted_api_key, salt = excluded.salt, nonce = excluded.nonce, updated_at = excluded.updated_at",
            (f"app-user-{writes % 20}", *(base64.b64encode(part).decode() for part in (sealed, salt, nonce)), now, now))
        writes += 1
        time.sleep(0.02)
    with open(os.path.join(state, "writes"), "a") as log:
        log.write(f"{writes}\n")


def start(db, env_file, state):
    # Its own session and none of the caller's streams: a caller reading a pipe to its end (the
    # test reading the rotation script's output) must not wait for this process to end.
    with open(os.path.join(state, "log"), "a") as log:
        child = subprocess.Popen([sys.executable, __file__, "run", db, env_file, state], start_new_session=True,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    with open(os.path.join(state, "pid"), "w") as file:
        file.write(str(child.pid))
    time.sleep(0.2)  # up and writing, as a container that reports healthy


def stop(state):
    path = os.path.join(state, "pid")
    if not os.path.exists(path):
        return
    pid = int(open(path).read())
    os.remove(path)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(500):  # it ends after its current write
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)


def main():
    command, db, env_file, state = sys.argv[1:5]
    if command == "run":
        run(db, env_file, state)
    elif command == "start":
        start(db, env_file, state)
    elif command == "stop":
        stop(state)
    elif command == "restart":
        stop(state)
        start(db, env_file, state)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
