#!/usr/bin/env bash
# Installs the Debian package of scripts/package.sh and runs toolcfg from /usr/bin as an operator
# would on the application's machine, with the Swift toolchain out of reach:
#   scripts/ci/package_smoke.sh DEB
# Steps (each named in the message when it fails, exit 1): install with apt-get (as root, or
# through sudo), its Depends met from Debian's packages; ldd names nothing under the toolchain's
# folder (TOOLCHAIN_DIR, default the folder of the swift on PATH, else /opt/swift) and no Swift
# runtime library; then, in an empty environment (env -i, PATH=/usr/sbin:/usr/bin:/sbin:/bin)
# and, where a mount namespace can be had (unshare -m, as root), with the toolchain's folder
# hidden under an empty tmpfs: --version (the package's version), keygen of two keys, migrate up
# on a new SQLite database, an import of a small CSV, a rotation to the second key, verify-keys
# under it (and the old key refused), an export whose plaintext keys are the CSV's; then the man
# page, the three completions and the systemd units where the package puts them.
# The package is removed at the end if it was not installed before (KEEP_INSTALLED=1 keeps it).
# SMOKE_BREAK=verify-keys checks under the old key where the new one belongs: the step must fail,
# and scripts/test.sh runs it so to prove that a failing step fails this script.
set -euo pipefail

say() { echo "package_smoke: $*" >&2; }
fail() { echo "package_smoke: FAILED: $*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: scripts/ci/package_smoke.sh DEB" >&2; exit 64; }
deb=$1
[ -f "$deb" ] || fail "$deb: no such file"
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
case "${SMOKE_BREAK:-}" in ''|verify-keys) ;; *) fail "SMOKE_BREAK=$SMOKE_BREAK: only verify-keys can be broken" ;; esac

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || fail "installing a package needs root (or sudo)"
  sudo_cmd="sudo"
fi

version=$(dpkg-deb -f "$deb" Version) || fail "$deb is not a Debian package"
package=$(dpkg-deb -f "$deb" Package)
[ "$package" = toolcfg ] || fail "$deb holds the package '$package', not toolcfg"

if [ -n "${TOOLCHAIN_DIR:-}" ]; then
  toolchain=$TOOLCHAIN_DIR
elif swift=$(command -v swift); then
  toolchain=$(dirname "$(dirname "$(readlink -f "$swift")")")
  [ "$(basename "$toolchain")" != usr ] || toolchain=$(dirname "$toolchain")
else
  toolchain=/opt/swift
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/toolcfg-smoke.XXXXXX")
chmod 0755 "$work"
was_installed=$(dpkg-query -W -f='${db:Status-Status}' toolcfg 2>/dev/null || true)
# apt-get waits up to a minute for the dpkg lock that another apt-get may hold.
apt=($sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 -y -qq)
cleanup() {
  if [ "$was_installed" != installed ] && [ "${KEEP_INSTALLED:-0}" != 1 ]; then
    "${apt[@]}" purge toolcfg > "$work/purge.log" 2>&1 \
      || { cat "$work/purge.log" >&2; say "warning: could not remove the package again (apt-get purge toolcfg)"; }
  fi
  rm -rf "$work"
}
trap cleanup EXIT

say "installing $deb (toolcfg $version)"
# --reinstall: the same version already installed is replaced by this file, not kept.
"${apt[@]}" install --reinstall --no-install-recommends "$deb" \
  > "$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get install $deb"; }
[ "$(dpkg-query -W -f='${db:Status-Status} ${Version}' toolcfg)" = "installed $version" ] \
  || fail "after apt-get install, dpkg does not list toolcfg $version as installed"
[ -x /usr/bin/toolcfg ] || fail "/usr/bin/toolcfg is not installed"

libs=$(ldd /usr/bin/toolcfg 2>&1) || fail "ldd /usr/bin/toolcfg: $libs"
bad=$(grep -E "not found|[[:space:]]${toolchain}/|lib(swift[A-Za-z_]*|_?Foundation[A-Za-z_]*|dispatch|BlocksRuntime)\.so" <<<"$libs" || true)
[ -z "$bad" ] || fail "ldd /usr/bin/toolcfg names libraries of the Swift toolchain ($toolchain) or missing ones:
$bad"

