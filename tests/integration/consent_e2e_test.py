#!/usr/bin/env python3
"""Who may undo an opt-out, end to end (docs/sync-rules.md): `dfm serve`
between the four sandboxes, as in messages_e2e_test.py.

- A person texts STOP to Verity; later an agent lifts SMS DND in
  GoHighLevel. The engine refuses it (consent.conflict), sets DND again in
  GoHighLevel, never opts the person back in anywhere, and `dfm audit
  consent-conflicts` lists it as set again.
- Verity refuses a send because the number opted out at its end (422
  recipient_opted_out): a carrier opt-out, told to GoHighLevel and Aloware,
  the text reported failed and never retried.
- A second person refused the same way is their own carrier opt-out.
- A text on the wire when the STOP came, delivered after it: `dfm audit
  violations` lists it as delivered_after_opt_out with both times.
- An opt-out always lands (issue 46): GoHighLevel holds two records of one
  phone and refuses duplicates; the STOP sets DND on both. GoHighLevel down
  past every retry during a STOP gets it when it is back, never
  dead-lettered. A refused opt-out is open on the status page and in
  `dfm audit violations`, and a repeated STOP re-sends it. An opt-out
  taken is read back; a staff lift a second after it is read back and set
  again with a consent.conflict. Drift that came without a webhook (an
  import, a bulk action) is found by `dfm reconcile` and set again by
  `dfm reconcile --execute` while the service runs, and by the service's
  daily run.

Usage: consent_e2e_test.py --dfm PATH [-k NAME]
"""
import datetime
import json
import os
import sys
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import clustertest  # noqa: E402
import messages_e2e_test as messages  # noqa: E402
import replay_tools_test as replay_tools  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import by_phone, wait_for  # noqa: E402


