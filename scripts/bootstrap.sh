#!/usr/bin/env bash
# Installs the system packages toolcfg builds and tests against. Idempotent: installs only what
# is missing, so a second run is quick.
set -euo pipefail

# postgresql: the server scripts/pg.sh runs for the PostgreSQL tests; libpq-dev: its C client library.
packages=(libsqlite3-dev libssl-dev libargon2-dev sqlite3 pkg-config python3 python3-pip time strace postgresql libpq-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
else
  echo "bootstrap: system packages present" >&2
fi

# Debian's python3 refuses user installs (PEP 668), so packages from PyPI go beside it, for this user.
pip_install() {
  python3 -m pip install --quiet --user "$@" 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages "$@"
}

# The tests check the stored-secret format against Python's `cryptography` (Argon2id needs >= 44).
has_cryptography() {
  python3 -c 'import cryptography, sys; sys.exit(0 if int(cryptography.__version__.split(".")[0]) >= 44 else 1)' 2>/dev/null
}
if ! has_cryptography; then
  echo "bootstrap: installing Python cryptography (>= 44, for Argon2id)" >&2
  # Debian's own ships cryptography 38.
  pip_install 'cryptography>=44'
  has_cryptography || { echo "bootstrap: Python cryptography >= 44 is still missing" >&2; exit 1; }
fi

# The PostgreSQL tests read back what toolcfg wrote with an independent client, psycopg 3.
if ! python3 -c 'import psycopg' 2>/dev/null; then
  echo "bootstrap: installing Python psycopg 3 (the PostgreSQL peer)" >&2
  pip_install 'psycopg[binary]>=3.2'
  python3 -c 'import psycopg' 2>/dev/null || { echo "bootstrap: Python psycopg is still missing" >&2; exit 1; }
fi
