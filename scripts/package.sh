#!/usr/bin/env bash
# Builds the Debian package that runs where the application runs: toolcfg built in release mode
# with the Swift runtime linked in (--static-swift-stdlib), so that it needs Debian's own
# libraries alone, stripped, and packed with dpkg-deb as toolcfg_<version>_<arch>.deb.
#   scripts/package.sh [OUT_DIR]             the .deb goes to OUT_DIR (default: the repository)
#   scripts/package.sh --check-linkage FILE  only the linkage check below, on any binary
# The last line on standard output is the .deb's path; progress and timings go to standard error.
#
# Contents: /usr/bin/toolcfg; bash, zsh and fish completions (ArgumentParser's
# --generate-completion-script); the man page toolcfg(1), made by ArgumentParser's generate-manual
# tool (the tool behind its generate-manual plugin, built on its own from the checkout: the
# plugin would rebuild the whole package once more, without the static runtime); the scheduled
# rotation of contrib/systemd (service and timer in /usr/lib/systemd/system, installed but not
# enabled; the script in /usr/lib/toolcfg) with contrib/cron's line and rotate.env.example under
# /usr/share/doc/toolcfg/examples; the copyright file. Depends: what dpkg-shlibdeps finds for the
# binary's libraries.
#
# Refuses (exit 1, with the library named) a binary that loads anything from the Swift toolchain's
# folder or a Swift runtime library from anywhere, or a library ldd cannot find: such a binary does
# not start on a machine without the toolchain. Installs what it needs first (bootstrap.sh package).
# The release build has its own scratch folder (PACKAGE_BUILD_DIR, default .build-release-static),
# so it leaves the debug build in .build alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

fail() { echo "package: error: $*" >&2; exit 1; }
usage() { echo "usage: scripts/package.sh [OUT_DIR] | --check-linkage BINARY" >&2; exit 64; }
say() { echo "package: $*" >&2; }

# The toolchain's folder: /opt/swift for /opt/swift/usr/bin/swift (TOOLCHAIN_DIR overrides).
toolchain_dir() {
  if [ -n "${TOOLCHAIN_DIR:-}" ]; then echo "$TOOLCHAIN_DIR"; return; fi
  local swift
  swift=$(command -v swift) || fail "no swift on PATH (set TOOLCHAIN_DIR to check linkage without it)"
  # swift is a link to swift-driver in the toolchain's usr/bin: two folders up, and above usr.
  local dir
  dir=$(dirname "$(dirname "$(readlink -f "$swift")")")
  [ "$(basename "$dir")" != usr ] || dir=$(dirname "$dir")
  echo "$dir"
}

# Every library ldd resolves must be a system one: none under the toolchain's folder, no Swift
# runtime library (libswift*, Foundation, libdispatch, BlocksRuntime) wherever it is, none missing.
check_linkage() {
  local binary=$1 toolchain libs bad
  [ -f "$binary" ] || fail "$binary: no such file"
  toolchain=$(toolchain_dir)
  libs=$(ldd "$binary" 2>&1) || fail "$binary: ldd failed: $libs"
  bad=$(grep -E "not found|[[:space:]]${toolchain}/|lib(swift[A-Za-z_]*|_?Foundation[A-Za-z_]*|dispatch|BlocksRuntime)\.so" <<<"$libs" || true)
  if [ -n "$bad" ]; then
    echo "package: error: $binary loads libraries from the Swift toolchain ($toolchain) or that are missing; it would not start where the toolchain is not installed:" >&2
    sed 's/^/  /' <<<"$bad" >&2
    return 1
  fi
}

