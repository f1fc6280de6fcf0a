#!/usr/bin/env python3
"""(o) `dfm reconcile` against N opted-out people (issue 46).

Starts `dfm serve` and the GoHighLevel and Aloware sandboxes on loopback.
GoHighLevel makes N contacts and staff set their SMS DND (the webhooks
reach dfm: N people opted out, each pushed to Aloware with its DNC set). Once Aloware
holds all N with DNC, 1% of the GoHighLevel records and another 1% of the
Aloware ones have their DND lifted silently (no webhook: an import, a bulk
action). Then `dfm reconcile --json` runs beside the service, and must find
exactly those. Prints the time, the requests per person and per check, the
reads per second, the drift found and the tool's peak memory.

Reads are paced at --share of each system's rate limit. GoHighLevel's
documented limit (100 requests per 10 s per location) would make N=10,000
take over half an hour at 50%, which measures the limit, not dfm: by default
the GoHighLevel sandbox and dfm's ghl.rate_limit are set to --burst per 10 s
(100,000), and the time the documented limit implies is printed beside.
--documented keeps the sandbox's documented limit (use a small --n).

Usage: bench/reconcile_bench.py [--dfm build/release/app/dfm] [--n 10000]
                                [--burst 100000] [--share 0.5] [--documented]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import dfmtest  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import Sandbox  # noqa: E402


def phone(i):
    return "+1205%07d" % (1000000 + i)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dfm", default=os.path.join(HERE, "..", "build", "release", "app", "dfm"))
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--burst", type=int, default=100000, help="GoHighLevel requests per 10 s (sandbox and dfm)")
    ap.add_argument("--share", type=float, default=0.5)
    ap.add_argument("--documented", action="store_true", help="GoHighLevel's documented 100 per 10 s")
    args = ap.parse_args()
    burst = 100 if args.documented else args.burst
    workdir = dfmtest.tempdir()
    dfm = dfmtest.Dfm(os.path.abspath(args.dfm), workdir, extra_config=(
        f'[ghl]\ned25519_public_key_file = "{base.GHL_PUBLIC_KEY}"\n'))
    ghl = Sandbox("ghl", workdir, ["--webhook-url", f"http://127.0.0.1:{dfm.port}/webhooks/ghl",
                                   "--burst", str(burst), "--allow-duplicates"])
    alo = Sandbox("aloware", workdir, [])  # its webhooks are not what is measured
    ghl.state = alo.state = ""  # in memory: a state file rewritten per change is O(N^2)
    ghl.start()
    alo.start()
    env = {"DFM_GHL_API_BASE_URL": ghl.url, "DFM_GHL_LOCATION_ID": "loc_sandbox",
           "DFM_GHL_ACCESS_TOKEN": "sandbox-ghl-token", "DFM_GHL_RATE_LIMIT": str(burst),
           "DFM_ALOWARE_API_BASE_URL": alo.url, "DFM_ALOWARE_API_TOKEN": "sandbox-aloware-token",
           "DFM_ALOWARE_RATE_LIMIT": "100000"}
    dfm.start(env_extra=env)
    try:
        t0 = time.time()
        for i in range(args.n):
            status, body = ghl.post("/_sandbox/contacts", {"firstName": "P%d" % i, "phone": phone(i)})
            assert status in (200, 201) and body["webhook"]["status"] == 200, body
            status, body = ghl.post("/_sandbox/contacts", {  # staff set SMS DND: a ContactDndUpdate
                "id": body["contact"]["id"], "dndSettings": {"SMS": {"status": "active", "message": "", "code": ""}}})
            assert status == 200, body
        print(f"made {args.n} opted-out contacts in GoHighLevel in {time.time() - t0:.0f} s", file=sys.stderr)
        deadline = time.time() + max(300, args.n // 5)
        while sum(1 for c in alo.contacts() if c.get("is_dnc") in (True, 1, "1")) < args.n:
            assert time.time() < deadline, "Aloware never held every opt-out"
            time.sleep(2)
        print(f"synced in {time.time() - t0:.0f} s", file=sys.stderr)
        lifted = max(1, args.n // 100)
        ghl_ids = sorted(c["id"] for c in ghl.contacts())
        for cid in ghl_ids[:lifted]:
            ghl.post("/_sandbox/contacts", {"id": cid, "webhook": False,
                                            "dndSettings": {"SMS": {"status": "inactive", "message": "", "code": ""}}})
        # The oldest Aloware records: long settled (a lift the engine's own
        # read-back after the opt-out sees is mended before reconcile runs).
        time.sleep(10)
        alo_ids = sorted(c["id"] for c in alo.contacts())
        for aid in alo_ids[:lifted]:
            alo.post("/_sandbox/contacts", {"id": aid, "is_dnc": False, "webhook": False})
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t1 = time.perf_counter()
        r = subprocess.run([dfm.binary, "reconcile", "-c", dfm.config_path, "--json",
                            "--rate-share", str(args.share)], capture_output=True, text=True,
                           env=dict(os.environ, **env))
        seconds = time.perf_counter() - t1
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        summary = [x for x in rows if x["kind"] == "summary"][0]
        drift = [x for x in rows if x["kind"] == "drift"]
        by_system = {}
        for d in drift:
            by_system[d["system"]] = by_system.get(d["system"], 0) + 1
        assert summary["unread"] == 0, summary
        assert by_system == {"ghl": lifted, "aloware": lifted}, (by_system, r.stderr[-2000:])
        checks = summary["checks"]
        ghl_requests = summary["requests"] - checks // 2  # Aloware: one lookup per check
        print(json.dumps({
            "people": args.n, "checks": checks, "seconds": round(seconds, 1),
            "reads_per_s": round(checks / seconds), "requests": summary["requests"],
            "requests_per_person": round(summary["requests"] / args.n, 2),
            "requests_per_check": round(summary["requests"] / checks, 2),
            "drift": len(drift), "cpu_s": round((after.ru_utime + after.ru_stime) -
                                                 (before.ru_utime + before.ru_stime), 1),
            "peak_rss_mib": round(after.ru_maxrss / 1024),
            "ghl_burst_per_10s": burst, "share": args.share,
            "at_documented_limit_s": round(ghl_requests / (100 * args.share / 10)),
        }))
    finally:
        dfm.stop()
        ghl.stop()
        alo.stop()


if __name__ == "__main__":
    main()
