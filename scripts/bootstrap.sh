#!/usr/bin/env bash
# Installs the system packages toolcfg builds and tests against. Idempotent: installs only what
# is missing, so a second run is quick.
set -euo pipefail

packages=(libsqlite3-dev libssl-dev libargon2-dev sqlite3 pkg-config python3 python3-pip time strace)
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

# The tests check the stored-secret format against Python's `cryptography` (Argon2id needs >= 44).
has_cryptography() {
  python3 -c 'import cryptography, sys; sys.exit(0 if int(cryptography.__version__.split(".")[0]) >= 44 else 1)' 2>/dev/null
}
if ! has_cryptography; then
  echo "bootstrap: installing Python cryptography (>= 44, for Argon2id)" >&2
  # Debian's own python3 refuses user installs (PEP 668) and ships cryptography 38: install
  # from PyPI beside it, for this user.
  python3 -m pip install --quiet --user 'cryptography>=44' 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages 'cryptography>=44'
  has_cryptography || { echo "bootstrap: Python cryptography >= 44 is still missing" >&2; exit 1; }
fi
