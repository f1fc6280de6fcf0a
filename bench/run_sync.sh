#!/usr/bin/env bash
# Contact-sync benchmarks (issue 3), release build, fsync on:
#   bench/run_sync.sh latency [SECONDS]   webhook accepted -> push received, at 1,000/s
#   bench/run_sync.sh memory [COUNT]      resident memory with COUNT (1,000,000) known contacts
#   bench/run_sync.sh optout [SECONDS]    Verity STOP received -> GoHighLevel and Aloware both
#                                         told, 20 opt-outs/s under 1,000 ordinary syncs/s (issue 4)
# `dfm serve` syncs Aloware contact webhooks (sent by bench/sync_bench) to a
# GoHighLevel stand-in that answers at once (also bench/sync_bench).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-latency}
arg=${2:-}
cmake --preset release >/dev/null
cmake --build --preset release --target dfm sync_bench >/dev/null
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
else
  echo "usage: $0 latency [SECONDS] | memory [COUNT] | optout [SECONDS]" >&2; exit 2
fi
