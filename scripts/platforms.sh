#!/usr/bin/env bash
# `npm run platforms`: builds every published target on one x86_64 Linux machine, proves each one
# as far as the machine allows, and prints a table (target, size, how it was run, tests passed,
# `require` time). Not part of .ci/run (its time budget); the `platforms` job of ci.yml runs it.
#
#   linux-x64-gnu     the normal release build; the smoke test (scripts/platforms/smoke.mjs) on
#                     the host's Node (npm test runs everything else on it).
#   linux-x64-musl    scripts/musl-suite.sh: the whole node:test suite under a musl Node 20.
#   linux-arm64-gnu   `napi build -x` (zig, glibc 2.17); the smoke test under qemu-user with
#   linux-arm64-musl  PyPI's aarch64 Node and a sysroot of Debian's arm64 libc (`dpkg -x` of
#                     fetched .debs, handed to qemu with -L; no binfmt registration, no multiarch).
#   win32-x64         x86_64-pc-windows-gnu with Debian's mingw-w64; the smoke test under Wine
#                     with the Windows node.exe from PyPI. The shipped binary is the msvc build
#                     of a Windows runner (release.yml); this proves the Rust on Windows.
#   darwin-x64/arm64  `cargo zigbuild check`: compiled, not linked (that needs Apple's SDK), not run.
#
# The smoke tests run from an empty project where the packed main package and the platform
# package (napi's npm/<platform> layout) were installed from their tarballs, as a user does.
# Everything downloaded stays in target/platforms/ and target/cross/ for the next run; scratch
# space is removed at the end. Servers (IdP, redis-server) are the harness's, stopped by pid.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/cross.sh
source scripts/lib/cross.sh
# shellcheck source=scripts/lib/package.sh
source scripts/lib/package.sh

readonly NODE_VERSION=20.18.0
# PyPI has no musllinux aarch64 wheel of Node 20 (they start at 22.13.1): Node 22, node:22-alpine's.
readonly NODE_MUSL_ARM64=22.20.0
# Upper bounds so a hang cannot eat the job: one build, one smoke run (emulated), the musl suite.
readonly BUILD_SECONDS=1800 SMOKE_SECONDS=600 MUSL_SUITE_SECONDS=3000
readonly cache="$PWD/target/platforms"
readonly SIGNED='signed-by=/usr/share/keyrings/debian-archive-keyring.gpg'
export WINEPREFIX="$cache/wine" WINEDEBUG=-all WINEDLLOVERRIDES='mscoree,mshtml='