if [ "${1:-}" = --check-linkage ]; then
  [ $# -eq 2 ] || usage
  check_linkage "$2"
  say "$2 loads system libraries only"
  exit 0
fi
[ $# -le 1 ] || usage
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 0 ;; -*) usage ;; esac
out_dir=${1:-$root}
mkdir -p "$out_dir" || fail "cannot create $out_dir"
out_dir=$(cd "$out_dir" && pwd)

bash scripts/bootstrap.sh package

# The version: where `toolcfg --version` takes it (the binary is checked to agree below).
version=$(sed -n 's/^ *static let version = "\([^"]*\)".*/\1/p' Sources/toolcfg/Toolcfg.swift)
[ -n "$version" ] || fail "no 'static let version = \"...\"' in Sources/toolcfg/Toolcfg.swift"
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || fail "version '$version' is not a Debian upstream version"
arch=$(dpkg --print-architecture)

build_dir=${PACKAGE_BUILD_DIR:-.build-release-static}
say "building toolcfg $version (release, static Swift runtime) in $build_dir"
start=$(date +%s%N)
swift build -c release --static-swift-stdlib --product toolcfg --scratch-path "$build_dir" >&2 \
  || fail "the release build failed"
build_ms=$(( ($(date +%s%N) - start) / 1000000 ))
bin_dir=$(swift build -c release --static-swift-stdlib --scratch-path "$build_dir" --show-bin-path)
binary="$bin_dir/toolcfg"
say "release build: $((build_ms / 1000)).$(printf '%03d' $((build_ms % 1000))) s"

built_version=$("$binary" --version) || fail "$binary --version failed"
[ "$built_version" = "$version" ] || fail "$binary --version says '$built_version', Toolcfg.swift '$version'"

work=$(mktemp -d "${TMPDIR:-/tmp}/toolcfg-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage="$work/toolcfg_${version}_$arch"
umask 022
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/lib/toolcfg" "$stage/usr/lib/systemd/system" \
  "$stage/usr/share/man/man1" "$stage/usr/share/doc/toolcfg/examples" \
  "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
  "$stage/usr/share/fish/vendor_completions.d"

# The binary, stripped as Debian strips executables.
strip --remove-section=.comment --remove-section=.note --strip-unneeded -o "$stage/usr/bin/toolcfg" "$binary" \
  || fail "strip failed"
chmod 0755 "$stage/usr/bin/toolcfg"
check_linkage "$stage/usr/bin/toolcfg" || exit 1
"$stage/usr/bin/toolcfg" --version >/dev/null || fail "the stripped binary does not run"

# Completions, in the folders Debian's bash-completion, zsh and fish read.
"$stage/usr/bin/toolcfg" --generate-completion-script bash > "$stage/usr/share/bash-completion/completions/toolcfg"
"$stage/usr/bin/toolcfg" --generate-completion-script zsh > "$stage/usr/share/zsh/vendor-completions/_toolcfg"
"$stage/usr/bin/toolcfg" --generate-completion-script fish > "$stage/usr/share/fish/vendor_completions.d/toolcfg.fish"
for file in "$stage"/usr/share/{bash-completion/completions/toolcfg,zsh/vendor-completions/_toolcfg,fish/vendor_completions.d/toolcfg.fish}; do
  [ -s "$file" ] || fail "empty completion script $file"
done
bash -n "$stage/usr/share/bash-completion/completions/toolcfg" || fail "the bash completion script does not parse"

# The man page: ArgumentParser's generate-manual (debug build: it runs once and is quicker to
# compile), dated by the last commit so that a rebuild of the same commit gives the same page.
parser="$build_dir/checkouts/swift-argument-parser"
[ -f "$parser/Package.swift" ] || fail "no swift-argument-parser checkout in $parser"
say "building ArgumentParser's generate-manual"
swift build --package-path "$parser" --scratch-path "$build_dir/generate-manual" --product generate-manual >&2 \
  || fail "building generate-manual failed"
generate_manual="$(swift build --package-path "$parser" --scratch-path "$build_dir/generate-manual" --show-bin-path)/generate-manual"
# generate-manual reads the command tree from `toolcfg --experimental-dump-help`; it leaves out
# hidden options but not hidden subcommands (stress-worker, internal), so it reads the tree
# through a filter that drops them (Perl's JSON::PP: perl comes with dpkg-dev).
mkdir -p "$work/dump-help"
cat > "$work/dump-help/toolcfg" <<EOF
#!/bin/sh
set -e
"$stage/usr/bin/toolcfg" --experimental-dump-help | perl -MJSON::PP -e '
  sub visible {
    my \$c = shift;
    \$c->{subcommands} = [ map { visible(\$_) } grep { \$_->{shouldDisplay} // 1 } @{ \$c->{subcommands} || [] } ];
    \$c
  }
  my \$tree = decode_json(join "", <STDIN>);
  visible(\$tree->{command});
  print encode_json(\$tree);'
EOF
chmod 0755 "$work/dump-help/toolcfg"
date=$(git log -1 --format=%cs 2>/dev/null || date -u +%F)
"$generate_manual" "$work/dump-help/toolcfg" --date "$date" --section 1 --output-directory "$work" >&2 \
  || fail "generate-manual failed"
[ -s "$work/toolcfg.1" ] || fail "generate-manual wrote no toolcfg.1"
! grep -q 'stress-worker' "$work/toolcfg.1" || fail "the man page shows the hidden stress-worker command"
# The help texts' blank lines become paragraph breaks (mdoc warns about empty lines) and their
# indented examples literal displays, kept line for line instead of filled into a paragraph.
awk '
  /^$/ { if (literal) { print ".Ed"; literal = 0 } print ".Pp"; next }
  /^  / { if (!literal) { print ".Bd -literal -offset indent"; literal = 1 } sub(/^  /, ""); print; next }
  { if (literal) { print ".Ed"; literal = 0 } print }
  END { if (literal) print ".Ed" }
' "$work/toolcfg.1" | gzip -9n > "$stage/usr/share/man/man1/toolcfg.1.gz"

# The scheduled rotation: the unit must start the script where the package puts it.
unit=contrib/systemd/toolcfg-rotate.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
[ "$exec_start" = /usr/lib/toolcfg/toolcfg-rotate-docker ] \
  || fail "$unit: ExecStart=$exec_start, but the package installs the script as /usr/lib/toolcfg/toolcfg-rotate-docker"
grep -q ' /usr/lib/toolcfg/toolcfg-rotate-docker$' contrib/cron/toolcfg-rotate \
  || fail "contrib/cron/toolcfg-rotate does not run /usr/lib/toolcfg/toolcfg-rotate-docker"
install -m 0755 contrib/systemd/toolcfg-rotate-docker "$stage/usr/lib/toolcfg/toolcfg-rotate-docker"
install -m 0644 contrib/systemd/toolcfg-rotate.service contrib/systemd/toolcfg-rotate.timer "$stage/usr/lib/systemd/system/"
install -m 0644 contrib/systemd/rotate.env.example "$stage/usr/share/doc/toolcfg/examples/rotate.env.example"
install -m 0644 contrib/cron/toolcfg-rotate "$stage/usr/share/doc/toolcfg/examples/toolcfg-rotate"

# The copyright file (Debian's machine-readable format): the Swift runtime and ArgumentParser are
# linked into the binary, so their licence is named too.
cat > "$stage/usr/share/doc/toolcfg/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: toolcfg
Comment: The toolcfg sources (Sources/, migrations/, contrib/) state no licence of their own;
 ask their maintainers before redistributing this package. The binary has the Swift runtime
 (standard library, Foundation, libdispatch) and swift-argument-parser linked in statically.

Files: *
Copyright: the toolcfg maintainers
License: not-stated
 The sources carry no licence statement.

Files: usr/bin/toolcfg (Swift runtime and swift-argument-parser parts)
Copyright: Apple Inc. and the Swift project authors
License: Apache-2.0 with Runtime Library Exception
 Licensed under the Apache License, Version 2.0; see /usr/share/common-licenses/Apache-2.0.
 .
 Runtime Library Exception: As an exception, if you use this Software to compile your source
 code and portions of this Software are embedded into the binary product as a result, you may
 redistribute such product without providing attribution as would otherwise be required by
 Sections 4(a), 4(b) and 4(d) of the License.
EOF
chmod 0644 "$stage/usr/share/doc/toolcfg/copyright"

# Depends: dpkg-shlibdeps maps each library the binary loads to its Debian package and version.
mkdir -p "$work/shlibs/debian"
printf 'Source: toolcfg\n\nPackage: toolcfg\nArchitecture: any\n' > "$work/shlibs/debian/control"
depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e"$stage/usr/bin/toolcfg" 2>"$work/shlibdeps.err") \
  || fail "dpkg-shlibdeps failed: $(cat "$work/shlibdeps.err")"
depends=${depends#shlibs:Depends=}
[ -n "$depends" ] || fail "dpkg-shlibdeps found no dependencies"

maintainer=$(git log -1 --format='%an <%ae>' 2>/dev/null || true)
[ -n "$maintainer" ] || maintainer="toolcfg maintainers <root@localhost>"
installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: toolcfg
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Section: admin
Priority: optional
Description: operators' toolkit for an application's encrypted tool settings
 Imports and exports the per-user tool settings (CSV, JSON, JSON Lines) of an
 application's SQLite or PostgreSQL database, migrates its schema with the
 application's own sqlx ledger, and rotates the master key over every secret
 the application keeps under it. Includes a systemd service and timer (not
 enabled) for a monthly rotation of a Docker installation.
EOF

deb="$out_dir/toolcfg_${version}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2 || fail "dpkg-deb failed"
say "built $deb ($(du -h "$deb" | cut -f1); binary $(du -h "$stage/usr/bin/toolcfg" | cut -f1)); Depends: $depends"
echo "$deb"
