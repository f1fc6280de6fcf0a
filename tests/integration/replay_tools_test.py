#!/usr/bin/env python3
"""The replay tools against a real service, real RocksDB and the sandboxes.

- A missed sync: a contact comes from GoHighLevel while Aloware's connector
  is not configured, so nothing is pushed to Aloware. Once Aloware is
  configured, `dfm trace` says Aloware was never asked, `dfm replay` shows
  the missing push, `dfm replay --execute` re-drives it through the running
  service, the Aloware sandbox gets the contact once, and a second dry run
  finds nothing missing.
- A dead letter: Aloware refuses a push until it is dead-lettered;
  `dfm replay dead-letters` lists it and `--execute` re-drives it.
- The compliance audit: a STOP, then a text observed going out to that
  number through Twilio: `dfm audit violations` reports it and exits 1;
  `dfm audit opt-outs` lists the opt-out with the systems told; `dfm audit
  verify` prints a summary that re-checks against the same log.
- `dfm events`, `events show`, `as-of`, `projections status` and (with the
  service stopped) `projections rebuild` on the same data directory.

Usage: replay_tools_test.py --dfm PATH [unittest args]
"""
import csv
import io
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dfmtest  # noqa: E402
import sync_e2e_test as e2e  # noqa: E402


class ReplayToolsTest(unittest.TestCase):
    setUp = e2e.SyncTest.setUp
    tearDown = e2e.SyncTest.tearDown
    events = e2e.SyncTest.events
    ghl_user_creates = e2e.SyncTest.ghl_user_creates
    post_verity = e2e.SyncTest.post_verity
    verity_text = e2e.SyncTest.verity_text
    post_twilio = e2e.SyncTest.post_twilio

    def tool(self, *args, env_extra=None, expect=None):
        env = dict(os.environ)
        env.update(self.env)
        env.update(env_extra or {})
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        r = dfmtest.subprocess.run([e2e.DFM, *args, "-c", self.dfm.config_path],
                                   capture_output=True, text=True, env=env)
        if expect is not None:
            self.assertEqual(r.returncode, expect, f"dfm {' '.join(args)}\n{r.stdout}\n{r.stderr}")
        return r

    def json_lines(self, *args, expect=0):
        r = self.tool(*args, "--json", expect=expect)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def restart(self, env):
        self.dfm.stop()
        self.dfm.start(env_extra=env)

    def test_missed_sync_is_explained_by_trace_and_repaired_by_replay(self):
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
        no_aloware = {k: v for k, v in self.env.items() if not k.startswith("DFM_ALOWARE_")}
        self.restart(no_aloware)
        phone = "+12055550301"
        self.ghl_user_creates(phone, first="Missed")
        e2e.wait_for("the contact", lambda: self.events("contact.created"))
        time.sleep(1)
        self.assertEqual(self.alo.contacts(), [], "Aloware is not configured yet")
        self.restart(self.env)

        # trace: Aloware was never asked.
        r = self.tool("trace", phone, expect=0)
        self.assertIn("aloware was never asked to hold this contact", r.stdout)
        findings = [x for x in self.json_lines("trace", phone) if x["kind"] == "finding"]
        self.assertTrue(any("aloware was never asked" in f["finding"] for f in findings))

        # replay, dry run: the push the rules call for now is missing.
        diffs = self.json_lines("replay", "--from", start, "--contact", phone, expect=1)
        missing = [d for d in diffs if d["kind"] == "missing"]
        self.assertEqual(len(missing), 1, diffs)
        self.assertEqual(missing[0]["now"]["system"], "aloware")
        self.assertEqual(missing[0]["now"]["op"], "upsert")
        self.assertNotIn(phone, json.dumps(diffs), "personal data only with --reveal")
        self.assertEqual(self.alo.contacts(), [], "a dry run changes nothing")

        # --execute re-drives it through the running service.
        r = self.tool("replay", "--from", start, "--contact", phone, "--execute", expect=0)
        self.assertIn("sent to the running service", r.stdout)
        e2e.wait_for("the contact in Aloware",
                     lambda: e2e.by_phone(self.alo.contacts(), phone, "phone_number"))
        e2e.wait_for("the re-drive settled", lambda: [
            e for e in self.events("push.succeeded") if e["payload"].get("system") == "aloware"])
        replays = self.events("replay.requested")
        self.assertEqual(len(replays), 1)
        # Who asked is recorded with it: the admin token, from this machine.
        asked = self.events("admin.action")
        self.assertEqual(len(asked), 1)
        self.assertEqual((asked[0]["payload"]["action"], asked[0]["payload"]["credential"],
                          asked[0]["payload"]["client"]), ("replay", "admin-token", "127.0.0.1"))
        self.assertEqual(asked[0]["seq"], replays[0]["seq"] + 1, "in the same write")
        pushes = [e for e in self.events("push.requested") if e["payload"]["system"] == "aloware"]
        self.assertEqual(len(pushes), 1)
        self.assertEqual(pushes[0]["causation_id"], replays[0]["id"], "caused by the replay")
        self.assertEqual(pushes[0]["correlation_id"], replays[0]["id"])
        time.sleep(1)
        self.assertEqual(len(self.alo.requests("/api/v1/webhook/forms")), 1, "pushed once")

        # A second dry run finds nothing missing; a second --execute re-drives nothing.
        self.tool("replay", "--from", start, "--contact", phone, expect=0)
        r = self.tool("replay", "--from", start, "--contact", phone, "--execute", expect=0)
        self.assertIn("nothing to re-drive", r.stdout)
        self.assertEqual(len(self.events("replay.requested")), 1)
        r = self.tool("trace", phone, expect=0)
        self.assertNotIn("aloware was never asked", r.stdout)

        # events show: the replay and what it caused.
        shown = self.json_lines("events", "show", replays[0]["id"])
        roles = [x["role"] for x in shown]
        self.assertEqual(roles[0], "event")
        self.assertIn("consequence", roles)
        self.assertTrue(any(x["type"] == "push.succeeded" for x in shown if x["role"] == "consequence"))

        # events by contact and type; as-of; projections status.
        evs = self.json_lines("events", "--contact", phone, "--type", "push.*")
        self.assertTrue(evs and all(e["type"].startswith("push.") for e in evs))
        self.assertEqual(self.json_lines("events", "--contact", "+12055550999", expect=1), [])
        past = self.json_lines("as-of", start, phone)
        self.assertFalse(past[0]["exists"])
        now = self.json_lines("as-of", "now", phone)
        self.assertTrue(now[0]["exists"])
        self.assertIn("aloware", now[0]["ids"])
        status = self.json_lines("projections", "status")
        self.assertEqual({s["consumer"] for s in status},
                         {"mappings", "contacts", "sync_status", "opt_outs", "enrichments", "conversations",
                          "campaigns", "campaign_tasks", "router"})

        # Rebuild needs the log to itself.
        self.tool("projections", "rebuild", expect=2)
        self.dfm.stop()
        r = self.tool("projections", "rebuild", expect=0)
        self.assertIn("rebuilt every projection", r.stdout)
        after = {s["consumer"]: s for s in self.json_lines("projections", "status")}
        self.assertEqual(after["mappings"]["lag"], 0)
        self.dfm.start(env_extra=self.env)
        self.assertTrue(self.json_lines("as-of", "now", "aloware:" + now[0]["ids"]["aloware"]))

    def test_dead_letter_listed_and_re_driven(self):
        self.restart(dict(self.env, DFM_ALOWARE_MAX_ATTEMPTS="2"))
        self.alo.post("/_sandbox/faults", {"faults": [{"status": 422, "count": 1}]})
        phone = "+12055550302"
        self.ghl_user_creates(phone, first="Dead")
        e2e.wait_for("the dead letter", lambda: self.events("push.dead_lettered"))
        dead = self.json_lines("replay", "dead-letters", "--system", "aloware")
        self.assertEqual(len(dead), 1, dead)
        r = self.tool("trace", phone, expect=0)
        self.assertIn("dead-lettered", r.stdout)
        self.assertIn("dfm replay dead-letters --push " + dead[0]["push_id"], r.stdout)

        self.tool("replay", "dead-letters", "--push", dead[0]["push_id"], "--execute", expect=0)
        e2e.wait_for("the contact in Aloware",
                     lambda: e2e.by_phone(self.alo.contacts(), phone, "phone_number"))
        self.assertEqual(self.json_lines("replay", "dead-letters"), [], "re-driven ones are not listed")

    def test_audit_reports_an_observed_text_to_an_opted_out_number(self):
        phone = "+12055550303"
        self.ghl_user_creates(phone, first="Audit")
        e2e.wait_for("first sync", lambda: e2e.by_phone(self.alo.contacts(), phone, "phone_number"))
        self.verity_text(phone, "STOP", message_id="msg_audit_stop")
        e2e.wait_for("opt-out told", lambda: len([
            e for e in self.events("push.succeeded") if e["payload"].get("op") == "opt_out"]) == 2)
        self.assertEqual(self.tool("audit", "violations").returncode, 0)

        time.sleep(1.1)  # a later second than the STOP
        self.post_twilio({"MessageSid": "SMaudit1", "MessageStatus": "delivered",
                          "To": phone, "From": "+12055550100"})
        e2e.wait_for("the observed text", lambda: [
            e for e in self.events("message.logged") if e["payload"].get("system") == "twilio"])
        found = self.json_lines("audit", "violations", expect=1)
        self.assertEqual(len(found), 1, found)
        self.assertEqual(found[0]["kind"], "outbound_while_opted_out")
        self.assertEqual(found[0]["phone"], phone)
        self.assertEqual(found[0]["systems"], ["twilio"])

        r = self.tool("audit", "opt-outs", "--phone", phone, "--format", "csv", expect=0)
        rows = list(csv.DictReader(io.StringIO(r.stdout)))
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["status"], "opt_out")
        self.assertEqual(rows[0]["source_system"], "verity")
        self.assertEqual(rows[0]["cause"], "msg_audit_stop")
        self.assertIn("aloware@", rows[0]["systems_told"])
        self.assertIn("ghl@", rows[0]["systems_told"])
        self.assertEqual(len(rows[0]["record_sha256"]), 64)
        js = [json.loads(x) for x in self.tool(
            "audit", "opt-outs", "--phone", phone, "--format", "json", expect=0).stdout.splitlines()]
        self.assertEqual(js[0]["event_id"], rows[0]["event_id"])
        # An address that does not read as one is refused, never answered "none".
        bad = self.tool("audit", "opt-outs", "--email", "ann promo@example.com", expect=2)
        self.assertIn("is not an email address", bad.stderr)
        self.assertEqual(bad.stdout, "")

        summary = self.tool("audit", "verify", expect=0).stdout
        kept = os.path.join(self.dir, "kept-summary.txt")
        with open(kept, "w") as f:
            f.write(summary)
        self.verity_text(phone, "hello again")  # the log grows; the kept prefix still checks
        self.tool("audit", "verify", "--against", kept, expect=0)
        doc = json.loads(summary.strip().splitlines()[-1])
        doc["head_hash"] = "0" * 64
        with open(kept, "w") as f:
            f.write(json.dumps(doc) + "\n")
        self.tool("audit", "verify", "--against", kept, expect=1)


