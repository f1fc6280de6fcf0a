#!/usr/bin/env bash
# The long kill -9 run (issue 34, docs/fuzzing.md "Crash runs"): `dfm serve`
# (the debug build, ASan + UBSan) killed KILLS times (default 100) under mixed
# load: signed webhooks of GoHighLevel, Aloware, Verity, Twilio and Telnyx
# about a pool of people, the sync pushing to the GoHighLevel, Aloware and
# Verity sandboxes. The oracle runs outside the process and reads the log:
# every acknowledged webhook exactly once, nothing answered "accepted" twice,
# the hash chain verifies, sequence numbers have no gaps, the service stops
# cleanly, and every push the sync asked for settles. CI runs 20 plain kills
# and 5 mixed ones; 100 take about 10 minutes (half of it the sandboxes
# draining the pushes the load asked for).
#   scripts/crash.sh            # 100 kills
#   scripts/crash.sh 300 1234   # 300 kills, seed 1234 (a failing seed reruns the same kill times)
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-100}"
bash scripts/setup.sh
bash scripts/configure_debug.sh
cmake --build --preset debug -j "$(nproc)" --target dfm
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
/usr/bin/python3 tests/integration/crash_test.py --dfm build/debug/app/dfm --kills "$kills" --mixed \
  ${2:+--seed "$2"}
