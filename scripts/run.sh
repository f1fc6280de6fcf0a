#!/usr/bin/env bash
# Sets up everything and runs DF-Middleware on its embedded default: the event
# log in ./data, development secrets from etc/dev.toml, listening on
# 127.0.0.1:8080. Idempotent. Extra arguments go to `dfm serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target dfm
exec ./build/release/app/dfm serve --config etc/dev.toml "$@"
