#!/usr/bin/env bash
# Two builds' projection rebuilds side by side (issue 50: "say what each
# change bought"): alternating full rebuilds of the same log by each
# build's bench/replay_bench, then each one's median and the median of the
# paired ratios (after / before).
#   bench/ab_rebuild.sh BEFORE_BIN AFTER_BIN DIR [PAIRS]
# DIR: a log written by `replay_bench generate DIR EVENTS` (with
# DFM_BENCH_SEALED=1 in the environment for a sealed one, and for the
# runs). Keep a binary with `cp build/release/bench/replay_bench
# /tmp/replay-before` before a change. 3 pairs by default.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
before=$1 after=$2 dir=$3 pairs=${4:-3}
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT
for _ in $(seq "$pairs"); do
  for bin in "$before" "$after"; do
    rate=$("$bin" rebuild "$dir" | sed -n 's/.*= \([0-9]*\) events\/s.*/\1/p')
    [ -n "$rate" ] || { echo "$bin rebuild $dir gave no rate" >&2; exit 1; }
    echo "$rate" >> "$runs"
  done
done
python3 - "$runs" <<'PY'
import statistics, sys
rates = [int(x) for x in open(sys.argv[1])]
before, after = rates[0::2], rates[1::2]
print("before", before, "median", statistics.median(before))
print("after ", after, "median", statistics.median(after))
ratios = [a / b for a, b in zip(after, before)]
print("after/before per pair", [round(r, 3) for r in ratios],
      "median", round(statistics.median(ratios), 3))
PY
