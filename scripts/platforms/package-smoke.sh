#!/usr/bin/env bash
# The release workflow's smoke test of one platform package, on a runner of its own OS and
# architecture: packs the main package and the platform package with the binary given, installs
# both into an empty project as a user does, and runs scripts/platforms/smoke.mjs there on this
# Node (an exchange at the local IdP, a cache hit, invalidate, a failed exchange's fields, the
# shared tier against redis-server unless SMOKE_REDIS=off).
#   bash scripts/platforms/package-smoke.sh <platform> <binary>     e.g. linux-arm64-musl x.node
set -euo pipefail
shopt -s inherit_errexit
[ $# -eq 2 ] || { echo "usage: $0 <platform> <binary>" >&2; exit 2; }
binary="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/package.sh
source scripts/lib/package.sh

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
project="$(user_project "$work" "$1" "$binary")"
smoke_run "$project" 300 "$work/smoke.log" node
