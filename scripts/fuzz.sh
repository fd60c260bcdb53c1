#!/usr/bin/env bash
# Runs one libFuzzer target (or all) for a bounded time, with AddressSanitizer:
#   scripts/fuzz.sh TARGET SECONDS      TARGET: csv json jsonl triple masterkey, or all
# The targets (Fuzz/, their own package) feed any bytes to the snapshot readers and validator,
# the stored-triple checks and the master-key parser, starting from the seeds in Fuzz/Seeds/.
# A crash, a hang (-timeout) or memory past -rss_limit_mb fails the run; the input that did it is
# kept under fuzz-artifacts/ and becomes a regression test. Prints the executions run per target.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
case "$target" in
  all) targets=(csv json jsonl triple masterkey) ;;
  csv|json|jsonl|triple|masterkey) targets=("$target") ;;
  *) echo "fuzz: unknown target $target" >&2; exit 64 ;;
esac
product() {
  case "$1" in csv) echo FuzzCSV ;; json) echo FuzzJSON ;; jsonl) echo FuzzJSONLines ;; triple) echo FuzzTriple ;; masterkey) echo FuzzMasterKey ;; esac
}

no_main=$(find "$(dirname "$(dirname "$(readlink -f "$(command -v swiftc)")")")/lib/clang" -name 'libclang_rt.fuzzer_no_main-x86_64.a' | head -1)
[ -n "$no_main" ] || { echo "fuzz: libFuzzer (fuzzer_no_main) not found in the Swift toolchain" >&2; exit 69; }
# The build's own tools are instrumented too; their leaks at exit are not findings.
export ASAN_OPTIONS=detect_leaks=0
# Swift's own crash backtracer reads the stack in a way ASan reports; libFuzzer prints its own.
export SWIFT_BACKTRACE=enable=no
echo "== building the fuzz targets (coverage + AddressSanitizer)" >&2
(cd "$root/Fuzz" && swift build -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
   -Xcc -fsanitize=fuzzer-no-link,address -Xlinker "$no_main" -Xlinker -lstdc++ 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' >&2)

work=$(mktemp -d "${TMPDIR:-/tmp}/toolcfg-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
artifacts="$root/fuzz-artifacts"
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "$artifacts/$t"
  cp -r "$root/Fuzz/Seeds/$t/." "$work/$t/"
  log="$work/$t.log"
  status=0
  "$root/Fuzz/.build/debug/$(product "$t")" "$work/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/$t/" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  if [ "$status" -ne 0 ]; then
    failed=1
    echo "fuzz $t: FAILED after ${runs:-?} executions (exit $status); input kept in $artifacts/$t/" >&2
    grep -E 'ERROR|Fatal error|SUMMARY|Test unit written' "$log" | head -10 >&2
  else
    echo "fuzz $t: ${runs:-?} executions in ${seconds} s, no crash, hang or memory blow-up"
  fi
done
exit $failed
