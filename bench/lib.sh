# Shared by the bench scripts (sourced, not run).

# bench_workdir NAME: sets $work to a new directory under /tmp. On the way
# out of the script (an error too): stop the servers it still runs as jobs,
# wait until they have exited, then remove the directory they wrote in.
bench_workdir() {
  work=$(mktemp -d "/tmp/$1-XXXXXX")
  trap bench_cleanup EXIT
}

# bench_ingest_ready NAME: the release build's dfm and ingest_client built,
# what the build left in the page cache written back (not in the middle of
# a run), and $work made (bench_workdir NAME).
bench_ingest_ready() {
  cmake --preset release >/dev/null
  cmake --build --preset release --target dfm ingest_client >/dev/null
  sync
  bench_workdir "$1"
}

# bench_thread_stats PID...: a line per thread of each process, tab-separated:
# its id, name, nanoseconds on a CPU and waiting on a run queue
# (/proc/<tid>/schedstat), and its voluntary and forced context switches, so
# far. Two of them around a load give each thread's share of it.
bench_thread_stats() {
  local p t
  for p in "$@"; do
    for t in /proc/"$p"/task/*; do
      read -r oncpu waiting _ < "$t/schedstat" 2>/dev/null || continue
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(basename "$t")" "$(cat "$t/comm")" "$oncpu" \
        "$waiting" "$(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")" \
        "$(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$t/status")"
    done
  done
}

bench_cleanup() {
  local pids
  pids=$(jobs -p)
  if [ -n "$pids" ]; then
    kill $pids 2>/dev/null || true
    wait $pids 2>/dev/null || true
  fi
  rm -rf "$work"
}

# bench_start_dfm SYNC [BIN]: writes $work/bench.toml (port 18080, one I/O
# thread, data in $work/data, the Verity secret bench/ingest_client signs
# with, the sync "on" or off) and starts BIN (the release build's dfm by
# default) serving with it, as a job whose pid goes to $dfm_pid. Returns
# once /readyz answers; if it never does, prints the log and exits.
bench_start_dfm() {
  cat > "$work/bench.toml" <<TOML
[server]
listen = "127.0.0.1:18080"
admin_listen = "127.0.0.1:18081"
threads = 1
[storage]
data_dir = "$work/data"
[log]
level = "warn"
[verity]
webhook_secret = "bench-secret"
# bench/ingest_client's bodies carry one fixed time
timestamp_tolerance_s = 3153600000
[sync]
enabled = $([ "$1" = on ] && echo true || echo false)
TOML
  "${2:-./build/release/app/dfm}" serve -c "$work/bench.toml" >/dev/null 2>"$work/dfm.log" &
  dfm_pid=$!
  for _ in $(seq 100); do curl -sf localhost:18080/readyz >/dev/null && break; sleep 0.1; done
  curl -sf localhost:18080/readyz >/dev/null ||
    { echo "dfm serve did not become ready:" >&2; cat "$work/dfm.log" >&2; exit 1; }
}
