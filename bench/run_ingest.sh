#!/usr/bin/env bash
# Benchmark (b): end-to-end ingest of signed ~1.5 KiB webhooks over keep-alive
# loopback connections into `dfm serve` (release build, fsync on), beside a
# bare RESTinio "return 200" server in the same run. dfm runs with the sync
# off: ingest is verification, the durable log and the projections'
# folding. Each round also runs dfm with the sync on at every count, every
# webhook routed and decided as it arrives (bench/README.md (b), "The
# sync's cost, measured apart"): once with every text from one sender (one
# contact), once from 10,000 senders drawn at random (10,000 contacts).
#   bench/run_ingest.sh [SECONDS] [ROUNDS] [CONNECTIONS]
#   (8, 5 and 64,128,256 by default; CONNECTIONS is a comma-separated list)
#
# Each round measures both servers closed loop at every connection count,
# one server right after the other, and gives their ratio; the order
# alternates between rounds, and the machine settles (sync, 1 s) after each
# dfm run so its writeback does not land on the bare server's turn. A single
# pair swings by a fifth on this machine kind, mostly with the bare server's
# own rate, so every figure is a median over the rounds.
#
# The goal's figure is each server's peak: the highest of its per-count
# medians. The bare server's one I/O thread is already busy all the time
# at 64 connections, so more do not raise its rate; dfm, whose
# answers wait for a group commit's fdatasync, needs more requests in
# flight to keep both cores busy, as any group-commit log does
# (bench/README.md (b), "How many connections").
# The per-count ratios are printed too, and the open-loop latency at
# 5,000/s, measured in the first round only (dfm_round), with how many of
# dfm's group commits meanwhile took 10 ms or more to sync: every answer
# waits for its commit, so a disk that stalls shows there. So is each
# server's CPU per request (all its threads, over the closed loop), in µs
# and in units of the client's own CPU per request in the same run: the
# machine's speed drifts by a fifth within minutes here, and the second
# figure, which scales with it on both sides, moves less than req/s.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
rounds=${2:-5}
conns=${3:-64,128,256}
[[ "$secs" =~ ^[0-9]+(\.[0-9]+)?$ ]] && python3 -c "import sys; sys.exit(float('$secs') <= 0)" ||
  { echo "SECONDS must be a number above 0" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a whole number from 1" >&2; exit 2; }
[[ "$conns" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] ||
  { echo "CONNECTIONS must be whole numbers from 1, separated by commas" >&2; exit 2; }
IFS=, read -r -a levels <<< "$conns"
[ "$(printf '%s\n' "${levels[@]}" | sort -u | wc -l)" = "${#levels[@]}" ] ||
  { echo "CONNECTIONS must not repeat a count" >&2; exit 2; }
first=${levels[0]}
cmake --preset release >/dev/null
cmake --build --preset release --target dfm ingest_client bare_server >/dev/null
# Whatever the build (or anything before this script) left dirty in the
# page cache is written back now, not ~30 s later in the middle of a run:
# in one traced run, 400 MB written back that way held a WAL sync 94 ms
# (bench/README.md (b)).
sync
. bench/lib.sh
bench_workdir dfm-bench
B=build/release/bench
# The disk alone, in the pattern of dfm's log in the open loop (bench/
# disk_probe.py), now and again after the last run: its stalls are the
# open loop's (bench/README.md (b), "The disk's own stalls").
python3 bench/disk_probe.py "$work" "$secs" > "$work/disk_before.json"

# The rounds run in this shell (the servers are its jobs, the results go to
# files): a failed client run or a server that never gets ready stops the
# script (set -e) and the trap stops the server.

# cpu_ticks PID: the CPU time (user and system, all threads) PID has used,
# in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# health PATH...: fields of the running dfm's /v1/health
# (docs/http-api.md), one line each, named by dotted paths.
health() {
  curl -sf localhost:18080/v1/health | python3 -c '
import json, sys
h = json.load(sys.stdin)
for path in sys.argv[1:]:
    v = h
    for key in path.split("."):
        v = v[key]
    print(v)' "$@"
}

# slow_commits: the running dfm's count of group commits whose synced
# write took 10 ms or more.
slow_commits() { health parts.event_log.slow_commits; }

# dfm_round N C [SYNC]: a fresh data directory, 2 s warm-up, closed loop
# over C connections into $work/dfm.json. The service runs with the sync
# off (ingest: verification, the durable log, the projections' folding),
# unless SYNC is "on" (every text from one sender: one contact's work) or
# "spread" (texts from 10,000 senders drawn at random: 10,000 contacts):
# then into $work/dfm_sync.json or $work/dfm_spread.json, with no open loop,
# and its .kept file gets the events appended during the loop
# and how far the sync was behind the log right after it
# (parts.sync.router.behind, read within tens of milliseconds of the
# loop's end). A sync that keeps up appends a decision per webhook within
# the loop (two events per request, more while new senders' contacts are
# made) and is not left behind; the count
# alone would look the same with a lag that stayed constant, the lag
# tells. When N is 1 and C is the first count, the open loop at 5,000/s
# (64 connections) runs twice: before the closed loop, and right after
# it, while the log still flushes and deletes what the saturated run
# wrote. The data directory is removed after the run, before the machine
# settles, so its deletion does not land on a measurement.
dfm_round() {
  local sync=${3:-off} senders=1
  if [ "$sync" = spread ]; then senders=10000; fi
  bench_start_dfm "$([ "$sync" = off ] && echo off || echo on)"
  local pid=$dfm_pid
  $B/ingest_client --port 18080 --secret bench-secret --prefix warm --connections "$2" \
    --seconds 2 --senders "$senders" >/dev/null
  local open=0 out="$work/dfm.json"
  if [ "$1" = 1 ] && [ "$2" = "$first" ] && [ "$sync" = off ]; then open=1; fi
  if [ "$sync" = on ]; then out="$work/dfm_sync.json"; fi
  if [ "$sync" = spread ]; then out="$work/dfm_spread.json"; fi
  if [ $open = 1 ]; then
    slow_commits > "$work/open_before.slow"
    $B/ingest_client --port 18080 --secret bench-secret --prefix r5k --connections 64 \
      --seconds "$secs" --rate 5000 > "$work/open_before.json"
    slow_commits >> "$work/open_before.slow"
  fi
  local t0 e0=0
  if [ "$sync" != off ]; then e0=$(health parts.event_log.events_appended); fi
  t0=$(cpu_ticks "$pid")
  $B/ingest_client --port 18080 --secret bench-secret --prefix max --connections "$2" \
    --seconds "$secs" --senders "$senders" > "$out"
  local t1
  t1=$(cpu_ticks "$pid")
  echo $((t1 - t0)) > "$out.ticks"
  if [ "$sync" != off ]; then
    health parts.event_log.events_appended parts.sync.router.behind |
      { read -r e1; read -r behind; echo "$((e1 - e0)) $behind"; } > "$out.kept"
  fi
  if [ $open = 1 ]; then
    slow_commits > "$work/open_after.slow"
    $B/ingest_client --port 18080 --secret bench-secret --prefix r5k-after --connections 64 \
      --seconds "$secs" --rate 5000 > "$work/open_after.json"
    slow_commits >> "$work/open_after.slow"
  fi
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$work/data"
  sync; sleep 1
}

# bare_round C: the same warm-up (2 s) and closed loop over C connections
# against the bare server, into $work/bare.json.
bare_round() {
  $B/bare_server 18090 >/dev/null &
  local pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null localhost:18090/ && break; sleep 0.05; done
  $B/ingest_client --port 18090 --secret bench-secret --prefix warm --connections "$1" \
    --seconds 2 >/dev/null
  local t0
  t0=$(cpu_ticks "$pid")
  $B/ingest_client --port 18090 --secret bench-secret --prefix bare --connections "$1" \
    --seconds "$secs" > "$work/bare.json"
  local t1
  t1=$(cpu_ticks "$pid")
  echo $((t1 - t0)) > "$work/bare.ticks"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

: > "$work/rounds"
for r in $(seq "$rounds"); do
  for c in "${levels[@]}"; do
    if [ $((r % 2)) = 1 ]; then
      dfm_round "$r" "$c"; bare_round "$c"
    else
      bare_round "$c"; dfm_round "$r" "$c"
    fi
    # The same count with the sync on: one contact, then 10,000.
    dfm_round "$r" "$c" on
    dfm_round "$r" "$c" spread
    d=$(cat "$work/dfm.json"); b=$(cat "$work/bare.json"); s=$(cat "$work/dfm_sync.json")
    p=$(cat "$work/dfm_spread.json")
    echo "round $r, $c connections: dfm $d" >&2
    echo "round $r, $c connections: bare $b" >&2
    echo "round $r, $c connections: dfm with the sync on $s" >&2
    echo "round $r, $c connections: dfm with the sync on, 10,000 senders $p" >&2
    echo "$c|$d|$b|$(cat "$work/dfm.json.ticks")|$(cat "$work/bare.ticks")|$s|$(cat "$work/dfm_sync.json.ticks")|$(cat "$work/dfm_sync.json.kept")|$p|$(cat "$work/dfm_spread.json.ticks")|$(cat "$work/dfm_spread.json.kept")" >> "$work/rounds"
  done
done
python3 bench/disk_probe.py "$work" "$secs" > "$work/disk_after.json"

python3 - "$work/rounds" "$work/open_before.json" "$work/open_after.json" \
  "$(getconf CLK_TCK)" "$work" <<'PY'
import json, statistics, sys
tick_us = 1e6 / int(sys.argv[4])
for name in ("before", "after"):
    d = json.load(open(f"{sys.argv[5]}/disk_{name}.json"))
    print(f"the disk alone {'before the first' if name == 'before' else 'after the last'} run "
          f"({d['syncs']:,} appends of {d['bytes']:,} bytes, each fdatasynced, "
          f"{d['rate']:,.0f} a second): "
          f"p50 {d['p50_us']:,} µs, p99 {d['p99_us']:,} µs, max {d['max_us']:,} µs; "
          f"10 ms or more: {d['slow']}")
for name, path in (("before", sys.argv[2]), ("right after", sys.argv[3])):
    o = json.load(open(path))
    slow = [int(x) for x in open(path[:-len(".json")] + ".slow").read().split()]
    print(f"dfm open loop at 5,000/s, 64 connections, {name} the closed loop: "
          f"p50 {o['p50_us']:,.0f} µs, p99 {o['p99_us']:,.0f} µs, "
          f"p99.9 {o['p999_us']:,.0f} µs, max {o['max_us']:,.0f} µs; "
          f"group commits whose synced write took 10 ms or more meanwhile: {slow[1] - slow[0]}")
rows = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
levels = list(dict.fromkeys(int(r[0]) for r in rows))
# A server's CPU per request (all its threads, over the closed loop), in
# µs and in units of the client's own CPU per request in the same run. The
# second scales with the machine's speed as both do, so it moves less
# between runs than req/s (bench/README.md (b)).
def cpu(run, ticks):
    server = int(ticks) * tick_us / run["ok"]
    return server, server / (run["cpu_us"] / run["ok"])
med = statistics.median
peak = {"dfm": (0, 0), "bare": (0, 0), "sync": (0, 0), "spread": (0, 0)}
for c in levels:
    here = [r for r in rows if int(r[0]) == c]
    d = [json.loads(r[1]) for r in here]
    b = [json.loads(r[2]) for r in here]
    d_cpu = [cpu(x, r[3]) for x, r in zip(d, here)]
    b_cpu = [cpu(y, r[4]) for y, r in zip(b, here)]
    ratios = [x["req_per_s"] / y["req_per_s"] for x, y in zip(d, b)]
    dm = med([x["req_per_s"] for x in d])
    bm = med([y["req_per_s"] for y in b])
    print(f"{c} connections:")
    print("  dfm closed loop req/s: " + ", ".join(str(x["req_per_s"]) for x in d) +
          f"  (median {dm:,.0f}; p99 µs "
          f"{min(x['p99_us'] for x in d):,.0f}–{max(x['p99_us'] for x in d):,.0f})")
    print("  bare closed loop req/s: " + ", ".join(str(y["req_per_s"]) for y in b) +
          f"  (median {bm:,.0f})")
    print(f"  CPU per request, median (in units of the client's): dfm "
          f"{med(u for u, _ in d_cpu):.1f} µs ({med(n for _, n in d_cpu):.2f}), bare "
          f"{med(u for u, _ in b_cpu):.1f} µs ({med(n for _, n in b_cpu):.2f})")
    print("  dfm / bare by round: " + ", ".join(f"{r:.3f}" for r in ratios) +
          f"; median of {len(ratios)} rounds = {med(ratios):.3f}")
    # The sync on: a decision appended per webhook, so a sync that kept up
    # appended two events per request within the loop.
    for key, at, label in (("sync", 5, "one sender"), ("spread", 8, "10,000 senders")):
        s = [json.loads(r[at]) for r in here]
        s_cpu = [cpu(x, r[at + 1]) for x, r in zip(s, here)]
        kept = [[int(v) for v in r[at + 2].split()] for r in here]
        sm = med([x["req_per_s"] for x in s])
        print(f"  dfm with the sync on, {label}, req/s: " +
              ", ".join(str(x["req_per_s"]) for x in s) +
              f"  (median {sm:,.0f}, {sm / bm:.3f} of the bare server's; CPU per request "
              f"{med(u for u, _ in s_cpu):.1f} µs, "
              f"{med(n for _, n in s_cpu):.2f} client units; events appended per request "
              f"{min(e / x['ok'] for (e, _), x in zip(kept, s)):.2f}–"
              f"{max(e / x['ok'] for (e, _), x in zip(kept, s)):.2f}; events the sync was "
              f"behind right after the loop: at most {max(b for _, b in kept):,})")
        peak[key] = max(peak[key], (sm, c))
    peak["dfm"] = max(peak["dfm"], (dm, c))
    peak["bare"] = max(peak["bare"], (bm, c))
(dp, dc), (bp, bc), (sp, sc) = peak["dfm"], peak["bare"], peak["sync"]
pp, pc = peak["spread"]
print(f"peak: dfm {dp:,.0f} req/s at {dc} connections, bare {bp:,.0f} at {bc}; "
      f"dfm / bare = {dp / bp:.3f}")
print(f"peak with the sync on (every webhook also routed and decided as it arrives), one "
      f"sender (one contact): {sp:,.0f} req/s at {sc} connections, {sp / bp:.3f} of the bare "
      f"server's peak; 10,000 senders: {pp:,.0f} req/s at {pc} connections, {pp / bp:.3f}")
PY
