#!/usr/bin/env bash
# Benchmark: one contact flooded. A closed loop of signed Verity texts, all
# from one sender (bench/ingest_client), so one contact actor decides every
# one of them, into `dfm serve` (release build, fsync on, the sync on); then
# /v1/health is read every 50 ms until the router has decided the whole log
# (`parts.sync.router.behind` 0).
#   bench/run_flood.sh [SECONDS] [CONNECTIONS] [ROUNDS]   (3, 64 and 3 by default)
#   DFM=/path/to/another/dfm bench/run_flood.sh   # the same with another build
#
# Printed per round: the webhooks taken and their rate, how far the router
# had decided when the load ended, and how long after it the last one was
# decided; then the medians. While one contact's backlog waits to be
# decided, every other contact's webhooks wait behind it once the router's
# window (SyncEnv::router_max_in_flight, 20,000 webhooks) is full, so this
# time is how long a flood holds back everyone's sync (bench/README.md (g)).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
conns=${2:-64}
rounds=${3:-3}
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || { echo "SECONDS must be a whole number from 1" >&2; exit 2; }
[[ "$conns" =~ ^[1-9][0-9]*$ ]] || { echo "CONNECTIONS must be a whole number from 1" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a whole number from 1" >&2; exit 2; }
. bench/lib.sh
bench_ingest_ready dfm-flood

# health: parts.sync.router's decided_seq and behind, and the log's
# last_seq, read with grep (no interpreter started 20 times a second beside
# the sync being measured). Fails when the service does not answer.
health() {
  local h
  h=$(curl -sf localhost:18080/v1/health) || return 1
  local router last
  router=$(grep -o '"decided_seq":[0-9]*,"behind":[0-9]*' <<< "$h") || return 1
  last=$(grep -o '"last_seq":[0-9]*' <<< "$h" | head -1) || return 1
  router=${router//[^0-9,]/}
  echo "${router%,*} ${router#*,} ${last#*:}"
}
died() {
  echo "dfm serve stopped answering /v1/health:" >&2
  cat "$work/dfm.log" >&2
  exit 1
}

: > "$work/rounds"
for r in $(seq "$rounds"); do
  bench_start_dfm on "${DFM:-}"
  pid=$dfm_pid
  ./build/release/bench/ingest_client --port 18080 --secret bench-secret --prefix "flood$r" \
    --connections "$conns" --seconds "$secs" > "$work/load.json"
  t_end=$(date +%s.%N)
  line=$(health) || died
  read -r decided_at_end _ last_at_end <<< "$line"
  deadline=$(( $(date +%s) + 600 ))
  while :; do
    line=$(health) || died
    read -r _ behind _ <<< "$line"
    [ "$behind" = 0 ] && break
    [ "$(date +%s)" -lt "$deadline" ] || { echo "the router did not catch up in 600 s" >&2; exit 1; }
    sleep 0.05
  done
  t_done=$(date +%s.%N)
  echo "$(cat "$work/load.json")|$decided_at_end|$last_at_end|$t_end|$t_done" >> "$work/rounds"
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$work/data"
  sync; sleep 1
done

python3 - "$work/rounds" "$secs" <<'PY'
import json, statistics, sys
rows = []
for line in open(sys.argv[1]):
    load, decided, last, t_end, t_done = line.strip().split("|")
    load = json.loads(load)
    after = float(t_done) - float(t_end)
    rows.append((load, int(decided), int(last), after))
    print(f"{load['ok']:,} webhooks at {load['req_per_s']:,} req/s; when the load ended the "
          f"router had decided up to seq {int(decided):,} of {int(last):,}; all decided "
          f"{after:.2f} s later ({load['ok'] / (float(sys.argv[2]) + after):,.0f} webhooks/s "
          f"decided from the start)")
med = statistics.median
print(f"median over {len(rows)} rounds: {med(r[0]['ok'] for r in rows):,.0f} webhooks, "
      f"all decided {med(r[3] for r in rows):.2f} s after the load ended")
PY
