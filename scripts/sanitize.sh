#!/usr/bin/env bash
# Runs the whole test suite once under a sanitizer, in its own build folder:
#   scripts/sanitize.sh address|thread
# Leak reports are off for AddressSanitizer: the ones it prints come from Foundation and XCTest
# internals (Process, file reading), not from toolcfg.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: scripts/sanitize.sh address|thread}
case "$kind" in address|thread) ;; *) echo "sanitize: address or thread" >&2; exit 64 ;; esac
export ASAN_OPTIONS=detect_leaks=0
swift build --build-tests --sanitize="$kind" --scratch-path ".build-$kind"
swift test --skip-build --sanitize="$kind" --scratch-path ".build-$kind" 2>&1 | tee ".build-$kind/test.log"
if grep -q "WARNING: ThreadSanitizer\|ERROR: AddressSanitizer" ".build-$kind/test.log"; then
  echo "sanitize: $kind sanitizer reports above" >&2
  exit 1
fi
