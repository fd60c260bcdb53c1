#!/usr/bin/env bash
# The test command: builds everything and runs the whole Swift Testing suite.
# Extra arguments go to `swift test` (e.g. scripts/test.sh --filter Migrations).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build "$@"
