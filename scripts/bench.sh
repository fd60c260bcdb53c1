#!/usr/bin/env bash
# Benchmarks: builds the Benchmarks/ package (ordo-one/benchmark suite "ToolcfgBenchmarks") in
# release mode, runs it, runs the comparison measurements in the same invocation, and prints a
# summary at the end.
#
#   scripts/bench.sh            # every section
#   scripts/bench.sh pbkdf2     # only the named section(s); `scripts/bench.sh --list` lists them
#
# Benchmarks/ is its own package so that the root package's `swift build` / `swift test` never
# resolve or build ordo-one/benchmark. Time on the 2-core machine: ~25-45 s once built; the first
# run after a clean checkout also builds the suite (~85-110 s) and the plugin's BenchmarkTool
# (~60 s), about 3 min in all (longer while other builds share the cores).
#
# Adding a section (e.g. csv, rotation):
#   1. register its benchmarks in Benchmarks/Benchmarks/ToolcfgBenchmarks/ToolcfgBenchmarks.swift
#      with names starting with a common prefix ("CSV ...");
#   2. add the section name to SECTIONS below and write section_<name>, which calls
#      run_suite '<regex matching the whole benchmark names>' and then any comparison, and records
#      summary lines with add_summary.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_PKG="$ROOT/Benchmarks"
TARGET="ToolcfgBenchmarks"
SECTIONS=(pbkdf2)

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

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
per_s() { awk -v us="$1" 'BEGIN { printf "%.0f", 1e6 / us }'; }

# --- sections ---------------------------------------------------------------------------------

section_pbkdf2() {
  echo
  echo "######## pbkdf2: PBKDF2-HMAC-SHA256, 1000 iterations, 32-byte password and salt, 32-byte output"
  run_suite 'PBKDF2.*'
  local fast ref py
  fast=$(p50_us "PBKDF2 fast")
  ref=$(p50_us "PBKDF2 OpenSSL PKCS5")

  echo
  echo "== scripts/bench_pbkdf2.py (Python cryptography, median of 7 runs x 2000 derivations)"
  python3 "$ROOT/scripts/bench_pbkdf2.py" --runs 7 --n 2000 | tee "$LOG_DIR/py.out"
  py=$(sed -n 's/^RESULT python_cryptography us_per_derivation=\([0-9.]*\) .*/\1/p' "$LOG_DIR/py.out")
  py=$(awk -v v="$py" 'BEGIN { if (v != "") printf "%.1f", v }')
  [ -n "$py" ] || { echo "bench: no RESULT line from bench_pbkdf2.py" >&2; exit 1; }

  add_summary "PBKDF2 toolcfg fast (p50)" "$fast µs per derivation ($(per_s "$fast")/s)"
  add_summary "PBKDF2 OpenSSL PKCS5_PBKDF2_HMAC (p50)" "$ref µs per derivation ($(per_s "$ref")/s)"
  add_summary "PBKDF2 Python cryptography (median)" "$py µs per derivation ($(per_s "$py")/s)"
  add_summary "PBKDF2 ratio python / toolcfg-fast" "$(ratio "$py" "$fast")x"
  add_summary "PBKDF2 ratio OpenSSL PKCS5 / toolcfg-fast" "$(ratio "$ref" "$fast")x"
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
echo "== swift build -c release (Benchmarks/, target $TARGET)"
build_started=$(date +%s)
rc=0
(cd "$BENCH_PKG" && swift build -c release --product "$TARGET") 2>&1 \
  | sed -u '/^\[[0-9]*\/[0-9]*\]/d' || rc=$?
[ "$rc" -eq 0 ] || { echo "bench: release build failed (exit $rc)" >&2; exit "$rc"; }
build_seconds=$(( $(date +%s) - build_started ))

for s in "${selected[@]}"; do
  "section_$s"
done

echo
echo "======== summary (sections: ${selected[*]}; machine: $(nproc) cores; release build ${build_seconds} s; total $(( $(date +%s) - started )) s)"
printf '%s\n' "${SUMMARY[@]}"
