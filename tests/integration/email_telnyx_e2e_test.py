#!/usr/bin/env python3
"""Email consent, Telnyx and Verity's send route, end to end over real HTTP
(docs/email.md, docs/vendors/telnyx.md, docs/verity.md): `dfm serve` between
the GoHighLevel, Aloware, Verity, Twilio and Telnyx sandboxes.

- A one-click unsubscribe (RFC 8058) POSTed to a link `dfm unsubscribe-link`
  made opts the address out of email, with an opt-out's priority, in
  GoHighLevel's Email DND; a second POST is a duplicate; a forged, altered or
  other tenant's link is refused and records nothing; the GET page shows the
  address masked. How long it took to be honoured is measured and printed.
- Telnyx webhooks: an inbound STOP (Telnyx's own keyword handling) sets SMS
  DND in GoHighLevel and Aloware's DNC; a plain text is logged; a wrong
  signature or a stale timestamp is refused with 401 and records nothing.
- Verity without its contacts API: texts still go, through
  /api/integrations/df-middleware/send-message, and nothing else is asked of it.

Usage: email_telnyx_e2e_test.py --dfm PATH [-k NAME]
"""
import base64
import json
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import dfmtest  # noqa: E402
import messages_e2e_test as messages  # noqa: E402
import replay_tools_test as replay_tools  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import Sandbox, by_phone, wait_for  # noqa: E402

