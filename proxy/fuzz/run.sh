#!/usr/bin/env bash
# Bounded fuzz run of every target (default 60 s each). Needs a nightly
# toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")"
SECS=${FUZZ_SECONDS:-60}
for target in detect config_decoder h1_response; do
  # Seeds (tracked) start the corpus (not tracked) where a target has them.
  if [ -d "seeds/$target" ]; then
    mkdir -p "corpus/$target" && cp seeds/"$target"/* "corpus/$target/"
  fi
  cargo +nightly fuzz run "$target" -- -max_total_time="$SECS" -max_len=4096
done