# The operator's steps, as a script run in an empty environment; each step names itself.
csv="$work/onboarding.csv"
cat > "$csv" <<'EOF'
user_id,tool_id,enabled,api_key
alice,builtin-exa-web-search,1,smoke_key_alice
bob,builtin-exa-web-search,0,"smoke_key_bob,with comma"
carol,builtin-tavily,true,smoke_key_carol
EOF
verify_key=new.key
[ "${SMOKE_BREAK:-}" != verify-keys ] || verify_key=old.key
cat > "$work/steps.sh" <<EOF
set -u
cd "$work"
step() {
  local name=\$1; shift
  if ! "\$@" > "step.out" 2>&1; then
    echo "package_smoke: FAILED: step '\$name': \$*" >&2
    sed 's/^/  /' step.out >&2
    exit 1
  fi
  echo "package_smoke: ok: \$name" >&2
}
refuse() {
  local name=\$1; shift
  if "\$@" > "step.out" 2>&1; then
    echo "package_smoke: FAILED: step '\$name' succeeded where it must fail: \$*" >&2
    exit 1
  fi
  echo "package_smoke: ok: \$name" >&2
}
[ -z "\${LD_LIBRARY_PATH:-}\${SWIFT_PATH:-}" ] || { echo "package_smoke: FAILED: the environment is not empty" >&2; exit 1; }
! command -v swift >/dev/null || { echo "package_smoke: FAILED: swift is still on PATH (\$(command -v swift))" >&2; exit 1; }
step "toolcfg --version" /usr/bin/toolcfg --version
[ "\$(cat step.out)" = "$version" ] || { echo "package_smoke: FAILED: toolcfg --version says '\$(cat step.out)', the package $version" >&2; exit 1; }
step "keygen (old key)" toolcfg keygen --out old.key --quiet
step "keygen (new key)" toolcfg keygen --out new.key --quiet
step "migrate up (new SQLite database)" toolcfg migrate up --db app.db
step "import onboarding.csv" toolcfg import --db app.db --in onboarding.csv --master-key-file old.key
step "verify-keys (old key, before the rotation)" toolcfg verify-keys --db app.db --master-key-file old.key
step "rotate to the new key" toolcfg rotate --db app.db --master-key-file old.key --new-master-key-file new.key
step "verify-keys (new key)" toolcfg verify-keys --db app.db --master-key-file $verify_key
refuse "verify-keys (old key refused after the rotation)" toolcfg verify-keys --db app.db --master-key-file old.key
step "export (plaintext keys, new key)" toolcfg export --db app.db --format csv --out export.csv --keys plaintext --master-key-file new.key
for key in smoke_key_alice '"smoke_key_bob,with comma"' smoke_key_carol; do
  grep -qF "\$key" export.csv || { echo "package_smoke: FAILED: the export lacks the key \$key" >&2; exit 1; }
done
EOF

run=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" LANG=C.UTF-8 bash "$work/steps.sh")
hidden=no
if [ -d "$toolchain" ] && [ -z "$sudo_cmd" ] \
   && unshare -m --propagation private true 2>/dev/null; then
  # The toolchain's folder under an empty tmpfs, for this process tree alone.
  hidden=yes
  run=(unshare -m --propagation private sh -c 'mount -t tmpfs -o ro,size=1k toolcfg-smoke "$0" && exec "$@"' "$toolchain" "${run[@]}")
fi
say "running /usr/bin/toolcfg in an empty environment (PATH=/usr/sbin:/usr/bin:/sbin:/bin); toolchain $toolchain hidden: $hidden"
"${run[@]}" || fail "a step failed (above)"

# What else the package installs, where Debian's tools look for it.
man=/usr/share/man/man1/toolcfg.1.gz
[ -f "$man" ] || fail "no man page at $man"
gzip -t "$man" || fail "$man is not a valid gzip file"
page=$(gzip -dc "$man")
grep -q '^\.Dt TOOLCFG 1' <<<"$page" || fail "$man is not the toolcfg(1) page"
for command in keygen migrate export import rotate verify-keys check-backup; do
  grep -q "^\.It Em $command\$" <<<"$page" || fail "$man does not describe '$command'"
done
if command -v man >/dev/null; then
  [ "$(man -w toolcfg 2>/dev/null)" = "$man" ] || fail "man -w toolcfg does not find $man"
  rendered=$(MANPAGER=cat MANWIDTH=80 man -l "$man" 2>"$work/man.err") || fail "man cannot render $man"
  [ ! -s "$work/man.err" ] || fail "man warns about $man: $(cat "$work/man.err")"
  grep -q 'NAME' <<<"$rendered" || fail "$man renders without a NAME section"
fi
say "ok: man page $man"
for file in /usr/share/bash-completion/completions/toolcfg /usr/share/zsh/vendor-completions/_toolcfg \
            /usr/share/fish/vendor_completions.d/toolcfg.fish; do
  [ -s "$file" ] || fail "no completion script at $file"
  grep -q toolcfg "$file" || fail "$file does not complete toolcfg"
done
bash -c 'source /usr/share/bash-completion/completions/toolcfg && complete -p toolcfg' >/dev/null 2>&1 \
  || fail "the bash completion script does not register a completion for toolcfg"
! command -v zsh >/dev/null || zsh -n /usr/share/zsh/vendor-completions/_toolcfg || fail "the zsh completion script does not parse"
! command -v fish >/dev/null || fish -n /usr/share/fish/vendor_completions.d/toolcfg.fish || fail "the fish completion script does not parse"
say "ok: bash, zsh and fish completions"
for file in /usr/lib/systemd/system/toolcfg-rotate.service /usr/lib/systemd/system/toolcfg-rotate.timer \
            /usr/share/doc/toolcfg/examples/rotate.env.example /usr/share/doc/toolcfg/examples/toolcfg-rotate \
            /usr/share/doc/toolcfg/copyright; do
  [ -f "$file" ] || fail "$file is not installed"
done
exec_start=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/toolcfg-rotate.service)
[ -x "$exec_start" ] || fail "toolcfg-rotate.service starts $exec_start, which is not an installed executable"
bash -n "$exec_start" || fail "$exec_start does not parse"
say "ok: systemd units, rotation script, examples and copyright"
say "passed: toolcfg $version from $deb"
