#!/usr/bin/env bash
# Sets up everything and runs DF-Middleware on its embedded default: the event
# log in ./data, development secrets from etc/dev.toml, listening on
# 127.0.0.1:8080, syncing contacts, texts, calls and opt-outs between the
# sandboxes of GoHighLevel (127.0.0.1:8091), Aloware (8092), Verity (8093),
# Twilio (8094), HaloPSA (8095) and Apollo (8096), and for the tenant "chat"
# between WhatsApp (8097) and Genesys Cloud (8098), whose state is kept in
# ./sandbox-data. Idempotent.
# Extra arguments go to `dfm serve`. With --cluster: three nodes on NATS
# JetStream behind nginx instead (scripts/run-cluster.sh, docs/scale-out.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--cluster" ]; then exec bash scripts/run-cluster.sh; fi
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target dfm
bash scripts/sandboxes.sh &
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
./build/release/app/dfm serve --config etc/dev.toml "$@"
