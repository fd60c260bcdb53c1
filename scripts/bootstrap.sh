#!/usr/bin/env bash
# Installs what toolcfg builds and tests against, only what is missing: when everything is there
# it checks and returns in a fraction of a second, so scripts/demo.sh and scripts/test.sh call it
# on every run and the README's commands work on a bare machine.
#   scripts/bootstrap.sh          everything (build, demo, tests)
#   scripts/bootstrap.sh build    only what building toolcfg and the demo need
#   scripts/bootstrap.sh package  what building and checking the Debian package needs
set -euo pipefail

scope=${1:-all}
# Building: the C libraries behind the system-library modules, pkg-config to find them; the
# demo prints its rows with the sqlite3 shell; libkeyutils-dev for the keyring key form.
packages=(libsqlite3-dev libssl-dev libargon2-dev libpq-dev libkeyutils-dev pkg-config sqlite3)
# The package (scripts/package.sh): dpkg-dev for dpkg-shlibdeps (the Depends line), binutils for
# strip and for objdump, which dpkg-shlibdeps reads the binary with.
package_tools=(dpkg-dev binutils)
if [ "$scope" = package ]; then
  packages+=("${package_tools[@]}")
elif [ "$scope" = all ]; then
  packages+=("${package_tools[@]}")
  # Tests: the Python peers, GNU time (peak RSS) and strace (file modes), script (a terminal);
  # postgresql, the server scripts/pg.sh runs for the PostgreSQL tests, and libpq-dev, its C
  # client library (which the build needs too, once the CLI speaks PostgreSQL).
  # keyutils: keyctl, to look at the test keyrings by hand when a keyring test fails.
  packages+=(python3 python3-pip time strace bsdutils postgresql keyutils)
elif [ "$scope" != build ]; then
  echo "usage: scripts/bootstrap.sh [build|package|all]" >&2
  exit 64
fi

command -v swift >/dev/null || {
  echo "bootstrap: no swift on PATH: install the Swift 6.3 toolchain (swift.org) first" >&2
  exit 69
}

# Installed means dpkg says "installed": a removed package can linger as "config-files".
installed=" $(dpkg-query -W -f='${Package}:${db:Status-Status} ' "${packages[@]}" 2>/dev/null || true)"
missing=()
for package in "${packages[@]}"; do
  [[ "$installed" == *" $package:installed "* ]] || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  apt_install() { DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  # The package lists are usually fresh enough: refresh them only if the install fails without.
  apt_install 2>/dev/null || { $sudo_cmd apt-get update -qq && apt_install; }
fi
[ "$scope" = all ] || exit 0

# The tests check the stored-secret format against Python's `cryptography` (Argon2id needs >= 44),
# the --json reports against schemas/report.schema.json with `jsonschema`, and what toolcfg wrote to
# PostgreSQL with an independent client, psycopg 3.
python_missing() {
  # Versions from the installed metadata: importing the packages would take most of a second.
  python3 - <<'EOF'
from importlib.metadata import version, PackageNotFoundError
need = []
for name, spec, major in (("cryptography", "cryptography>=44", 44), ("jsonschema", "jsonschema>=4", 4), ("psycopg", "psycopg[binary]>=3.2", 3)):
    try:
        if int(version(name).split(".")[0]) < major: need.append(spec)
    except PackageNotFoundError:
        need.append(spec)
print(" ".join(need))
EOF
}
needed=$(python_missing)
if [ -n "$needed" ]; then
  echo "bootstrap: installing Python $needed" >&2
  # Debian's own python3 refuses user installs (PEP 668) and ships cryptography 38: install
  # from PyPI beside it, for this user.
  # shellcheck disable=SC2086
  python3 -m pip install --quiet --user $needed 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages $needed
  [ -z "$(python_missing)" ] || { echo "bootstrap: Python $(python_missing) still missing" >&2; exit 1; }
fi
