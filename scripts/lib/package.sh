# shellcheck shell=bash
# Install-as-a-user helpers shared by scripts/platforms.sh and scripts/platforms/package-smoke.sh
# (the release workflow's smoke test), sourced, not run: pack the main package and one platform
# package (napi's npm/<platform> layout, as `napi prepublish` publishes it), install both
# tarballs into an empty project, and run scripts/platforms/smoke.mjs there through the harness
# (local IdP and redis-server on loopback, stopped by the harness). Paths are relative to the
# repository root, the working directory of the scripts that source this.

# The main package's tarball in directory $1, packed once; prints its path.
main_tarball() {
  [ -n "$(ls "$1"/librechat-obo-0*.tgz 2>/dev/null)" ] || npm pack --silent --pack-destination "$1" >/dev/null
  ls "$1"/librechat-obo-0*.tgz
}

# Packs platform package $2 (npm/$2 with binary $3 as librechat-obo.$2.node) into directory $1;
# prints its path.
platform_tarball() {
  local stage="$1/stage-$2"
  mkdir -p "$stage"
  cp -r "npm/$2/." "$stage"
  cp "$3" "$stage/librechat-obo.$2.node"
  (cd "$stage" && npm pack --silent --pack-destination "$1" >/dev/null)
  ls "$1/librechat-obo-$2-"*.tgz
}

# Directory $1/app-$2: an empty project with the main package and platform package $2 (binary $3)
# installed from their tarballs (npm's --os, --cpu and --libc after them, for another platform
# than the host's) and the smoke test beside them; prints its path.
user_project() {
  local dir="$1" platform="$2" binary="$3" project="$1/app-$2" main plat
  shift 3
  mkdir -p "$project"
  printf '{"name":"app","version":"1.0.0","private":true}\n' >"$project/package.json"
  main="$(main_tarball "$dir")"
  plat="$(platform_tarball "$dir" "$platform" "$binary")"
  (cd "$project" && npm install --silent --no-audit --no-fund "$@" "$main" "$plat" >&2)
  cp scripts/platforms/smoke.mjs "$project/"
  echo "$project"
}

# Runs the smoke test in project $1 with the command after $3 (smoke.mjs appended) through the
# harness, bounded to $2 seconds; its output goes to the terminal and to log file $3.
smoke_run() {
  local project="$1" seconds="$2" log="$3" status=0 harness
  shift 3
  harness="$PWD/scripts/platforms/harness.mjs"
  # The harness bounds the command; coreutils' timeout, where there is one (not on macOS), bounds
  # the harness too.
  local bound=()
  ! command -v timeout >/dev/null || bound=(timeout $((seconds + 60)))
  (cd "$project" && "${bound[@]}" node "$harness" "$seconds" "$@" smoke.mjs) 2>&1 | tee "$log" || status=$?
  return "$status"
}
