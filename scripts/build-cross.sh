#!/usr/bin/env bash
# Builds the four Linux binaries (x64/arm64, glibc/musl) on one x86_64 Linux machine with
# `napi build -x`: cargo-zigbuild with zig from PyPI (`ziglang`), glibc targets pinned to
# 2.17 so older distributions load them. Then prints each artifact's size, architecture and
# the highest glibc symbol version it needs. Output: artifacts/<platform>/.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.cache/zig
if [ ! -x "$venv/bin/cargo-zigbuild" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet ziglang cargo-zigbuild
fi
# The CLI wants `zig` on PATH; ziglang ships it as a Python module.
printf '#!/bin/sh\nexec "%s/bin/python" -m ziglang "$@"\n' "$PWD/$venv" > "$venv/bin/zig"
chmod +x "$venv/bin/zig"
export PATH="$PWD/$venv/bin:$PATH"

targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
rustup target add "${targets[@]}" >/dev/null

for target in "${targets[@]}"; do
  spelled=$target
  [[ $target == *-gnu ]] && spelled=$target.2.17
  out=artifacts/$target
  mkdir -p "$out"
  npx napi build --platform --release --target "$spelled" -x --output-dir "$out" --no-js
done

printf '\n%-36s %10s  %-8s %s\n' artifact bytes machine "highest GLIBC symbol"
for node in artifacts/*/*.node; do
  machine=$(readelf -h "$node" | awk -F: '/Machine/ {print $2}' | sed 's/Advanced Micro Devices //; s/^ *//')
  glibc=$(readelf --dyn-syms -W "$node" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 || true)
  printf '%-36s %10s  %-8s %s\n' "$(basename "$node")" "$(stat -c %s "$node")" "$machine" "${glibc:-none (musl)}"
done
