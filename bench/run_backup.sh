#!/usr/bin/env bash
# Backup and restore of a big data directory, release build, real RocksDB
# (docs/backup.md):
#   bench/run_backup.sh [EVENTS] [MORE]
# generates a sealed log of EVENTS (10,000,000) events shaped like live
# traffic (bench/replay_bench.cc, DFM_BENCH_SEALED=1), then prints:
#   - `dfm backup --into` of it: seconds and the backup's size;
#   - MORE (100,000) events appended, the incremental backup: seconds and
#     the bytes it added;
#   - `dfm backup verify` and `dfm restore` of the newest: seconds, size;
#   - `dfm serve` on the restored directory, spawn to sd_notify READY=1
#     (bench/notify_ready.py): the first start (its projections fold the
#     whole log) and the next one;
#   - the Debian package's size (scripts/package.sh).
# Work in $DFM_BACKUP_BENCH_DIR (/tmp/dfm-backup-bench), removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-10000000}
more=${2:-100000}
work=${DFM_BACKUP_BENCH_DIR:-/tmp/dfm-backup-bench}
cmake --preset release >/dev/null
cmake --build --preset release --target dfm replay_bench >/dev/null
dfm=$PWD/build/release/app/dfm
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
cat > "$work/bench.toml" <<TOML
[server]
listen = "127.0.0.1:18180"
admin_listen = "127.0.0.1:18181"
[storage]
data_dir = "$work/data"
[log]
level = "warn"
[verity]
webhook_secret = "bench-secret"
TOML
secs() { python3 -c 'import sys,time; print(f"{time.time()-float(sys.argv[1]):.1f}")' "$1"; }
size() { du -sb "$1" | awk '{printf "%.2f GiB", $1/2^30}'; }

t=$(date +%s.%N)
DFM_BENCH_SEALED=1 build/release/bench/replay_bench generate "$work/data" "$events" >/dev/null
echo "generated $events events in $(secs "$t") s: data directory $(size "$work/data")"

t=$(date +%s.%N)
"$dfm" backup -c "$work/bench.toml" --into "$work/backups" >/dev/null
echo "full backup: $(secs "$t") s, $(size "$work/backups")"

DFM_BENCH_SEALED=1 build/release/bench/replay_bench generate "$work/data" "$((events + more))" >/dev/null
t=$(date +%s.%N)
added=$("$dfm" backup -c "$work/bench.toml" --into "$work/backups" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["added_bytes"])')
echo "incremental backup after $more more events: $(secs "$t") s, added $((added / 1048576)) MiB; all backups $(size "$work/backups")"

t=$(date +%s.%N)
"$dfm" backup verify "$work/backups" >/dev/null
echo "verify: $(secs "$t") s"

t=$(date +%s.%N)
"$dfm" restore "$work/backups" -d "$work/restored" >/dev/null
echo "restore: $(secs "$t") s, $(size "$work/restored")"

sed -i "s|data_dir = \"$work/data\"|data_dir = \"$work/restored\"|" "$work/bench.toml"
echo "start to READY=1 on the restored directory: first $(bench/notify_ready.py "$dfm" "$work/bench.toml") s" \
     "(projections fold the log), next $(bench/notify_ready.py "$dfm" "$work/bench.toml") s"

bash scripts/package.sh --out "$work/pkg" >/dev/null
deb=$(ls "$work"/pkg/dfm_*_amd64.deb)
echo "package $(basename "$deb"): $(( $(stat -c %s "$deb") / 1024 )) KiB," \
     "installed $(( $(dpkg-deb -f "$deb" Installed-Size) )) KiB"
