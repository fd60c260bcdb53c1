#!/usr/bin/env bash
# The code against .swift-format: `swift format lint --strict` over every Swift folder, and no
# line over the configured width (the pretty printer cannot break a long string literal, so it
# lets those through: this check does not). Fix with:
#   swift format format -i -r Sources Tests Benchmarks Fuzz Plugins Package.swift
set -euo pipefail
cd "$(dirname "$0")/../.."
folders=(Sources Tests Benchmarks Fuzz Plugins Package.swift)
swift format lint --strict -r "${folders[@]}"
width=$(python3 -c 'import json; print(json.load(open(".swift-format"))["lineLength"])')
long=$(find "${folders[@]}" -name '*.swift' -print0 | xargs -0 awk -v w="$width" 'length > w { print FILENAME ":" FNR ": " length " characters" }')
if [ -n "$long" ]; then
  echo "lint: lines over $width characters:" >&2
  echo "$long" >&2
  exit 1
fi
echo "lint: every Swift file meets .swift-format (width $width)" >&2
