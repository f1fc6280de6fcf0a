"""Upgrades (issue 47): a data directory written by an earlier build is
opened and used by this one. Each tests/fixtures/golden/v*/data was written
by `dfm serve` of the formats in its README.md (GoHighLevel and Aloware
sandboxes, two people, a text, a STOP, an API key, a pause and resume);
this test copies each and checks that this build

  - verifies its hash chain (`dfm log verify`, `dfm audit verify`),
  - rebuilds its projections and replays its decisions with no difference
    (`dfm projections rebuild`, `dfm replay --from`),
  - keeps what it recorded (the opt-out, the key),
  - starts on it and syncs: a new edit of a known person reaches Aloware.

Making the fixture again (only for a new format version, into a new
folder; the old ones stay):

  python3 tests/integration/golden_test.py --dfm build/debug/app/dfm \\
      --make tests/fixtures/golden/v2

Usage: golden_test.py --dfm PATH [unittest args]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import dfmtest  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import GHL_PUBLIC_KEY, Sandbox, by_phone, wait_for  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GOLDEN = os.path.join(ROOT, "tests", "fixtures", "golden")
ADA, GRACE = "+12055550401", "+12055550402"


class Stage:
    """dfm between the GoHighLevel and Aloware sandboxes, on `data`."""

    def __init__(self, workdir):
        self.dir = workdir
        self.dfm = dfmtest.Dfm(base.DFM, workdir, extra_config=(
            f'[ghl]\ned25519_public_key_file = "{GHL_PUBLIC_KEY}"\n'
            '[sync]\ncontact_idle_s = 2\n'))
        hook = f"http://127.0.0.1:{self.dfm.port}/webhooks/"
        self.ghl = Sandbox("ghl", workdir, ["--webhook-url", hook + "ghl"])
        self.alo = Sandbox("aloware", workdir, ["--webhook-url", hook + "aloware",
                                                "--webhook-auth", "bearer:" + dfmtest.ALOWARE_TOKEN])
        self.env = {
            "DFM_GHL_API_BASE_URL": "http://127.0.0.1:9", "DFM_GHL_LOCATION_ID": "loc_sandbox",
            "DFM_GHL_ACCESS_TOKEN": "sandbox-ghl-token",
            "DFM_ALOWARE_API_BASE_URL": "http://127.0.0.1:9", "DFM_ALOWARE_API_TOKEN": "sandbox-aloware-token",
        }

    def start(self):
        self.ghl.start()
        self.alo.start()
        self.env["DFM_GHL_API_BASE_URL"] = self.ghl.url
        self.env["DFM_ALOWARE_API_BASE_URL"] = self.alo.url
        self.dfm.start(env_extra=self.env)

    def cli(self, *args):
        env = dfmtest.environ()
        env.update(self.env)
        return subprocess.run([base.DFM, *args], capture_output=True, text=True, env=env, timeout=300)

    def ghl_creates(self, phone, first):
        status, body = self.ghl.post("/_sandbox/contacts",
                                     {"firstName": first, "lastName": "Golden", "phone": phone})
        assert status in (200, 201) and body["webhook"]["status"] == 200, body

    def verity_text(self, phone, text):
        doc = json.loads(dfmtest.verity_body("golden-" + text, text))
        doc["from"] = phone
        body = json.dumps(doc).encode()
        status, _, answer = dfmtest.request("127.0.0.1", self.dfm.port, "POST", "/webhooks/verity", body, {
            "Content-Type": "application/json", "X-Texting-Signature": dfmtest.verity_signature(body)})
        assert status == 200, answer

    def stop(self):
        base.tear_down(self.dfm, self.dir, (self.ghl, self.alo))


def make(into):
    """Writes a golden data directory with this build into `into`/data."""
    stage = Stage(dfmtest.tempdir())
    stage.start()
    try:
        stage.ghl_creates(ADA, "Ada")
        stage.ghl_creates(GRACE, "Grace")
        for p in (ADA, GRACE):
            wait_for("contact " + p, lambda p=p: by_phone(stage.alo.contacts(), p, "phone_number"))
        stage.verity_text(ADA, "see you at 3")
        stage.verity_text(GRACE, "STOP")
        wait_for("the opt-out", lambda: [e for e in stage.dfm.dump() if e["type"] == "contact.opted_out"])
        assert stage.cli("keys", "create", "-c", stage.dfm.config_path, "--name", "golden viewer",
                         "--role", "viewer").returncode == 0
        assert stage.cli("sync", "pause", "-c", stage.dfm.config_path, "--reason", "golden").returncode == 0
        assert stage.cli("sync", "resume", "-c", stage.dfm.config_path).returncode == 0
        time.sleep(3.0)  # contacts passivate (snapshots written)
        assert stage.dfm.stop() == 0
        stage.ghl.stop()
        stage.alo.stop()
        os.makedirs(os.path.join(into, "sandboxes"), exist_ok=True)
        for sandbox in (stage.ghl, stage.alo):  # what the vendors hold, beside what dfm holds
            shutil.copy(sandbox.state, os.path.join(into, "sandboxes", os.path.basename(sandbox.state)))
        shutil.rmtree(os.path.join(into, "data"), ignore_errors=True)
        os.makedirs(into, exist_ok=True)
        shutil.copytree(stage.dfm.data_dir, os.path.join(into, "data"),
                        ignore=shutil.ignore_patterns("LOCK", "LOG", "LOG.old.*", "admin.token", "access.log*"))
        version = stage.cli("--version").stdout
        events = stage.dfm.dump()
        print(f"made {into}: {len(events)} events\n{version}")
    finally:
        stage.stop()


class GoldenDataDir:
    """The test of one golden folder (`golden`); a TestCase per folder below."""
    golden = None

    def setUp(self):
        self.stage = Stage(dfmtest.tempdir())
        shutil.copytree(os.path.join(self.golden, "data"), self.stage.dfm.data_dir)
        for sandbox in (self.stage.ghl, self.stage.alo):
            shutil.copy(os.path.join(self.golden, "sandboxes", os.path.basename(sandbox.state)),
                        sandbox.state)
        for root, dirs, files in os.walk(self.stage.dfm.data_dir):  # git keeps no modes
            os.chmod(root, 0o700)
            for f in files:
                os.chmod(os.path.join(root, f), 0o600)

    def tearDown(self):
        self.stage.stop()

    def test_an_earlier_data_directory_opens_verifies_replays_and_syncs(self):
        s, d = self.stage, self.stage.dfm.data_dir
        r = s.cli("log", "verify", "-d", d)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = s.cli("audit", "verify", "-d", d)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = s.cli("projections", "rebuild", "-d", d)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = s.cli("replay", "--from", "2000-01-01", "-d", d, "-c", s.dfm.config_path)
        self.assertEqual(r.returncode, 0, "the same decisions: " + r.stdout + r.stderr)
        r = s.cli("audit", "opt-outs", "-d", d, "-c", s.dfm.config_path, "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("opt_out", r.stdout)
        before = s.dfm.dump()
        self.assertTrue([e for e in before if e["type"] == "api_key.created"])

        s.start()
        r = s.cli("keys", "list", "-c", s.dfm.config_path)
        self.assertIn("golden viewer", r.stdout)
        ada = by_phone(s.ghl.contacts(), ADA, "phone")[0]
        status, _ = s.ghl.post("/_sandbox/contacts", {"id": ada["id"], "firstName": "Augusta"})
        self.assertIn(status, (200, 201))  # a known person, a new edit
        got = wait_for("the edit in Aloware", lambda: [
            c for c in by_phone(s.alo.contacts(), ADA, "phone_number") if c["first_name"] == "Augusta"])
        self.assertEqual(len(got), 1)
        contacts = {e["stream"] for e in s.dfm.dump() if e["stream"].startswith("contact:")}
        self.assertEqual(len(contacts), 2, "matched to the person the old log knows")
        r = s.cli("log", "verify", "-d", d)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


for _folder in sorted((f for f in os.listdir(GOLDEN) if re.fullmatch(r"v[0-9]+", f)),
                      key=lambda f: int(f[1:])):  # v1, v2, ...: every format version kept
    globals()[f"Golden{_folder.upper()}Test"] = type(
        f"Golden{_folder.upper()}Test", (GoldenDataDir, unittest.TestCase),
        {"golden": os.path.join(GOLDEN, _folder)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dfm", required=True)
    ap.add_argument("--make")
    args, rest = ap.parse_known_args()
    base.DFM = os.path.abspath(args.dfm)
    if args.make:
        make(os.path.abspath(args.make))
        return
    unittest.main(module="__main__", argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
