#!/usr/bin/env bash
# The test command: builds everything, runs the migration reversibility check on the committed
# fixtures (as the application's CI would run it: SQLite's, then PostgreSQL's on the throwaway
# server), then the whole Swift Testing suite. In CI (CI=true) it also checks the code against
# .swift-format (scripts/ci/lint.sh), runs each fuzz target for a short bounded time, the
# PostgreSQL fault trials (scripts/ci/pg_faults.py: session cut, server crash, its disk full; 5 per
# fault and command; PG_FAULT_TRIALS), builds the Debian package and
# smoke-tests it installed (scripts/package.sh, scripts/ci/package_smoke.sh; PACKAGE_SMOKE=0 skips
# both), and runs the whole suite under AddressSanitizer and ThreadSanitizer (scripts/ci/sanitize.sh,
# each bounded by SANITIZE_TIMEOUT), before the plain suite so that its summary closes the run.
# SANITIZE lists the sanitizer runs: "address thread" by default in CI, none elsewhere; set it
# to choose (SANITIZE=thread scripts/test.sh, or SANITIZE= to skip them in CI).
# A throwaway PostgreSQL cluster (scripts/pg.sh, in a folder of this run's own) serves the
# PostgreSQL tests through TOOLCFG_TEST_POSTGRES_URL (Unix socket, trusted), and ..._TCP_URL with
# ..._PASSFILE (127.0.0.1, password), and is stopped and removed when the run ends, however it
# ends. In CI those tests fail, never skip, when the variables are missing.
# Extra arguments go to `swift test` (e.g. scripts/test.sh --filter Migrations).
# Installs what is missing first (scripts/bootstrap.sh: quick when everything is there).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
TOOLCFG_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/toolcfg-test-pg.XXXXXX")
export TOOLCFG_PG_DIR
trap 'bash scripts/pg.sh stop' EXIT
TOOLCFG_TEST_POSTGRES_URL=$(bash scripts/pg.sh start)
TOOLCFG_TEST_POSTGRES_TCP_URL=$(bash scripts/pg.sh tcp-url)
TOOLCFG_TEST_POSTGRES_PASSFILE=$(bash scripts/pg.sh passfile)
export TOOLCFG_TEST_POSTGRES_URL TOOLCFG_TEST_POSTGRES_TCP_URL TOOLCFG_TEST_POSTGRES_PASSFILE
swift build --build-tests
if [ $# -eq 0 ]; then
  .build/debug/toolcfg migrate verify --fixtures fixtures
  .build/debug/toolcfg migrate verify --fixtures fixtures/postgres --server "$TOOLCFG_TEST_POSTGRES_URL"
  if [ "${CI:-}" = true ]; then
    bash scripts/ci/lint.sh
    bash scripts/fuzz.sh all "${FUZZ_SECONDS:-10}"
    # PostgreSQL stopped or toolcfg's session ended at random moments (a cluster of its own).
    python3 scripts/ci/pg_faults.py .build/debug/toolcfg "${PG_FAULT_TRIALS:-5}"
  fi
  if [ "${CI:-}" = true ] && [ "${PACKAGE_SMOKE:-1}" != 0 ]; then
    package_start=$SECONDS
    # The linkage check refuses the plain debug build, which loads the Swift runtime from the
    # toolchain, before it passes the packaged one.
    if bash scripts/package.sh --check-linkage .build/debug/toolcfg 2>"$TOOLCFG_PG_DIR/linkage.log"; then
      echo "test: the linkage check passed a binary that loads the toolchain's libraries" >&2
      exit 1
    fi
    grep -q 'loads libraries from the Swift toolchain' "$TOOLCFG_PG_DIR/linkage.log" || {
      echo "test: the linkage check failed on the debug build for another reason:" >&2
      cat "$TOOLCFG_PG_DIR/linkage.log" >&2
      exit 1
    }
    deb=$(bash scripts/package.sh "${PACKAGE_BUILD_DIR:-.build-release-static}" | tail -n 1)
    bash scripts/ci/package_smoke.sh "$deb"
    # A failing step must fail the smoke script: verify-keys under the old key after the rotation.
    if SMOKE_BREAK=verify-keys bash scripts/ci/package_smoke.sh "$deb" 2>"$TOOLCFG_PG_DIR/smoke-break.log"; then
      echo "test: package_smoke.sh passed with a broken step" >&2
      exit 1
    fi
    grep -q "FAILED: step 'verify-keys (new key)'" "$TOOLCFG_PG_DIR/smoke-break.log" || {
      echo "test: package_smoke.sh with a broken step failed without naming the step:" >&2
      cat "$TOOLCFG_PG_DIR/smoke-break.log" >&2
      exit 1
    }
    echo "test: package built and smoke-tested in $((SECONDS - package_start)) s (the release build's own time above)" >&2
  fi
  default_sanitizers=""
  [ "${CI:-}" = true ] && default_sanitizers="address thread"
  for kind in ${SANITIZE-$default_sanitizers}; do
    bash scripts/ci/sanitize.sh "$kind"
  done
fi
swift test --skip-build "$@"
