#!/usr/bin/env python3
"""PBKDF2-HMAC-SHA256 through Python's `cryptography` package, the comparison point for the
toolcfg PBKDF2 benchmarks (Benchmarks/Benchmarks/ToolcfgBenchmarks).

Same derivation as the Swift benchmark: 1000 iterations, 32-byte password, 32-byte salt, 32-byte
output, and the same password/salt bytes. A PBKDF2HMAC object is single-use, so every derivation
builds a new one (as real code would). Reports the median over --runs runs of --n derivations.

The last line is machine-readable for scripts/bench.sh:
    RESULT python_cryptography us_per_derivation=<float> derivations_per_s=<float>
"""

import argparse
import hashlib
import statistics
import sys
import time

try:
    import cryptography
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
except ImportError as exc:  # pragma: no cover - environment problem, reported plainly
    sys.exit(f"bench_pbkdf2.py: Python package 'cryptography' is not importable: {exc}")

# The same bytes as PBKDF2Params in ToolcfgBenchmarks.swift.
PASSWORD = bytes(((i * 7 + 1) & 0xFF) for i in range(32))
SALT = bytes(((i * 13 + 5) & 0xFF) for i in range(32))


def derive(iterations: int, length: int) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=length, salt=SALT, iterations=iterations)
    return kdf.derive(PASSWORD)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=1000, help="PBKDF2 iterations (default 1000)")
    ap.add_argument("--length", type=int, default=32, help="output bytes (default 32)")
    ap.add_argument("--n", type=int, default=2000, help="derivations per run (default 2000)")
    ap.add_argument("--runs", type=int, default=7, help="timed runs, median reported (default 7, min 5)")
    ap.add_argument("--warmup", type=int, default=200, help="untimed derivations first (default 200)")
    args = ap.parse_args()
    if args.runs < 5 or args.n < 1:
        ap.error("--runs must be >= 5 and --n >= 1")

    # Correctness first: the cryptography result must match hashlib's independent implementation.
    got = derive(args.iterations, args.length)
    want = hashlib.pbkdf2_hmac("sha256", PASSWORD, SALT, args.iterations, args.length)
    if got != want:
        sys.exit("bench_pbkdf2.py: cryptography and hashlib disagree")

    for _ in range(args.warmup):
        derive(args.iterations, args.length)

    per_run_us = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        for _ in range(args.n):
            derive(args.iterations, args.length)
        per_run_us.append((time.perf_counter() - t0) / args.n * 1e6)

    from cryptography.hazmat.backends.openssl import backend

    med = statistics.median(per_run_us)
    print(f"Python cryptography {cryptography.__version__} ({backend.openssl_version_text()}), "
          f"PBKDF2-HMAC-SHA256, {args.iterations} iterations, {len(PASSWORD)}-byte password/salt, "
          f"{args.length}-byte output")
    print(f"  {args.runs} runs x {args.n} derivations, µs per derivation per run: "
          + ", ".join(f"{v:.1f}" for v in per_run_us))
    print(f"  median: {med:.1f} µs per derivation, {1e6 / med:,.0f} derivations/s")
    print(f"RESULT python_cryptography us_per_derivation={med:.2f} derivations_per_s={1e6 / med:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
