#!/usr/bin/env bash
# Where the time of `dfm serve`'s threads goes besides their CPU (issue 50):
# the closed loop of bench/run_ingest.sh over CONNECTIONS, and for each of
# dfm's threads and the load generator, over the middle 4 s of it: seconds
# on a CPU and waiting on a run queue per second (/proc/<tid>/schedstat),
# and voluntary and forced context switches per second; then the whole
# machine's idle, iowait and softirq time, in cores (/proc/stat). A thread
# that waits on a run queue while the machine has idle time is one the
# scheduler placed behind another (bench/README.md (b), "Idle time at the
# peak").
#   bench/sched_ingest.sh [CONNECTIONS] [SYNC] [BIN]   (256, off, the release dfm)
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-256}
sync_mode=${2:-off}
bin=${3:-build/release/app/dfm}
case "$sync_mode" in off | on) ;; *) echo "SYNC must be off or on" >&2; exit 2 ;; esac
[[ "$conns" =~ ^[1-9][0-9]*$ ]] || { echo "CONNECTIONS must be a whole number from 1" >&2; exit 2; }
. bench/lib.sh
bench_ingest_ready dfm-sched
B=build/release/bench
bench_start_dfm "$sync_mode" "$bin"
$B/ingest_client --port 18080 --secret bench-secret --prefix warm --connections "$conns" \
  --seconds 2 >/dev/null
$B/ingest_client --port 18080 --secret bench-secret --prefix run --connections "$conns" \
  --seconds 8 > "$work/client.json" &
client=$!
sleep 2
bench_thread_stats "$dfm_pid" "$client" > "$work/before"; head -1 /proc/stat > "$work/stat_before"
sleep 4
bench_thread_stats "$dfm_pid" "$client" > "$work/after"; head -1 /proc/stat > "$work/stat_after"
wait "$client"
kill -TERM "$dfm_pid"; wait "$dfm_pid" || true
python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
c = json.load(open(f"{work}/client.json"))
print(f"{c['ok']} requests in 8 s ({c['req_per_s']:,}/s), p50 {c['p50_us']} us")
def rows(name):  # bench_thread_stats: tid, name, on CPU ns, waiting ns, voluntary, forced
    return {f[0]: f for f in (l.rstrip("\n").split("\t") for l in open(f"{work}/{name}"))
            if len(f) == 6}
a, b = rows("before"), rows("after")
print(f"{'thread':18} {'on CPU':>7} {'run-queue wait':>15} {'voluntary/s':>12} {'forced/s':>9}")
for tid, f in b.items():
    if tid not in a:
        continue
    d = [int(x or 0) - int(y or 0) for x, y in zip(f[2:6], a[tid][2:6])]
    if d[0] == 0:
        continue
    print(f"{f[1]:18} {d[0] / 4e9:7.2f} {d[1] / 4e9:15.2f} {d[2] / 4:12.0f} {d[3] / 4:9.0f}")
s0 = [int(x) for x in open(f"{work}/stat_before").read().split()[1:]]
s1 = [int(x) for x in open(f"{work}/stat_after").read().split()[1:]]
d = [y - x for x, y in zip(s0, s1)]
hz = os.sysconf("SC_CLK_TCK")
names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
print(f"machine, in cores of its {os.cpu_count()}: " +
      ", ".join(f"{n} {v / hz / 4:.2f}" for n, v in zip(names, d) if n != "nice"))
PY