SECRET = "it-unsubscribe-secret-default-0123456789"
ACME_SECRET = "it-unsubscribe-secret-acme-0123456789ab"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class EmailTelnyxTest(unittest.TestCase):
    def setUp(self):
        messages.MessagesTest.setUp(self)
        self.dfm.stop()
        hook = f"http://127.0.0.1:{self.dfm.port}/webhooks/"
        self.telnyx = Sandbox("telnyx", self.dir, ["--webhook-url", hook + "telnyx"])
        self.telnyx.start()
        self.sandboxes = self.sandboxes + (self.telnyx,)
        public_key = self.telnyx.get("/_sandbox/settings")[1]["public_key"]
        self.env.update({
            "DFM_TELNYX_PUBLIC_KEY": public_key,
            "DFM_UNSUBSCRIBE_SECRET": SECRET,
            "DFM_TENANTS_ACME_UNSUBSCRIBE_SECRET": ACME_SECRET,
        })
        self.dfm.start(env_extra=self.env)

    tearDown = messages.MessagesTest.tearDown
    events = messages.MessagesTest.events
    ghl_contact = messages.MessagesTest.ghl_contact
    provider_outbound = messages.MessagesTest.provider_outbound
    ghl_status = messages.MessagesTest.ghl_status
    ghl_messages = messages.MessagesTest.ghl_messages
    sms_dnd = messages.MessagesTest.sms_dnd
    alo_dnc = base.SyncTest.alo_dnc
    tool = replay_tools.ReplayToolsTest.tool

    # --- helpers ---------------------------------------------------------

    def link(self, email, tenant="default", campaign="nov-news"):
        r = self.tool("unsubscribe-link", "--email", email, "--tenant", tenant, "--campaign", campaign,
                      "--json", expect=0)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["list_unsubscribe_post"], "List-Unsubscribe=One-Click")
        self.assertEqual(doc["list_unsubscribe"], "<" + doc["url"] + ">")
        return doc["url"]

    def post(self, url, body=b"List-Unsubscribe=One-Click", headers=FORM, method="POST"):
        u = urllib.parse.urlsplit(url)
        status, self.last_headers, text = dfmtest.request("127.0.0.1", u.port, method, u.path + "?" + u.query,
                                                          body=body, headers=headers)
        return status, text

    def email_dnd(self, email):
        c = [x for x in self.ghl.contacts() if (x.get("email") or "").lower() == email]
        return c and ((c[0].get("dndSettings") or {}).get("Email") or {}).get("status")

    # --- email -----------------------------------------------------------

    def test_one_click_unsubscribe_reaches_email_dnd_once_and_is_measured(self):
        email = "ada.unsub@example.com"
        self.ghl_contact("+12055550401", email=email)
        wait_for("contact known", lambda: [e for e in self.events("push.succeeded")])
        url = self.link(" Ada.Unsub@Example.com ")
        # The address's parts, not "ada" alone: the sealed token is random
        # text, which held "ada" by chance once in some hundreds of runs.
        for part in ("ada.unsub", "example.com"):
            self.assertNotIn(part, url.lower(), "the link does not show the address")

        status, page = self.post(url, body=None, headers={}, method="GET")
        self.assertEqual(status, 200)
        self.assertIn(b"a\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2@example.com", page)
        self.assertNotIn(b"ada.unsub@", page)
        seen = {k.lower(): v for k, v in dict(self.last_headers).items()}
        self.assertIn("default-src 'none'", seen.get("content-security-policy", ""))
        self.assertIn("frame-ancestors 'none'", seen.get("content-security-policy", ""))
        self.assertEqual(seen.get("referrer-policy"), "no-referrer")
        self.assertEqual(self.events("contact.opted_out"), [], "a GET changes nothing")

        t0 = time.time()
        status, body = self.post(url)
        self.assertEqual(status, 200, body)
        wait_for("GHL Email DND", lambda: self.email_dnd(email) == "active", timeout=30)
        honoured = time.time() - t0
        print(f"\none-click unsubscribe honoured in GoHighLevel after {honoured * 1000:.0f} ms "
              "(mailbox providers allow 2 days)", file=sys.stderr)
        out = wait_for("opted out", lambda: [e["payload"] for e in self.events("contact.opted_out")])
        self.assertEqual(out[0]["channel"], "email")
        self.assertEqual(out[0]["actor"], "person")
        self.assertEqual(out[0]["system"], "unsubscribe")
        pushes = [e["payload"] for e in self.events("push.requested") if e["payload"].get("op") == "opt_out"]
        self.assertTrue(pushes and all(p.get("priority") == 10 for p in pushes), pushes)
        self.assertEqual(self.sms_dnd("+12055550401"), None, "only email")

        # The same link again: answered, not a second statement.
        status, body = self.post(url)
        self.assertEqual(status, 200, body)
        self.assertIn(b"duplicate", body)
        self.assertEqual(len(self.events("contact.opted_out")), 1)
        rows = [json.loads(x) for x in self.tool("audit", "opt-outs", "--email", email, "--format", "json",
                                                  expect=0).stdout.splitlines()]
        self.assertEqual([(r["status"], r["channel"], r["actor"]) for r in rows],
                         [("opt_out", "email", "person")])

    def test_forged_altered_and_other_tenants_links_are_refused(self):
        url = self.link("bob@example.com")
        before = len(self.dfm.dump())
        token = url.split("u=")[1]
        altered = url.replace(token, token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:])
        forged = url.replace(token, base64.urlsafe_b64encode(b"\x01" + b"x" * 40).decode().rstrip("="))
        for bad in (altered, forged, url.split("?")[0]):
            status, body = self.post(bad)
            self.assertEqual(status, 401, (bad, body))
        acme = self.link("bob@example.com", tenant="acme")
        self.assertIn("/t/acme/webhooks/unsubscribe?u=", acme)
        status, _ = self.post(acme.replace("/t/acme", ""))
        self.assertEqual(status, 401, "another tenant's link")
        status, body = self.post(url, body=b"", headers=FORM)
        self.assertEqual(status, 400, body)
        self.assertIn(b"One-Click", body)
        status, body = self.post(url, body=b'{"x":1}', headers={"Content-Type": "application/json"})
        self.assertEqual(status, 415, body)
        self.assertEqual(len(self.dfm.dump()), before, "nothing recorded")
        status, body = self.post(acme)
        self.assertEqual(status, 200, body)

    # --- Telnyx ----------------------------------------------------------

    def telnyx_inbound(self, phone, text):
        status, body = self.telnyx.post("/_sandbox/inbound", {"from": phone, "text": text})
        self.assertEqual(status, 201, body)
        return body

    def test_telnyx_stop_and_texts(self):
        phone = "+12055550411"
        self.ghl_contact(phone)
        body = self.telnyx_inbound(phone, "Running late")
        self.assertEqual(body["webhook"]["status"], 200, body)
        wait_for("the text logged", lambda: [e for e in self.events("message.logged")
                                             if e["payload"].get("system") == "telnyx"])
        body = self.telnyx_inbound(phone, "stop")
        self.assertEqual(body["message"]["autoresponse_type"], "STOP")
        wait_for("GHL SMS DND", lambda: self.sms_dnd(phone) == "active")
        wait_for("Aloware DNC", lambda: self.alo_dnc(phone))
        out = [e["payload"] for e in self.events("contact.opted_out")]
        self.assertEqual(out[0]["reason"], "autoresponse_type STOP")
        self.assertEqual(out[0]["system"], "telnyx")

    def test_telnyx_bad_signatures_and_stale_timestamps_are_refused(self):
        before = len(self.dfm.dump())
        status, _ = self.telnyx.post("/_sandbox/settings", {"clock_skew_s": -400})
        self.assertEqual(status, 200)
        body = self.telnyx_inbound("+12055550412", "hello")
        self.assertEqual(body["webhook"]["status"], 401, "a timestamp 400 s old")
        raw = json.dumps({"data": {"event_type": "message.received", "id": "forged-1",
                                   "payload": {"id": "m", "from": {"phone_number": "+12055550412"},
                                               "text": "START"}}}).encode()
        ts = str(int(time.time()))
        status, _, text = dfmtest.request("127.0.0.1", self.dfm.port, "POST", "/webhooks/telnyx", body=raw, headers={
            "Content-Type": "application/json", "telnyx-timestamp": ts,
            "telnyx-signature-ed25519": base64.b64encode(b"\x00" * 64).decode()})
        self.assertEqual(status, 401, text)
        self.assertEqual(len(self.dfm.dump()), before, "nothing recorded")

    # --- Verity's send route ---------------------------------------------

    def test_verity_without_contacts_api_only_sends(self):
        self.dfm.stop()
        self.env["DFM_VERITY_CONTACTS_API"] = "false"
        self.dfm.start(env_extra=self.env)
        self.verity.get("/_sandbox/requests")  # warm
        dfmtest.request("127.0.0.1", self.verity.port, "DELETE", "/_sandbox/requests")
        phone = "+12055550421"
        c = self.ghl_contact(phone)
        mid = self.provider_outbound(c["id"], "Your order shipped")
        wait_for("GHL status delivered", lambda: self.ghl_status(mid) == "delivered")
        sends = self.verity.requests("/api/integrations/df-middleware/send-message")
        self.assertEqual(len(sends), 1, sends)
        self.assertEqual(self.verity.requests("/v1/"), [], "no contact upserts, no /v1/messages")
        sent = [m for m in self.verity.get("/_sandbox/messages")[1] if m["to"] == phone]
        self.assertEqual(sent[0]["body"], "Your order shipped")
        self.assertTrue(sent[0]["externalId"], "correlationId ties its webhooks to the send")

        # Opted out at Verity's end: 409, a carrier opt-out, never retried.
        phone2 = "+12055550422"
        c2 = self.ghl_contact(phone2)
        self.verity.post("/_sandbox/optouts", {"phone": phone2, "optedOut": True})
        mid2 = self.provider_outbound(c2["id"], "Hello again")
        wait_for("GHL status failed", lambda: self.ghl_status(mid2) == "failed")
        out = wait_for("carrier opt-out", lambda: [e["payload"] for e in self.events("contact.opted_out")
                                                   if e["payload"].get("actor") == "carrier"])
        self.assertEqual(out[0]["system"], "verity")
        wait_for("GHL SMS DND", lambda: self.sms_dnd(phone2) == "active")


if __name__ == "__main__":
    base.main()
