#!/usr/bin/env python3
"""PostgreSQL faults under toolcfg's write paths: the server killed, or toolcfg's session ended.

  scripts/ci/pg_faults.py TOOLCFG [TRIALS]     (TRIALS per fault and command; default 20)

Starts a throwaway cluster of its own (scripts/pg.sh, in a new folder; stopped however the run
ends), then for each fault and each command, TRIALS times, on a fresh copy of a prepared database:
starts the command, waits a random moment within the command's own duration (measured first on an
untouched copy), and injects the fault:

  terminate  pg_terminate_backend() of every session toolcfg holds (what an administrator or a
             connection pooler's timeout does; the session's socket is closed under it)
  crash      pg_ctl stop -m immediate, then start again on the same port (a server that dies)

The commands: rotate, rotate --make-room, import (plaintext keys into an empty table) and
migrate up (on an empty database). After each trial:

  - toolcfg ended 0 (the fault came after it finished, or hit nothing it needed) or 75 with what to
    do ("run the same command again"), or 66 when the server was down as it connected (it began
    nothing); never another status, never a crash;
  - nothing is half-written: every secret opens under one key, the old or the new (rotate); the
    table holds every imported row or none (import); the ledger is whole (migrate status);
  - the same command run again ends 0 and leaves the finished state.

Prints a table of outcomes per fault and command, and exits 1 on any violation. scripts/test.sh
runs it with 5 trials in CI; the long form is the default 20.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

ROWS = int(os.environ.get("PG_FAULTS_ROWS", "6000"))
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Cluster:
    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="toolcfg-pg-faults.")
        os.rmdir(self.folder)  # pg.sh makes it, 0700, with its marker
        self.env = dict(os.environ, TOOLCFG_PG_DIR=self.folder)
        self.url = self.pg("start")

    def pg(self, command):
        result = subprocess.run(["bash", os.path.join(REPOSITORY, "scripts/pg.sh"), command], env=self.env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"pg_faults: scripts/pg.sh {command} failed: {result.stderr}")
        return result.stdout.strip()

    def database_url(self, name):
        return self.url.replace("/toolcfg?", f"/{name}?")

    def admin(self):
        return psycopg.connect(self.database_url("postgres"), autocommit=True)

    def copy(self, template, name):
        with self.admin() as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            connection.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.database_url(name)

    def crash_and_restart(self):
        self.pg("crash")
        self.pg("start")

    def terminate(self, database):
        with self.admin() as connection:
            return connection.execute(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND application_name = 'toolcfg') ended", (database,)).fetchone()[0]

    def stop(self):
        self.pg("stop")


class Run:
    def __init__(self, toolcfg, folder):
        self.toolcfg = toolcfg
        self.folder = folder
        self.old_key = self.keygen("old.key")
        self.new_key = self.keygen("new.key")
        self.csv = os.path.join(folder, "rows.csv")
        with open(self.csv, "w") as out:
            out.write("user_id,tool_id,api_key\n")
            for row in range(ROWS):
                out.write(f"user-{row},tool-{row % 7},sk-{row:08d}\n")

    def keygen(self, name):
        path = os.path.join(self.folder, name)
        self.checked(["keygen", "--out", path])
        return path

    def toolcfg_argv(self, arguments):
        return [self.toolcfg] + arguments

    def run(self, arguments):
        return subprocess.run(self.toolcfg_argv(arguments), capture_output=True, text=True)

    def checked(self, arguments):
        result = self.run(arguments)
        if result.returncode != 0:
            raise SystemExit(f"pg_faults: toolcfg {' '.join(arguments)} failed ({result.returncode}): {result.stderr}")
        return result

    def command(self, kind, url):
        if kind.startswith("rotate"):
            extra = ["--make-room"] if kind == "rotate --make-room" else []
            return ["rotate", "--db", url, "--master-key-file", self.old_key, "--new-master-key-file", self.new_key] + extra
        if kind == "import":
            return ["import", "--db", url, "--in", self.csv, "--master-key-file", self.old_key]
        return ["migrate", "up", "--db", url]

    def opens_under(self, url, key):
        return self.run(["verify-keys", "--db", url, "--master-key-file", key]).returncode == 0


def count_rows(cluster, name):
    with psycopg.connect(cluster.database_url(name)) as connection:
        return connection.execute("SELECT count(*) FROM user_tool_configs").fetchone()[0]


def check_state(kind, cluster, run, name, url, finished):
    """What the database holds after a trial (finished: the rerun has run). Returns a violation or None."""
    if kind.startswith("rotate"):
        if count_rows(cluster, name) != ROWS:
            return "rows lost or added"
        if finished:
            return None if run.opens_under(url, run.new_key) else "after the rerun, not every secret opens under the new key"
        if run.opens_under(url, run.old_key) or run.opens_under(url, run.new_key):
            return None
        return "secrets under two keys"
    if kind == "import":
        rows = count_rows(cluster, name)
        if rows not in ((ROWS,) if finished else (0, ROWS)):
            return f"{rows} of {ROWS} rows imported"
        if rows and not run.opens_under(url, run.old_key):
            return "imported keys do not open under the key"
        return None
    status = run.run(["migrate", "status", "--db", url, "--json"])
    if status.returncode != 0:
        return f"migrate status ended {status.returncode}: {status.stderr.strip()}"
    states = [entry["state"] for entry in json.loads(status.stdout)["entries"]]
    if finished and set(states) != {"applied"}:
        return f"after the rerun the ledger says {states}"
    return None


def trial(fault, kind, cluster, run, template, number, duration):
    name = f"trial_{number}"
    url = cluster.copy(template, name)
    process = subprocess.Popen(run.toolcfg_argv(run.command(kind, url)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    moment = random.uniform(0, duration)
    time.sleep(moment)
    if fault == "terminate":
        cluster.terminate(name)
    else:
        cluster.crash_and_restart()
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        err = "toolcfg did not end within 120 s after the fault (a hang); killed\n" + err
    status = process.returncode
    problem = None
    if status == 66 and ": connecting: " in err:
        pass  # the server was down when toolcfg connected: it began nothing
    elif status < 0:
        problem = f"killed by signal {-status} (a crash):\n{err.strip()[-6000:]}"
    elif status not in (0, 75):
        problem = f"exit {status}: {err.strip()[-400:]}"
    elif status == 75 and "run the same command again" not in err:
        problem = f"exit 75 without what to do: {err.strip()[-400:]}"
    problem = problem or check_state(kind, cluster, run, name, url, finished=False)
    if problem is None:
        rerun = run.run(run.command(kind, url))
        if rerun.returncode != 0:
            problem = f"the rerun ended {rerun.returncode}: {rerun.stderr.strip()[-400:]}"
        else:
            problem = check_state(kind, cluster, run, name, url, finished=True)
    with cluster.admin() as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return status, moment, problem


def main():
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    toolcfg = os.path.abspath(sys.argv[1])
    trials = int(sys.argv[2]) if len(sys.argv) == 3 else 20
    folder = tempfile.mkdtemp(prefix="toolcfg-pg-faults-files.")
    cluster = Cluster()
    failures = []
    try:
        run = Run(toolcfg, folder)
        # Templates: an empty database, a migrated empty table, and one holding ROWS keys.
        with cluster.admin() as connection:
            for template in ("bare", "migrated", "keyed"):
                connection.execute(f"CREATE DATABASE {template}")
        run.checked(["migrate", "up", "--db", cluster.database_url("migrated")])
        run.checked(["migrate", "up", "--db", cluster.database_url("keyed")])
        run.checked(run.command("import", cluster.database_url("keyed")))
        templates = {"rotate": "keyed", "rotate --make-room": "keyed", "import": "migrated", "migrate up": "bare"}
        number = 0
        print(f"pg_faults: {trials} trials per fault and command, {ROWS} rows; outcome = toolcfg's exit status "
              "(0: done before the fault or untouched by it, 75: lost, then finished by the rerun, "
              "66: the server was down as it connected)")
        for kind, template in templates.items():
            # The command's own duration bounds the random moment of the fault.
            url = cluster.copy(template, "measure")
            started = time.monotonic()
            run.checked(run.command(kind, url))
            duration = time.monotonic() - started
            for fault in ("terminate", "crash"):
                outcomes = {}
                for _ in range(trials):
                    number += 1
                    status, moment, problem = trial(fault, kind, cluster, run, template, number, duration)
                    outcomes[status] = outcomes.get(status, 0) + 1
                    if problem:
                        failures.append(f"{fault} {kind} at {moment:.3f} s: {problem}")
                counts = ", ".join(f"exit {status}: {count}" for status, count in sorted(outcomes.items()))
                print(f"  {fault:9} {kind:18} (runs {duration:.2f} s)  {counts}")
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    for failure in failures:
        print(f"pg_faults: FAILED {failure}", file=sys.stderr)
    if failures:
        sys.exit(1)
    print("pg_faults: every trial ended 0, 75 (or 66 before it began), left one consistent state, and its rerun finished")


if __name__ == "__main__":
    main()
