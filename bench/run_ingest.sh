#!/usr/bin/env bash
# Benchmark (b): end-to-end ingest of signed ~1.5 KiB webhooks over keep-alive
# loopback connections into `dfm serve` (release build, fsync on), beside a
# bare RESTinio "return 200" server in the same run.
#   bench/run_ingest.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
cmake --preset release >/dev/null
cmake --build --preset release --target dfm ingest_client bare_server >/dev/null
work=$(mktemp -d /tmp/dfm-bench-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
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
B=build/release/bench
./build/release/app/dfm serve -c "$work/bench.toml" 2>"$work/dfm.log" &
for _ in $(seq 100); do curl -sf localhost:18080/readyz >/dev/null && break; sleep 0.1; done
$B/ingest_client --port 18080 --secret bench-secret --prefix warm --connections 64 --seconds 2 >/dev/null
echo "dfm, closed loop, 64 connections:"
dfm_max=$($B/ingest_client --port 18080 --secret bench-secret --prefix max --connections 64 --seconds "$secs")
echo "  $dfm_max"
echo "dfm, open loop at 5,000/s, 64 connections:"
dfm_5k=$($B/ingest_client --port 18080 --secret bench-secret --prefix r5k --connections 64 --seconds "$secs" --rate 5000)
echo "  $dfm_5k"
kill -TERM %1; wait %1 || true
$B/bare_server 18090 &
sleep 0.5
echo "bare RESTinio 200 server, closed loop, 64 connections:"
bare=$($B/ingest_client --port 18090 --secret bench-secret --prefix bare --connections 64 --seconds "$secs")
echo "  $bare"
python3 - "$dfm_max" "$bare" <<'PY'
import json, sys
d, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"dfm / bare = {d['req_per_s'] / b['req_per_s']:.2f}")
PY
