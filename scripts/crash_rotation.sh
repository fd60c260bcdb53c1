#!/usr/bin/env bash
# Crash safety of `toolcfg rotate`, for minutes: starts a rotation on a database with ROWS keyed
# rows (user_tool_configs, plus a few api_model_aliases rows and rows without a key), kills it
# with SIGKILL after a random delay, and checks what it left:
#   - `sqlite3 DB 'PRAGMA integrity_check'` says ok;
#   - `toolcfg verify-keys` succeeds under exactly one of the two keys (every row under the same
#     key, none under neither, no malformed triple, no repeated salt or nonce);
#   - a rotate that exited on its own exited 0 and left every row under the new key.
# Then it rotates again from whatever state was left (old and new key swap roles when the
# database ended fully rotated). At the end every user_tool_configs key is exported in plaintext
# and compared with what was imported.
#
#   scripts/crash_rotation.sh [--release] [--scratch-path DIR] [ITERATIONS] [ROWS]
#
# ITERATIONS defaults to 200, ROWS to 3000. The delays are random between 5 ms and a bit more
# than an uninterrupted run takes (measured with a dry run first), so kills fall before, during
# and after the re-encryption and the commit, and some runs finish. In the summary, mid_rotation
# counts the kills that found the database open and killed_after_commit those of them that came
# after the commit. MAX_DELAY_MS overrides the upper bound; JOBS (default 2) is passed as --jobs.
# The binary is built with `swift build` (debug, or release with --release) in .build, or in
# --scratch-path DIR (or $SCRATCH_PATH). Needs sqlite3. Prints one line per iteration on stderr
# and a summary line on stdout; exits 1 on any failure and keeps the failing database.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIGURATION=debug
SCRATCH_PATH="${SCRATCH_PATH:-}"
POSITIONAL=()
while (($#)); do
  case "$1" in
    --release) CONFIGURATION=release ;;
    --scratch-path) SCRATCH_PATH="${2:?--scratch-path needs a directory}"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "crash_rotation: unknown option $1" >&2; exit 64 ;;
    *) POSITIONAL+=("$1") ;;
  esac
  shift
done
ITERATIONS="${POSITIONAL[0]:-200}"
ROWS="${POSITIONAL[1]:-3000}"
JOBS="${JOBS:-2}"
for number in "$ITERATIONS" "$ROWS" "$JOBS"; do
  [[ "$number" =~ ^[1-9][0-9]*$ ]] || { echo "usage: scripts/crash_rotation.sh [--release] [--scratch-path DIR] [ITERATIONS] [ROWS]" >&2; exit 64; }
done
command -v sqlite3 >/dev/null || { echo "crash_rotation: sqlite3 is needed for PRAGMA integrity_check" >&2; exit 69; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/crash-rotation.XXXXXX")"
CHILD=""
cleanup() {
  if [[ -n "$CHILD" ]] && kill -0 "$CHILD" 2>/dev/null; then kill -KILL "$CHILD" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -----------------------------------------------------------------------------------
BUILD=(swift build -c "$CONFIGURATION" --package-path "$ROOT")
[[ -n "$SCRATCH_PATH" ]] && BUILD+=(--scratch-path "$SCRATCH_PATH")
echo "building toolcfg ($CONFIGURATION)..." >&2
if ! "${BUILD[@]}" --product toolcfg >"$WORK/build.log" 2>&1; then
  cat "$WORK/build.log" >&2
  exit 70
fi
BIN="$("${BUILD[@]}" --show-bin-path)/toolcfg"
[[ -x "$BIN" ]] || { echo "crash_rotation: no executable at $BIN" >&2; exit 70; }

# --- the database --------------------------------------------------------------------------
DB="$(cd "$WORK" && pwd -P)/crash.db"  # as /proc/PID/fd shows it
ALIASES=20
NO_KEY=$(( ROWS / 50 + 1 ))
"$BIN" keygen --out "$WORK/a.key" 2>/dev/null
"$BIN" keygen --out "$WORK/b.key" 2>/dev/null
OLD="$WORK/a.key"
NEW="$WORK/b.key"
"$BIN" migrate up --db "$DB" 2>/dev/null
# The application's table, as it has it: every triple NOT NULL.
sqlite3 "$DB" "CREATE TABLE api_model_aliases (
  id TEXT PRIMARY KEY, api_format TEXT NOT NULL DEFAULT 'openai', base_url TEXT NOT NULL,
  models_json TEXT NOT NULL, encrypted_api_key TEXT NOT NULL, salt TEXT NOT NULL, nonce TEXT NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
awk -v rows="$ROWS" -v aliases="$ALIASES" -v seed="$RANDOM$RANDOM" 'BEGIN {
  srand(seed)
  print "user_id,tool_id,enabled,api_key"
  for (i = 1; i <= rows + aliases; i++) {
    secret = ""
    for (j = 0; j < 24; j++) secret = secret sprintf("%x", int(rand() * 16))
    printf "user-%d,%s,%d,sk-crash-%d-%s\n", i, (i > rows ? "alias-source" : "tool-" (i % 3)), i % 2, i, secret
  }
}' >"$WORK/import.csv"
"$BIN" import --db "$DB" --in "$WORK/import.csv" --master-key-file "$OLD" 2>/dev/null
# The last ALIASES imported triples move to api_model_aliases (moved, so no salt repeats).
sqlite3 "$DB" "
  INSERT INTO api_model_aliases (id, base_url, models_json, encrypted_api_key, salt, nonce, created_at, updated_at)
    SELECT 'alias-' || id, 'https://api.example.invalid/v1', '[]', encrypted_api_key, salt, nonce, created_at, updated_at
    FROM user_tool_configs WHERE tool_id = 'alias-source';
  DELETE FROM user_tool_configs WHERE tool_id = 'alias-source';
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $NO_KEY)
  INSERT INTO user_tool_configs (user_id, tool_id, enabled, created_at, updated_at)
    SELECT 'nokey-' || i, 'tool-none', 0, 1700000000, 1700000000 FROM n;"
