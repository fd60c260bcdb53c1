#!/usr/bin/env python3
"""The live application for the `live` benchmark (scripts/bench.sh live): what toolcfg runs beside.

Like an sqlx-sqlite service it writes through its own connection with a 5 s busy timeout
(sqlx-sqlite's default, set the same way: sqlite3_busy_timeout, SQLite's sleeping handler), one
short autocommit write every 20 ms: 40 % flip a user_tool_configs row's `enabled` (and touch its
updated_at), 10 % insert a user_tool_configs row without a key, the rest insert into a table of its
own. A write that waits past the timeout fails with "database is locked", as the application's
request would. On SIGTERM or SIGINT it prints one JSON line: writes, failures, and the writes'
durations (p50, p99, max, in seconds), each duration being the time the application waited.

  bench_live_app.py DB [--interval SECONDS] [--timeout SECONDS]
"""
import argparse
import json
import random
import signal
import sqlite3
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()

    connection = sqlite3.connect(args.db, timeout=args.timeout, isolation_level=None)
    connection.execute("CREATE TABLE IF NOT EXISTS bench_app_events (id INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL)")
    max_id = connection.execute("SELECT max(id) FROM user_tool_configs").fetchone()[0] or 1

    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    print("ready", file=sys.stderr, flush=True)

    durations, failures, kinds = [], [], {"flip": 0, "insert_config": 0, "event": 0}
    inserted = 0
    deadline = time.monotonic()
    while not stopping:
        choice = random.random()
        started = time.monotonic()
        try:
            if choice < 0.4:
                kind = "flip"
                connection.execute("UPDATE user_tool_configs SET enabled = 1 - enabled, updated_at = updated_at + 1 WHERE id = ?",
                                   (random.randint(1, max_id),))
            elif choice < 0.5:
                kind = "insert_config"
                inserted += 1
                now = int(time.time())
                connection.execute("INSERT INTO user_tool_configs (user_id, tool_id, enabled, created_at, updated_at) VALUES (?, 'bench-app', 0, ?, ?)",
                                   ("bench-app-%d-%d" % (now, inserted), now, now))
            else:
                kind = "event"
                connection.execute("INSERT INTO bench_app_events (at, kind) VALUES (?, 'request')", (time.time(),))
            durations.append(time.monotonic() - started)
            kinds[kind] += 1
        except sqlite3.OperationalError as error:
            failures.append({"after_seconds": round(time.monotonic() - started, 3), "error": str(error)})
        deadline += args.interval
        pause = deadline - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            deadline = time.monotonic()

    durations.sort()

    def quantile(q):
        return round(durations[min(len(durations) - 1, int(q * len(durations)))], 4) if durations else None

    print(json.dumps({
        "writes": len(durations), "failures": len(failures), "failed": failures[:5], "kinds": kinds,
        "wait_p50_seconds": quantile(0.5), "wait_p99_seconds": quantile(0.99),
        "wait_max_seconds": round(durations[-1], 4) if durations else None,
    }), flush=True)


if __name__ == "__main__":
    main()
