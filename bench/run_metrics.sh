#!/usr/bin/env bash
# GET /metrics' cost at 1,000,000 known contacts (docs/metrics.md), release
# build, real RocksDB:
#   bench/run_metrics.sh [CONTACTS]
# generates a log of CONTACTS (1,000,000) contacts, each created once and
# synced to Aloware (5 events each, every 50th also a STOP; 5.1 events a
# contact; bench/replay_bench.cc), in
# $DFM_METRICS_BENCH_DIR (/tmp/dfm-metrics-bench; kept, so later runs skip
# the generation), folds every projection over it, then times 1,000
# scrapes over an empty log and over that one.
set -euo pipefail
cd "$(dirname "$0")/.."
contacts=${1:-1000000}
dir=${DFM_METRICS_BENCH_DIR:-/tmp/dfm-metrics-bench}
cmake --preset release >/dev/null
cmake --build --preset release --target replay_bench metrics_bench >/dev/null
if [ ! -f "$dir/.generated-v2-$contacts" ]; then
  rm -rf "$dir"
  DFM_BENCH_CONTACTS=$contacts build/release/bench/replay_bench generate "$dir" $((contacts * 51 / 10))
  DFM_BENCH_CONTACTS=$contacts build/release/bench/replay_bench rebuild "$dir"
  touch "$dir/.generated-v2-$contacts"
fi
build/release/bench/metrics_bench "$dir" 1000