awk -F, 'NR > 1 && $2 != "alias-source" { print $1 "," $4 }' "$WORK/import.csv" | LC_ALL=C sort >"$WORK/expected.txt"
KEYED_ALIASES="$(sqlite3 "$DB" 'SELECT count(*) FROM api_model_aliases')"
[[ "$KEYED_ALIASES" == "$ALIASES" ]] || { echo "crash_rotation: setup failed: $KEYED_ALIASES aliases" >&2; exit 70; }

fail() {
  failures=$(( failures + 1 ))
  echo "FAILURE (iteration $1): $2" >&2
}
failures=0

now_ms() {
  local ms
  ms="$(date +%s%3N)"
  [[ "$ms" =~ ^[0-9]+$ ]] || ms="$(python3 -c 'import time; print(int(time.time() * 1000))')"
  echo "$ms"
}

# --- calibration: how long an uninterrupted run takes ----------------------------------------
start=$(now_ms)
dry_rc=0
"$BIN" rotate --db "$DB" --master-key-file "$OLD" --new-master-key-file "$NEW" --jobs "$JOBS" --dry-run 2>/dev/null || dry_rc=$?
DRY_MS=$(( $(now_ms) - start ))
if (( dry_rc != 0 )); then
  fail "calibration" "rotate --dry-run exited $dry_rc"
  DRY_MS=$(( DRY_MS < 200 ? 200 : DRY_MS ))
fi
MAX_DELAY_MS="${MAX_DELAY_MS:-$(( DRY_MS * 11 / 10 + 20 ))}"
(( MAX_DELAY_MS > 5 )) || MAX_DELAY_MS=6
echo "crash_rotation: $ROWS keyed rows in user_tool_configs, $ALIASES in api_model_aliases, $NO_KEY without a key;" \
     "a dry run takes $DRY_MS ms; kills after 5..$MAX_DELAY_MS ms; binary $BIN" >&2

# --- the loop --------------------------------------------------------------------------------
killed=0 mid_rotation=0 killed_after_commit=0 finished=0 completed=0 done_iterations=0 broken=0
has_proc=0; [[ -d /proc/self/fd ]] && has_proc=1


# verify-keys under one key; sets STATUS to its exit status: 0 or 65 (another on a real error).
# A run that crashes by itself (status >= 128) is a failure of the tool, and is tried again.
verify() {
  local attempt
  for attempt in 1 2 3; do
    STATUS=0
    "$BIN" verify-keys --db "$DB" --master-key-file "$1" --json >"$WORK/verify-$2.json" 2>"$WORK/verify-$2.err" || STATUS=$?
    (( STATUS < 128 )) && break
    fail "$i" "verify-keys under the $2 key died of signal $(( STATUS - 128 ))"
  done
}

keep_failure() {
  local kept
  kept="$(mktemp -d "${TMPDIR:-/tmp}/crash-rotation-failure.XXXXXX")"
  cp "$DB"* "$OLD" "$NEW" "$WORK/rotate.err" "$kept/" 2>/dev/null || true
  echo "the database, its WAL, both keys and rotate's stderr are kept in $kept" >&2
}

