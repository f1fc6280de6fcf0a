#!/usr/bin/env bash
# The development sandboxes (sandboxes/README.md) on ports 8091-8098, their
# state in ./sandbox-data, posting their webhooks to 127.0.0.1:8080 (the
# service, or nginx in front of a cluster). Runs until killed.
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT INT TERM
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
wait
