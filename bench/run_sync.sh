#!/usr/bin/env bash
# Contact-sync benchmarks (issue 3), release build, fsync on:
#   bench/run_sync.sh latency [SECONDS]   webhook accepted -> push received, at 1,000/s
#   bench/run_sync.sh memory [COUNT]      resident memory with COUNT (1,000,000) known contacts
#   bench/run_sync.sh optout [SECONDS]    Verity STOP received -> GoHighLevel and Aloware both
#                                         told, 20 opt-outs/s under 1,000 ordinary syncs/s (issue 4)
#   bench/run_sync.sh history [COUNT]     resident memory with COUNT (1,000,000) known contacts
#                                         and a year of their texts, 20,000 of them texting
#                                         (issue 36), with the 30-day message window and a
#                                         ten-year one (everything kept)
# `dfm serve` syncs Aloware contact webhooks (sent by bench/sync_bench) to a
# GoHighLevel stand-in that answers at once (also bench/sync_bench).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-latency}
arg=${2:-}
cmake --preset release >/dev/null
cmake --build --preset release --target dfm sync_bench replay_bench >/dev/null
work=$(mktemp -d /tmp/dfm-sync-bench-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] && cat "$work/dfm.log" >&2; rm -rf "$work"' EXIT
cat > "$work/bench.toml" <<TOML
[server]
listen = "127.0.0.1:18080"
admin_listen = "127.0.0.1:18081"
[storage]
data_dir = "$work/data"
[log]
level = "warn"
[sync]
contact_idle_s = 5
[aloware]
auth = "bearer"
token = "bench-aloware-token"
[ghl]
ed25519_public_key_file = "$PWD/etc/dev-keys/ghl-ed25519-public.pem"
api_base_url = "http://127.0.0.1:18191"
location_id = "bench-location"
access_token = "bench-token"
concurrency = 16
rate_limit = 1000000
rate_window_ms = 1000
daily_limit = 1000000000
TOML
if [ "$mode" = optout ]; then
  # Aloware is written to as well (the stand-in plays both), Verity sends the STOPs.
  sed -i 's/^token = "bench-aloware-token"$/token = "bench-aloware-token"\napi_base_url = "http:\/\/127.0.0.1:18191"\napi_token = "bench-aloware-api"\nconcurrency = 16\nrate_limit = 1000000\nrate_window_ms = 1000/' "$work/bench.toml"
fi
if [ "$mode" = optout ] || [ "$mode" = history ]; then
  # Verity sends the STOPs (optout) or the texts (history).
  printf '[verity]\nwebhook_secret = "bench-verity-secret"\ntimestamp_tolerance_s = 3153600000\n' \
    >> "$work/bench.toml"
fi
DFM=./build/release/app/dfm
B=./build/release/bench/sync_bench
pid=
start_dfm() {
  $DFM serve -c "$work/bench.toml" 2>>"$work/dfm.log" &
  pid=$!
  for _ in $(seq 600); do curl -sf localhost:18080/readyz >/dev/null && return; sleep 0.1; done
  echo "dfm did not start" >&2; exit 1
}
rss() { awk '/^VmRSS/ {printf "%.0f", $2/1024}' /proc/$pid/status; }
hwm() { awk '/^VmHWM/ {printf "%.0f", $2/1024}' /proc/$pid/status; }

if [ "$mode" = latency ]; then
  secs=${arg:-10}
  start_dfm
  echo "latency: Aloware webhook due -> GoHighLevel upsert received, open loop at 1,000/s, ${secs} s after 2 s warm-up"
  $B --rate 1000 --seconds "$secs" --warmup 2 --first 0
  kill -TERM $pid; wait $pid || true
