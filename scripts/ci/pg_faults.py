#!/usr/bin/env python3
"""PostgreSQL faults under toolcfg's write paths: the server killed, or toolcfg's session ended.

  scripts/ci/pg_faults.py TOOLCFG [TRIALS]     (TRIALS per fault and command; default 20)

PG_FAULTS chooses the faults (comma-separated; default terminate,crash,disk full); PG_FAULTS_ROWS
the rows of the prepared database (default 6000).

Starts a throwaway cluster of its own (scripts/pg.sh, in a new folder; stopped however the run
ends), then for each fault and each command, TRIALS times, on a fresh copy of a prepared database:
starts the command, waits a random moment within the command's own duration (measured first on an
untouched copy), and injects the fault:

  terminate  pg_terminate_backend() of every session toolcfg holds (what an administrator or a
             connection pooler's timeout does; the session's socket is closed under it)
  crash      pg_ctl stop -m immediate, then start again on the same port (a server that dies)
  disk full  the server's data directory on a filesystem of its own (a tmpfs, so root only; else
             skipped, said so) filled up to a random number of free bytes before the command,
             between none and a quarter more than the command needs; WAL segments are not
             recycled there (wal_recycle off), so a new one must find 16 MiB and may not (the
             server then stops with PANIC, recovers, and toolcfg sees its connection lost)

The commands: rotate, rotate --make-room, import (plaintext keys into an empty table) and
migrate up (on an empty database). After each trial:

  - toolcfg ended 0 (the fault came after it finished, or hit nothing it needed) or 75 with what to
    do ("run the same command again"), or 66 when the server was down as it connected (it began
    nothing), or for a full disk 74 saying the server's disk is full and what to do; never another
    status, never a crash;
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
# Which faults to inject (PG_FAULTS=crash,"disk full" for some of them).
FAULTS = [fault.strip() for fault in os.environ.get("PG_FAULTS", "terminate,crash,disk full").split(",")]
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Cluster:
    def __init__(self, folder=None):
        if folder is None:
            folder = tempfile.mkdtemp(prefix="toolcfg-pg-faults.")
            os.rmdir(folder)  # pg.sh makes it, 0700, with its marker
        self.folder = folder
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

    def admin_sql(self, sql):
        with self.admin() as connection:
            connection.execute(sql)

    def log_size(self):
        return os.path.getsize(os.path.join(self.folder, "server.log"))

    def panicked_since(self, size):
        """Whether the server stopped itself with PANIC since its log had `size` bytes."""
        with open(os.path.join(self.folder, "server.log"), errors="replace") as log:
            log.seek(size)
            return " PANIC: " in log.read()

    def wait_ready(self):
        """Until the server accepts connections: a server that stopped itself is started again."""
        deadline = time.monotonic() + 120
        while True:
            try:
                with self.admin():
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                if subprocess.run(["bash", os.path.join(REPOSITORY, "scripts/pg.sh"), "status"], env=self.env,
                                  capture_output=True).returncode == 3:
                    self.pg("start")
                time.sleep(0.1)

    def stop(self):
        self.pg("stop")


class SmallDisk:
    """A cluster whose data directory sits on a tmpfs of its own, filled on demand (root only)."""
    SIZE = 384 << 20

    @staticmethod
    def possible():
        return os.geteuid() == 0

    def __init__(self):
        self.mount_point = tempfile.mkdtemp(prefix="toolcfg-pg-disk.")
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.SIZE},mode=0711", "toolcfg-pg-disk",
                        self.mount_point], check=True)
        self.filler = os.path.join(self.mount_point, "filler")
        self.cluster = None
        try:
            self.cluster = Cluster(os.path.join(self.mount_point, "cluster"))
            # A new WAL segment must find its 16 MiB, as on a server whose WAL has grown.
            self.cluster.admin_sql("ALTER SYSTEM SET wal_recycle = off")
            self.cluster.admin_sql("SELECT pg_reload_conf()")
        except BaseException:
            self.stop()
            raise

    def free(self):
        stat = os.statvfs(self.mount_point)
        return stat.f_bavail * stat.f_frsize

    def fill(self, leave):
        """Leaves `leave` bytes free (or what there is)."""
        size = self.free() - int(leave)
        if size > 0:
            descriptor = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(descriptor, 0, size)
            finally:
                os.close(descriptor)

    def make_room(self):
        if os.path.exists(self.filler):
            os.remove(self.filler)

    def need(self, arguments):
        """The most room `arguments` take while they run: free space polled every millisecond."""
        self.cluster.admin_sql("CHECKPOINT")
        before = lowest = self.free()
        process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while process.poll() is None:
            lowest = min(lowest, self.free())
            time.sleep(0.001)
        if process.returncode != 0:
            raise SystemExit(f"pg_faults: {' '.join(arguments)} failed on the small disk: {process.stderr.read()}")
        return max(before - lowest, 1 << 20)

    def stop(self):
        self.make_room()
        if self.cluster:
            self.cluster.pg("stop")  # stops the server; the mount point itself stays (it is busy)
        subprocess.run(["umount", self.mount_point], check=False)
        shutil.rmtree(self.mount_point, ignore_errors=True)


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


def run_with_fault(fault, cluster, argv, name, span, disk):
    """Runs toolcfg with the fault; returns (status, stderr, where the fault came, whether the server panicked)."""
    if fault == "disk full":
        cluster.admin_sql("CHECKPOINT")  # the WAL before it is not what fills
        # The WAL at a random point of its 16 MiB segment, so that the command sometimes needs a new one.
        cluster.admin_sql(f"SELECT pg_logical_emit_message(false, 'toolcfg-pg-faults', repeat('x', {random.randrange(16 << 20)}))")
        leave = random.uniform(0, 1.25 * span)
        log_size = cluster.log_size()
        disk.fill(leave)
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            status, err = result.returncode, result.stderr
        except subprocess.TimeoutExpired as timeout:
            status, err = -9, f"toolcfg did not end within 120 s on a full disk (a hang); killed\n{timeout.stderr or ''}"
        finally:
            disk.make_room()
        panicked = cluster.panicked_since(log_size)  # before a restart begins a new log
        cluster.wait_ready()
        return status, err, f"with {leave / (1 << 20):.2f} MiB free", panicked
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    moment = random.uniform(0, span)
    time.sleep(moment)
    if fault == "terminate":
        cluster.terminate(name)
    else:
        cluster.crash_and_restart()
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        err = "toolcfg did not end within 120 s after the fault (a hang); killed\n" + err
    return process.returncode, err, f"at {moment:.3f} s", False


def trial(fault, kind, cluster, run, template, number, span, disk=None):
    """span: the command's duration (the fault comes within it), or for a full disk the room it needs."""
    name = f"trial_{number}"
    url = cluster.copy(template, name)
    status, err, where, panicked = run_with_fault(fault, cluster, run.toolcfg_argv(run.command(kind, url)), name, span, disk)
    problem = None
    if status == 66 and ": connecting: " in err:
        pass  # the server was down when toolcfg connected: it began nothing
    elif status < 0:
        problem = f"killed by signal {-status} (a crash):\n{err.strip()[-6000:]}"
    elif status == 74 and fault == "disk full":
        if "disk is" not in err or "full" not in err or "run the same command again" not in err:
            problem = f"exit 74 without saying the disk is full and what to do: {err.strip()[-400:]}"
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
    return status, where, problem, panicked


