#!/usr/bin/env bash
# The test command: builds everything, runs the whole Swift Testing suite, then the migration
# reversibility check on the committed fixtures, as the application's CI would run it.
# Extra arguments go to `swift test` (e.g. scripts/test.sh --filter Migrations).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build "$@"
if [ $# -eq 0 ]; then
  .build/debug/toolcfg migrate verify --fixtures fixtures
fi
