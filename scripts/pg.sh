#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests and for trying toolcfg by hand.
#
#   scripts/pg.sh start    initdb (first time) and start; prints the URL. Idempotent.
#   scripts/pg.sh url      the libpq URL of database `toolcfg` over the Unix socket (no password)
#   scripts/pg.sh tcp-url  the same database over 127.0.0.1 (password auth: see `passfile`)
#   scripts/pg.sh passfile a PGPASSFILE (0600) holding the generated password for tcp-url
#   scripts/pg.sh status   exit 0 when running, 3 when not
#   scripts/pg.sh stop     stop the server and remove the folder
#   scripts/pg.sh crash    stop it at once (pg_ctl stop -m immediate), folder kept: start recovers
#
# The cluster runs with fsync off (it holds nothing worth keeping); TOOLCFG_PG_DURABLE=1 at start
# keeps the server's durable defaults instead (benchmarks that compare with SQLite's fsync per commit).
#
# The cluster lives in one folder, $TOOLCFG_PG_DIR (default ${TMPDIR:-/tmp}/toolcfg-pg-$UID):
# data/ and socket/ belong to the server's user and are 0700, so only that user (and root) can
# reach the socket, where it trusts the connecting role; on 127.0.0.1 (a free port) it asks for
# scram-sha-256. initdb refuses to run as root, so as root the server runs as the `postgres`
# system user (Debian's package creates it); anyone else runs it as themselves.
set -euo pipefail

bin=/usr/lib/postgresql/15/bin
dir=${TOOLCFG_PG_DIR:-${TMPDIR:-/tmp}/toolcfg-pg-$(id -u)}
database=toolcfg
marker="$dir/toolcfg-pg"  # says that the folder is ours to remove

die() { echo "pg.sh: $*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
  server_user=postgres
  as_server() { runuser -u "$server_user" -- "$@"; }
else
  server_user=$(id -un)
  as_server() { "$@"; }
fi

# Path characters outside a small safe set are percent-encoded for the URL's host parameter.
url_encode() {
  local text=$1 out="" c i
  for ((i = 0; i < ${#text}; i++)); do
    c=${text:i:1}
    case "$c" in [A-Za-z0-9/._~-]) out+=$c ;; *) out+=$(printf '%%%02X' "'$c") ;; esac
  done
  printf '%s' "$out"
}

port() { cat "$dir/port"; }
socket_url() { printf 'postgresql://postgres@/%s?host=%s&port=%s\n' "$database" "$(url_encode "$dir/socket")" "$(port)"; }
tcp_url() { printf 'postgresql://postgres@127.0.0.1:%s/%s\n' "$(port)" "$database"; }

running() {
  [ -f "$marker" ] && [ -d "$dir/data" ] && as_server "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

# A port nobody listens on now; the server binds it moments later (start retries on a clash).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

init_cluster() {
  if [ -e "$dir" ] || [ -L "$dir" ]; then
    # Only a folder of our own, not a link someone put in a shared /tmp, and empty or ours.
    [ -d "$dir" ] && [ ! -L "$dir" ] && [ -O "$dir" ] || die "$dir exists and is not a folder of this user"
    [ -f "$marker" ] || [ -z "$(ls -A "$dir")" ] || die "$dir is not empty and was not made by pg.sh"
  else
    mkdir -m 0700 "$dir"
  fi
  # The server's user must pass through the folder to reach data/ and socket/ (root's case).
  chmod 0711 "$dir"
  touch "$marker"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir/data" "$dir/socket"
    install -d -m 0700 -o "$server_user" "$dir/data" "$dir/socket"
    local password
    password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
    install -m 0600 /dev/null "$dir/pgpass"
    # initdb wants an empty data folder: the password file sits beside it, for the moment it runs.
    printf '%s\n' "$password" | install -m 0600 -o "$server_user" /dev/stdin "$dir/initpw"
    as_server "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --pwfile="$dir/initpw" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { rm -f "$dir/initpw"; cat "$dir/initdb.log" >&2; die "initdb failed"; }
    rm -f "$dir/initpw"
    printf '127.0.0.1:*:*:postgres:%s\n' "$password" >"$dir/pgpass"
  fi
}

start() {
  if running; then socket_url; return; fi
  command -v "$bin/initdb" >/dev/null || die "PostgreSQL 15 is not installed (run scripts/bootstrap.sh)"
  init_cluster
  local attempt
  for attempt in 1 2 3; do
    # A restart keeps its port (and so its URLs); a clash takes a new one.
    [ "$attempt" -eq 1 ] && [ -s "$dir/port" ] || free_port >"$dir/port"
    install -m 0600 -o "$server_user" /dev/null "$dir/server.log"
    # fsync off: a throwaway cluster for tests, where speed matters and a crash loses nothing.
    local speed="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ "${TOOLCFG_PG_DURABLE:-0}" != 1 ] || speed=""
    if as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
         -o "-p $(port) -k '$dir/socket' -c listen_addresses=127.0.0.1 $speed" \
         start >/dev/null; then
      as_server "$bin/psql" -X -q -h "$dir/socket" -p "$(port)" -U postgres -d postgres \
        -c "CREATE DATABASE $database" >/dev/null 2>&1 || true
      socket_url
      return
    fi
    grep -q 'could not bind\|Address already in use' "$dir/server.log" || break
  done
  cat "$dir/server.log" >&2
  die "the server did not start"
}

stop() {
  [ -e "$dir" ] || return 0
  [ -f "$marker" ] || die "$dir was not made by pg.sh; not removing it"
  if running; then
    as_server "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
  fi
  rm -rf "$dir"
}

# The server dies as in a power cut of its own: no checkpoint, every session cut; the next start
# recovers from the WAL (pg_faults.py).
crash() {
  running || die "not running (scripts/pg.sh start)"
  as_server "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  crash) crash ;;
  url) running || die "not running (scripts/pg.sh start)"; socket_url ;;
  tcp-url) running || die "not running (scripts/pg.sh start)"; tcp_url ;;
  passfile) running || die "not running (scripts/pg.sh start)"; echo "$dir/pgpass" ;;
  status)
    if running; then echo "running: $(socket_url) (pid $(head -1 "$dir/data/postmaster.pid"), folder $dir)"; else echo "not running"; exit 3; fi ;;
  *) echo "usage: scripts/pg.sh start|stop|crash|url|tcp-url|passfile|status" >&2; exit 64 ;;
esac
