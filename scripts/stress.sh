#!/usr/bin/env bash
# The longer stress run (the test suite's Stress runs take seconds): builds toolcfg in release
# mode, migrates a scratch database in a new temporary folder, and runs `toolcfg stress` with
# threads, then with processes, then once through a deliberately wrong upsert, which must fail
# (exit 65), proving the checker still bites. Each run is bounded by a timeout.
#
#   scripts/stress.sh                      # 8 writers x 50000 operations per run (~1 min each)
#   WRITERS=16 OPS=100000 scripts/stress.sh
#   SEED=42 scripts/stress.sh              # the same operations as an earlier run (default: random)
#
# Environment: WRITERS, OPS, PAIRS, SEED, BUSY_TIMEOUT (seconds, default the command's 10),
# LIMIT (seconds allowed per run, default 600), KEEP=1 to keep the folder (the database with its
# stress rows and _toolcfg_stress_log, and the reports).
# Exit status: 0 when both runs pass and the wrong upsert is caught, 1 otherwise.
#
# Writers here run back to back for a minute or more. Connections retry a busy lock every
# millisecond (BusyWait), so no writer should starve; writer errors reading "SQLITE_BUSY after
# ~10000 ms" would mean one did (see the lock acquisition max).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
writers=${WRITERS:-8}
ops=${OPS:-50000}
pairs=${PAIRS:-8}
seed=${SEED:-$((RANDOM * 32768 + RANDOM))}
limit=${LIMIT:-600}
busy_timeout=${BUSY_TIMEOUT:-10}
folder=$(mktemp -d "${TMPDIR:-/tmp}/toolcfg-stress.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$folder"' EXIT

swift build --package-path "$root" -c release --product toolcfg >&2
toolcfg="$root/.build/release/toolcfg"
db="$folder/stress.db"
"$toolcfg" migrate up --db "$db" >&2

run() {  # name, operations per writer, extra arguments; the report (stderr) is also kept in $folder/name.txt
    local name=$1 count=$2; shift 2
    echo "== $name" >&2
    local status=0
    timeout "$limit" "$toolcfg" stress --db "$db" --writers "$writers" --ops "$count" --pairs "$pairs" --seed "$seed" \
        --busy-timeout "$busy_timeout" "$@" \
        2> >(tee "$folder/$name.txt" >&2) || status=$?
    [ "$status" != 124 ] || echo "stopped after $limit s (LIMIT)" >&2
    return $status
}

failed=0
run threads "$ops" || { echo "stress (threads) failed with status $?" >&2; failed=1; }
run processes "$ops" --processes || { echo "stress (processes) failed with status $?" >&2; failed=1; }
# The self-test: a shorter run through INSERT OR REPLACE must be caught (exit 65).
status=0
run wrong-replace $((ops / 20 + 1)) --upsert wrong-replace || status=$?
if [ "$status" = 65 ]; then
    echo "wrong-replace: caught by the checker (exit 65), as it must be" >&2
else
    echo "wrong-replace: exit $status, but the checker must fail it with 65" >&2
    failed=1
fi
echo "seed $seed; reports in $folder$([ "${KEEP:-0}" = 1 ] || echo ' (removed; KEEP=1 keeps them)')" >&2
exit $failed