for (( i = 1; i <= ITERATIONS; i++ )); do
  done_iterations=$i
  delay=$(( 5 + (RANDOM * 32768 + RANDOM) % (MAX_DELAY_MS - 4) ))
  "$BIN" rotate --db "$DB" --master-key-file "$OLD" --new-master-key-file "$NEW" --jobs "$JOBS" --json \
    >"$WORK/rotate.out" 2>"$WORK/rotate.err" &
  CHILD=$!
  sleep "$(printf '%d.%03d' $(( delay / 1000 )) $(( delay % 1000 )))"
  db_open=0
  if kill -0 "$CHILD" 2>/dev/null; then
    if (( has_proc )); then
      # Mid-rotation: the process has the database open (it opens it after reading both keys).
      for fd in /proc/"$CHILD"/fd/*; do
        [[ "$(readlink "$fd" 2>/dev/null)" == "$DB" ]] && { db_open=1; break; }
      done
    else
      db_open=1
    fi
    kill -KILL "$CHILD" 2>/dev/null || true
  fi
  rc=0
  { wait "$CHILD"; } 2>/dev/null || rc=$?  # (without the shell's "Killed" notice)
  CHILD=""

  if (( rc == 137 )); then
    killed=$(( killed + 1 ))
    (( db_open )) && mid_rotation=$(( mid_rotation + 1 ))
    outcome="killed$( (( db_open )) && echo ' mid-rotation' || echo ' before opening the database')"
  elif (( rc == 0 )); then
    finished=$(( finished + 1 ))
    outcome="finished"
  else
    # A failure of the tool (a crash of its own, signal = rc - 128, is one too); the database
    # must still satisfy the invariants, so the checks go on.
    fail "$i" "rotate exited $rc on its own: $(head -c 400 "$WORK/rotate.err" | tr '\n' ' ')"
    outcome="exited $rc"
  fi

  integrity="$(sqlite3 "$DB" 'PRAGMA integrity_check' 2>&1 || true)"
  [[ "$integrity" == "ok" ]] || { fail "$i" "PRAGMA integrity_check: $integrity"; broken=1; }

  verify "$OLD" old; old_rc=$STATUS
  verify "$NEW" new; new_rc=$STATUS
  state=""
  if (( old_rc == 0 && new_rc == 65 )); then
    state="old key"
  elif (( new_rc == 0 && old_rc == 65 )); then
    state="new key"
  else
    fail "$i" "verify-keys exited $old_rc under the old key and $new_rc under the new one (want 0 under exactly one); with both keys:"
    "$BIN" verify-keys --db "$DB" --master-key-file "$OLD" --new-master-key-file "$NEW" >&2 || true
    broken=1
  fi
  if (( rc == 0 )) && [[ "$state" != "new key" ]]; then
    fail "$i" "rotate exited 0 but the rows are not all under the new key"
    broken=1
  fi
  [[ "$outcome" == "killed mid-rotation" && "$state" == "new key" ]] && outcome="killed after the commit"
  printf '%4d: %4d ms, %-36s -> %s\n' "$i" "$delay" "$outcome" "${state:-BROKEN}" >&2

  if (( broken )); then
    keep_failure
    break
  fi
  if [[ "$state" == "new key" ]]; then
    completed=$(( completed + 1 ))
    (( rc == 137 )) && killed_after_commit=$(( killed_after_commit + 1 ))
    swap="$OLD"; OLD="$NEW"; NEW="$swap"
  fi
done

# --- the plaintexts survived every rotation --------------------------------------------------
if (( failures == 0 )); then
  if "$BIN" export --db "$DB" --keys plaintext --format csv --out - --master-key-file "$OLD" >"$WORK/export.csv" 2>"$WORK/export.err"; then
    awk -F, 'NR == 1 { for (c = 1; c <= NF; c++) column[$c] = c; next }
             $(column["api_key"]) != "" { print $(column["user_id"]) "," $(column["api_key"]) }' "$WORK/export.csv" \
      | LC_ALL=C sort >"$WORK/actual.txt"
    if ! cmp -s "$WORK/expected.txt" "$WORK/actual.txt"; then
      fail "end" "the exported plaintexts differ from the imported ones ($(wc -l <"$WORK/actual.txt") rows exported, $(wc -l <"$WORK/expected.txt") imported)"
    fi
  else
    fail "end" "export --keys plaintext under the current key failed: $(tr '\n' ' ' <"$WORK/export.err")"
  fi
fi

echo "crash_rotation: iterations=$done_iterations rows=$ROWS killed=$killed mid_rotation=$mid_rotation" \
     "killed_after_commit=$killed_after_commit finished=$finished rotations_completed=$completed failures=$failures"
(( failures == 0 ))
