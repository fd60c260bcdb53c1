#!/usr/bin/env bash
# Runs the whole test suite once under a sanitizer, in its own build folder, within a time bound:
#   scripts/ci/sanitize.sh address|thread
# SANITIZE_TIMEOUT (seconds, default 900) bounds the build and the tests together, so a hang fails
# with a message instead of running until CI gives up. Prints the build and test times.
# Leak reports are off for AddressSanitizer: the ones it prints come from Foundation and XCTest
# internals (Process, file reading), not from toolcfg.
set -euo pipefail
cd "$(dirname "$0")/../.."
kind=${1:?usage: scripts/ci/sanitize.sh address|thread}
case "$kind" in address|thread) ;; *) echo "sanitize: address or thread" >&2; exit 64 ;; esac
export ASAN_OPTIONS=detect_leaks=0
# The tests that cannot mean anything under a sanitizer, or are its multiple in time, ask this.
export TOOLCFG_TEST_SANITIZER=$kind
log=".build-$kind/test.log"
reports="$PWD/.build-$kind/reports"

if [ "${2:-}" = --inner ]; then
  started=$SECONDS
  swift build --build-tests --sanitize="$kind" --scratch-path ".build-$kind" 2>&1 | { grep -Ev '^\[[0-9]+/[0-9]+\]' || true; }
  built=$SECONDS
  status=0
  # Reports go to files, one per process: a toolcfg child's report would otherwise end in the
  # stderr a test captured, unseen (and TSan's exit status 66 is also toolcfg's "input missing").
  export ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$reports/report" TSAN_OPTIONS="log_path=$reports/report"
  # Left to the plain run: suites that drive the same toolcfg paths through shell scripts, small
  # filesystems and damaged files, at several times their cost under a sanitizer (SANITIZE_SKIP=
  # runs them too).
  skip=${SANITIZE_SKIP-ScheduledRotationTests|DiskFullTests|CorruptDatabaseTests}
  swift test --skip-build --sanitize="$kind" --scratch-path ".build-$kind" ${skip:+--skip "$skip"} 2>&1 | tee "$log" || status=$?
  echo "sanitize $kind: build $((built - started)) s, tests $((SECONDS - built)) s" >&2
  exit "$status"
fi

limit=${SANITIZE_TIMEOUT:-900}
rm -rf "$reports" "$log"
mkdir -p "$reports"
# A session of its own: swift test starts the test binary in a process group of its own, which
# timeout's signal does not reach, so what is left of a run that timed out is ended by session.
status=0
setsid timeout --kill-after=10 "$limit" bash "$0" "$kind" --inner &
session=$!
wait "$session" || status=$?
pkill -KILL -s "$session" 2>/dev/null || true
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "sanitize $kind: not finished within $limit s (SANITIZE_TIMEOUT): a hang? The output so far is in $log" >&2
  exit 1
fi
if [ -n "$(ls -A "$reports")" ]; then
  head -c 20000 "$reports"/* >&2
  echo "sanitize $kind: sanitizer reports above, from $(ls "$reports" | wc -l) process(es); all of them in $reports" >&2
  exit 1
fi
exit "$status"