class AdminEndpointTest(unittest.TestCase):
    """POST /v1/admin/replay: every bad request answered clearly, nothing
    appended; an item is only ever a contact's own dead or missing push,
    rebuilt from the log (it was taken as posted: any text, any age)."""
    setUp = e2e.SyncTest.setUp
    tearDown = e2e.SyncTest.tearDown
    events = e2e.SyncTest.events
    ghl_user_creates = e2e.SyncTest.ghl_user_creates

    def post(self, body, token=None, query=""):
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        status, _, answer = dfmtest.request("127.0.0.1", self.dfm.admin_port, "POST", "/v1/admin/replay" + query,
                                            body=body.encode(), headers=headers)
        return status, json.loads(answer)

    def test_bad_requests_are_refused_and_append_nothing(self):
        with open(os.path.join(self.dfm.data_dir, "admin.token")) as f:
            token = f.read().strip()
        self.assertEqual(oct(os.stat(os.path.join(self.dfm.data_dir, "admin.token")).st_mode & 0o777), "0o600")
        item = {"contact_id": "c_nobody", "cause": "01M7YWY7N1CD481MYS8JBVPEE8",
                "push": {"system": "aloware", "op": "upsert"}}
        good = json.dumps({"reason": "test", "items": [item]})
        self.assertEqual(self.post(good)[0], 401)
        self.assertEqual(self.post(good, token="0" * 64)[1]["error"], "unauthorized")
        status, answer = self.post("{", token=token)
        self.assertEqual((status, answer["error"]), (400, "malformed_body"))
        self.assertEqual(self.post(json.dumps({"items": []}), token=token)[0], 400)
        self.assertEqual(self.post(json.dumps({"items": [{"push": {}}]}), token=token)[0], 400)
        self.assertEqual(self.post(good, token=token, query="?tenant=nope")[0], 404)
        self.assertEqual(self.dfm.webhooks(), [])
        self.assertEqual(self.events("replay.requested"), [])

        status, answer = self.post(good, token=token)
        self.assertEqual((status, answer["error"]), (422, "not_redrivable"))
        self.assertIn("item 0: its cause is no event of tenant default", answer["detail"])

        # A real webhook as the cause, with a text of the caller's choosing:
        # the rules call for no such push, so nothing is sent.
        self.ghl_user_creates("+12055550304", first="Real")
        e2e.wait_for("the contact", lambda: self.events("contact.created"))
        hook = self.dfm.webhooks()[0]
        forged = {"contact_id": self.events("contact.created")[0]["payload"]["contact_id"],
                  "cause": hook["id"],
                  "push": {"system": "verity", "op": "send", "fields": {"body": "Pay now",
                                                                         "phone": "+12055550199"}}}
        status, answer = self.post(json.dumps({"items": [forged]}), token=token)
        self.assertEqual((status, answer["error"]), (422, "not_redrivable"), answer)
        self.assertIn("no missing send push to verity", answer["detail"])
        self.assertEqual(self.events("replay.requested"), [])
        self.assertEqual(self.events("admin.action"), [], "a refusal appends nothing")


if __name__ == "__main__":
    e2e.main()
