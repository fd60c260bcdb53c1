#!/usr/bin/env bash
# Benchmarks: builds the release toolcfg (and, for the sections that use it, the Benchmarks/
# package: ordo-one/benchmark suite "ToolcfgBenchmarks"), runs each section's measurements against
# their peers in the same invocation, and prints a summary at the end.
#
#   scripts/bench.sh                          # every section
#   scripts/bench.sh pbkdf2                   # only the named section(s); `--list` lists them
#   BASELINE_REF=main scripts/bench.sh decrypt   # also the toolcfg of that revision, same rounds
#
# Benchmarks/ is its own package so that the root package's `swift build` / `swift test` never
# resolve or build ordo-one/benchmark; only SUITE_SECTIONS build it. Time on the 2-core machine:
# ~60-90 s for pbkdf2 once built (its kernels and 50,000-row commands, then the suite); the first run after a clean checkout also builds the suite
# (~85-130 s) and the plugin's BenchmarkTool (~60 s). json-export takes about 1.5 min, decrypt
# about 5 min with a baseline (its build another 1.5-2 min), longer while other builds share the
# cores.
#
# Adding a section (e.g. csv, rotation):
#   1. for suite benchmarks, register them in Benchmarks/Benchmarks/ToolcfgBenchmarks/
#      ToolcfgBenchmarks.swift with names starting with a common prefix ("CSV ...") and add the
#      section to SUITE_SECTIONS;
#   2. add the section name to SECTIONS below and write section_<name>, which calls
#      run_suite '<regex matching the whole benchmark names>' and/or measures commands with
#      measure_pair / measure_group, and records summary lines with add_summary.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_PKG="$ROOT/Benchmarks"
TARGET="ToolcfgBenchmarks"
SECTIONS=(pbkdf2 snapshot json-export decrypt rotation rotation-v2 live postgres stress-postgres rotation-postgres)
# Sections that run the ordo-one suite (the others need only the release toolcfg).
SUITE_SECTIONS=(pbkdf2)
RUNS="${RUNS:-3}"

usage() {
  echo "usage: scripts/bench.sh [--list] [section ...]   (sections: ${SECTIONS[*]})" >&2
}

LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/toolcfg-bench.XXXXXX")"
trap 'rm -rf "$LOG_DIR"' EXIT

SUMMARY=()
add_summary() { SUMMARY+=("$(printf '%-44s %s' "$1" "$2")"); }

# Runs the ordo-one suite restricted to benchmarks whose whole name matches $1, shows its table,
# and leaves the output in $LOG_DIR/suite.out for p50_us.
run_suite() {
  local filter="$1"
  echo "== swift package benchmark --target $TARGET --filter '$filter'"
  # The plugin rebuilds the target (incremental: already built above). If a source file is saved
  # while that build runs, SwiftPM aborts with "was modified during the build": retry that case.
  local rc attempt
  for attempt in 1 2 3; do
    rc=0
    (cd "$BENCH_PKG" && NO_COLOR=1 swift package benchmark --target "$TARGET" --filter "$filter" \
      --no-progress) 2>&1 | sed -u -e '/^\[[0-9]*\/[0-9]*\]/d' -e '/^Building for debugging/d' \
      | tee "$LOG_DIR/suite.out" || rc=$?
    [ "$rc" -ne 0 ] && [ "$attempt" -lt 3 ] \
      && grep -aq 'was modified during the build' "$LOG_DIR/suite.out" || break
    echo "bench: sources changed during the build; retrying in 20 s (attempt $attempt of 3 failed)" >&2
    sleep 20
  done
  if [ "$rc" -ne 0 ]; then
    echo "bench: swift package benchmark failed (exit $rc)" >&2
    exit "$rc"
  fi
}

