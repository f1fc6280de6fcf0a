#!/usr/bin/env bash
# Builds the libFuzzer targets (preset fuzz: clang, ASan + UBSan) and runs
# each for SECONDS (default 10), after replaying its regression inputs
# (fuzz/regressions/<target>/). Seeds: the vendors' fixtures (tests/fixtures,
# ../shared/fixtures), etc/*.toml; the corpus grows in build/fuzz/corpus.
# Prints executions and coverage per target; exits 1 on a finding, whose
# input is kept in build/fuzz/findings/ (make it a regression input).
#   scripts/fuzz.sh 10        # CI's bounded run
#   scripts/fuzz.sh 3600      # an hour per target
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
[ "${DFM_FUZZ_SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
out=build/fuzz
mkdir -p "$out/corpus" "$out/findings" "$out/logs"
shared=../shared/fixtures
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# seed DIR SOURCE...: each file, prefixed with an empty header line.
seed() {
  local dir=$1; shift
  mkdir -p "$dir"
  for f in "$@"; do
    [ -f "$f" ] || continue
    { printf '\n'; cat "$f"; } >"$dir/seed-$(basename "$f")"
  done
}

# run_target BIN: seeds, replays and fuzzes one target; its line of the
# table (or its finding) goes to logs/<target>.summary, and it fails on a
# finding or a regression input failing again.
run_target() {
  local bin=$1 name corpus regressions log done_line execs cov ft status=0
  name=$(basename "$bin")
  exec >"$out/logs/$name.summary"
  corpus="$out/corpus/$name"
  mkdir -p "$corpus"
  case "$name" in
    fuzz_webhook_*)
      system=${name#fuzz_webhook_}
      seed "$corpus" tests/fixtures/"$system"/* "$shared"/"$system"/* ;;
    fuzz_codec) seed "$corpus" tests/fixtures/*/*.json ;;
    fuzz_config) cp etc/*.toml "$corpus"/ 2>/dev/null || true ;;
    fuzz_admin)  # first byte: 0 key, 1 replay, 2 settle, 3/7 key events
      printf '\000{"name":"grafana","role":"viewer","tenant":"*"}' >"$corpus/seed-key"
      printf '\001{"event_ids":["0190d3a4-0000-7000-8000-000000000001"],"execute":true}' >"$corpus/seed-replay"
      printf '\002{"choose":"contact:c-1","reason":"same person"}' >"$corpus/seed-settle"
      printf '\007{"key_id":"k1","role":"admin","tenant":"*","secret_sha256":"%064d","name":"n"}' 0 \
        >"$corpus/seed-created" ;;
    fuzz_text)
      for s in "+1 (205) 555-0100" "2055550100" "Ann+News@Example.COM" "2026-11-23T10:00:00.123+05:30" \
               "Sun, 06 Nov 1994 08:49:37 GMT" "a=b&c=%41%zz&d=+" "EST5EDT,M3.2.0,M11.1.0" \
               "AEST-10AEDT,M10.1.0,M4.1.0/3" "08:00-21:00" "UTC+05:30"; do
        printf '%s' "$s" >"$corpus/seed-$(printf '%s' "$s" | md5sum | cut -c1-8)"
      done
      cp /usr/share/zoneinfo/America/New_York "$corpus/seed-zone-new-york" 2>/dev/null || true ;;
  esac
  regressions=fuzz/regressions/$name
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    "$bin" "$regressions"/* >"$out/logs/$name.regressions.log" 2>&1 || {
      echo "$name: a regression input fails again ($out/logs/$name.regressions.log)"; status=1; }
  fi
  log="$out/logs/$name.log"
  if "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
       -dict=fuzz/json.dict -artifact_prefix="$out/findings/$name-" "$corpus" >"$log" 2>&1; then
    done_line=$(grep -aE '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    execs=$(grep -aoE 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{print $2}' || true)
    cov=$(echo "$done_line" | grep -oE 'cov: [0-9]+' | awk '{print $2}' || true)
    ft=$(echo "$done_line" | grep -oE 'ft: [0-9]+' | awk '{print $2}' || true)
    printf '%-22s %12s %8s %8s\n' "$name" "${execs:-?}" "${cov:-?}" "${ft:-?}"
  else
    echo "$name: FINDING (log $log, input in $out/findings/)"
    tail -30 "$log"
    status=1
  fi
  return $status
}

# One target per core at a time (each fuzzes on one thread); stopped, the
# script stops them.
trap 'jobs -p | xargs -r kill 2>/dev/null; exit 130' INT TERM
printf '%-22s %12s %8s %8s\n' target executions cov features
status=0
pids=()
for bin in "$out"/fuzz/fuzz_*; do
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do sleep 0.2; done
  run_target "$bin" &
  pids+=("$!")
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for bin in "$out"/fuzz/fuzz_*; do cat "$out/logs/$(basename "$bin").summary"; done
exit $status
