#!/usr/bin/env python3
"""(k) One-click unsubscribe: POST of the link -> Email DND active in GoHighLevel.

Starts `dfm serve` (its own data directory, fsync on) and the GoHighLevel
sandbox on loopback, makes N contacts with an email in GoHighLevel, then for
each: makes its link with `dfm unsubscribe-link`, POSTs
`List-Unsubscribe=One-Click` to it and polls the sandbox every 2 ms until the
contact's Email DND is active. Prints the median, p90 and largest times.

Usage: bench/unsubscribe_bench.py [--dfm build/release/app/dfm] [--n 100]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import dfmtest  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import Sandbox, wait_for  # noqa: E402

SECRET = "bench-unsubscribe-secret-0123456789abcdef"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dfm", default=os.path.join(HERE, "..", "build", "release", "app", "dfm"))
    ap.add_argument("--n", type=int, default=100)
    args = ap.parse_args()
    workdir = dfmtest.tempdir()
    dfm = dfmtest.Dfm(os.path.abspath(args.dfm), workdir, extra_config=(
        f'[ghl]\ned25519_public_key_file = "{base.GHL_PUBLIC_KEY}"\n'))
    ghl = Sandbox("ghl", workdir, ["--webhook-url", f"http://127.0.0.1:{dfm.port}/webhooks/ghl"])
    ghl.start()
    env = {"DFM_GHL_API_BASE_URL": ghl.url, "DFM_GHL_LOCATION_ID": "loc_sandbox",
           "DFM_GHL_ACCESS_TOKEN": "sandbox-ghl-token", "DFM_UNSUBSCRIBE_SECRET": SECRET}
    dfm.start(env_extra=env)
    try:
        emails = []
        for i in range(args.n):
            email = f"reader{i}@example.com"
            status, body = ghl.post("/_sandbox/contacts", {"firstName": "R", "email": email,
                                                           "phone": "+1205555%04d" % (1000 + i)})
            assert status in (200, 201) and body["webhook"]["status"] == 200, body
            emails.append(email)
        wait_for("contacts known", lambda: len([e for e in dfm.dump() if e["type"] == "contact.created"]) >= args.n,
                 timeout=120)
        index = {c["email"]: c["id"] for c in ghl.contacts()}
        times = []
        for email in emails:
            r = subprocess.run([dfm.binary, "unsubscribe-link", "-c", dfm.config_path, "--email", email,
                                "--json"], capture_output=True, text=True, env=dict(os.environ, **env), check=True)
            u = urllib.parse.urlsplit(json.loads(r.stdout)["url"])
            t0 = time.perf_counter()
            status, _, _ = dfmtest.request("127.0.0.1", u.port, "POST", u.path + "?" + u.query,
                                           body=b"List-Unsubscribe=One-Click",
                                           headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert status == 200, status
            cid = index[email]
            while True:
                _, c = ghl.get("/_sandbox/contacts/" + cid)
                c = c.get("contact", c) if isinstance(c, dict) else {}
                if ((c.get("dndSettings") or {}).get("Email") or {}).get("status") == "active":
                    break
                if time.perf_counter() - t0 > 30:
                    raise SystemExit("not honoured within 30 s: " + email)
                time.sleep(0.002)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        print(f"one-click unsubscribe -> GoHighLevel Email DND, {len(times)} addresses: "
              f"median {statistics.median(times):.1f} ms, p90 {times[int(len(times) * 0.9) - 1]:.1f} ms, "
              f"max {times[-1]:.1f} ms")
    finally:
        base.tear_down(dfm, workdir, (ghl,))


if __name__ == "__main__":
    main()
