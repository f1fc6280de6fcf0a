#!/usr/bin/env bash
# WhatsApp -> Genesys benchmark (issue 30), release build, fsync on:
#   bench/run_bridge.sh [SECONDS] [RATE] [TENANTS]
# `dfm serve` with TENANTS (50) tenants, each its own WhatsApp number and
# app secret and its own Genesys Cloud org, bridges signed WhatsApp texts
# (sent open loop at RATE, 500/s, by bench/bridge_bench) to a Genesys
# stand-in in C++ (also bench/bridge_bench). Reported: notification due ->
# Genesys inbound call received, p50/p99/max; missing, doubled and
# out-of-order messages.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rate=${2:-500}
tenants=${3:-50}
cmake --preset release >/dev/null
cmake --build --preset release --target dfm bridge_bench >/dev/null
work=$(mktemp -d /tmp/dfm-bridge-bench-XXXXXX)
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
contact_idle_s = 30
TOML
for ((t = 0; t < tenants; t++)); do
  cat >> "$work/bench.toml" <<TOML
[tenants.t$t.roles]
conversations = "genesys"
sender = "whatsapp"
lists = ""
[tenants.t$t.whatsapp]
app_secret = "bench-wa-secret-$t"
verify_token = "bench-verify-$t"
phone_number_id = "90000$t"
access_token = "bench-wa-token-$t"
api_base_url = "http://127.0.0.1:18192"
[tenants.t$t.genesys]
webhook_secret = "bench-genesys-secret-$t"
integration_id = "int-$t"
client_id = "bench-client-$t"
client_secret = "bench-client-secret-$t"
login_base_url = "http://127.0.0.1:18191"
api_base_url = "http://127.0.0.1:18191"
rate_limit = 1000000
rate_window_ms = 1000
concurrency = 8
TOML
done
./build/release/app/dfm serve -c "$work/bench.toml" 2>>"$work/dfm.log" &
pid=$!
for _ in $(seq 600); do curl -sf localhost:18080/readyz >/dev/null && break; sleep 0.1; done
echo "bridge: WhatsApp notification due -> Genesys inbound message received, open loop at ${rate}/s over ${tenants} tenants, ${secs} s after 2 s warm-up"
./build/release/bench/bridge_bench --rate "$rate" --seconds "$secs" --warmup 2 --tenants "$tenants" \
  --vendor-port 18191 --dfm-port 18080
echo "peak RSS $(awk '/^VmHWM/ {printf "%.0f", $2/1024}' /proc/$pid/status) MiB"
kill -TERM $pid; wait $pid || true