def prepare(cluster, run):
    """Templates: an empty database, a migrated empty table, and one holding ROWS keys."""
    with cluster.admin() as connection:
        for template in ("bare", "migrated", "keyed"):
            connection.execute(f"CREATE DATABASE {template}")
    run.checked(["migrate", "up", "--db", cluster.database_url("migrated")])
    run.checked(["migrate", "up", "--db", cluster.database_url("keyed")])
    run.checked(run.command("import", cluster.database_url("keyed")))


TEMPLATES = {"rotate": "keyed", "rotate --make-room": "keyed", "import": "migrated", "migrate up": "bare"}


def trials_of(fault, kind, cluster, run, span, trials, number, failures, disk=None):
    outcomes = {}
    panics = 0
    for _ in range(trials):
        number += 1
        status, where, problem, panicked = trial(fault, kind, cluster, run, TEMPLATES[kind], number, span, disk)
        outcomes[status] = outcomes.get(status, 0) + 1
        panics += panicked
        if problem:
            failures.append(f"{fault} {kind} {where}: {problem}")
    counts = ", ".join(f"exit {status}: {count}" for status, count in sorted(outcomes.items()))
    if fault == "disk full":
        print(f"  {fault:9} {kind:18} (needs {span / (1 << 20):.1f} MiB)  {counts}; the server panicked in {panics}")
    else:
        print(f"  {fault:9} {kind:18} (runs {span:.2f} s)  {counts}")
    return number


def main():
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    toolcfg = os.path.abspath(sys.argv[1])
    trials = int(sys.argv[2]) if len(sys.argv) == 3 else 20
    folder = tempfile.mkdtemp(prefix="toolcfg-pg-faults-files.")
    cluster = Cluster()
    disk = None
    failures = []
    try:
        run = Run(toolcfg, folder)
        prepare(cluster, run)
        number = 0
        print(f"pg_faults: {trials} trials per fault and command, {ROWS} rows; outcome = toolcfg's exit status "
              "(0: done before the fault or untouched by it, 75: lost, then finished by the rerun, "
              "66: the server was down as it connected, 74: the server's disk was full)")
        for kind, template in TEMPLATES.items() if {"terminate", "crash"} & set(FAULTS) else ():
            # The command's own duration bounds the random moment of the fault.
            url = cluster.copy(template, "measure")
            started = time.monotonic()
            run.checked(run.command(kind, url))
            duration = time.monotonic() - started
            for fault in [fault for fault in ("terminate", "crash") if fault in FAULTS]:
                number = trials_of(fault, kind, cluster, run, duration, trials, number, failures)
        if "disk full" not in FAULTS:
            pass
        elif SmallDisk.possible():
            disk = SmallDisk()
            prepare(disk.cluster, run)
            for kind, template in TEMPLATES.items():
                url = disk.cluster.copy(template, "measure")
                need = disk.need(run.toolcfg_argv(run.command(kind, url)))
                disk.cluster.admin_sql("DROP DATABASE measure WITH (FORCE)")
                number = trials_of("disk full", kind, disk.cluster, run, need, trials, number, failures, disk)
        else:
            print("  disk full: skipped (a tmpfs for the server's data directory needs root)")
    finally:
        if disk:
            disk.stop()
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    for failure in failures:
        print(f"pg_faults: FAILED {failure}", file=sys.stderr)
    if failures:
        sys.exit(1)
    print("pg_faults: every trial ended 0, 75, 74 for a full disk (or 66 before it began), left one consistent state, "
          "and its rerun finished")


if __name__ == "__main__":
    main()