scratch="$(mktemp -d "${TMPDIR:-/tmp}/platforms.XXXXXX")"
wine_started=''
failed=()
# One line per target, `target|size|how|tests|require`, in a file: each target runs in a subshell.
rows="$scratch/rows"
add_row() {
  echo "$1" >>"$rows"
}
# The table of what was proven, also when the run ends early (a failure, its time bound, ^C).
table() {
  [ -s "$rows" ] || return 0
  {
    echo '| target | size | how it was run | tests | require |'
    echo '|---|---|---|---|---|'
    sed 's/|/ | /g; s/^/| /; s/$/ |/' "$rows"
  } >"$cache/table.md"
  printf '\n' && cat "$cache/table.md"
}
cleanup() {
  table
  # Wine's server for this prefix only (it would linger a few seconds by itself).
  [ -z "$wine_started" ] || wineserver -k 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
mkdir -p "$cache/out"

# `napi build --release` of the addon into directory $1, with napi's options after it.
napi_build() {
  local out="$1"
  shift
  PATH="$CROSS_VENV/bin:$PATH" timeout "$BUILD_SECONDS" \
    npx napi build --platform --release --output-dir "$out" --no-js "$@"
}

# Adds a row: target, binary, how it was run, then the harness/suite log to read counts from.
row() {
  local target="$1" binary="$2" how="$3" log="$4" size pass fail ms
  size="$(awk -v b="$(stat -c %s "$binary")" 'BEGIN { printf "%.1f MB", b / 1e6 }')"
  pass="$(grep -oP '^(result: pass=|[#ℹ] pass )\K\d+' "$log" | tail -1)"
  fail="$(grep -oP '^(result: .*fail=|[#ℹ] fail )\K\d+' "$log" | tail -1)"
  ms="$(grep -oP 'require(_ms=| librechat-obo: )\K[\d.]+' "$log" | tail -1)"
  add_row "$target|$size|$how|${pass:-0} passed, ${fail:-?} failed|${ms:-?} ms"
}

# The smoke test of target $1 in project $2, run with the command after them (see smoke_run).
smoke() {
  local target="$1" project="$2"
  shift 2
  smoke_run "$project" "$SMOKE_SECONDS" "$scratch/$target.log" "$@"
}

linux_x64_gnu() {
  napi_build "$cache/out/linux-x64-gnu"
  local binary="$cache/out/linux-x64-gnu/librechat-obo.linux-x64-gnu.node" project
  project="$(user_project "$scratch" linux-x64-gnu "$binary" --os=linux --cpu=x64 --libc=glibc)"
  smoke linux-x64-gnu "$project" node
  row linux-x64-gnu "$binary" "smoke test, host Node $(node --version) (npm test runs the full suite)" "$scratch/linux-x64-gnu.log"
}

linux_x64_musl() {
  local status=0
  timeout "$MUSL_SUITE_SECONDS" bash scripts/musl-suite.sh 2>&1 |
    tee "$scratch/linux-x64-musl.log" || status=$?
  [ "$status" -eq 0 ] || return "$status"
  # musl-suite.sh builds into its own scratch space; cargo's output is the same binary.
  local binary=target/x86_64-unknown-linux-musl/release/liblibrechat_obo.so
  row linux-x64-musl "$binary" "whole node:test suite (scripts/musl-suite.sh), musl Node $NODE_VERSION on Debian 13's musl 1.2.5" "$scratch/linux-x64-musl.log"
}

# A sysroot of Debian arm64 packages in $cache/sysroot-$1 ($1: gnu or musl), for qemu's -L.
arm64_sysroot() {
  local libc="$1" root="$cache/sysroot-$1"
  [ -d "$root" ] && { echo "$root"; return; }
  local mirror debs="$cache/debs-arm64"
  mirror="$(debian_mirror)"
  private_apt "$cache/apt-arm64" arm64 "deb [arch=arm64 $SIGNED] $mirror bookworm main" "deb [arch=arm64 $SIGNED] $mirror trixie main"
  mkdir -p "$debs" "$root.partial"
  if [ "$libc" = gnu ]; then
    # Debian 12's glibc 2.36 and GCC 12 runtime, what the manylinux Node needs.
    (cd "$debs" && apt-get "${apt_opts[@]}" download libc6:arm64/bookworm libstdc++6:arm64/bookworm libgcc-s1:arm64/bookworm >/dev/null)
    for deb in "$debs"/libc6_*.deb "$debs"/libstdc++6_*.deb "$debs"/libgcc-s1_*.deb; do dpkg -x "$deb" "$root.partial"; done
  else
    # Debian 13's musl 1.2.5 (the wheel's Node needs 1.2.4 or later), laid out as Alpine does:
    # the loader in /lib, libc.musl-aarch64.so.1 beside it, and an ldd that names musl, which
    # napi's loader reads (qemu's -L serves these paths to the emulated process).
    (cd "$debs" && apt-get "${apt_opts[@]}" download musl:arm64/trixie >/dev/null)
    dpkg -x "$debs"/musl_*_arm64.deb "$root.partial"
    mkdir -p "$root.partial/lib" "$root.partial/usr/bin"
    ln -s ../usr/lib/ld-musl-aarch64.so.1 "$root.partial/lib/ld-musl-aarch64.so.1"
    ln -s ld-musl-aarch64.so.1 "$root.partial/lib/libc.musl-aarch64.so.1"
    printf '#!/bin/sh\nexec /lib/ld-musl-aarch64.so.1 --list "$@"\n' >"$root.partial/usr/bin/ldd"
  fi
  mv "$root.partial" "$root"
  echo "$root"
}

# linux-arm64-$1 ($1: gnu or musl) under qemu-user.
linux_arm64() {
  local libc="$1" platform="linux-arm64-$1" target spelled npm_libc tag version
  if [ "$libc" = gnu ]; then
    target=aarch64-unknown-linux-gnu spelled=aarch64-unknown-linux-gnu.2.17 npm_libc=glibc tag=manylinux_2_17_aarch64 version=$NODE_VERSION
  else
    target=aarch64-unknown-linux-musl spelled=$target npm_libc=musl tag=musllinux_1_2_aarch64 version=$NODE_MUSL_ARM64
  fi
  rustup target add "$target" >/dev/null
  napi_build "$cache/out/$platform" --target "$spelled" -x
  local binary="$cache/out/$platform/librechat-obo.$platform.node" root node project
  root="$(arm64_sysroot "$libc")"
  node="$(node_wheel "$tag" "$version" "$cache/node-$platform")"
  project="$(user_project "$scratch" "$platform" "$binary" --os=linux --cpu=arm64 "--libc=$npm_libc")"
  smoke "$platform" "$project" qemu-aarch64-static -L "$root" "$node"
  row "$platform" "$binary" "smoke test under qemu-aarch64 $(qemu-aarch64-static --version | grep -oP 'version \K[\d.]+'), Node $version ($tag wheel), $(basename "$root") from Debian .debs" "$scratch/$platform.log"
}

# napi-build links a windows-gnu addon against LIBNODE_PATH/libnode.dll (it only checks that the
# file exists): an import library for node.exe made with mingw's dlltool from the napi functions
# napi-sys declares, and an empty libnode.dll beside it. Prints the directory.
libnode() {
  local dir="$cache/libnode" napi_sys
  napi_sys="$(cargo metadata --format-version 1 --locked | python3 -c \
    'import json, sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "napi-sys"))')"
  mkdir -p "$dir"
  { echo 'LIBRARY node.exe' && echo EXPORTS &&
    grep -rhoP '\bfn \K(napi|node_api)_\w+' "$(dirname "$napi_sys")/src" | sort -u; } >"$dir/node.def"
  x86_64-w64-mingw32-dlltool -d "$dir/node.def" -l "$dir/libnode.dll.a"
  : >"$dir/libnode.dll"
  echo "$dir"
}

# Wine 8 lacks bcryptprimitives.dll's ProcessPrng (Rust's std uses it since 1.78; Windows 10 has
# it): a test-only DLL that forwards to advapi32's RtlGenRandom, in this Wine prefix's system32
# (Node loads an addon with the addon's own directory searched, not node.exe's).
prng_shim() {
  x86_64-w64-mingw32-gcc -O2 -shared -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    scripts/platforms/bcryptprimitives.c -ladvapi32
}

win32_x64() {
  rustup target add x86_64-pc-windows-gnu >/dev/null
  LIBNODE_PATH="$(libnode)" napi_build "$cache/out/win32-x64" --target x86_64-pc-windows-gnu
  local binary="$cache/out/win32-x64/librechat-obo.win32-x64-gnu.node" node project
  node="$(node_wheel win_amd64 "$NODE_VERSION" "$cache/node-win32-x64")"
  wine_started=1
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    timeout 300 wine wineboot --init </dev/null >/dev/null 2>&1
    # Node 20 refuses Wine's default (Windows 7).
    timeout 120 wine winecfg /v win10 </dev/null >/dev/null 2>&1
  fi
  prng_shim
  # Node loads the msvc package's name; the gnu build stands in for it.
  project="$(user_project "$scratch" win32-x64-msvc "$binary" --os=win32 --cpu=x64)"
  # Under Wine, node.exe cannot open a Unix pipe as its stdout or stderr (EBADF): a file, then.
  # shellcheck disable=SC2016 # $0 and $1 are the inner shell's: node.exe and smoke.mjs.
  smoke win32-x64 "$project" sh -c 'wine "$0" "$1" >wine.log 2>&1; status=$?; cat wine.log; exit $status' "$node"
  row win32-x64 "$binary" "smoke test under Wine $(wine --version | grep -oP '[\d.]+' | head -1) (Windows 10 mode), node.exe $NODE_VERSION (win_amd64 wheel); x86_64-pc-windows-gnu build (mingw-w64)" "$scratch/win32-x64.log"
}

# darwin-x64 and darwin-arm64: every crate compiled for the target with zig; no link, no run.
darwin() {
  local target="$1" platform="$2"
  rustup target add "$target" >/dev/null
  PATH="$CROSS_VENV/bin:$PATH" timeout "$BUILD_SECONDS" cargo-zigbuild check --locked --target "$target"
  add_row "$platform|-|compiled (cargo zigbuild check), not linked or run here: linking needs Apple's SDK|-|-"
}

# Runs one target; a failure is reported in the table and the exit status, the others still run.
attempt() {
  local name="$1" status=0
  shift
  echo "== $name"
  set +e
  (set -e && "$@")
  status=$?
  set -e
  if [ "$status" -ne 0 ]; then
    failed+=("$name")
    add_row "$name|-|FAILED (status $status; the log is above)|-|-"
  fi
}

started=$SECONDS
apt_install qemu-aarch64-static:qemu-user-static x86_64-w64-mingw32-gcc:mingw-w64 wine:wine wine:wine64 redis-server:redis-server
cross_tools

# The musl suite last: it is the longest (the whole node:test suite), the others are one smoke run.
attempt linux-x64-gnu linux_x64_gnu
attempt linux-arm64-gnu linux_arm64 gnu
attempt linux-arm64-musl linux_arm64 musl
attempt win32-x64 win32_x64
attempt darwin-x64 darwin x86_64-apple-darwin darwin-x64
attempt darwin-arm64 darwin aarch64-apple-darwin darwin-arm64
attempt linux-x64-musl linux_x64_musl

echo "platforms: $((SECONDS - started)) s"
[ ${#failed[@]} -eq 0 ] || { echo "failed: ${failed[*]}" >&2; exit 1; }
