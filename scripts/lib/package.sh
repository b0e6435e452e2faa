# shellcheck shell=bash
# Install-as-a-user helpers shared by scripts/platforms.sh and scripts/platforms/package-smoke.sh
# (the release workflow's smoke test), sourced, not run: pack one platform package (napi's
# npm/<platform> layout) and the main package with it as an optional dependency (as `napi
# prepublish` publishes them), install the main one into an empty project, and run scripts/platforms/smoke.mjs there through the harness
# (local IdP and redis-server on loopback, stopped by the harness). Paths are relative to the
# repository root, the working directory of the scripts that source this.

# Packs the package staged in directory $2 into directory $1; prints the tarball's path, the
# name npm reports (a glob would need to know the name and version, or match another tarball).
pack_into() {
  local name
  name="$(cd "$2" && npm pack --json --silent --pack-destination "$1" | node -p 'JSON.parse(require("fs").readFileSync(0, "utf8"))[0].filename')"
  echo "$1/$name"
}

# Packs platform package $2 (npm/$2 with binary $3 as librechat-obo.$2.node) into directory $1;
# prints its path.
platform_tarball() {
  local stage="$1/stage-$2"
  mkdir -p "$stage"
  cp -r "npm/$2/." "$stage"
  cp "$3" "$stage/librechat-obo.$2.node"
  pack_into "$1" "$stage"
}

# Packs the main package into directory $1 as `napi prepublish` publishes it, with the platform
# package in its optionalDependencies (here tarball $2, so no registry is asked); prints its path.
main_tarball() {
  local stage="$1/stage-main" file
  mkdir -p "$stage"
  for file in $(node -p 'require("./package.json").files.join(" ")') package.json README.md; do
    cp -r "$file" "$stage/"
  done
  # shellcheck disable=SC2016 # JavaScript's template literal, not the shell's.
  node -e '
    const [manifest, name, tarball] = process.argv.slice(1)
    const pkg = JSON.parse(require("node:fs").readFileSync(manifest, "utf8"))
    pkg.optionalDependencies = { [name]: `file:${tarball}` }
    require("node:fs").writeFileSync(manifest, JSON.stringify(pkg, null, 2))
  ' "$stage/package.json" "$(tar -xOzf "$2" package/package.json | node -p 'JSON.parse(require("fs").readFileSync(0)).name')" "$2"
  pack_into "$1" "$stage"
}

# Directory $1/app-$2: an empty project where `npm install` of the main package brought platform
# package $2 (binary $3) as its optional dependency, as it does for a user (npm's --os, --cpu and
# --libc after them install for another platform than the host's), with the smoke test beside
# them; prints its path.
user_project() {
  local dir="$1" platform="$2" binary="$3" project="$1/app-$2" main
  shift 3
  mkdir -p "$project"
  printf '{"name":"app","version":"1.0.0","private":true}\n' >"$project/package.json"
  main="$(main_tarball "$dir" "$(platform_tarball "$dir" "$platform" "$binary")")"
  (cd "$project" && npm install --silent --no-audit --no-fund "$@" "$main" >&2)
  [ -d "$project/node_modules/librechat-obo-$platform" ] || { echo "npm did not install librechat-obo-$platform" >&2; return 1; }
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
