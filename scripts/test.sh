#!/usr/bin/env bash
# The test command: builds everything, runs the migration reversibility check on the committed
# fixtures (as the application's CI would run it), then the whole Swift Testing suite. In CI
# (CI=true) it also runs each fuzz target for a short bounded time first.
# Extra arguments go to `swift test` (e.g. scripts/test.sh --filter Migrations).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
if [ $# -eq 0 ]; then
  .build/debug/toolcfg migrate verify --fixtures fixtures
  if [ "${CI:-}" = true ]; then
    bash scripts/fuzz.sh all "${FUZZ_SECONDS:-10}"
  fi
fi
swift test --skip-build "$@"
