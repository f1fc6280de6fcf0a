#!/usr/bin/env python3
"""kill -9 while webhooks pour in: every webhook that got a 2xx is in the log
exactly once after any number of crashes, and the hash chain holds.

Load: several threads post signed Verity webhooks with unique ids over
keep-alive connections. A webhook whose request failed (connection cut by the
kill) is re-sent after the restart, as a vendor retries; its first try may or
may not have landed, and the re-send must then be answered "duplicate".

--mixed: webhooks of every configured vendor about a pool of people
(crash_mixed.py), with the sync pushing to the GoHighLevel, Aloware and
Verity sandboxes; the oracle (this process, reading the log with `dfm log
dump`) also checks that every push the sync asked for is settled once the
service runs again and the load has stopped. The long run is
`scripts/crash.sh` (100 kills, mixed).
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
    def __init__(self, dfm, threads, make=None):
        """`make(n, port)`: webhook number n as (system, provider id, path,
        body, headers); None: Verity texts with ids crash-<n>."""
        self.dfm = dfm
        self.make = make
        self.acked = {}  # provider id -> number of 2xx answers with status "accepted"
        self.acked_any = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.counter = 0
        self.died = []  # what ended a load thread before its time: the run fails
        self.threads = [threading.Thread(target=self.run_or_say, args=(i,), daemon=True)
                        for i in range(threads)]

    def run_or_say(self, n):
        try:
            self.run(n)
        except Exception as e:  # noqa: BLE001 - any end but the stop is a failure
            with self.lock:
                self.died.append(f"load thread {n}: {type(e).__name__}: {e}")

    def next_id(self):
        with self.lock:
            self.counter += 1
            n = self.counter
        if self.make:
            return self.make(n, self.dfm.port)
        return f"crash-{n}"

    def post(self, conn, msg):
        if not self.make:
            return t.post_verity(conn, msg, f"load {msg}")
        _, _, path, body, headers = msg
        return t.post_json(conn, path, body, headers)

    def run(self, n):
        conn = None
        pending = None  # a message whose answer was lost: re-send it
        while not self.stop.is_set():
            msg = pending or self.next_id()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.dfm.port, timeout=5)
                resp, answer = self.post(conn, msg)
                key = msg[:2] if self.make else msg
                if self.make:
                    time.sleep(0.01)  # a vendor's pace, not a flood: every push must settle
                if resp.status == 200:
                    # Twilio's answer is TwiML: its outcome comes in X-DFM-Status.
                    status = answer["status"] if answer else resp.getheader("X-DFM-Status")
                    with self.lock:
                        self.acked_any.add(key)
                        if status == "accepted":
                            self.acked[key] = self.acked.get(key, 0) + 1
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
    ap.add_argument("--mixed", action="store_true", help="every vendor's webhooks, the sync pushing")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    print(f"crash test: {args.kills} kills, {args.threads} load threads, seed {seed}"
          f"{', mixed load with the sync pushing' if args.mixed else ''}", flush=True)

    workdir = t.tempdir()
    sandboxes, env, make = [], {}, None
    if args.mixed:
        import crash_mixed
        from sync_e2e_test import Sandbox
        keys = t.Keys()
        mixed = crash_mixed.Mixed(keys, random.Random(seed))
        make = mixed.make
        dfm = t.Dfm(args.dfm, workdir, keys=keys, extra_config=mixed.extra_config())
        hook = f"http://127.0.0.1:{dfm.port}/webhooks/"
        sandboxes = [Sandbox("ghl", workdir, ["--webhook-url", hook + "ghl", "--location-id", t.GHL_LOCATION]),
                     Sandbox("aloware", workdir, ["--webhook-url", hook + "aloware",
                                                  "--webhook-auth", "bearer:" + t.ALOWARE_TOKEN]),
                     Sandbox("verity", workdir, ["--webhook-url", hook + "verity",
                                                 "--webhook-secret", t.VERITY_SECRET, "--api-key", "crash-key"])]
        for sb in sandboxes:
            sb.start()
        env = {"DFM_GHL_API_BASE_URL": sandboxes[0].url, "DFM_GHL_ACCESS_TOKEN": "sandbox-ghl-token",
               "DFM_ALOWARE_API_BASE_URL": sandboxes[1].url, "DFM_ALOWARE_API_TOKEN": "sandbox-aloware-token",
               "DFM_VERITY_API_BASE_URL": sandboxes[2].url, "DFM_VERITY_API_KEY": "crash-key",
               "DFM_VERITY_CONTACTS_API": "true"}
        for system in ("GHL", "ALOWARE", "VERITY"):
            # The sandboxes' limits are not under test here: what is asked must settle.
            env[f"DFM_{system}_RATE_LIMIT"] = "2000"
            env[f"DFM_{system}_RATE_WINDOW_MS"] = "1000"
            env[f"DFM_{system}_RETRY_BASE_MS"] = "100"
            env[f"DFM_{system}_RETRY_MAX_MS"] = "1000"
            env[f"DFM_{system}_BREAKER_OPEN_MS"] = "1000"
    else:
        dfm = t.Dfm(args.dfm, workdir)
    dfm.start(env_extra=env)
    load = Load(dfm, args.threads, make)
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
            dfm.start(env_extra=env)
        time.sleep(0.5)
        load.stop.set()
        for th in load.threads:
            th.join(timeout=30)
        failures += load.died
        if args.mixed:
            # The sync finishes what it was asked: every push settles.
            def unsettled():
                asked, settled = set(), set()
                for e in dfm.dump(with_body=True):
                    p = e["payload"]
                    if e["type"] == "push.requested":
                        asked.add(p.get("push_id"))
                    elif e["type"] in ("push.succeeded", "push.dead_lettered") or (
                            e["type"] == "message.refused" and p.get("push_id")):
                        settled.add(p.get("push_id"))
                return asked - settled
            # Waits while they drain (the GoHighLevel sandbox keeps GoHighLevel's
            # 100 requests per 10 s); fails when none settles for a minute.
            left = unsettled()
            progress = time.time()
            while left and time.time() - progress < 60:
                time.sleep(3)
                now_left = unsettled()
                if len(now_left) < len(left):
                    progress = time.time()
                left = now_left
            if left:
                by = {}
                for p in left:
                    by[p.split(":")[1]] = by.get(p.split(":")[1], 0) + 1
                failures.append(f"{len(left)} pushes never settled ({by}), e.g. {sorted(left)[:3]}")
        code = dfm.stop()
        if code != 0:
            failures.append(f"dfm exited {code} on SIGTERM")

        events = dfm.webhooks()
        seen = {}
        for e in events:
            pid = e["payload"]["provider_event_id"]
            pid = (e["payload"]["system"], pid) if args.mixed else pid.split(":", 1)[1]
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
        for sb in sandboxes:
            sb.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    for f in failures:
        print("FAIL: " + f, flush=True)
    checks = 6 if args.mixed else 5
    print(f"{checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