elif [ "$mode" = memory ]; then
  count=${arg:-1000000}
  start_dfm
  t0=$(date +%s)
  $B --rate 2500 --seconds "$(python3 -c "print($count/2500)")" --warmup 0 \
     --connections 16 --wait-s 1200 --first 0 | sed 's/^/  created: /' || true
  echo "created $count contacts in $(( $(date +%s) - t0 )) s; peak RSS while creating: $(hwm) MiB"
  sleep 12   # every contact actor passivates (contact_idle_s = 5)
  echo "all passivated: RSS $(rss) MiB"
  kill -TERM $pid; wait $pid || true
  start_dfm
  echo "restarted with $count known contacts: RSS $(rss) MiB"
  $B --update 20000 --rate 2000 --connections 16 --first 0 --wait-s 300 \
    | sed 's/^/  touched: /' || true
  echo "after 20,000 known contacts updated: peak RSS $(hwm) MiB"
  sleep 12
  echo "passivated again: RSS $(rss) MiB; data dir $(du -sm "$work/data" | cut -f1) MiB"
  kill -TERM $pid; wait $pid || true
elif [ "$mode" = optout ]; then
  secs=${arg:-10}
  start_dfm
  echo "opt-outs: Verity STOP due -> GoHighLevel dndSettings and Aloware is_dnc both received,"
  echo "  20/s for ${secs} s, under ordinary syncs at 1,000/s (Aloware contact webhooks -> GoHighLevel)"
  $B --rate 1000 --seconds "$secs" --warmup 3 --first 0 --optouts "$(( secs * 20 ))" --optout-rate 20
  kill -TERM $pid; wait $pid || true
elif [ "$mode" = history ]; then
  # The log: COUNT contacts created a year ago (bench/replay_bench.cc,
  # `generate`'s traffic), then a year of their texts (`history`: 0-6 each,
  # one in 1,000 a conversation of 2,000), its projections folded. Made
  # once in $DFM_HISTORY_BENCH_DIR and copied for each run.
  count=${arg:-1000000}
  gen=${DFM_HISTORY_BENCH_DIR:-/tmp/dfm-history-bench}
  if [ ! -f "$gen/.generated-v1-$count" ]; then
    rm -rf "$gen"
    DFM_BENCH_CONTACTS=$count ./build/release/bench/replay_bench history "$gen"
    DFM_BENCH_CONTACTS=$count ./build/release/bench/replay_bench rebuild "$gen" >/dev/null
    touch "$gen/.generated-v1-$count"
  fi
  echo "log: $count contacts, $(du -sm "$gen" | cut -f1) MiB"
  behind() {
    curl -sf localhost:18080/v1/health | python3 -c '
import json, sys
r = json.load(sys.stdin)["parts"]["sync"]["router"]
print(r["behind"] + r["webhooks_in_flight"])'
  }
  drain() { for _ in $(seq 1200); do [ "$(behind)" = 0 ] && return; sleep 0.5; done; }
  texts=$(( count / 50 < 20000 ? count / 50 : 20000 ))
  for days in 30 3650; do
    rm -rf "$work/data"; cp -a "$gen" "$work/data"; rm -f "$work/data"/.generated-*
    sed -i '/^message_memory_days/d; s/^contact_idle_s = 5$/contact_idle_s = 5\nmessage_memory_days = '"$days"'/' "$work/bench.toml"
    start_dfm
    echo "message_memory_days = $days:"
    echo "  started on the log: RSS $(rss) MiB"
    # 20,000 contacts text (every 50th: among them all 1,000 conversations
    # of 2,000 texts), twice: first started from their whole streams, then
    # from the snapshots they left when they passivated.
    for round in 1 2; do
      echo 5 > /proc/$pid/clear_refs   # VmHWM from here: this round's peak
      t0=$(date +%s.%N)
      $B --texts "$texts" --text-stride 50 --phone-base 2050000000 --rate 4000 --connections 16 \
        | sed 's/^/  /'
      drain
      printf '  round %d: %d texts decided in %.1f s; peak RSS %s MiB\n' "$round" "$texts" \
        "$(python3 -c "import time; print(time.time() - $t0)")" "$(hwm)"
      sleep 12   # every contact actor passivates (contact_idle_s = 5)
      echo "  passivated: RSS $(rss) MiB"
    done
    kill -TERM $pid; wait $pid || true
  done
else
  echo "usage: $0 latency [SECONDS] | memory [COUNT] | optout [SECONDS] | history [COUNT]" >&2; exit 2
fi
