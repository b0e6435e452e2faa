#!/usr/bin/env bash
# Fuzzes the parsers of outside input (fuzz/, cargo-fuzz on nightly): each target named on
# the command line, or every target, for FUZZ_SECONDS each (default 300; CI passes a short
# time), starting from its committed seeds in fuzz/corpus/<target>/ and growing that
# folder (git ignores all but the seeds). A crash, a failed assertion, a hang over 10 s or
# memory over FUZZ_RSS_MB fails the run; libFuzzer keeps the input in fuzz/artifacts/.
# Afterwards each corpus is replayed one input at a time: an input over FUZZ_SLOW_MS (10)
# is a finding too.
#
# Needs only rustup: nightly (minimal profile) and cargo-fuzz (pinned) are installed when
# missing. No sanitizer: the crate has no unsafe code of its own, so the fuzzer looks for
# panics, failed assertions and slow inputs, twice as fast as under ASan. Debug assertions
# are on, so an arithmetic overflow panics as well.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-300}"
rss_mb="${FUZZ_RSS_MB:-1024}"
cargo_fuzz_version=0.13.2

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $cargo_fuzz_version" ]; then
  cargo install --locked cargo-fuzz --version "$cargo_fuzz_version"
fi

# The time an input of $1's corpus takes alone, at most: libFuzzer prints "Executed <file>
# in <n> ms" for each file it is given. The five slowest are run five times more and keep
# their fastest time, so a run the machine preempted is not taken for a slow input. Over
# FUZZ_SLOW_MS (10) fails.
slowest() {
  local target="$1" bin="$bin_dir/$1" limit="${FUZZ_SLOW_MS:-10}" worst
  worst="$(
    find "corpus/$target" -type f -print0 | xargs -0 -n 500 "$bin" -timeout=10 2>&1 |
      sed -n 's/^Executed \(.*\) in \([0-9]*\) ms$/\2 \1/p' | sort -n | tail -n 5 |
      while read -r _ file; do
        "$bin" "$file" "$file" "$file" "$file" "$file" 2>&1 |
          sed -n 's/^Executed \(.*\) in \([0-9]*\) ms$/\2 \1/p' | sort -n | head -n 1
      done | sort -n | tail -n 1
  )"
  echo "slowest input: ${worst%% *} ms (${worst#* })"
  if [ -n "$worst" ] && [ "${worst%% *}" -gt "$limit" ]; then
    echo "fuzz: an input of $target takes over ${limit} ms: ${worst#* }" >&2
    exit 1
  fi
}

mapfile -t targets < <(if [ "$#" -gt 0 ]; then printf '%s\n' "$@"; else cargo +nightly fuzz list; fi)
flags=(--sanitizer none --debug-assertions)
cargo +nightly fuzz build "${flags[@]}"
bin_dir="target/$(rustc -vV | sed -n 's/^host: //p')/release"

for target in "${targets[@]}"; do
  echo "== $target: ${seconds}s"
  log="$(mktemp)"
  if ! cargo +nightly fuzz run "${flags[@]}" "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb="$rss_mb" -print_final_stats=1 \
    >"$log" 2>&1; then
    tail -n 60 "$log"
    rm -f "$log"
    echo "fuzz: $target found a failing input (see fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs)' "$log" | tail -n 1 || true
  rm -f "$log"
  slowest "$target"
done