# p50 (median) wall-clock time of benchmark "$1" from the last run_suite's table, in µs.
# The suite configures timeUnits .nanoseconds, so the row is "Time (wall clock) (ns)".
p50_us() {
  local name="$1" value
  value=$(awk -v name="$name" '
    $0 == name { inside = 1; next }
    inside && /Time \(wall clock\)/ {
      if (!index($0, "(ns)")) { print "not-ns"; exit }
      split($0, cell, "│")             # cells: "", Metric, p0, p25, p50, ...
      v = cell[5]; gsub(/[ ,]/, "", v); printf "%.1f\n", v / 1000; exit
    }
    inside && /^$/ { inside = 0 }
  ' "$LOG_DIR/suite.out")
  if [ -z "$value" ] || [ "$value" = "not-ns" ]; then
    echo "bench: no wall-clock p50 in ns for benchmark '$name' in the suite output" >&2
    exit 1
  fi
  echo "$value"
}

# Builds the release toolcfg (progress lines to standard error) and prints its path.
build_toolcfg() {
  (cd "$ROOT" && swift build -c release --product toolcfg 2>&1 | sed -u '/^\[[0-9]*\/[0-9]*\]/d' >&2) || return
  echo "$ROOT/.build/release/toolcfg"
}

# A release toolcfg built from another revision ($1, e.g. main) in .build-baseline, for before /
# after ratios measured in the same run. Prints its path.
build_baseline_toolcfg() {
  local ref="$1" source="$ROOT/.build-baseline/source"
  echo "== release toolcfg of $ref ($(git -C "$ROOT" rev-parse --short "$ref")) in .build-baseline" >&2
  rm -rf "$source" && mkdir -p "$source"
  git -C "$ROOT" archive "$ref" | tar -x -C "$source"
  (cd "$source" && swift build -c release --product toolcfg --scratch-path "$ROOT/.build-baseline" 2>&1 \
    | sed -u '/^\[[0-9]*\/[0-9]*\]/d' >&2) || return
  echo "$ROOT/.build-baseline/release/toolcfg"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
per_s() { awk -v us="$1" 'BEGIN { printf "%.0f", 1e6 / us }'; }

# --- sections ---------------------------------------------------------------------------------

# The kernels on this CPU (`toolcfg kdf-kernels`: each kernel's derivations per second on one
# thread and on all cores, and the one the measured selection picks), then the rates verify-keys,
# export --keys plaintext and rotate reach on PBKDF2_ROWS (50,000) keyed rows, in derivations per
# second per core (rows x derivations per row / seconds / cores), as a share of the fastest
# kernel's one-thread rate and of its per-thread rate with every core busy, and per CPU-second
# (user + system: what the command did with the CPU it got, when others share the machine). Then the ordo-one
# suite and Python's cryptography (PBKDF2_SUITE=0 skips them).
section_pbkdf2() {
  local rows="${PBKDF2_ROWS:-50000}" work="$LOG_DIR/pbkdf2" toolcfg cores model flags
  echo
  echo "######## pbkdf2: PBKDF2-HMAC-SHA256, 1000 iterations, 32-byte password and salt, 32-byte output"
  mkdir -p "$work"
  toolcfg=$(build_toolcfg)
  cores=$(nproc)
  model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
  flags=$(for f in sha_ni avx512f avx2; do grep -qw "$f" /proc/cpuinfo && printf '%s ' "$f"; done)
  echo "== CPU: $model, $cores cores online; flags that matter: ${flags:-none of sha_ni, avx512f, avx2}"
  echo "== toolcfg kdf-kernels (release; median of 3 round-robin runs of 0.5 s per kernel and thread count)"
  "$toolcfg" kdf-kernels --threads "1,$cores" --runs 3 --seconds 0.5 | tee "$work/kernels.out"
  local selected fastest best1=0 kernel rate rate_all per_thread_all=0
  selected=$(sed -n 's/^RESULT selected kernel=\([^ ]*\).*/\1/p' "$work/kernels.out")
  while read -r kernel rate; do
    rate_all=$(sed -n "s/^RESULT kernel=$kernel .*threads=$cores derivations_per_s=\([0-9]*\) per_thread=\([0-9]*\).*/\2/p" "$work/kernels.out")
    add_summary "PBKDF2 kernel $kernel" "$rate/s on 1 thread ($(awk -v r="$rate" 'BEGIN { printf "%.1f", 1e6 / r }') µs), ${rate_all:-?}/s per thread on $cores threads"
    if awk -v a="$rate" -v b="$best1" 'BEGIN { exit !(a > b) }'; then best1=$rate; fastest=$kernel; per_thread_all=${rate_all:-0}; fi
  done < <(sed -n 's/^RESULT kernel=\([^ ]*\) .*threads=1 derivations_per_s=\([0-9]*\) .*/\1 \2/p' "$work/kernels.out")
  add_summary "PBKDF2 kernel selected (measured at start)" "$selected; fastest on 1 thread here: $fastest"

  # Distinct salts: an import of plaintext keys derives one row key per row.
  "$toolcfg" keygen --out "$work/master.key" 2>/dev/null
  "$toolcfg" keygen --out "$work/new.key" 2>/dev/null
  awk -v n="$rows" 'BEGIN { print "user_id,tool_id,enabled,api_key"
    for (i = 0; i < n; i++) printf "user-%d,tool-%d,%d,sk-live-%08d-abcdefghijklmnopqrstuvwxyz\n", i, i % 10, i % 2, i }' > "$work/keys.csv"
  "$toolcfg" migrate up --db "$work/keys.db" 2>/dev/null
  "$toolcfg" import --db "$work/keys.db" --in "$work/keys.csv" --master-key-file "$work/master.key" >/dev/null 2>&1
  local keys="--master-key-file '$work/master.key'"
  echo "== verify-keys, export --keys plaintext (1 derivation a row) and rotate (2 a row) of $rows rows on $cores cores, round-robin"
  measure_group "verify-keys" ":" "'$toolcfg' verify-keys --db '$work/keys.db' $keys" \
                "export plaintext" ":" "'$toolcfg' export --db '$work/keys.db' --keys plaintext $keys --out - --format jsonl > /dev/null" \
                "rotate" "cp '$work/keys.db' '$work/t.db'" "'$toolcfg' rotate --db '$work/t.db' $keys --new-master-key-file '$work/new.key'"
  "$toolcfg" verify-keys --db "$work/t.db" --master-key-file "$work/new.key" >/dev/null 2>&1 || { echo "bench: rotated keys do not verify" >&2; exit 1; }
  local index=0 name per_derivation seconds cpu per_core
  for name in verify-keys "export plaintext" rotate; do
    per_derivation=1; [ "$name" = rotate ] && per_derivation=2
    seconds=${GROUP_MEDIAN_S[index]}; cpu=${GROUP_CPU_MEDIAN_S[index]}
    per_core=$(awk -v r="$rows" -v d="$per_derivation" -v s="$seconds" -v c="$cores" 'BEGIN { printf "%.0f", r * d / s / c }')
    add_summary "PBKDF2 rate of $name ($rows rows)" "$per_core/s per core ($seconds s median on $cores cores, CPU $cpu s: $(awk -v r="$rows" -v d="$per_derivation" -v s="$cpu" 'BEGIN { printf "%.0f", r * d / s }')/s per CPU-second)"
    add_summary "PBKDF2 $name / fastest kernel" "$(awk -v a="$per_core" -v b="$best1" 'BEGIN { printf "%.0f", 100 * a / b }') % of $fastest on 1 thread per core ($(awk -v r="$rows" -v d="$per_derivation" -v s="$cpu" -v b="$best1" 'BEGIN { printf "%.0f", 100 * r * d / s / b }') % per CPU-second), $(awk -v a="$per_core" -v b="$per_thread_all" 'BEGIN { if (b > 0) printf "%.0f", 100 * a / b; else printf "?" }') % of its per-thread rate on $cores threads; by round $(for t in ${GROUP_TIMES[index]}; do awk -v r="$rows" -v d="$per_derivation" -v s="$t" -v c="$cores" -v b="$best1" 'BEGIN { printf "%.0f%% ", 100 * r * d / s / c / b }'; done)"
    index=$(( index + 1 ))
  done
  [ "${PBKDF2_SUITE:-1}" = 0 ] && return

  run_suite 'PBKDF2.*'
  local fast ref py
  fast=$(p50_us "PBKDF2 fast")
  local pair
  pair=$(p50_us "PBKDF2 pair interleaved")
  ref=$(p50_us "PBKDF2 OpenSSL PKCS5")

  echo
  echo "== scripts/bench/bench_pbkdf2.py (Python cryptography, median of 7 runs x 2000 derivations)"
  python3 "$ROOT/scripts/bench/bench_pbkdf2.py" --runs 7 --n 2000 | tee "$LOG_DIR/py.out"
  py=$(sed -n 's/^RESULT python_cryptography us_per_derivation=\([0-9.]*\) .*/\1/p' "$LOG_DIR/py.out")
  py=$(awk -v v="$py" 'BEGIN { if (v != "") printf "%.1f", v }')
  [ -n "$py" ] || { echo "bench: no RESULT line from bench_pbkdf2.py" >&2; exit 1; }

  add_summary "PBKDF2 toolcfg fast (p50)" "$fast µs per derivation ($(per_s "$fast")/s)"
  add_summary "PBKDF2 toolcfg pair on SHA-NI (p50 / 2)" "$(awk -v p="$pair" 'BEGIN { printf "%.1f", p / 2 }') µs per derivation"
  if grep -qx "PBKDF2 sixteen lanes AVX-512" "$LOG_DIR/suite.out"; then
    add_summary "PBKDF2 toolcfg 16 lanes AVX-512 (p50 / 16)" "$(awk -v p="$(p50_us "PBKDF2 sixteen lanes AVX-512")" 'BEGIN { printf "%.1f", p / 16 }') µs per derivation"
  fi
  add_summary "PBKDF2 OpenSSL PKCS5_PBKDF2_HMAC (p50)" "$ref µs per derivation ($(per_s "$ref")/s)"
  add_summary "PBKDF2 Python cryptography (median)" "$py µs per derivation ($(per_s "$py")/s)"
  add_summary "PBKDF2 ratio python / toolcfg-fast" "$(ratio "$py" "$fast")x"
  add_summary "PBKDF2 ratio OpenSSL PKCS5 / toolcfg-fast" "$(ratio "$ref" "$fast")x"
}

# Times one run of a command after running $2 (set-up), prints it, and sets LAST_S (wall
# seconds), LAST_CPU_S (user + system seconds) and LAST_RSS_KIB (peak RSS) from /usr/bin/time.
time_once() {
  local label="$1" setup="$2" run="$3" line; shift 3
  eval "$setup"
  /usr/bin/time -f 'TIME %e %M %U %S' -o "$LOG_DIR/time.out" "$@" >/dev/null 2>"$LOG_DIR/cmd.err" \
    || { echo "bench: $label failed:" >&2; cat "$LOG_DIR/cmd.err" >&2; exit 1; }
  line=$(grep '^TIME ' "$LOG_DIR/time.out" | tail -1)
  LAST_S=$(echo "$line" | awk '{print $2}')
  LAST_RSS_KIB=$(echo "$line" | awk '{print $3}')
  LAST_CPU_S=$(echo "$line" | awk '{printf "%.2f", $4 + $5}')
  echo "   $label run $run: $LAST_S s (CPU $LAST_CPU_S s), peak RSS $(( LAST_RSS_KIB / 1024 )) MiB"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
max_mib() { printf '%s\n' "$@" | sort -g | tail -1 | awk '{printf "%.0f", $1/1024}'; }

# Runs a command $RUNS times (after $2 as set-up each time), and sets MEDIAN_S and MAX_RSS_MIB:
# the median wall time and the largest peak RSS.
measure() {
  local label="$1" setup="$2" times=() rss=() i; shift 2
  for i in $(seq 1 "$RUNS"); do
    time_once "$label" "$setup" "$i" "$@"
    times+=("$LAST_S"); rss+=("$LAST_RSS_KIB")
  done
  MEDIAN_S=$(median "${times[@]}")
  MAX_RSS_MIB=$(max_mib "${rss[@]}")
}

# Commands measured round-robin, $RUNS rounds (A, B, C, A, B, C, ...), so that a change in the
# shared machine's speed during the section falls on all of them. Arguments: label, set-up and
# command (a string for bash -c) for each. Sets, for command i, GROUP_MEDIAN_S[i],
# GROUP_CPU_MEDIAN_S[i], GROUP_MAX_RSS_MIB[i] and GROUP_TIMES[i] (the wall times of its runs).
measure_group() {
  local count=$(( $# / 3 )) args=("$@") i run
  local -a cpu rss
  GROUP_TIMES=()
  for i in $(seq 0 $(( count - 1 ))); do GROUP_TIMES[i]=""; cpu[i]=""; rss[i]=""; done
  for run in $(seq 1 "$RUNS"); do
    for i in $(seq 0 $(( count - 1 ))); do
      time_once "${args[3 * i]}" "${args[3 * i + 1]}" "$run" bash -c "${args[3 * i + 2]}"
      GROUP_TIMES[i]+=" $LAST_S"; cpu[i]+=" $LAST_CPU_S"; rss[i]+=" $LAST_RSS_KIB"
    done
  done
  GROUP_MEDIAN_S=(); GROUP_CPU_MEDIAN_S=(); GROUP_MAX_RSS_MIB=()
  for i in $(seq 0 $(( count - 1 ))); do
    # shellcheck disable=SC2086  # word splitting of the collected values is intended
    GROUP_MEDIAN_S[i]=$(median ${GROUP_TIMES[i]}); GROUP_CPU_MEDIAN_S[i]=$(median ${cpu[i]}); GROUP_MAX_RSS_MIB[i]=$(max_mib ${rss[i]})
  done
}

# The median over rounds of (run of A / run of B in the same round), from two GROUP_TIMES
# entries, and the smallest and largest of them: "median (min-max)". Each round's ratio compares
# runs made seconds apart, so it holds up better than a ratio of medians when the machine's load
# drifts during the section.
round_ratios() {
  local -a a=($1) b=($2) ratios=()
  local i
  for i in "${!a[@]}"; do ratios+=("$(ratio "${a[i]}" "${b[i]}")"); done
  printf '%s (%s-%s)' "$(median "${ratios[@]}")" "$(printf '%s\n' "${ratios[@]}" | sort -g | head -1)" "$(printf '%s\n' "${ratios[@]}" | sort -g | tail -1)"
}

# A command and its peer (label, set-up, command each), alternating. Sets A_MEDIAN_S,
# A_MAX_RSS_MIB, B_MEDIAN_S, B_MAX_RSS_MIB.
measure_pair() {
  measure_group "$@"
  A_MEDIAN_S=${GROUP_MEDIAN_S[0]}; A_MAX_RSS_MIB=${GROUP_MAX_RSS_MIB[0]}
  B_MEDIAN_S=${GROUP_MEDIAN_S[1]}; B_MAX_RSS_MIB=${GROUP_MAX_RSS_MIB[1]}
}

# The columns of an export, in its order, for the sqlite3 shell's peers.
EXPORT_COLUMNS="id,user_id,tool_id,enabled,encrypted_api_key,salt,nonce,created_at,updated_at"

# $2/empty.db (migrated) and $2/big.db with $3 rows: distinct users, ten tools, one valid triple
# (export of stored keys does not decrypt it).
make_export_db() {
  local toolcfg="$1" work="$2" rows="$3"
  "$toolcfg" migrate up --db "$work/empty.db" 2>/dev/null
  cp "$work/empty.db" "$work/big.db"
  sqlite3 "$work/big.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
    INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
    SELECT 'user-' || (i / 10) || '-' || hex(randomblob(4)), 'builtin-tool-' || (i % 10), i % 2,
           'ZQ3DQwMN2PI0yGwFUAjhWw+LQngup7KfwIZ3aZLQodls7FQ=', '2zijAs+6VQLzqQ1sPQE22JYYMk/3lz4SPJ0aHz4ntWc=',
           'yevk7N8fzz+97s/1', 1700000000 + i, 1700000000 + i FROM n;"
}

# Export and import of a large table as CSV (keys encrypted), against the sqlite3 shell's CSV
# export and a Python csv + sqlite3 executemany import, in the same run. BENCH_ROWS (default
# 1,000,000) rows; RUNS (default 3) runs of each, interleaved.
section_snapshot() {
  local rows="${BENCH_ROWS:-1000000}" work="$LOG_DIR/snapshot" toolcfg
  echo
  echo "######## snapshot: $rows rows, CSV with encrypted keys"
  mkdir -p "$work"
  toolcfg=$(build_toolcfg)
  make_export_db "$toolcfg" "$work" "$rows"
  local tc_export sq_export tc_rss sq_rss export_rounds
  echo "== export: toolcfg export --format csv vs sqlite3 -csv -header of the same columns"
  # Like for like: both write to standard output redirected to a file. Then toolcfg's own --out,
  # which also fsyncs the file and renames it into place (what makes a backup durable).
  measure_pair "toolcfg export" ":" "'$toolcfg' export --db '$work/big.db' --format csv --out - > '$work/stdout.csv'" \
               "sqlite3 -csv  " ":" "sqlite3 -csv -header '$work/big.db' 'SELECT $EXPORT_COLUMNS FROM user_tool_configs ORDER BY id' > '$work/sqlite.csv'"
  tc_export=$A_MEDIAN_S; tc_rss=$A_MAX_RSS_MIB; sq_export=$B_MEDIAN_S; sq_rss=$B_MAX_RSS_MIB
  export_rounds=$(round_ratios "${GROUP_TIMES[0]}" "${GROUP_TIMES[1]}")
  local tc_file
  measure "toolcfg --out " "rm -f '$work/out.csv'" "$toolcfg" export --db "$work/big.db" --out "$work/out.csv"
  tc_file=$MEDIAN_S

  local tc_import py_import tc_irss py_irss import_rounds shell_rounds
  # The sqlite3 shell's .import of the same file into the same schema (WAL, one transaction,
  # no checks, no upsert: text in, as is) is the limit beside the peer.
  echo "== import into an empty migrated database: toolcfg import vs Python csv + sqlite3 executemany vs sqlite3 .import"
  measure_group "toolcfg import" "cp '$work/empty.db' '$work/t.db'" "'$toolcfg' import --db '$work/t.db' --in '$work/out.csv'" \
                "python import " "cp '$work/empty.db' '$work/p.db'" "python3 '$ROOT/scripts/bench/bench_import_peer.py' '$work/p.db' '$work/out.csv'" \
                "sqlite3 .import" "cp '$work/empty.db' '$work/s.db'" "sqlite3 '$work/s.db' -cmd 'PRAGMA journal_mode=WAL' '.import --csv --skip 1 $work/out.csv user_tool_configs' >/dev/null"
  tc_import=${GROUP_MEDIAN_S[0]}; tc_irss=${GROUP_MAX_RSS_MIB[0]}; py_import=${GROUP_MEDIAN_S[1]}; py_irss=${GROUP_MAX_RSS_MIB[1]}
  import_rounds=$(round_ratios "${GROUP_TIMES[1]}" "${GROUP_TIMES[0]}")
  shell_rounds=$(round_ratios "${GROUP_TIMES[2]}" "${GROUP_TIMES[0]}")
  [ "$(sqlite3 "$work/s.db" 'SELECT count(*) FROM user_tool_configs')" = "$rows" ] || { echo "bench: sqlite3 .import lost rows" >&2; exit 1; }
  [ "$(sqlite3 "$work/t.db" 'SELECT count(*) FROM user_tool_configs')" = "$rows" ] || { echo "bench: toolcfg import lost rows" >&2; exit 1; }

  add_summary "CSV export toolcfg (median)" "$tc_export s, $(awk -v r="$rows" -v s="$tc_export" 'BEGIN{printf "%.0f", r/s}') rows/s, peak RSS $tc_rss MiB"
  add_summary "CSV export toolcfg --out FILE, fsync (median)" "$tc_file s"
  add_summary "CSV export sqlite3 -csv (median)" "$sq_export s, peak RSS $sq_rss MiB"
  add_summary "CSV export ratio toolcfg / sqlite3" "$(ratio "$tc_export" "$sq_export")x; by round $export_rounds (<= 1: no slower)"
  add_summary "CSV import toolcfg (median)" "$tc_import s, $(awk -v r="$rows" -v s="$tc_import" 'BEGIN{printf "%.0f", r/s}') rows/s, peak RSS $tc_irss MiB"
  add_summary "CSV import Python csv+sqlite3 (median)" "$py_import s, peak RSS $py_irss MiB"
  add_summary "CSV import sqlite3 .import (median)" "${GROUP_MEDIAN_S[2]} s, peak RSS ${GROUP_MAX_RSS_MIB[2]} MiB"
  add_summary "CSV import ratio python / toolcfg" "$(ratio "$py_import" "$tc_import")x; by round $import_rounds (goal >= 2)"
  add_summary "CSV import ratio sqlite3 .import / toolcfg" "$(ratio "${GROUP_MEDIAN_S[2]}" "$tc_import")x; by round $shell_rounds"
}

# JSON and JSON Lines export of a large table (keys encrypted) against the sqlite3 shell's JSON
# export of the same columns, in the same run: both write to standard output redirected to a
# file. BENCH_ROWS (default 1,000,000) rows; RUNS runs of each, alternating.
section_json-export() {
  local rows="${BENCH_ROWS:-1000000}" work="$LOG_DIR/json-export" toolcfg format
  echo
  echo "######## json-export: $rows rows, JSON and JSON Lines with encrypted keys"
  mkdir -p "$work"
  toolcfg=$(build_toolcfg)
  make_export_db "$toolcfg" "$work" "$rows"
  for format in json jsonl; do
    echo "== export: toolcfg export --format $format vs sqlite3 -json of the same columns"
    measure_pair "toolcfg $format" ":" "'$toolcfg' export --db '$work/big.db' --format $format --out - > '$work/out.$format'" \
                 "sqlite3 -json" ":" "sqlite3 -json '$work/big.db' 'SELECT $EXPORT_COLUMNS FROM user_tool_configs ORDER BY id' > '$work/sqlite.json'"
    add_summary "JSON export toolcfg --format $format (median)" "$A_MEDIAN_S s, $(awk -v r="$rows" -v s="$A_MEDIAN_S" 'BEGIN{printf "%.0f", r/s}') rows/s, peak RSS $A_MAX_RSS_MIB MiB"
    add_summary "JSON export sqlite3 -json (median)" "$B_MEDIAN_S s, peak RSS $B_MAX_RSS_MIB MiB"
    add_summary "JSON export ratio toolcfg $format / sqlite3" "$(ratio "$A_MEDIAN_S" "$B_MEDIAN_S")x; by round $(round_ratios "${GROUP_TIMES[0]}" "${GROUP_TIMES[1]}") (<= 1: no slower)"
  done
}

# Decryption of DECRYPT_ROWS (default 100,000) real keys: verify-keys, export --keys plaintext
# and export --keys sealed (Argon2id at its default cost, once per file). The peer in every run is
# a plaintext import of the same keys into an empty table (as many PBKDF2 derivations, already
# paired); with BASELINE_REF=REV (e.g. main) each command also alternates with the toolcfg of
# that revision, built in .build-baseline, and the summary gives after / before.
section_decrypt() {
  local rows="${DECRYPT_ROWS:-100000}" work="$LOG_DIR/decrypt" toolcfg baseline=""
  echo
  echo "######## decrypt: $rows keys"
  mkdir -p "$work"
  toolcfg=$(build_toolcfg)
  [ -z "${BASELINE_REF:-}" ] || baseline=$(build_baseline_toolcfg "$BASELINE_REF")
  "$toolcfg" keygen --out "$work/master.key" 2>/dev/null
  printf 'correct horse battery staple' > "$work/passphrase"
  awk -v n="$rows" 'BEGIN { print "user_id,tool_id,enabled,api_key"
    for (i = 0; i < n; i++) printf "user-%d,tool-%d,%d,sk-live-%08d-abcdefghijklmnopqrstuvwxyz\n", i, i % 10, i % 2, i }' > "$work/keys.csv"
  "$toolcfg" migrate up --db "$work/empty.db" 2>/dev/null
  cp "$work/empty.db" "$work/keys.db"
  "$toolcfg" import --db "$work/keys.db" --in "$work/keys.csv" --master-key-file "$work/master.key" >/dev/null 2>&1
  "$toolcfg" export --db "$work/keys.db" --out "$work/encrypted.csv" 2>/dev/null
  local keys="--master-key-file '$work/master.key'"
  local names=(verify-keys plaintext sealed import-checked)
  local -A commands=(
    [verify-keys]="verify-keys --db '$work/keys.db' $keys > '$work/NAME.verify' 2>&1"
    [plaintext]="export --db '$work/keys.db' --keys plaintext $keys --out - --format jsonl > '$work/NAME.plain.jsonl'"
    [sealed]="export --db '$work/keys.db' --keys sealed $keys --passphrase-file '$work/passphrase' --out - --format jsonl > '$work/NAME.sealed.jsonl'"
    [import-checked]="import --db '$work/NAME.db' --in '$work/encrypted.csv' $keys > /dev/null 2>&1"
  )
  # The import of stored triples checked under the master key starts from an empty table.
  local -A setups=([import-checked]="cp '$work/empty.db' '$work/after.db'; cp '$work/empty.db' '$work/before.db'")
  # Round-robin: the import, then each command (and its baseline).
  local group=("toolcfg import" "cp '$work/empty.db' '$work/t.db'" "'$toolcfg' import --db '$work/t.db' --in '$work/keys.csv' $keys")
  local name
  for name in "${names[@]}"; do
    group+=("toolcfg $name" "${setups[$name]:-:}" "'$toolcfg' ${commands[$name]//NAME/after}")
    [ -z "$baseline" ] || group+=("$BASELINE_REF $name" "${setups[$name]:-:}" "'$baseline' ${commands[$name]//NAME/before}")
  done
  echo "== import of the plaintext keys into an empty table (the peer), verify-keys, export --keys plaintext, --keys sealed, an import of the stored triples checked under the master key${baseline:+, each also with the toolcfg of $BASELINE_REF}"
  measure_group "${group[@]}"
  local import_s=${GROUP_MEDIAN_S[0]} index=1 after before
  add_summary "Decrypt peer: import of $rows plaintext keys" "$import_s s (median; CPU ${GROUP_CPU_MEDIAN_S[0]} s), peak RSS ${GROUP_MAX_RSS_MIB[0]} MiB"
  for name in "${names[@]}"; do
    after=${GROUP_MEDIAN_S[index]}
    add_summary "Decrypt $name (median)" "$after s (CPU ${GROUP_CPU_MEDIAN_S[index]} s), peak RSS ${GROUP_MAX_RSS_MIB[index]} MiB"
    add_summary "Decrypt $name ratio / import" "$(ratio "$after" "$import_s")x; by round $(round_ratios "${GROUP_TIMES[index]}" "${GROUP_TIMES[0]}")"
    if [ -n "$baseline" ]; then
      before=${GROUP_MEDIAN_S[index + 1]}
      add_summary "Decrypt $name $BASELINE_REF (median)" "$before s (CPU ${GROUP_CPU_MEDIAN_S[index + 1]} s), peak RSS ${GROUP_MAX_RSS_MIB[index + 1]} MiB"
      add_summary "Decrypt $name ratio after / $BASELINE_REF" "$(ratio "$after" "$before")x; by round $(round_ratios "${GROUP_TIMES[index]}" "${GROUP_TIMES[index + 1]}"); CPU $(ratio "${GROUP_CPU_MEDIAN_S[index]}" "${GROUP_CPU_MEDIAN_S[index + 1]}")x"
      index=$(( index + 2 ))
    else
      index=$(( index + 1 ))
    fi
  done
  # Results unchanged: every key verifies, and the plaintext export is the baseline's byte for byte.
  grep -q "^ok" "$work/after.verify" || { echo "bench: verify-keys did not report ok" >&2; exit 1; }
  if [ -n "$baseline" ]; then
    cmp -s "$work/after.plain.jsonl" "$work/before.plain.jsonl" || { echo "bench: plaintext exports differ from $BASELINE_REF" >&2; exit 1; }
  fi
}

# Rotation of ROTATION_ROWS (default 5,000) keys written by Python's cryptography, against a
# Python sqlite3 + cryptography script doing the same rotation in one transaction. Each run starts
# from the same database; RUNS runs each, interleaved. Peak RSS at 1,000,000 rows with
# ROTATION_RSS_ROWS=1000000 (that run alone takes a few minutes).
section_rotation() {
  local rows="${ROTATION_ROWS:-5000}" work="$LOG_DIR/rotation" toolcfg
  echo
  echo "######## rotation: $rows rows"
  mkdir -p "$work"
  toolcfg=$(build_toolcfg)
  "$toolcfg" keygen --out "$work/old.key" 2>/dev/null
  "$toolcfg" keygen --out "$work/new.key" 2>/dev/null
  "$toolcfg" migrate up --db "$work/base.db" 2>/dev/null
  python3 "$ROOT/scripts/bench/bench_rotation_peer.py" make "$work/base.db" "$rows" "$work/old.key"
  local tc py
  measure_pair "toolcfg rotate" "cp '$work/base.db' '$work/t.db'" "'$toolcfg' rotate --db '$work/t.db' --master-key-file '$work/old.key' --new-master-key-file '$work/new.key'" \
               "python rotate " "cp '$work/base.db' '$work/p.db'" "python3 '$ROOT/scripts/bench/bench_rotation_peer.py' rotate '$work/p.db' '$work/old.key' '$work/new.key'"
  tc=$A_MEDIAN_S; py=$B_MEDIAN_S
  "$toolcfg" verify-keys --db "$work/t.db" --master-key-file "$work/new.key" >/dev/null 2>&1 || { echo "bench: rotated keys do not verify" >&2; exit 1; }
  add_summary "Rotation toolcfg (median, $rows rows)" "$tc s, $(awk -v r="$rows" -v s="$tc" 'BEGIN{printf "%.0f", r/s}') rows/s"
  add_summary "Rotation Python sqlite3+cryptography" "$py s, $(awk -v r="$rows" -v s="$py" 'BEGIN{printf "%.0f", r/s}') rows/s"
  add_summary "Rotation ratio python / toolcfg" "$(ratio "$py" "$tc")x; by round $(round_ratios "${GROUP_TIMES[1]}" "${GROUP_TIMES[0]}") (goal >= 5)"
  if [ -n "${ROTATION_RSS_ROWS:-}" ]; then
    make_keyed_db "$toolcfg" "$work/big.db" "$ROTATION_RSS_ROWS" "$work/old.key"
    RUNS=1 measure "toolcfg rotate $ROTATION_RSS_ROWS rows" ":" "$toolcfg" rotate --db "$work/big.db" --master-key-file "$work/old.key" --new-master-key-file "$work/new.key"
    add_summary "Rotation of $ROTATION_RSS_ROWS rows" "$MEDIAN_S s, peak RSS $MAX_RSS_MIB MiB"
  fi
}

# A migrated database at $2 with $3 user_tool_configs rows keyed under the master key in file $4.
# A million distinct valid triples would take minutes of Python; one triple repeated is the same
# work for a rotation (each row is decrypted and re-encrypted on its own).
# Scheme v2 (issue: at most 2x the time of one UPDATE of the same columns of the same rows with
# fixed values, peak RSS at most 64 MiB): V2_ROWS values (default 1,000,000) over three column
# groups of two tables (scripts/bench/bench_v2_database.py), rotated to a new key on SQLite and on a
# throwaway PostgreSQL (its durable defaults with PG_DURABLE=1), each beside its peer: the
# sqlite3 shell / psql running the three UPDATEs in one transaction (SQLite: WAL, synchronous
# FULL, as the rotation commits).
section_rotation-v2() {
  local rows="${V2_ROWS:-1000000}" work="$LOG_DIR/rotation-v2" toolcfg url base
  echo
  echo "######## rotation-v2: $rows values in scheme v2 over three groups"
  mkdir -p "$work"
  toolcfg=$(build_toolcfg)
  "$toolcfg" keygen --out "$work/old.key" 2>/dev/null
  "$toolcfg" keygen --out "$work/new.key" 2>/dev/null
  local fixed="'v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=', 'CCCCCCCCCCCCCCCC'"
  local updates="UPDATE user_tool_configs SET (encrypted_api_key, salt, nonce) = ($fixed) WHERE encrypted_api_key IS NOT NULL;
    UPDATE mcp_oauth_tokens SET (encrypted_access_token, access_token_salt, access_token_nonce) = ($fixed);
    UPDATE mcp_oauth_tokens SET (encrypted_refresh_token, refresh_token_salt, refresh_token_nonce) = ($fixed) WHERE encrypted_refresh_token IS NOT NULL;"
  printf 'PRAGMA journal_mode = WAL;\nPRAGMA synchronous = FULL;\nBEGIN IMMEDIATE;\n%s\nCOMMIT;\n' "$updates" > "$work/update-sqlite.sql"
  printf 'BEGIN;\n%s\nCOMMIT;\n' "$updates" > "$work/update-postgres.sql"

  "$toolcfg" migrate up --db "$work/base.db" 2>/dev/null
  python3 "$ROOT/scripts/bench/bench_v2_database.py" sqlite "$work/base.db" "$rows" "$work/old.key"
  sqlite3 "$work/base.db" "PRAGMA journal_mode = WAL" >/dev/null
  # The staged floor: the same rotation's reads, stage, compare-and-swap UPDATEs and read-back
  # with fixed values and no cryptography (scripts/bench/staged_floor.py), what the design costs.
  python3 "$ROOT/scripts/bench/staged_floor.py" sqlite > "$work/floor-sqlite.sql"
  measure_group "toolcfg rotate (SQLite)" "cp '$work/base.db' '$work/t.db'" \
                  "'$toolcfg' rotate --db '$work/t.db' --master-key-file '$work/old.key' --new-master-key-file '$work/new.key'" \
                "sqlite3 UPDATE peer" "cp '$work/base.db' '$work/p.db'" "sqlite3 '$work/p.db' < '$work/update-sqlite.sql'" \
                "sqlite3 staged floor" "cp '$work/base.db' '$work/f.db'" "sqlite3 '$work/f.db' < '$work/floor-sqlite.sql' > /dev/null"
  "$toolcfg" verify-keys --db "$work/t.db" --master-key-file "$work/new.key" >/dev/null 2>&1 || true
  v2_summary SQLite "$rows"

  start_section_cluster ${PG_DURABLE:+TOOLCFG_PG_DURABLE=1}
  describe_pg_server "$PG_URL" fsync synchronous_commit shared_buffers
  base=${PG_URL/\/toolcfg\?//v2base?}
  psql -X -q "$PG_URL" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS v2base" -c "CREATE DATABASE v2base"
  "$toolcfg" migrate up --db "$base" -q
  python3 "$ROOT/scripts/bench/bench_v2_database.py" postgres "$base" "$rows" "$work/old.key"
  url=${PG_URL/\/toolcfg\?//v2run?}
  local copy="psql -X -q '$PG_URL' -c 'DROP DATABASE IF EXISTS v2run' -c 'CREATE DATABASE v2run TEMPLATE v2base' && psql -X -q '$url' -c 'VACUUM ANALYZE' -c CHECKPOINT"
  python3 "$ROOT/scripts/bench/staged_floor.py" postgres "$work/floor-stage" > "$work/floor-postgres.sql"
  measure_group "toolcfg rotate (PostgreSQL)" "$copy" \
                  "'$toolcfg' rotate --db '$url' --master-key-file '$work/old.key' --new-master-key-file '$work/new.key'" \
                "psql UPDATE peer" "$copy" "psql -X -q -v ON_ERROR_STOP=1 '$url' -f '$work/update-postgres.sql'" \
                "psql staged floor" "$copy" "psql -X -q '$url' -f '$work/floor-postgres.sql' > /dev/null"
  stop_section_cluster
  v2_summary PostgreSQL "$rows"
}

# The summary of one engine's rotation-v2 group (toolcfg, the UPDATE peer, the staged floor).
v2_summary() {
  local engine="$1" rows="$2"
  add_summary "Rotation v2 $engine ($rows values, median)" "${GROUP_MEDIAN_S[0]} s, peak RSS ${GROUP_MAX_RSS_MIB[0]} MiB"
  add_summary "UPDATE peer $engine (median)" "${GROUP_MEDIAN_S[1]} s"
  add_summary "Staged floor $engine (median)" "${GROUP_MEDIAN_S[2]} s"
  add_summary "Rotation v2 / UPDATE, $engine" "$(round_ratios "${GROUP_TIMES[0]}" "${GROUP_TIMES[1]}") (goal <= 2x)"
  add_summary "Staged floor / UPDATE, $engine" "$(round_ratios "${GROUP_TIMES[2]}" "${GROUP_TIMES[1]}") (the design's own cost)"
  add_summary "Rotation v2 / staged floor, $engine" "$(round_ratios "${GROUP_TIMES[0]}" "${GROUP_TIMES[2]}") (toolcfg's own work)"
}

make_keyed_db() {
  local toolcfg="$1" db="$2" rows="$3" key="$4" triple
  "$toolcfg" migrate up --db "$db" 2>/dev/null
  triple=$(python3 - "$key" <<'PY'
import base64, os, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
master = base64.b64decode(open(sys.argv[1]).read().strip())
salt, nonce = os.urandom(32), os.urandom(12)
key = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=1000).derive(master)
sealed = AESGCM(key).encrypt(nonce, b"sk-bench-key-0123456789abcdef", None)
print("'%s','%s','%s'" % tuple(base64.b64encode(x).decode() for x in (sealed, salt, nonce)))
PY
)
  sqlite3 "$db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
    INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
    SELECT 'user-' || i, 'tool-' || (i % 10), i % 2, $triple, 1700000000, 1700000000 FROM n;"
}

# Runs command $3 (a string for bash -c, printing toolcfg's --json report) on database $2 beside
# the stand-in application (scripts/bench/bench_live_app.py) started a second before it and stopped a
# second after, and records what the application felt: writes, failures, longest and p99 wait,
# with toolcfg's write-lock and total time from its report (when it gives them).
live_run() {
  local label="$1" db="$2" command="$3" app_pid report app
  python3 "$ROOT/scripts/bench/bench_live_app.py" "$db" >"$LOG_DIR/app.json" 2>"$LOG_DIR/app.err" &
  app_pid=$!
  for _ in $(seq 1 100); do grep -q ready "$LOG_DIR/app.err" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  /usr/bin/time -f 'TIME %e %M' -o "$LOG_DIR/time.out" bash -c "$command" >"$LOG_DIR/live.json" 2>"$LOG_DIR/cmd.err" \
    || { kill -TERM "$app_pid"; echo "bench: $label failed:" >&2; cat "$LOG_DIR/cmd.err" >&2; exit 1; }
  sleep 1
  kill -TERM "$app_pid"
  wait "$app_pid" || true
  report=$(python3 - "$LOG_DIR/live.json" "$LOG_DIR/time.out" "$LOG_DIR/app.json" <<'PY'
import json, sys
try:
    tool = json.load(open(sys.argv[1]))
except ValueError:
    tool = {}
seconds, rss = open(sys.argv[2]).read().split("TIME ")[-1].split()
app = json.loads(open(sys.argv[3]).read().strip().splitlines()[-1])
lock = tool.get("write_lock_seconds")
rooms = [t["room"] for t in tool.get("tables", []) if "room" in t]
room = ("; room made first: %d rows moved in %d transactions, longest %.3f s"
        % (sum(r["rows_moved"] for r in rooms), sum(r["batches"] for r in rooms), max(r["longest_batch_seconds"] for r in rooms))) if rooms else ""
print("%s s, peak RSS %d MiB, write lock %s%s; application: %d writes, %d failed, longest wait %.3f s, p99 %.3f s"
      % (seconds, int(rss) // 1024, "%.3f s" % lock if lock is not None else "not reported", room,
         app["writes"], app["failures"], app["wait_max_seconds"] or 0, app["wait_p99_seconds"] or 0))
PY
)
  echo "   $label: $report"
  add_summary "$label" "$report"
}

# Rotate and import on a live database, beside the stand-in application (sqlx-like: 5 s busy
# timeout, a short write every 20 ms, 50 % of them to user_tool_configs): LIVE_ROWS (default
# 200,000) rows rotated and plaintext keys imported, then a rotation of LIVE_BIG_ROWS (default
# 1,000,000; 0 skips it). With BASELINE_TOOLCFG (another build, e.g. of the commit before a
# change) the same runs are made with it, and the two rotations are timed without the stand-in,
# alternating, RUNS times each.
section_live() {
  local rows="${LIVE_ROWS:-200000}" big="${LIVE_BIG_ROWS:-1000000}" work="$LOG_DIR/live" toolcfg
  echo
  echo "######## live: $rows rows beside a writing application${BASELINE_TOOLCFG:+ (baseline: $BASELINE_TOOLCFG)}"
  mkdir -p "$work"
  toolcfg=$(build_toolcfg)
  "$toolcfg" keygen --out "$work/old.key" 2>/dev/null
  "$toolcfg" keygen --out "$work/new.key" 2>/dev/null
  make_keyed_db "$toolcfg" "$work/keyed.db" "$rows" "$work/old.key"
  "$toolcfg" migrate up --db "$work/empty.db" 2>/dev/null
  awk -v n="$rows" 'BEGIN { print "user_id,tool_id,enabled,api_key"; for (i = 1; i <= n; i++) printf "user-%d,tool-%d,%d,sk-onboarding-%d-0123456789abcdef\n", i, i % 10, i % 2, i }' >"$work/onboarding.csv"
  local names=(toolcfg) binaries=("$toolcfg") i
  if [ -n "${BASELINE_TOOLCFG:-}" ]; then names+=(baseline); binaries+=("$BASELINE_TOOLCFG"); fi
  for i in "${!binaries[@]}"; do
    cp "$work/keyed.db" "$work/r.db"
    live_run "Live rotate $rows rows (${names[$i]})" "$work/r.db" \
      "'${binaries[$i]}' rotate --db '$work/r.db' --master-key-file '$work/old.key' --new-master-key-file '$work/new.key' --json"
    cp "$work/empty.db" "$work/i.db"
    live_run "Live import $rows plaintext keys (${names[$i]})" "$work/i.db" \
      "'${binaries[$i]}' import --db '$work/i.db' --in '$work/onboarding.csv' --master-key-file '$work/old.key' --json"
  done
  if [ "$big" -gt 0 ]; then
    make_keyed_db "$toolcfg" "$work/big.db" "$big" "$work/old.key"
    live_run "Live rotate $big rows (toolcfg)" "$work/big.db" \
      "'$toolcfg' rotate --db '$work/big.db' --master-key-file '$work/old.key' --new-master-key-file '$work/new.key' --json"
  fi
  # The write lock's time as a function of rows, without the application: LIVE_CURVE sizes.
  local n lock
  for n in ${LIVE_CURVE:-10000 50000}; do
    make_keyed_db "$toolcfg" "$work/curve-$n.db" "$n" "$work/old.key"
    lock=$("$toolcfg" rotate --db "$work/curve-$n.db" --master-key-file "$work/old.key" --new-master-key-file "$work/new.key" --json \
      | python3 -c 'import json, sys; r = json.load(sys.stdin); print("%.3f s of %.2f s" % (r["write_lock_seconds"], r["elapsed_seconds"]))')
    add_summary "Write lock, rotate $n rows" "$lock"
    "$toolcfg" migrate up --db "$work/curve-import-$n.db" 2>/dev/null
    head -n $((n + 1)) "$work/onboarding.csv" >"$work/curve-$n.csv"
    lock=$("$toolcfg" import --db "$work/curve-import-$n.db" --in "$work/curve-$n.csv" --master-key-file "$work/old.key" --json \
      | python3 -c 'import json, sys; r = json.load(sys.stdin); print("%.3f s of %.2f s" % (r["write_lock_seconds"], r["elapsed_seconds"]))')
    add_summary "Write lock, import $n plaintext keys" "$lock"
  done
  if [ -n "${BASELINE_TOOLCFG:-}" ]; then
    echo "== rotation of $rows rows without the application: toolcfg vs baseline"
    measure_pair "toolcfg rotate " "cp '$work/keyed.db' '$work/a.db'" "'$toolcfg' rotate --db '$work/a.db' --master-key-file '$work/old.key' --new-master-key-file '$work/new.key'" \
                 "baseline rotate" "cp '$work/keyed.db' '$work/b.db'" "'$BASELINE_TOOLCFG' rotate --db '$work/b.db' --master-key-file '$work/old.key' --new-master-key-file '$work/new.key'"
    add_summary "Rotate $rows rows, toolcfg (median)" "$A_MEDIAN_S s, peak RSS $A_MAX_RSS_MIB MiB"
    add_summary "Rotate $rows rows, baseline (median)" "$B_MEDIAN_S s, peak RSS $B_MAX_RSS_MIB MiB"
    add_summary "Rotate ratio toolcfg / baseline" "$(ratio "$A_MEDIAN_S" "$B_MEDIAN_S")x (at most 1.15 wanted)"
  fi
}

# A throwaway PostgreSQL cluster for one section (scripts/pg.sh), its URL in PG_URL, stopped and
# removed when the section calls stop_section_cluster or the run ends, however it ends. Its folder
# is under /tmp rather than $LOG_DIR (0700): as root, the server runs as the postgres user.
# Arguments (VAR=VALUE) go to pg.sh's environment.
start_section_cluster() {
  PG_SECTION_DIR=$(mktemp -d "${TMPDIR:-/tmp}/toolcfg-bench-pg.XXXXXX")
  trap 'TOOLCFG_PG_DIR="$PG_SECTION_DIR" bash "$ROOT/scripts/pg.sh" stop; rm -rf "$LOG_DIR"' EXIT
  PG_URL=$(env TOOLCFG_PG_DIR="$PG_SECTION_DIR" "$@" bash "$ROOT/scripts/pg.sh" start)
}

# One line on the server at URL $1: its version and the settings named after it.
describe_pg_server() {
  local url="$1"; shift
  local names; names=$(printf "'%s'," "$@")
  echo "== PostgreSQL $(psql -X -At "$url" -c 'SHOW server_version') at $url: $(psql -X -At "$url" -c \
    "SELECT string_agg(name || ' ' || setting, ', ' ORDER BY array_position(ARRAY[${names%,}], name)) FROM pg_settings WHERE name IN (${names%,})")"
}

stop_section_cluster() {
  TOOLCFG_PG_DIR="$PG_SECTION_DIR" bash "$ROOT/scripts/pg.sh" stop
  trap 'rm -rf "$LOG_DIR"' EXIT
}

# Export and import of BENCH_ROWS (default 1,000,000) rows on PostgreSQL, on a throwaway cluster
# of the section's own (scripts/pg.sh, stopped and removed at the end): an import of a CSV export
# (keys encrypted) into an empty migrated table against psql's \copy into a temporary staging
# table plus one INSERT ... SELECT ... ON CONFLICT DO UPDATE in one transaction; an export as CSV
# against psql's \copy (SELECT ... ORDER BY id) TO STDOUT CSV. Each run starts after a CHECKPOINT
# (the import's also on an emptied table); RUNS runs of each, alternating with its peer.
section_postgres() {
  local rows="${BENCH_ROWS:-1000000}" work="$LOG_DIR/postgres" toolcfg url
  echo
  echo "######## postgres: $rows rows, CSV with encrypted keys"
  mkdir -p "$work"
  toolcfg=$(build_toolcfg)
  start_section_cluster
  url=$PG_URL
  "$toolcfg" migrate up --db "$url" -q
  make_export_db "$toolcfg" "$work" "$rows"
  "$toolcfg" export --db "$work/big.db" --out "$work/in.csv" -q
  cat >"$work/peer-import.sql" <<SQL
BEGIN;
CREATE TEMP TABLE staging (id BIGINT, user_id TEXT, tool_id TEXT, enabled BOOLEAN, encrypted_api_key TEXT, salt TEXT,
                           nonce TEXT, created_at BIGINT, updated_at BIGINT) ON COMMIT DROP;
\copy staging FROM '$work/in.csv' WITH (FORMAT csv, HEADER true)
INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
SELECT user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at FROM staging
ON CONFLICT (user_id, tool_id) DO UPDATE SET enabled = excluded.enabled, encrypted_api_key = excluded.encrypted_api_key,
    salt = excluded.salt, nonce = excluded.nonce, updated_at = excluded.updated_at;
COMMIT;
SQL
  local empty="psql -X -q '$url' -c 'TRUNCATE user_tool_configs RESTART IDENTITY' -c CHECKPOINT"
  echo "== import into an empty migrated table: toolcfg import vs psql \\copy to a staging table + INSERT ... ON CONFLICT"
  measure_pair "toolcfg import" "$empty" "'$toolcfg' import --db '$url' --in '$work/in.csv' --json > '$work/import.json'" \
               "psql import   " "$empty" "psql -X -q -v ON_ERROR_STOP=1 '$url' -f '$work/peer-import.sql'"
  local import_times="${GROUP_TIMES[0]}" peer_import_times="${GROUP_TIMES[1]}" tc_import=$A_MEDIAN_S tc_irss=$A_MAX_RSS_MIB peer_import=$B_MEDIAN_S
  # The last run was the peer's: load the table with toolcfg once more, check it, and keep it.
  eval "$empty"
  "$toolcfg" import --db "$url" --in "$work/in.csv" --json > "$work/import.json"
  [ "$(psql -X -qtA "$url" -c 'SELECT count(*) FROM user_tool_configs')" = "$rows" ] || { echo "bench: toolcfg import lost rows" >&2; exit 1; }
  local lock
  lock=$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print("%.2f s of %.2f s" % (r["write_lock_seconds"], r["elapsed_seconds"]))' "$work/import.json")

  echo "== export as CSV: toolcfg export --format csv vs psql \\copy (SELECT ... ORDER BY id) TO STDOUT CSV HEADER"
  measure_pair "toolcfg export" "psql -X -q '$url' -c CHECKPOINT" "'$toolcfg' export --db '$url' --format csv --out - > '$work/out.csv'" \
               "psql export   " "psql -X -q '$url' -c CHECKPOINT" "psql -X -q '$url' -c '\\copy (SELECT $EXPORT_COLUMNS FROM user_tool_configs ORDER BY id) TO STDOUT CSV HEADER' > '$work/peer.csv'"
  # What toolcfg wrote is what it read (ids were given in file order from 1, as in the source).
  cmp -s "$work/out.csv" "$work/in.csv" || { echo "bench: the export differs from the imported file" >&2; exit 1; }

  add_summary "PostgreSQL import toolcfg (median)" "$tc_import s, $(awk -v r="$rows" -v s="$tc_import" 'BEGIN{printf "%.0f", r/s}') rows/s, peak RSS $tc_irss MiB, write lock $lock (last run)"
  add_summary "PostgreSQL import psql \\copy + ON CONFLICT (median)" "$peer_import s"
  add_summary "PostgreSQL import ratio toolcfg / psql" "$(ratio "$tc_import" "$peer_import")x; by round $(round_ratios "$import_times" "$peer_import_times") (<= 1.0 wanted)"
  add_summary "PostgreSQL export CSV toolcfg (median)" "$A_MEDIAN_S s, peak RSS $A_MAX_RSS_MIB MiB"
  add_summary "PostgreSQL export CSV psql \\copy (median)" "$B_MEDIAN_S s"
  add_summary "PostgreSQL export ratio toolcfg / psql" "$(ratio "$A_MEDIAN_S" "$B_MEDIAN_S")x; by round $(round_ratios "${GROUP_TIMES[0]}" "${GROUP_TIMES[1]}") (<= 1.0 wanted)"
  stop_section_cluster
}

# `toolcfg stress` (writer threads, the correct write, 8 pairs, seed 1) with 8, 16 and 32 writers x
# STRESS_OPS (default 2000) operations each, on PostgreSQL and on SQLite in the same run: RUNS
# rounds, each running every size on both engines, each run on a new migrated database. PostgreSQL
# is a throwaway cluster of this section's own (scripts/pg.sh, stopped when the section ends,
# however the run ends) that keeps the server's durable defaults (fsync, synchronous_commit on),
# since SQLite syncs its WAL at every commit; STRESS_PG_DURABLE=0 runs it as the tests do (fsync
# off). Summary: the medians of operations/s, upsert p99 and lock p99 per engine and size, and
# the ratio of operations/s (of the medians, and the median and range of each round's).
section_stress-postgres() {
  local ops="${STRESS_OPS:-2000}" work="$LOG_DIR/stress-postgres" toolcfg url round n engine db report ops_s up99 lk99
  echo
  echo "######## stress-postgres: 8, 16, 32 writers x $ops operations, PostgreSQL and SQLite"
  mkdir -p "$work"
  toolcfg=$(build_toolcfg)
  start_section_cluster TOOLCFG_PG_DURABLE="${STRESS_PG_DURABLE:-1}"
  url=$PG_URL
  describe_pg_server "$url" fsync synchronous_commit
  "$toolcfg" migrate up --db "$work/template.db" >/dev/null 2>&1
  local -A throughput upsert_p99 lock_p99
  for round in $(seq 1 "$RUNS"); do
    for n in 8 16 32; do
      for engine in sqlite postgresql; do
        if [ "$engine" = sqlite ]; then
          rm -f "$work/s.db"*; cp "$work/template.db" "$work/s.db"; db="$work/s.db"
        else
          psql -X -q "$url" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS stress" -c "CREATE DATABASE stress"
          db=${url/\/toolcfg\?//stress?}
          "$toolcfg" migrate up --db "$db" >/dev/null 2>&1
        fi
        report=$("$toolcfg" stress --db "$db" --writers "$n" --ops "$ops" --seed 1 --json 2>"$LOG_DIR/cmd.err") \
          || { echo "bench: stress on $engine with $n writers failed:" >&2; cat "$LOG_DIR/cmd.err" >&2; exit 1; }
        read -r ops_s up99 lk99 < <(echo "$report" | python3 -c 'import json, sys; r = json.load(sys.stdin); l = r["latency"]
print("%.0f %.1f %.1f" % (r["operations_per_second"], l["upsert"]["p99_seconds"] * 1e3, l["lock_acquisition"]["p99_seconds"] * 1e3))')
        echo "   round $round, $engine, $n writers: $ops_s operations/s, upsert p99 $up99 ms, lock p99 $lk99 ms"
        throughput[$engine.$n]+=" $ops_s"; upsert_p99[$engine.$n]+=" $up99"; lock_p99[$engine.$n]+=" $lk99"
      done
    done
  done
  stop_section_cluster
  for n in 8 16 32; do
    for engine in postgresql sqlite; do
      # shellcheck disable=SC2086  # word splitting of the collected values is intended
      add_summary "Stress $engine, $n writers (median)" "$(median ${throughput[$engine.$n]}) operations/s, upsert p99 $(median ${upsert_p99[$engine.$n]}) ms, lock p99 $(median ${lock_p99[$engine.$n]}) ms"
    done
    # shellcheck disable=SC2086
    add_summary "Stress ratio postgresql / sqlite, $n writers" "$(ratio "$(median ${throughput[postgresql.$n]})" "$(median ${throughput[sqlite.$n]})")x operations/s; by round $(round_ratios "${throughput[postgresql.$n]}" "${throughput[sqlite.$n]}")"
  done
}

# A database $2 made anew on the cluster at URL $1 (the URL of its database `toolcfg`), migrated
# by toolcfg $5, with $3 user_tool_configs rows keyed under the master key in file $4 (by COPY:
# scripts/bench/bench_rotation_peer_pg.py make), vacuumed so that every copy of it starts alike.
# Prints the database's URL.
make_keyed_pg_database() {
  local cluster="$1" name="$2" rows="$3" key="$4" toolcfg="$5" url
  url=${cluster/\/toolcfg\?//$name?}
  psql -X -q "$cluster" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name"
  "$toolcfg" migrate up --db "$url" -q
  # PG_FILLFACTOR leaves room on each page, as a table gets once its fillfactor is set and one
  # rotation has moved its rows: every later rotation then updates in place (HOT; see docs/postgresql.md, Rotation on PostgreSQL).
  [ -z "${PG_FILLFACTOR:-}" ] || psql -X -q "$url" -c "ALTER TABLE user_tool_configs SET (fillfactor = $PG_FILLFACTOR)"
  python3 "$ROOT/scripts/bench/bench_rotation_peer_pg.py" make "$url" "$rows" "$key"
  psql -X -q "$url" -c "VACUUM ANALYZE user_tool_configs"
  echo "$url"
}

# Every key of the database at URL $2 opens under the master key in file $3, by verify-keys of
# toolcfg $1; with $6 = python, also by the Python peer's own decryption, which must find $4
# keyed rows. $5 names the rotation in the error.
check_pg_rotated() {
  local toolcfg="$1" url="$2" key="$3" rows="$4" label="$5" python="${6:-}" report
  "$toolcfg" verify-keys --db "$url" --master-key-file "$key" >"$LOG_DIR/verify.out" 2>&1 \
    || { echo "bench: after $label, verify-keys under the new key fails:" >&2; tail -5 "$LOG_DIR/verify.out" >&2; exit 1; }
  [ "$python" = python ] || return 0
  report=$(python3 "$ROOT/scripts/bench/bench_rotation_peer_pg.py" check "$url" "$key" 2>"$LOG_DIR/check.err") \
    || { echo "bench: after $label, rows do not open under the new key in Python:" >&2; head -5 "$LOG_DIR/check.err" >&2; exit 1; }
  [ "$(echo "$report" | python3 -c 'import json, sys; print(json.load(sys.stdin)["rows"])')" = "$rows" ] \
    || { echo "bench: after $label, not $rows keyed rows: $report" >&2; exit 1; }
}

# Rotation on PostgreSQL, on a throwaway cluster of the section's own (scripts/pg.sh, stopped and
# removed when the section ends, however it ends):
#   (a) ROTATION_ROWS (default 5,000) keyed rows rotated by toolcfg and by a Python psycopg +
#       cryptography script in one transaction (scripts/bench/bench_rotation_peer_pg.py rotate), RUNS
#       rounds alternating, each run on a new copy of one template database (CREATE DATABASE ...
#       TEMPLATE, then a CHECKPOINT); every toolcfg result and the last Python one checked by
#       verify-keys and by Python's own decryption;
#   (b) a rotation of PG_ROTATION_RSS_ROWS (default 1,000,000; 0 skips it) rows: time, peak RSS,
#       write phase; as inserted, then with --make-room (each on a new database);
#   (c) PG_LIVE_ROWS (default 200,000; 0 skips it) rows rotated beside the stand-in application
#       (scripts/bench/bench_live_app.py on the URL: a short autocommit write every 20 ms, 40 % of them
#       row UPDATEs of user_tool_configs, lock_timeout 5 s), as section_live does on SQLite: once
#       as the rows were inserted, once with --make-room (each on a new database).
# PG_FILLFACTOR=50 sets the table's fillfactor before it is filled (see make_keyed_pg_database);
# PG_DURABLE=1 runs the cluster with the server's durable defaults (fsync, full-page writes).
section_rotation-postgres() {
  local rows="${ROTATION_ROWS:-5000}" big="${PG_ROTATION_RSS_ROWS:-1000000}" live="${PG_LIVE_ROWS:-200000}"
  local work="$LOG_DIR/rotation-postgres" toolcfg url
  echo
  echo "######## rotation-postgres: $rows rows against Python psycopg, $big rows alone, $live rows beside an application (fillfactor ${PG_FILLFACTOR:-100})"
  mkdir -p "$work"
  toolcfg=$(build_toolcfg)
  start_section_cluster TOOLCFG_PG_DURABLE="${PG_DURABLE:-0}"
  url=$PG_URL
  describe_pg_server "$url" fsync full_page_writes
  "$toolcfg" keygen --out "$work/old.key" 2>/dev/null
  "$toolcfg" keygen --out "$work/new.key" 2>/dev/null
  local keys="--master-key-file '$work/old.key' --new-master-key-file '$work/new.key'"

  make_keyed_pg_database "$url" rotation_template "$rows" "$work/old.key" "$toolcfg" >/dev/null
  local tc_url=${url/\/toolcfg\?//rotated_toolcfg?} py_url=${url/\/toolcfg\?//rotated_python?}
  local copy="psql -X -q '$url' -c 'SET client_min_messages = warning' -c 'DROP DATABASE IF EXISTS NAME' -c 'CREATE DATABASE NAME TEMPLATE rotation_template' -c CHECKPOINT"
  # Each toolcfg run is checked in the (untimed) set-up of the Python run that follows it.
  local check_toolcfg="check_pg_rotated '$toolcfg' '$tc_url' '$work/new.key' $rows 'the rotation by toolcfg' python"
  echo "== rotate $rows rows: toolcfg rotate vs Python psycopg + cryptography in one transaction"
  measure_pair "toolcfg rotate" "${copy//NAME/rotated_toolcfg}" "'$toolcfg' rotate --db '$tc_url' $keys" \
               "python rotate " "$check_toolcfg; ${copy//NAME/rotated_python}" "python3 '$ROOT/scripts/bench/bench_rotation_peer_pg.py' rotate '$py_url' '$work/old.key' '$work/new.key'"
  check_pg_rotated "$toolcfg" "$py_url" "$work/new.key" "$rows" "the rotation by Python" python
  add_summary "PostgreSQL rotate toolcfg (median)" "$A_MEDIAN_S s for $rows rows, $(awk -v r="$rows" -v s="$A_MEDIAN_S" 'BEGIN{printf "%.0f", r/s}') rows/s, peak RSS $A_MAX_RSS_MIB MiB"
  add_summary "PostgreSQL rotate Python psycopg (median)" "$B_MEDIAN_S s for $rows rows, $(awk -v r="$rows" -v s="$B_MEDIAN_S" 'BEGIN{printf "%.0f", r/s}') rows/s"
  add_summary "PostgreSQL rotate ratio python / toolcfg" "$(ratio "$B_MEDIAN_S" "$A_MEDIAN_S")x; by round $(round_ratios "${GROUP_TIMES[1]}" "${GROUP_TIMES[0]}") (>= 4 wanted)"

  if [ "$big" -gt 0 ]; then
    local big_url lock extra
    for extra in "" "--make-room"; do
      big_url=$(make_keyed_pg_database "$url" rotation_big "$big" "$work/old.key" "$toolcfg")
      RUNS=1 measure "toolcfg rotate $big rows $extra" "psql -X -q '$url' -c CHECKPOINT" \
        bash -c "'$toolcfg' rotate --db '$big_url' $keys $extra --json > '$work/big.json'"
      check_pg_rotated "$toolcfg" "$big_url" "$work/new.key" "$big" "the rotation of $big rows"
      lock=$(python3 -c 'import json, sys; print("%.2f s" % json.load(open(sys.argv[1]))["write_lock_seconds"])' "$work/big.json" 2>/dev/null \
        || echo "not reported")
      add_summary "PostgreSQL rotate $big rows ${extra:-(as inserted)}" "$MEDIAN_S s, peak RSS $MAX_RSS_MIB MiB (<= 64 MiB wanted), write phase $lock"
      psql -X -q "$url" -c "DROP DATABASE rotation_big"
    done
  fi

  if [ "$live" -gt 0 ]; then
    local live_url
    local extra
    for extra in "" "--make-room"; do
      live_url=$(make_keyed_pg_database "$url" rotation_live "$live" "$work/old.key" "$toolcfg")
      live_run "PostgreSQL live rotate $live rows ${extra:-(as inserted)}" "$live_url" "'$toolcfg' rotate --db '$live_url' $keys $extra --json"
      check_pg_rotated "$toolcfg" "$live_url" "$work/new.key" "$live" "the rotation of $live rows beside the application"
    done
  fi
  stop_section_cluster
}

# --- main -------------------------------------------------------------------------------------

selected=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --list) printf '%s\n' "${SECTIONS[@]}"; exit 0 ;;
    -*) usage; exit 2 ;;
    *)
      found=0
      for s in "${SECTIONS[@]}"; do [ "$s" = "$arg" ] && found=1; done
      if [ "$found" -eq 0 ]; then
        echo "bench: unknown section '$arg'" >&2; usage; exit 2
      fi
      selected+=("$arg")
      ;;
  esac
done
[ ${#selected[@]} -gt 0 ] || selected=("${SECTIONS[@]}")

started=$(date +%s)
build_seconds=0
needs_suite=0
for s in "${selected[@]}"; do
  for t in "${SUITE_SECTIONS[@]}"; do [ "$s" = "$t" ] && needs_suite=1; done
done
# pbkdf2 without its ordo-one part needs only the release toolcfg.
[ "${PBKDF2_SUITE:-1}" = 0 ] && needs_suite=0
if [ "$needs_suite" -eq 1 ]; then
  echo "== swift build -c release (Benchmarks/, target $TARGET)"
  build_started=$(date +%s)
  rc=0
  (cd "$BENCH_PKG" && swift build -c release --product "$TARGET") 2>&1 \
    | sed -u '/^\[[0-9]*\/[0-9]*\]/d' || rc=$?
  [ "$rc" -eq 0 ] || { echo "bench: release build failed (exit $rc)" >&2; exit "$rc"; }
  build_seconds=$(( $(date +%s) - build_started ))
fi

for s in "${selected[@]}"; do
  "section_$s"
done

echo
echo "======== summary (sections: ${selected[*]}; machine: $(nproc) cores; suite build ${build_seconds} s; total $(( $(date +%s) - started )) s)"
printf '%s\n' "${SUMMARY[@]}"