class ConsentTest(unittest.TestCase):
    other_tenants = False  # one company's: the status page's search answers anybody, masked

    def setUp(self):
        messages.MessagesTest.setUp(self)
        self.serve_env = self.env  # for a test that starts dfm again
        self.env = {}  # the tools read the service's config file alone

    tearDown = messages.MessagesTest.tearDown
    events = messages.MessagesTest.events
    ghl_contact = messages.MessagesTest.ghl_contact
    ghl_messages = messages.MessagesTest.ghl_messages
    verity_inbound = messages.MessagesTest.verity_inbound
    provider_outbound = messages.MessagesTest.provider_outbound
    ghl_status = messages.MessagesTest.ghl_status
    sms_dnd = messages.MessagesTest.sms_dnd
    alo_dnc = base.SyncTest.alo_dnc
    post_twilio = base.SyncTest.post_twilio
    opted = base.SyncTest.opted

    tool = replay_tools.ReplayToolsTest.tool
    json_lines = replay_tools.ReplayToolsTest.json_lines

    def test_dnd_lifted_in_ghl_after_a_persons_stop_is_set_again_and_audited(self):
        phone = "+12055550191"
        c = self.ghl_contact(phone)
        self.verity_inbound(phone, "STOP")
        wait_for("GHL SMS DND", lambda: self.sms_dnd(phone) == "active")
        wait_for("Aloware DNC", lambda: self.alo_dnc(phone))
        wait_for("GHL confirmed", lambda: [
            e for e in self.events("push.succeeded")
            if e["payload"].get("op") == "opt_out" and e["payload"]["system"] == "ghl"])
        time.sleep(6)  # past the 5 s clock-skew allowance for GoHighLevel's own setting
        self.assertEqual(self.tool("audit", "consent-conflicts", expect=0).returncode, 0)

        # An agent lifts SMS DND in GoHighLevel.
        status, body = self.ghl.post("/_sandbox/contacts", {
            "id": c["id"], "dndSettings": {"SMS": {"status": "inactive", "message": "", "code": ""}}})
        self.assertEqual(status, 200, body)
        conflict = wait_for("consent.conflict",
                            lambda: [e["payload"] for e in self.events("consent.conflict")])
        self.assertEqual(conflict[0]["system"], "ghl")
        self.assertEqual(conflict[0]["actor"], "staff")
        self.assertEqual(conflict[0]["channel"], "sms")
        self.assertIn("keyword STOP via verity", conflict[0]["detail"])
        wait_for("DND set again in GHL", lambda: self.sms_dnd(phone) == "active")
        time.sleep(1.5)
        self.assertEqual(self.sms_dnd(phone), "active", "and it stays set")
        self.assertTrue(self.alo_dnc(phone), "Aloware was never told to opt back in")
        self.assertEqual(self.events("contact.opted_in"), [])
        self.assertEqual([e for e in self.events("push.requested")
                          if e["payload"].get("op") == "opt_in"], [])

        found = wait_for("audited as set again", lambda: [
            x for x in self.json_lines("audit", "consent-conflicts", expect=1)
            if x["set_again"] == "succeeded"])
        self.assertEqual(len(found), 1)
        self.assertEqual(found[0]["phone"], phone)
        self.assertEqual(found[0]["system"], "ghl")
        self.assertTrue(found[0]["set_again_at"])
        # The person's own opt-out stays in the opt-out history, with who made it.
        rows = [json.loads(line) for line in self.tool(
            "audit", "opt-outs", "--phone", phone, "--format", "json", expect=0).stdout.splitlines()]
        self.assertEqual([(r["status"], r["actor"]) for r in rows], [("opt_out", "person")])

    def test_a_send_verity_refuses_as_opted_out_is_a_carrier_opt_out(self):
        phone = "+12055550192"
        c = self.ghl_contact(phone)
        # The number opted out at Verity's end; the engine was never told.
        status, _ = self.verity.post("/_sandbox/optouts", {"phone": phone, "optedOut": True})
        self.assertEqual(status, 200)
        mid = self.provider_outbound(c["id"], "Your order shipped")
        out = wait_for("carrier opt-out", lambda: [e["payload"] for e in self.events("contact.opted_out")])
        self.assertEqual(out[0]["actor"], "carrier")
        self.assertEqual(out[0]["system"], "verity")
        self.assertEqual(out[0]["channel"], "sms")
        wait_for("GHL SMS DND", lambda: self.sms_dnd(phone) == "active")
        wait_for("Aloware DNC", lambda: self.alo_dnc(phone))
        wait_for("GHL status failed", lambda: self.ghl_status(mid) == "failed")
        time.sleep(1.5)
        sends = [e for e in self.events("push.attempted") if e["payload"].get("op") == "send"]
        self.assertEqual(len(sends), 1, "a carrier refusal is never retried")
        dead = [e["payload"] for e in self.events("push.dead_lettered")]
        self.assertEqual([d.get("outcome") for d in dead], ["recipient_opted_out"])

        # A second person refused the same way is their own carrier opt-out
        # (the decisions of two reports once shared a key: the second was lost).
        phone2 = "+12055550194"
        c2 = self.ghl_contact(phone2)
        self.verity.post("/_sandbox/optouts", {"phone": phone2, "optedOut": True})
        self.provider_outbound(c2["id"], "Your order shipped too")
        outs = wait_for("the second carrier opt-out", lambda: [
            e["payload"] for e in self.events("contact.opted_out")
            if e["payload"]["actor"] == "carrier" and e["payload"].get("fields", {}).get("phone") == phone2],
            timeout=15)
        self.assertEqual(len(outs), 1)
        wait_for("GHL SMS DND of the second", lambda: self.sms_dnd(phone2) == "active")

    def test_a_text_delivered_after_the_opt_out_is_listed_with_both_times(self):
        phone = "+12055550193"
        self.ghl_contact(phone)
        # A text goes out through Twilio while the person is opted in...
        self.post_twilio({"MessageSid": "SMwire1", "MessageStatus": "sent",
                          "To": phone, "From": "+12055550100"})
        wait_for("the text", lambda: [e for e in self.events("message.logged")
                                      if e["payload"].get("system") == "twilio"])
        time.sleep(1.1)
        self.verity_inbound(phone, "STOP")  # ...the STOP comes while it is on the wire...
        wait_for("opted out", lambda: self.events("contact.opted_out"))
        time.sleep(1.1)
        self.post_twilio({"MessageSid": "SMwire1", "MessageStatus": "delivered",
                          "To": phone, "From": "+12055550100"})  # ...and it is delivered after it
        wait_for("delivered", lambda: [e for e in self.events("message.status")
                                       if e["payload"].get("outcome") == "delivered"])
        found = self.json_lines("audit", "violations", expect=1)
        self.assertEqual([v["kind"] for v in found], ["delivered_after_opt_out"], found)
        v = found[0]
        self.assertEqual(v["phone"], phone)
        self.assertTrue(v["at"] < v["opted_out_at"] < v["delivered_at"], v)
        self.assertIn("delivered", v["how"])


    # --- an opt-out always lands (issue 46) --------------------------------

    def status_page(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.dfm.port}/docs/visual", timeout=10) as r:
            return r.read().decode()

    def ghl_record(self, cid):
        status, c = self.ghl.get("/_sandbox/contacts/" + cid)
        self.assertEqual(status, 200, c)
        return c

    def ghl_sms_dnd_of(self, cid):
        return ((self.ghl_record(cid).get("dndSettings") or {}).get("SMS") or {}).get("status")

    def opt_out_pushes(self, type_, system="ghl"):
        return [e["payload"] for e in self.events(type_)
                if e["payload"].get("op") == "opt_out" and e["payload"]["system"] == system]

    def test_an_opt_out_reaches_every_record_of_a_duplicated_phone(self):
        phone = "+12055550196"
        # A record made before "Allow Duplicate Contact" was turned off...
        status, body = self.ghl.post("/_sandbox/contacts", {"firstName": "Ada", "phone": phone, "webhook": False})
        self.assertEqual(status, 201, body)
        older = body["contact"]["id"]
        # ...and the one the engine knows, with the same phone.
        known = self.ghl_contact(phone, email="ada196@example.com")["id"]
        self.ghl.post("/_sandbox/settings", {"allow_duplicates": False})
        self.verity_inbound(phone, "STOP")
        wait_for("SMS DND on both records", lambda: self.ghl_sms_dnd_of(known) == "active" and
                 self.ghl_sms_dnd_of(older) == "active")
        ok = wait_for("the push confirmed", lambda: self.opt_out_pushes("push.succeeded"))
        self.assertEqual(sorted(ok[0]["fields"]["answer.ids"].split(",")), sorted([known, older]))
        self.assertEqual(self.opt_out_pushes("push.dead_lettered"), [])
        # Each PUT carried only the DND setting, never the phone or email.
        puts = [r for r in self.ghl.get("/_sandbox/requests?path_prefix=/contacts/")[1]
                if r["method"] == "PUT"]
        dnd_puts = [r for r in puts if "dndSettings" in (r.get("body") or {})]
        self.assertEqual(len(dnd_puts), 2, puts)
        for r in dnd_puts:
            self.assertEqual(sorted(r["body"].keys()), ["dndSettings"], r)
        # `dfm trace` names both records as GoHighLevel's ids of the person.
        rows = self.json_lines("trace", "contact:" + ok[0]["contact_id"])
        ghl_row = [r for r in rows if r.get("kind") == "system" and r["system"] == "ghl"]
        self.assertEqual(len(ghl_row), 1, rows)
        self.assertEqual(sorted([ghl_row[0]["link"]] + ghl_row[0]["other_ids"]), sorted([known, older]))
        # So does the status page's contact story (ids are not personal data).
        form = urllib.parse.urlencode({"q": "contact:" + ok[0]["contact_id"]}).encode()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.dfm.port}/docs/visual", data=form, timeout=10) as r:
            page = r.read().decode()
        self.assertTrue(f"{known} (also {older})" in page or f"{older} (also {known})" in page,
                        "both GoHighLevel records in the page's GoHighLevel row")

    def test_ghl_down_past_every_retry_during_a_stop_gets_it_when_back(self):
        phone = "+12055550197"
        cid = self.ghl_contact(phone)["id"]
        self.assertEqual(self.dfm.stop(), 0)
        self.dfm.start(env_extra=dict(self.serve_env, DFM_GHL_MAX_ATTEMPTS="3"))
        self.ghl.post("/_sandbox/down", {"seconds": 15})
        self.verity_inbound(phone, "STOP")
        refused = wait_for("retries run out: kept open", lambda: [
            a for a in self.opt_out_pushes("push.attempted") if a.get("outcome") == "refused"], timeout=20)
        self.assertGreaterEqual(refused[0]["attempt"], 3)
        page = wait_for("the card says so", lambda: (lambda p: p if "Needs attention: opt-outs refused" in p
                                                        else None)(self.status_page()))
        self.assertIn("opt-out could not be set in GoHighLevel since", page)
        self.assertNotIn(phone[2:], page, "no personal data")
        found = self.json_lines("audit", "violations", expect=1)
        self.assertEqual([v["kind"] for v in found], ["opt_out_refused"], found)
        wait_for("DND set once GoHighLevel is back", lambda: self.ghl_sms_dnd_of(cid) == "active", timeout=40)
        self.assertEqual(self.opt_out_pushes("push.dead_lettered"), [])
        self.assertEqual(len(self.opt_out_pushes("push.succeeded")), 1)
        wait_for("the card clears", lambda: "opt-outs refused" not in self.status_page())

    def test_a_repeated_stop_resends_to_a_system_that_never_confirmed(self):
        phone = "+12055550198"
        cid = self.ghl_contact(phone)["id"]
        # A refused opt-out waits at least 5 minutes before it is tried again.
        self.assertEqual(self.dfm.stop(), 0)
        self.dfm.start(env_extra=dict(self.serve_env, DFM_GHL_RETRY_MAX_MS="600000"))
        # Aloware's DNC opts the person out; GoHighLevel refuses what it is sent.
        self.ghl.post("/_sandbox/faults", {"faults": [{"status": 422, "count": 1000, "method": "PUT"},
                                                      {"status": 422, "count": 1000, "method": "POST",
                                                       "path_prefix": "/contacts/"}]})
        alo = by_phone(self.alo.contacts(), phone, "phone_number")[0]
        status, body = self.alo.post("/_sandbox/contacts", {"id": alo["id"], "is_dnc": True})
        self.assertIn(status, (200, 201), body)
        wait_for("GoHighLevel refused it", lambda: [
            a for a in self.opt_out_pushes("push.attempted") if a.get("outcome") == "refused"])
        self.ghl.post("/_sandbox/faults", {}, method="DELETE")
        # The person texts STOP: nothing changes in the engine (opted out
        # already), yet GoHighLevel is asked again now.
        self.verity_inbound(phone, "STOP")
        wait_for("GHL SMS DND", lambda: self.ghl_sms_dnd_of(cid) == "active", timeout=30)
        dead = self.opt_out_pushes("push.dead_lettered")
        self.assertEqual([d.get("outcome") for d in dead], ["superseded"])
        self.assertEqual(len(self.opt_out_pushes("push.succeeded")), 1)



    def reconcile(self, *args, expect=None):
        # It reads the vendors: their settings come from the service's environment.
        return self.tool("reconcile", *args, env_extra=self.serve_env, expect=expect)

    def test_reconcile_finds_silent_drift_and_execute_sets_it_again(self):
        phone = "+12055550195"
        cid = self.ghl_contact(phone)["id"]
        self.verity_inbound(phone, "STOP")
        wait_for("GHL SMS DND", lambda: self.ghl_sms_dnd_of(cid) == "active")
        alo = by_phone(self.alo.contacts(), phone, "phone_number")[0]
        wait_for("Aloware DNC", lambda: self.alo_dnc(phone))
        wait_for("read back", lambda: len([e for e in self.events("push.succeeded")
                                           if e["payload"].get("op") == "read_consent"]) >= 2)
        r = self.reconcile(expect=0)
        self.assertIn("0 drifting", r.stdout, r.stdout)
        # Lifted in both systems without a webhook (an import, a bulk action).
        status, body = self.ghl.post("/_sandbox/contacts", {
            "id": cid, "webhook": False, "dndSettings": {"SMS": {"status": "inactive", "message": "", "code": ""}}})
        self.assertEqual(status, 200, body)
        status, body = self.alo.post("/_sandbox/contacts", {"id": alo["id"], "is_dnc": False, "webhook": False})
        self.assertIn(status, (200, 201), body)
        r = self.reconcile("--json", expect=1)
        rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        drift = sorted((d["system"], d["channels"]) for d in rows if d["kind"] == "drift")
        self.assertEqual(drift, [("aloware", "sms"), ("ghl", "sms")], rows)
        summary = [d for d in rows if d["kind"] == "summary"][0]
        self.assertEqual((summary["drift"], summary["unread"]), (2, 0), summary)
        self.assertIn("reconcile: ", r.stderr, "progress on stderr")
        self.assertNotIn(phone, r.stdout + r.stderr, "no personal data in its output")
        # --since after the opt-out: nothing to check.
        r = self.reconcile("--since", "now", expect=0)
        self.assertIn("0 records checked", r.stdout)
        # --execute while the service runs: set again through the contact's actor.
        r = self.reconcile("--execute", expect=0)
        self.assertIn("re-applying 2 opt-outs", r.stdout)
        self.assertIn("running service", r.stdout)
        wait_for("GHL SMS DND set again", lambda: self.ghl_sms_dnd_of(cid) == "active")
        wait_for("Aloware DNC set again", lambda: self.alo_dnc(phone))
        replays = self.events("replay.requested")
        self.assertEqual(len(replays), 1, replays)
        self.assertEqual(self.events("contact.opted_in"), [])
        wait_for("nothing drifts now", lambda: self.reconcile().returncode == 0)
        # The service's daily run (reconcile.daily_at, UTC) finds and mends drift alike.
        status, body = self.ghl.post("/_sandbox/contacts", {
            "id": cid, "webhook": False, "dndSettings": {"SMS": {"status": "inactive", "message": "", "code": ""}}})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.dfm.stop(), 0)
        if time.gmtime().tm_sec > 50:
            time.sleep(11)  # the minute it is due must not pass while it starts
        self.dfm.start(env_extra=dict(self.serve_env, DFM_RECONCILE_DAILY_AT=time.strftime("%H:%M", time.gmtime())))
        wait_for("GHL SMS DND set again by the daily run", lambda: self.ghl_sms_dnd_of(cid) == "active")
        replays = self.events("replay.requested")
        self.assertEqual(len(replays), 2, replays)
        self.assertIn("daily reconcile", json.dumps(replays[1]))
        self.assertEqual(self.events("contact.opted_in"), [])


    def test_a_staff_lift_a_second_after_our_push_is_read_back_and_set_again(self):
        phone = "+12055550199"
        cid = self.ghl_contact(phone)["id"]
        self.verity_inbound(phone, "STOP")
        wait_for("GHL SMS DND", lambda: self.ghl_sms_dnd_of(cid) == "active")
        # Each system that took it was read back once, and showed it.
        reads = wait_for("read back from GoHighLevel and Aloware", lambda: (lambda r: r if {
            x["system"] for x in r} >= {"ghl", "aloware"} else None)([
                e["payload"] for e in self.events("push.succeeded") if e["payload"].get("op") == "read_consent"]))
        for r in reads:
            self.assertEqual(r["fields"].get("held.sms"), "out", r)
        self.assertEqual(self.events("consent.conflict"), [])
        # An agent lifts SMS DND in GoHighLevel a second after GoHighLevel
        # took our push: within the 5 s clock-skew allowance, where a
        # webhook alone is taken for a restatement of the older setting.
        # The edit is stamped so (dateUpdated), however long the waits
        # above took on a loaded machine.
        answered = [e["recorded_at"] for e in self.events("push.succeeded")
                    if e["payload"].get("op") == "opt_out" and e["payload"]["system"] == "ghl"]
        self.assertEqual(len(answered), 1, answered)
        status, body = self.ghl.post("/_sandbox/contacts", {
            "id": cid, "dndSettings": {"SMS": {"status": "inactive", "message": "", "code": ""}},
            "dateUpdated": shifted(answered[0], seconds=1)})
        self.assertEqual(status, 200, body)
        conflict = wait_for("consent.conflict from the read-back",
                            lambda: [e["payload"] for e in self.events("consent.conflict")])
        self.assertEqual((conflict[0]["system"], conflict[0]["channel"]), ("ghl", "sms"))
        self.assertIn("read back", conflict[0]["detail"])
        wait_for("DND set again in GHL", lambda: self.ghl_sms_dnd_of(cid) == "active")
        self.assertEqual(self.events("contact.opted_in"), [])


    def test_a_staff_dnd_set_while_our_opt_in_lands_is_found_by_reading_back(self):
        phone = "+12055550198"
        cid = self.ghl_contact(phone)["id"]
        self.verity_inbound(phone, "STOP")
        wait_for("GHL SMS DND", lambda: self.ghl_sms_dnd_of(cid) == "active")
        wait_for("Aloware DNC", lambda: self.alo_dnc(phone))
        wait_for("read back after the opt-out", lambda: [
            e for e in self.events("push.succeeded") if e["payload"].get("op") == "read_consent"
            and e["payload"]["system"] == "ghl"])

        def lifts():  # our opt-in's writes of the record
            return [r for r in self.ghl.requests("/contacts/" + cid)
                    if r["method"] == "PUT" and "inactive" in json.dumps(r.get("body"))]
        # The read after our opt-in reads the record by id: GoHighLevel
        # answers it slowly. An agent sets SMS DND as soon as our opt-in
        # is written; GoHighLevel dates the edit a second before that write
        # (its clock a little behind), so its webhook reads as the old
        # setting, whether it comes before the opt-in's answer or after.
        status, body = self.ghl.post("/_sandbox/faults", {"faults": [
            {"latency_ms": 6000, "method": "GET", "path_prefix": "/contacts/" + cid}]})
        self.assertEqual(status, 200, body)
        self.assertEqual(lifts(), [])
        self.verity_inbound(phone, "START")
        lift = wait_for("our opt-in written to GoHighLevel", lifts)[0]
        written = self.ghl_record(cid)
        self.assertEqual(written["dndSettings"]["SMS"]["status"], "inactive")
        status, body = self.ghl.post("/_sandbox/contacts", {
            "id": cid, "dndSettings": {"SMS": {"status": "active", "message": "", "code": ""}},
            "dateUpdated": shifted(written["dateUpdated"], seconds=-1)})
        self.assertEqual(status, 200, body)
        found = wait_for("the staff opt-out found by the read", lambda: [
            e["payload"] for e in self.events("contact.opted_out")
            if e["payload"].get("system") == "ghl" and "read back after the opt-in" in
            e["payload"].get("reason", "")])
        self.assertEqual(found[0]["actor"], "staff")
        wait_for("Aloware DNC set again", lambda: self.alo_dnc(phone))
        self.assertEqual(self.ghl_sms_dnd_of(cid), "active", "the agent's setting stands")
        # The read after the opt-in: the record by id, after our write.
        self.assertTrue([r for r in self.ghl.requests("/contacts/" + cid)
                         if r["method"] == "GET" and r["seq"] > lift["seq"]])


def shifted(iso, seconds):
    """An ISO 8601 UTC time (as the log prints them) moved by `seconds`, in
    GoHighLevel's form (milliseconds, Z)."""
    t = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


class ClusterConsentTest(clustertest.OnACluster, ConsentTest):
    """The same against three nodes on NATS behind nginx (issue 48): the
    tools given node0's configuration read the tenant's partition from
    NATS, and each partition's node runs its daily reconcile."""

    binary = staticmethod(lambda: base.DFM)

    def tool(self, *args, env_extra=None, expect=None):
        # The cluster's state key too: the partition's payloads are sealed.
        return super().tool(*args, env_extra=dict(self.dfm.env, **(env_extra or {})), expect=expect)


if __name__ == "__main__":
    base.main()
