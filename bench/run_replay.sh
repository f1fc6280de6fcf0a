#!/usr/bin/env bash
# Replay tools benchmark (issue 5), release build, real RocksDB:
#   bench/run_replay.sh [EVENTS] [WINDOW]
# generates a log of EVENTS (10,000,000) events shaped like live traffic
# (bench/replay_bench.cc) in $DFM_REPLAY_BENCH_DIR (/tmp/dfm-replay-bench;
# kept, so later runs skip the generation), then prints the median of three
# full projection rebuilds and of three `dfm replay` dry runs over the last
# WINDOW (100,000) events.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-10000000}
window=${2:-100000}
dir=${DFM_REPLAY_BENCH_DIR:-/tmp/dfm-replay-bench}
cmake --preset release >/dev/null
cmake --build --preset release --target replay_bench >/dev/null
bin=build/release/bench/replay_bench
if [ ! -f "$dir/.generated-$events" ]; then
  rm -rf "$dir"
  "$bin" generate "$dir" "$events"
  touch "$dir/.generated-$events"
fi
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT
median() { sort -n | sed -n 2p; }
echo "rebuild (3 runs):"
for i in 1 2 3; do "$bin" rebuild "$dir"; done > "$runs"
cat "$runs"
echo "median rebuild: $(sed 's/.*= \([0-9]*\) events\/s/\1/' "$runs" | median) events/s"
echo "replay (3 runs):"
for i in 1 2 3; do "$bin" replay "$dir" "$window"; done > "$runs"
cat "$runs"
echo "median replay: $(sed 's/.* = \([0-9]*\) window events\/s.*/\1/' "$runs" | median) window events/s"
