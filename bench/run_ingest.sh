#!/usr/bin/env bash
# Benchmark (b): end-to-end ingest of signed ~1.5 KiB webhooks over keep-alive
# loopback connections into `dfm serve` (release build, fsync on), beside a
# bare RESTinio "return 200" server in the same run.
#   bench/run_ingest.sh [SECONDS] [ROUNDS]      (10 and 9 by default)
#
# Each round measures both servers closed loop (64 connections), one right
# after the other, and gives their ratio; the order alternates between
# rounds, and the machine settles (sync, 1 s) after each dfm run so its
# writeback does not land on the bare server's turn. The figure is the
# median of the rounds' ratios: a single pair swings by a fifth on this
# machine kind, mostly with the bare server's own rate. The open-loop
# latency at 5,000/s is measured once, in the first round.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-9}
[[ "$secs" =~ ^[0-9]+(\.[0-9]+)?$ ]] && python3 -c "import sys; sys.exit(float('$secs') <= 0)" ||
  { echo "SECONDS must be a number above 0" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a whole number from 1" >&2; exit 2; }
cmake --preset release >/dev/null
cmake --build --preset release --target dfm ingest_client bare_server >/dev/null
work=$(mktemp -d /tmp/dfm-bench-XXXXXX)
# On the way out (an error too): stop a server still running, wait until it
# has exited, then remove the directory it wrote in.
cleanup() {
  local pids
  pids=$(jobs -p)
  if [ -n "$pids" ]; then
    kill $pids 2>/dev/null || true
    wait $pids 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
B=build/release/bench

# The rounds run in this shell (the servers are its jobs, the results go to
# files): a failed client run or a server that never gets ready stops the
# script (set -e) and the trap stops the server.

# dfm_round N: a fresh data directory, 2 s warm-up, closed loop into
# $work/dfm.json; the open loop too when N is 1. The data directory is
# removed after the run, before the machine settles, so its deletion does
# not land on a measurement.
dfm_round() {
  cat > "$work/bench.toml" <<TOML
[server]
listen = "127.0.0.1:18080"
threads = 1
[storage]
data_dir = "$work/data"
[log]
level = "warn"
[verity]
webhook_secret = "bench-secret"
TOML
  ./build/release/app/dfm serve -c "$work/bench.toml" >/dev/null 2>"$work/dfm.log" &
  local pid=$!
  for _ in $(seq 100); do curl -sf localhost:18080/readyz >/dev/null && break; sleep 0.1; done
  curl -sf localhost:18080/readyz >/dev/null ||
    { echo "dfm serve did not become ready:" >&2; cat "$work/dfm.log" >&2; exit 1; }
  $B/ingest_client --port 18080 --secret bench-secret --prefix warm --connections 64 --seconds 2 >/dev/null
  $B/ingest_client --port 18080 --secret bench-secret --prefix max --connections 64 \
    --seconds "$secs" > "$work/dfm.json"
  if [ "$1" = 1 ]; then
    $B/ingest_client --port 18080 --secret bench-secret --prefix r5k --connections 64 \
      --seconds "$secs" --rate 5000 > "$work/open.json"
    echo "dfm, open loop at 5,000/s, 64 connections: $(cat "$work/open.json")" >&2
  fi
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$work/data"
  sync; sleep 1
}

# bare_round: the same warm-up (2 s) and closed loop against the bare
# server, into $work/bare.json.
bare_round() {
  $B/bare_server 18090 >/dev/null &
  local pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null localhost:18090/ && break; sleep 0.05; done
  $B/ingest_client --port 18090 --secret bench-secret --prefix warm --connections 64 --seconds 2 >/dev/null
  $B/ingest_client --port 18090 --secret bench-secret --prefix bare --connections 64 \
    --seconds "$secs" > "$work/bare.json"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

: > "$work/rounds"
for r in $(seq "$rounds"); do
  if [ $((r % 2)) = 1 ]; then
    dfm_round "$r"; bare_round
  else
    bare_round; dfm_round "$r"
  fi
  d=$(cat "$work/dfm.json"); b=$(cat "$work/bare.json")
  echo "round $r: dfm $d" >&2
  echo "round $r: bare $b" >&2
  echo "$d|$b" >> "$work/rounds"
done

python3 - "$work/rounds" <<'PY'
import json, statistics, sys
rows = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
d = [json.loads(a) for a, _ in rows]
b = [json.loads(c) for _, c in rows]
ratios = [x["req_per_s"] / y["req_per_s"] for x, y in zip(d, b)]
med = lambda v: statistics.median(v)
print("dfm closed loop req/s: " + ", ".join(str(x["req_per_s"]) for x in d) +
      f"  (median {med([x['req_per_s'] for x in d]):,.0f}; p99 µs "
      f"{min(x['p99_us'] for x in d):,.0f}–{max(x['p99_us'] for x in d):,.0f})")
print("bare closed loop req/s: " + ", ".join(str(y["req_per_s"]) for y in b) +
      f"  (median {med([y['req_per_s'] for y in b]):,.0f})")
print("dfm / bare by round: " + ", ".join(f"{r:.3f}" for r in ratios))
print(f"dfm / bare, median of {len(ratios)} rounds = {med(ratios):.3f}")
PY
