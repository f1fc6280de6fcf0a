#!/usr/bin/env bash
# Where a webhook's CPU goes in `dfm serve` (issue 50's first step: measure
# before changing). The release build, sealed payloads, the sync off (or on),
# closed loop over CONNECTIONS as bench/run_ingest.sh runs it, sampled by
# perf (every thread of dfm, 999 Hz, self time per symbol), then
# bench/perf_stages.py sorts the symbols into the stages of one webhook
# and prints µs of CPU per request for each.
#   bench/profile_ingest.sh [SECONDS] [CONNECTIONS] [SYNC]   (10, 128, off)
# SYNC: off, on (every text from one sender: one contact), or spread (from
# 10,000 senders: 10,000 contacts).
# The profile and its report stay in /tmp/dfm-profile-last (perf.data,
# report.txt) for a closer look (perf report -i ... -g caller).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-128}
sync_mode=${3:-off}
case "$sync_mode" in
  off | on) senders=1 ;;
  spread) senders=10000 sync_mode=on ;;
  *) echo "SYNC must be off, on or spread" >&2; exit 2 ;;
esac
command -v perf >/dev/null || { echo "needs perf (Debian's linux-perf)" >&2; exit 2; }
. bench/lib.sh
bench_ingest_ready dfm-profile
B=build/release/bench
bench_start_dfm "$sync_mode"
pid=$dfm_pid
$B/ingest_client --port 18080 --secret bench-secret --prefix warm --connections "$conns" \
  --senders "$senders" \
  --seconds 2 >/dev/null
bench_thread_stats "$pid" > "$work/switches_before.tsv"
perf record -F 999 -g -p "$pid" -o "$work/perf.data" -- sleep "$secs" 2>"$work/perf.log" &
perf_pid=$!
$B/ingest_client --port 18080 --secret bench-secret --prefix prof --connections "$conns" \
  --senders "$senders" \
  --seconds "$secs" > "$work/client.json"
bench_thread_stats "$pid" > "$work/switches_after.tsv"
wait "$perf_pid"
kill -TERM "$pid"; wait "$pid" || true
perf report -i "$work/perf.data" --no-children --sort comm,dso,symbol --stdio -n -g none \
  --percent-limit 0 > "$work/report.txt" 2>/dev/null
keep=/tmp/dfm-profile-last
rm -rf "$keep" && mkdir -p "$keep"
cp "$work/perf.data" "$work/report.txt" "$work/client.json" "$work"/switches_*.tsv "$keep/"
python3 bench/perf_stages.py "$keep/report.txt" "$keep/client.json" "$secs" \
  --switches "$keep/switches_before.tsv" "$keep/switches_after.tsv"
