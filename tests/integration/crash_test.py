#!/usr/bin/env python3
"""kill -9 while webhooks pour in: every webhook that got a 2xx is in the log
exactly once after any number of crashes, and the hash chain holds.

Load: several threads post signed Verity webhooks with unique ids over
keep-alive connections. A webhook whose request failed (connection cut by the
kill) is re-sent after the restart, as a vendor retries; its first try may or
may not have landed, and the re-send must then be answered "duplicate".
"""
import argparse
import http.client
import random
import shutil
import sys
import threading
import time

import dfmtest as t


class Load:
    def __init__(self, dfm, threads):
        self.dfm = dfm
        self.acked = {}  # provider id -> number of 2xx answers with status "accepted"
        self.acked_any = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.counter = 0
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]

    def next_id(self):
        with self.lock:
            self.counter += 1
            return f"crash-{self.counter}"

    def run(self, n):
        conn = None
        pending = None  # a message whose answer was lost: re-send it
        while not self.stop.is_set():
            msg = pending or self.next_id()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.dfm.port, timeout=5)
                resp, answer = t.post_verity(conn, msg, f"load {msg}")
                if resp.status == 200:
                    status = answer["status"]
                    with self.lock:
                        self.acked_any.add(msg)
                        if status == "accepted":
                            self.acked[msg] = self.acked.get(msg, 0) + 1
                    pending = None
                else:
                    pending = msg
                    time.sleep(0.01)
            except (OSError, http.client.HTTPException):
                pending = msg
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)
        if conn is not None:
            conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dfm", required=True)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    print(f"crash test: {args.kills} kills, {args.threads} load threads, seed {seed}", flush=True)

    workdir = t.tempdir()
    dfm = t.Dfm(args.dfm, workdir)
    dfm.start()
    load = Load(dfm, args.threads)
    for th in load.threads:
        th.start()
    failures = []
    try:
        for k in range(args.kills):
            time.sleep(rng.uniform(0.2, 0.8))
            dfm.kill9()
            with load.lock:
                n = len(load.acked_any)
            print(f"kill {k + 1}/{args.kills}: {n} webhooks acknowledged so far", flush=True)
            dfm.start()
        time.sleep(0.5)
        load.stop.set()
        for th in load.threads:
            th.join(timeout=30)
        code = dfm.stop()
        if code != 0:
            failures.append(f"dfm exited {code} on SIGTERM")

        events = dfm.webhooks()
        seen = {}
        for e in events:
            pid = e["payload"]["provider_event_id"].split(":", 1)[1]
            seen[pid] = seen.get(pid, 0) + 1
        lost = [m for m in load.acked_any if seen.get(m, 0) == 0]
        doubled = [m for m, c in seen.items() if c > 1]
        twice_accepted = [m for m, c in load.acked.items() if c > 1]
        if lost:
            failures.append(f"{len(lost)} acknowledged webhooks missing from the log, e.g. {lost[:5]}")
        if doubled:
            failures.append(f"{len(doubled)} webhooks appended more than once, e.g. {doubled[:5]}")
        if twice_accepted:
            failures.append(f"{len(twice_accepted)} webhooks answered 'accepted' twice")
        verify = dfm.cli("log", "verify", "-d", dfm.data_dir, "--json")
        if verify.returncode != 0:
            failures.append("dfm log verify failed: " + verify.stdout + verify.stderr)
        # The whole log (webhooks and the sync's decisions about them) is gapless.
        seqs = [e["seq"] for e in dfm.dump()]
        if seqs != list(range(1, len(seqs) + 1)):
            failures.append("sequence numbers have gaps")
        print(f"acknowledged {len(load.acked_any)} webhooks, log holds {len(events)} events "
              f"across {args.kills} kill -9 restarts", flush=True)
    finally:
        load.stop.set()
        if dfm.proc and dfm.proc.poll() is None:
            dfm.proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    for f in failures:
        print("FAIL: " + f, flush=True)
    checks = 5
    print(f"{checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
