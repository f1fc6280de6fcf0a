#!/usr/bin/env bash
# Two builds of dfm side by side (issue 50: "say what each change bought"):
# alternating runs of bench/ingest_client against each binary, closed loop
# over 128 connections (or $CONNECTIONS), and the medians of each one's
# figures:
#   - webhooks answered per second;
#   - dfm's CPU per webhook (every thread, from /proc over the loop);
#   - the part of it RocksDB's own threads (flush, compaction) used.
#   bench/ab_ingest.sh BEFORE_BIN AFTER_BIN [SYNC] [SENDERS] [SECONDS] [PAIRS]
# SYNC: off (default) or on; SENDERS: 1 (default) or e.g. 10000 for texts
# from that many people; 8 s per run and 3 pairs by default. Keep a
# binary with `cp build/release/app/dfm /tmp/dfm-before` before a change.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
before=$(realpath "$1") after=$(realpath "$2")
sync_mode=${3:-off} senders=${4:-1} secs=${5:-8} pairs=${6:-3}
cd "$(dirname "$0")/.."
conns=${CONNECTIONS:-128}
cmake --preset release >/dev/null
cmake --build --preset release --target ingest_client >/dev/null
. bench/lib.sh
B=build/release/bench

# ticks PID: CPU ticks (user + system) of PID, its exited threads too.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# rocks_ticks PID: those of PID's live threads whose name begins "rocksdb"
# (RocksDB's pool threads live as long as the database).
rocks_ticks() {
  local total=0 t n
  for t in /proc/"$1"/task/*; do
    grep -qs '^rocksdb' "$t/comm" || continue
    n=$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null) || n=0
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

# one BIN LABEL: one run; appends "LABEL req/s µs rocksdb_µs" to $work/runs.
one() {
  rm -rf "$work/data"
  bench_start_dfm "$sync_mode" "$1"
  $B/ingest_client --port 18080 --secret bench-secret --prefix warm --connections "$conns" \
    --senders "$senders" --seconds 2 >/dev/null
  local t0 r0 t1 r1
  t0=$(ticks "$dfm_pid") r0=$(rocks_ticks "$dfm_pid")
  $B/ingest_client --port 18080 --secret bench-secret --prefix run --connections "$conns" \
    --senders "$senders" --seconds "$secs" > "$work/client.json"
  t1=$(ticks "$dfm_pid") r1=$(rocks_ticks "$dfm_pid")
  kill -TERM "$dfm_pid"; wait "$dfm_pid" || true
  python3 - "$2" "$work/client.json" "$t0" "$t1" "$r0" "$r1" \
    "$(getconf CLK_TCK)" >> "$work/runs" <<'PY'
import json, sys
label, client, t0, t1, r0, r1, hz = sys.argv[1:]
c = json.load(open(client))
if c["errors"] or not c["ok"]:
    sys.exit(f"{label}: {c['errors']} errors, {c['ok']} answered")
us = lambda a, b: (int(b) - int(a)) / int(hz) / c["ok"] * 1e6
print(label, c["req_per_s"], us(t0, t1), us(r0, r1))
PY
}

bench_workdir dfm-ab
sync
for p in $(seq "$pairs"); do
  if [ $((p % 2)) -eq 1 ]; then one "$before" before; one "$after" after
  else one "$after" after; one "$before" before; fi
done
python3 - "$work/runs" "$sync_mode" "$senders" "$conns" <<'PY'
import statistics, sys
runs = [l.split() for l in open(sys.argv[1])]
print(f"sync {sys.argv[2]}, {sys.argv[3]} sender(s), {sys.argv[4]} connections; medians of "
      f"{len(runs) // 2} runs each")
med = {}
for label in ("before", "after"):
    r = [[float(x) for x in l[1:]] for l in runs if l[0] == label]
    med[label] = [statistics.median(c) for c in zip(*r)]
    rate, cpu, rocks = med[label]
    print(f"  {label:6} {rate:9,.0f} req/s  {cpu:6.1f} µs of CPU per webhook  "
          f"(RocksDB's threads {rocks:4.2f} µs)")
b, a = med["before"], med["after"]
print(f"  after/before: rate {a[0] / b[0]:.3f}, CPU {a[1] / b[1]:.3f}")
PY
