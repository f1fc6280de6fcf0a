#!/usr/bin/env bash
# Sets up everything and runs DF-Middleware on its embedded default: the event
# log in ./data, development secrets from etc/dev.toml, listening on
# 127.0.0.1:8080, syncing contacts, texts, calls and opt-outs between the
# sandboxes of GoHighLevel (127.0.0.1:8091), Aloware (8092), Verity (8093),
# Twilio (8094), HaloPSA (8095) and Apollo (8096), and for the tenant "chat"
# between WhatsApp (8097) and Genesys Cloud (8098), whose state is kept in
# ./sandbox-data. Idempotent.
# Extra arguments go to `dfm serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target dfm
mkdir -p sandbox-data
python3 sandboxes/ghl.py --port 8091 --state sandbox-data/ghl.json \
  --webhook-url http://127.0.0.1:8080/webhooks/ghl >sandbox-data/ghl.log 2>&1 &
python3 sandboxes/aloware.py --port 8092 --state sandbox-data/aloware.json \
  --webhook-url http://127.0.0.1:8080/webhooks/aloware \
  --webhook-auth bearer:dev-aloware-token >sandbox-data/aloware.log 2>&1 &
python3 sandboxes/verity.py --port 8093 --state sandbox-data/verity.json \
  --webhook-url http://127.0.0.1:8080/webhooks/verity --webhook-secret dev-verity-secret \
  --api-key sandbox-verity-key >sandbox-data/verity.log 2>&1 &
python3 sandboxes/twilio.py --port 8094 --state sandbox-data/twilio.json \
  --webhook-url http://127.0.0.1:8080/webhooks/twilio \
  --auth-token dev-twilio-auth-token >sandbox-data/twilio.log 2>&1 &
python3 sandboxes/halopsa.py --port 8095 --state sandbox-data/halopsa.json \
  --webhook-url http://127.0.0.1:8080/webhooks/halopsa \
  --webhook-auth basic:dev-halo:dev-halo-password >sandbox-data/halopsa.log 2>&1 &
python3 sandboxes/apollo.py --port 8096 --state sandbox-data/apollo.json >sandbox-data/apollo.log 2>&1 &
python3 sandboxes/whatsapp.py --port 8097 --state sandbox-data/whatsapp.json \
  --webhook-url http://127.0.0.1:8080/t/chat/webhooks/whatsapp --app-secret dev-wa-app-secret \
  --verify-token dev-wa-verify-token >sandbox-data/whatsapp.log 2>&1 &
python3 sandboxes/genesys.py --port 8098 --state sandbox-data/genesys.json \
  --webhook-url http://127.0.0.1:8080/t/chat/webhooks/genesys \
  --webhook-secret dev-genesys-webhook-secret >sandbox-data/genesys.log 2>&1 &
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
./build/release/app/dfm serve --config etc/dev.toml "$@"
