#!/usr/bin/env python3
"""Backups and restores as an operator runs them (docs/backup.md):

- `dfm backup --into DIR` while webhooks pour in: every webhook answered 2xx
  before the backup began is in it, its chain verifies (`dfm backup
  verify`), and its manifest's last sequence is where its log ends.
- A person erased after the backup stays erased through `dfm restore`
  (the erasure ledger), and the restored service starts and serves.
- A backup of a directory holding no log (a configuration not the
  service's) is refused: nothing is made there or in the backups.
- A damaged WAL: the service refuses to start; `dfm restore --replace`
  from the last backup says which acknowledged events are lost, records
  it as log.restored, and the service starts.

Usage: backup_test.py --dfm PATH [unittest args]
"""
import http.client
import json
import os
import shutil
import subprocess
import threading
import time
import unittest

import dfmtest

DFM = None


def verity_from(conn, message_id, phone, text="hello"):
    doc = json.loads(dfmtest.verity_body(message_id, text))
    doc["from"] = phone
    body = json.dumps(doc).encode()
    return dfmtest.post_json(conn, "/webhooks/verity", body, {
        "Content-Type": "application/json",
        "X-Texting-Signature": dfmtest.verity_signature(body)})


class BackupTest(unittest.TestCase):
    def setUp(self):
        self.dir = dfmtest.tempdir()
        self.backups = os.path.join(self.dir, "backups")
        self.dfm = dfmtest.Dfm(DFM, self.dir, extra_config="[sync]\ncontact_idle_s = 2\n")

    def tearDown(self):
        if self.dfm.proc and self.dfm.proc.poll() is None:
            self.dfm.kill9()
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, *args):
        r = subprocess.run([DFM, *args], capture_output=True, text=True,
                           env=dfmtest.environ(without_dfm=True), timeout=300)
        return r

    def ids_in(self, data_dir):
        r = self.cli("log", "dump", "-d", data_dir, "--with-body")
        self.assertEqual(r.returncode, 0, r.stderr)
        events = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        return events

    def test_backup_under_load_keeps_every_acknowledged_webhook_and_erasures_survive_restore(self):
        self.dfm.start()
        acked = []  # (message id, time answered)
        stop = threading.Event()

        def pour():
            conn = http.client.HTTPConnection("127.0.0.1", self.dfm.port, timeout=10)
            i = 0
            while not stop.is_set():
                resp, doc = verity_from(conn, f"load-{i}", f"+1205555{i % 50:04d}")
                if resp.status == 200:
                    acked.append((f"load-{i}", time.monotonic()))
                i += 1
            conn.close()

        t = threading.Thread(target=pour)
        t.start()
        time.sleep(1.5)
        began = time.monotonic()
        r = self.cli("backup", "-c", self.dfm.config_path, "--into", self.backups, "--json")
        time.sleep(0.5)
        stop.set()
        t.join()
        self.assertEqual(r.returncode, 0, r.stderr)
        manifest = json.loads(r.stdout)
        self.assertEqual(manifest["format"], "dfm-backup")
        before = {m for m, at in acked if at < began}
        self.assertGreater(len(before), 20)
        self.assertGreater(len(acked), len(before), "webhooks went on during the backup")

        verify = self.cli("backup", "verify", self.backups, "--json")
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        self.assertTrue(json.loads(verify.stdout)["ok"])
        self.assertEqual(json.loads(verify.stdout)["last_seq"], manifest["last_seq"])

        # What the backup holds: restored beside, read with the log tools.
        scratch = os.path.join(self.dir, "scratch")
        r = self.cli("restore", self.backups, "--data-dir", scratch, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        events = self.ids_in(scratch)
        held = {e["payload"]["provider_event_id"].split(":", 1)[1] for e in events
                if e["type"] == "webhook.received" and e["seq"] <= manifest["last_seq"]}
        self.assertEqual(before - held, set(), "every webhook acknowledged before the backup is in it")

        # A person the backup knows is erased after it, through the service.
        time.sleep(3)  # contacts settle (contact_idle_s)
        live = self.dfm.dump()
        created = [e for e in live if e["type"] == "contact.created" and e["seq"] <= manifest["last_seq"]]
        self.assertTrue(created, "the backup holds contacts")
        contact = created[0]["stream"].split(":", 1)[1]
        erase = self.cli("erase", "-c", self.dfm.config_path, contact, "--reason", "art. 17", "--json")
        self.assertEqual(erase.returncode, 0, erase.stderr)
        r = self.cli("restore", self.backups, "-d", self.dfm.data_dir, "--replace", "--json")
        self.assertEqual(r.returncode, 2, "not under a running service")
        self.assertIn("stop it first", r.stderr)
        self.assertFalse([n for n in os.listdir(self.dir) if ".replaced-" in n or n.endswith(".restoring")])
        self.assertEqual(self.dfm.stop(), 0)

        r = self.cli("restore", self.backups, "-d", self.dfm.data_dir, "--json")
        self.assertEqual(r.returncode, 2, "a data directory is there: not without --replace")
        self.assertIn("--replace", r.stderr)
        r = self.cli("restore", self.backups, "-d", self.dfm.data_dir, "--replace", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        report = json.loads(r.stdout)
        self.assertEqual(report["erasures_appended"], 1)
        self.assertEqual(report["lost_from"], manifest["last_seq"] + 1)
        self.dfm.start()
        stream = [e for e in self.dfm.dump() if e["stream"] == "contact:" + contact]
        self.assertTrue(all(e.get("erased") for e in stream if e["type"] != "contact.erased"), stream)
        self.assertEqual([e["type"] for e in stream].count("contact.erased"), 1)
        others = [e for e in self.dfm.dump() if e["type"] == "contact.created" and e["stream"] != "contact:" + contact]
        self.assertTrue(others and not any(e.get("erased") for e in others))
        self.assertEqual(self.cli("log", "verify", "-d", self.dfm.data_dir).returncode, 0)
        conn = http.client.HTTPConnection("127.0.0.1", self.dfm.port, timeout=10)
        resp, doc = verity_from(conn, "after-restore", "+12055559999")
        self.assertEqual((resp.status, doc["status"]), (200, "accepted"))
        conn.close()
        self.assertEqual(self.dfm.stop(), 0)

    def test_a_backup_of_a_directory_holding_no_log_is_refused(self):
        # A config that is not the service's (or none: ./data) named a
        # directory with no log: the offline backup made an empty log there,
        # backed it up as the newest, and --keep dropped the real ones.
        nowhere = os.path.join(self.dir, "nowhere")
        cfg = os.path.join(self.dir, "other.toml")
        with open(cfg, "w") as f:
            f.write(f'[storage]\ndata_dir = "{nowhere}"\n')
        r = self.cli("backup", "-c", cfg, "--into", self.backups, "--keep", "1")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("no event log at " + nowhere, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(nowhere, "CURRENT")), "no log made")
        self.assertFalse(os.path.exists(os.path.join(self.backups, "meta")), "no backup made")

    def test_a_damaged_wal_is_restored_from_the_last_backup_with_the_loss_reported(self):
        self.dfm = dfmtest.Dfm(DFM, self.dir, extra_config="[sync]\nenabled = false\n")
        self.dfm.start()
        conn = http.client.HTTPConnection("127.0.0.1", self.dfm.port, timeout=10)
        for i in range(10):
            resp, doc = dfmtest.post_verity(conn, f"pre-{i}", "x" * 200)
            self.assertEqual(resp.status, 200)
        self.assertEqual(self.dfm.stop(), 0)
        # With the service stopped the command backs up the directory itself.
        r = self.cli("backup", "-c", self.dfm.config_path, "--into", self.backups, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        manifest = json.loads(r.stdout)
        self.assertEqual(manifest["last_seq"], 10)
        self.dfm.start()
        conn = http.client.HTTPConnection("127.0.0.1", self.dfm.port, timeout=10)
        for i in range(15):
            resp, doc = dfmtest.post_verity(conn, f"post-{i}", "y" * 200)
            self.assertEqual(resp.status, 200)
        conn.close()
        self.assertEqual(self.dfm.stop(), 0)
        dfmtest.damage_wal(self.dfm.data_dir)
        with self.assertRaises(RuntimeError) as refused:
            self.dfm.start(timeout=10)
        self.assertIn("Restore the data directory from a backup", str(refused.exception))

        r = self.cli("restore", self.backups, "-c", self.dfm.config_path, "--replace")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("LOST: events 11..25 were acknowledged after the backup", r.stdout)
        self.dfm.start()
        restored = [e for e in self.dfm.dump(with_body=True) if e["type"] == "log.restored"]
        self.assertEqual(len(restored), 1)
        self.assertEqual((restored[0]["payload"]["lost_from"], restored[0]["payload"]["lost_to"]), (11, 25))
        self.assertEqual(restored[0]["payload"]["backup_last_seq"], 10)
        self.assertEqual(self.cli("log", "verify", "-d", self.dfm.data_dir).returncode, 0)
        self.assertEqual(self.dfm.stop(), 0)
        moved = [d for d in os.listdir(self.dir) if d.startswith("data.replaced-")]
        self.assertEqual(len(moved), 1, "the damaged directory is kept aside, not deleted")


if __name__ == "__main__":
    DFM, argv = dfmtest.dfm_args()
    unittest.main(argv=argv)
