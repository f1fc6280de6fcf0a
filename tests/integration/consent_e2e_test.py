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

Usage: consent_e2e_test.py --dfm PATH [-k NAME]
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import messages_e2e_test as messages  # noqa: E402
import replay_tools_test as replay_tools  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import wait_for  # noqa: E402


class ConsentTest(unittest.TestCase):
    def setUp(self):
        messages.MessagesTest.setUp(self)
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


if __name__ == "__main__":
    base.main()
