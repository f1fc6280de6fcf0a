"""Messages, calls, tags -> lists and opt-outs end to end over loopback:
`dfm serve` between all four sandboxes (GoHighLevel, Aloware, Verity,
Twilio), each sending its webhooks back to dfm as the vendor does. Issue 4's
proof list:

  texts from Verity and Twilio reach the contact's GoHighLevel conversation
  once; a GoHighLevel provider delivery is sent through Verity and its
  delivery status reported back; a call for a contact GoHighLevel does not
  know yet (created first, then the call record, the recording note and the
  disposition tag); a tag removed and re-added (Aloware lists follow); a
  send to an opted-out number is refused; an opt-out racing a send waiting
  on a Verity outage (the send is refused and never reaches Verity);
  contacts and opt-outs reach Verity; an Aloware DNC change reaches
  GoHighLevel and Verity (the other opt-out sources are in sync_e2e_test.py).

Usage: messages_e2e_test.py --dfm PATH [-k NAME]
"""
import json
import os
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import clustertest  # noqa: E402
import dfmtest  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import Sandbox, by_phone, wait_for  # noqa: E402

PROVIDER = "sandbox-provider"
VERITY_KEY = "it-verity-api-key"
SEND_PATH = "/api/integrations/df-middleware/send-message"  # Verity's send route (docs/verity.md)


class EraseAfterReloadTest(unittest.TestCase):
    """docs/privacy.md: an erasure finds the person's webhooks with the
    configuration a reload put in place, as the sync read them. A webhook
    that decided nothing new (found by reading it, not through the
    contact's events) under an event name a reload added to
    aloware.contact_events is the person's too: its key is destroyed."""

    def setUp(self):
        self.dir = dfmtest.tempdir()
        self.dfm = dfmtest.Dfm(base.DFM, self.dir)
        self.dfm.start()

    def tearDown(self):
        self.dfm.stop()

    def aloware(self, event, contact_id, first_name, phone):
        body = json.dumps({"event": event, "body": {
            "id": contact_id, "first_name": first_name, "last_name": "Lovelace",
            "phone_number": phone, "updated_at": "2026-11-20 21:00:00"}}).encode()
        st, _, answer = dfmtest.request("127.0.0.1", self.dfm.port, "POST", "/webhooks/aloware", body=body,
                                        headers={"Content-Type": "application/json",
                                                 "Authorization": "Bearer " + dfmtest.ALOWARE_TOKEN})
        self.assertEqual(st, 200, answer)

    def created(self, phone):
        return [e for e in self.dfm.dump(with_body=True) if e["type"] == "contact.created"
                and e.get("payload", {}).get("fields", {}).get("phone") == phone]

    def test_a_webhook_only_a_reloaded_setting_reads_is_erased_with_the_person(self):
        self.aloware("Contact Created", 7000001, "Ada", "+12055550171")
        wait_for("Ada's contact", lambda: self.created("+12055550171"), timeout=20)
        contact = self.created("+12055550171")[0]["payload"]["contact_id"]
        with open(self.dfm.config_path) as f:
            config = f.read()
        line = f'token = "{dfmtest.ALOWARE_TOKEN}"\n'
        self.assertIn(line, config)
        with open(self.dfm.config_path, "w") as f:
            f.write(config.replace(line, line + 'contact_events = "Contact Created,Contact Updated,'
                                   'Contact-Created,Contact-Updated,Contact Merged"\n', 1))
        with open(os.path.join(self.dfm.data_dir, "admin.token")) as f:
            token = f.read().strip()
        st, _, answer = dfmtest.request("127.0.0.1", self.dfm.admin_port, "POST", "/v1/admin/reload", body=b"",
                                        headers={"Authorization": "Bearer " + token})
        self.assertEqual(st, 200, answer)
        # The same person's record again under the newly listed name: no
        # change, so nothing decided from it.
        self.aloware("Contact Merged", 7000001, "Ada", "+12055550171")
        self.aloware("Contact Created", 7000002, "Bob", "+12055550172")
        wait_for("Bob's contact", lambda: self.created("+12055550172"), timeout=20)

        def decided():  # every webhook decided, the repeat's included
            _, _, body = dfmtest.request("127.0.0.1", self.dfm.port, "GET", "/v1/health")
            parts = json.loads(body)["parts"]
            return parts["sync"]["router"]["behind"] == 0
        wait_for("the sync caught up", decided, timeout=20)

        def webhook(provider_id):
            return [e for e in self.dfm.dump(with_body=True) if e["type"] == "webhook.received"
                    and e.get("payload", {}).get("provider_event_id") == provider_id]
        merged_id = "Contact Merged:7000001:2026-11-20 21:00:00"
        merged = webhook(merged_id)
        self.assertEqual(len(merged), 1)
        caused = [e for e in self.dfm.dump() if merged[0]["id"] in (e.get("causation_id"), e.get("correlation_id"))
                  and e["id"] != merged[0]["id"]]
        self.assertEqual(caused, [], "the repeat decided nothing: found by reading it alone")
        created = webhook("Contact Created:7000001:2026-11-20 21:00:00")[0]["seq"]
        bob = webhook("Contact Created:7000002:2026-11-20 21:00:00")[0]["seq"]

        r = subprocess.run([self.dfm.binary, "erase", "-c", self.dfm.config_path, contact,
                            "--reason", "art. 17", "--json"], capture_output=True, text=True, env=dfmtest.environ())
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        out = json.loads(r.stdout)
        self.assertIn("running service", out["how"])
        self.assertEqual(out["sources"], 2, out)
        dump = {e["seq"]: e for e in self.dfm.dump()}
        self.assertTrue(dump[merged[0]["seq"]].get("erased"), "the repeat's key survived the erasure")
        self.assertTrue(dump[created].get("erased"))
        self.assertFalse(dump[bob].get("erased"), "another person's webhook")


class EraseUndecidedTest(unittest.TestCase):
    """docs/privacy.md: a STOP in the log that the sync has not decided
    when the person is erased. `dfm erase` on the data directory of a
    service that runs the sync refuses, nothing erased (the service decides
    it first); a service with the sync off keeps its opt-out among the
    person's consent, as its key goes with theirs."""

    def setUp(self):
        self.dir = dfmtest.tempdir()
        self.dfm = dfmtest.Dfm(base.DFM, self.dir)
        with open(self.dfm.config_path) as f:
            self.config = f.read()

    def tearDown(self):
        if self.dfm.proc and self.dfm.proc.poll() is None:
            self.dfm.stop()

    def with_sync(self, on):
        with open(self.dfm.config_path, "w") as f:
            f.write(self.config + ("" if on else "[sync]\nenabled = false\n"))

    def erase(self, contact):
        return subprocess.run([self.dfm.binary, "erase", "-c", self.dfm.config_path, contact, "--reason",
                               "art. 17", "--json"], capture_output=True, text=True, env=dfmtest.environ())

    def test_a_stop_not_decided_is_decided_first_or_kept(self):
        self.dfm.start()
        body = json.dumps({"event": "Contact Created", "body": {
            "id": 7000003, "first_name": "Ada", "last_name": "Lovelace", "phone_number": "+12055550142",
            "updated_at": "2026-11-20 21:00:00"}}).encode()
        st, _, answer = dfmtest.request("127.0.0.1", self.dfm.port, "POST", "/webhooks/aloware", body=body,
                                        headers={"Content-Type": "application/json",
                                                 "Authorization": "Bearer " + dfmtest.ALOWARE_TOKEN})
        self.assertEqual(st, 200, answer)
        created = lambda: [e for e in self.dfm.dump() if e["type"] == "contact.created"]  # noqa: E731
        wait_for("Ada's contact", created, timeout=20)
        contact = created()[0]["stream"].split(":", 1)[1]
        self.dfm.stop()
        self.with_sync(False)
        self.dfm.start()
        stop = dfmtest.verity_body("msg-stop-1", text="STOP")
        st, _, answer = dfmtest.request("127.0.0.1", self.dfm.port, "POST", "/webhooks/verity", body=stop,
                                        headers={"Content-Type": "application/json",
                                                 "X-Texting-Signature": dfmtest.verity_signature(stop)})
        self.assertEqual(st, 200, answer)
        stop_seq = self.dfm.webhooks()[-1]["seq"]
        self.dfm.stop()

        self.with_sync(True)  # on the data directory, the service's sync on: refused
        r = self.erase(contact)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("not decided by the sync yet", r.stderr)
        self.assertEqual([e for e in self.dfm.dump() if e["type"] == "contact.erased"], [])

        self.with_sync(False)  # the service, its sync off: the opt-out kept as it stands
        self.dfm.start()
        r = self.erase(contact)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        erased = [e for e in self.dfm.dump(with_body=True) if e["type"] == "contact.erased"]
        self.assertEqual(len(erased), 1)
        kept = [s for s in erased[0]["payload"]["subjects"] if s["seq"] == stop_seq]
        self.assertTrue(kept, erased[0]["payload"])
        self.assertTrue(all(s["status"] == "out" and s["system"] == "verity" for s in kept), kept)
        self.assertTrue({e["seq"]: e for e in self.dfm.dump()}[stop_seq].get("erased"), "the STOP's key survived")


class MessagesTest(unittest.TestCase):
    def make_dfm(self, extra_config):
        return dfmtest.Dfm(base.DFM, self.dir, extra_config=extra_config,
                           other_tenants=getattr(self, "other_tenants", True))

    def setUp(self):
        self.dir = dfmtest.tempdir()
        # The suites that borrow this setUp (consent, metrics, ...) run on one node.
        make = getattr(self, "make_dfm", lambda extra: MessagesTest.make_dfm(self, extra))
        self.dfm = make(
            f'[ghl]\ned25519_public_key_file = "{base.GHL_PUBLIC_KEY}"\n'
            '[sync]\ncontact_idle_s = 2\ntag_lists = ["hot=101", "call now=102"]\n')
        hook = f"http://127.0.0.1:{self.dfm.port}/webhooks/"
        self.ghl = Sandbox("ghl", self.dir, ["--webhook-url", hook + "ghl",
                                             "--conversation-provider-id", PROVIDER])
        self.alo = Sandbox("aloware", self.dir, ["--webhook-url", hook + "aloware",
                                                 "--webhook-auth", "bearer:" + dfmtest.ALOWARE_TOKEN])
        self.verity = Sandbox("verity", self.dir, ["--webhook-url", hook + "verity",
                                                   "--webhook-secret", dfmtest.VERITY_SECRET,
                                                   "--api-key", VERITY_KEY])
        self.twilio = Sandbox("twilio", self.dir, ["--webhook-url", hook + "twilio",
                                                   "--auth-token", dfmtest.TWILIO_TOKEN])
        self.sandboxes = (self.ghl, self.alo, self.verity, self.twilio)
        for s in self.sandboxes:
            s.start()
        env = {
            "DFM_GHL_API_BASE_URL": self.ghl.url,
            "DFM_GHL_LOCATION_ID": "loc_sandbox",
            "DFM_GHL_ACCESS_TOKEN": "sandbox-ghl-token",
            "DFM_GHL_CONVERSATION_PROVIDER_ID": PROVIDER,
            "DFM_ALOWARE_API_BASE_URL": self.alo.url,
            "DFM_ALOWARE_API_TOKEN": "sandbox-aloware-token",
            "DFM_VERITY_API_BASE_URL": self.verity.url,
            "DFM_VERITY_CONTACTS_API": "true",  # this deployment's Verity has /v1/contacts
            "DFM_VERITY_API_KEY": VERITY_KEY,
        }
        for system in ("GHL", "ALOWARE", "VERITY"):
            env[f"DFM_{system}_RETRY_BASE_MS"] = "100"
            env[f"DFM_{system}_RETRY_MAX_MS"] = "1000"
            env[f"DFM_{system}_BREAKER_OPEN_MS"] = "1000"
        env.update(getattr(self, "extra_env", lambda: {})())  # a borrowing suite's settings
        self.env = env  # for a test that starts dfm again
        self.dfm.start(env_extra=env)

    def tearDown(self):
        base.tear_down(self.dfm, self.dir, self.sandboxes, self)

    # --- helpers ---------------------------------------------------------

    def events(self, type_=None):
        return [e for e in self.dfm.dump(with_body=True) if type_ is None or e["type"] == type_]

    def ghl_contact(self, phone, **extra):
        doc = {"firstName": "Ada", "lastName": "Lovelace", "phone": phone}
        doc.update(extra)
        status, body = self.ghl.post("/_sandbox/contacts", doc)
        self.assertIn(status, (200, 201), body)
        self.assertEqual(body["webhook"]["status"], 200, body)
        wait_for("synced to Aloware", lambda: by_phone(self.alo.contacts(), phone, "phone_number"))
        return body["contact"]

    def ghl_messages(self, contact_id=None):
        q = "?contactId=" + contact_id if contact_id else ""
        return self.ghl.get("/_sandbox/messages" + q)[1]

    def ghl_by_alt(self, alt):
        return [m for m in self.ghl_messages() if m.get("altId") == alt]

    def ghl_id(self, phone):
        c = by_phone(self.ghl.contacts(), phone, "phone")
        return c[0]["id"] if c else None

    def verity_inbound(self, phone, text):
        status, body = self.verity.post("/_sandbox/inbound", {"from": phone, "body": text})
        self.assertEqual(status, 201, body)
        return body["message"]["id"]

    def verity_sent(self, phone):
        return [m for m in self.verity.get("/_sandbox/messages")[1]
                if m["direction"] == "outbound" and m["to"] == phone]

    def provider_outbound(self, contact_id, text):
        status, body = self.ghl.post("/_sandbox/provider-outbound",
                                     {"contactId": contact_id, "message": text, "type": "SMS"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["delivery"]["status"], 200, body)
        return body["message"]["id"] if "message" in body else body["id"]

    def ghl_status(self, message_id):
        m = [x for x in self.ghl_messages() if x["id"] == message_id]
        return m[0]["status"] if m else None

    def erase(self, *args):
        """`dfm erase` with the service's configuration (its settings in the environment)."""
        env = dict(dfmtest.environ())
        env.update(self.env)
        return subprocess.run([self.dfm.binary, "erase", "-c", self.dfm.config_path, *args],
                              capture_output=True, text=True, env=env)

    def sms_dnd(self, phone):
        c = by_phone(self.ghl.contacts(), phone, "phone")
        return c and ((c[0].get("dndSettings") or {}).get("SMS") or {}).get("status")

    # --- texts -----------------------------------------------------------

    def test_texts_from_verity_and_twilio_reach_the_ghl_conversation_once(self):
        phone = "+12055550181"
        c = self.ghl_contact(phone)
        vid = self.verity_inbound(phone, "See you at 3")
        got = wait_for("Verity text in GHL", lambda: self.ghl_by_alt("verity:" + vid))
        self.assertEqual(got[0]["contactId"], c["id"])
        self.assertEqual(got[0]["type"], "SMS")
        self.assertEqual(got[0]["direction"], "inbound")
        self.assertEqual(got[0]["body"], "See you at 3")
        self.assertEqual(got[0]["conversationProviderId"], PROVIDER)

        status, body = self.twilio.post("/_sandbox/inbound", {"from": phone, "body": "On my way"})
        self.assertEqual(status, 201, body)
        sid = body["message"]["sid"]
        wait_for("Twilio text in GHL", lambda: self.ghl_by_alt("twilio:" + sid))
        # Twilio reads our answer as TwiML: anything else is a Debugger error (12300) per text.
        self.assertEqual(self.twilio.get("/_sandbox/alerts")[1], [])
        # GoHighLevel's own webhooks for the records we wrote come back: nothing more is written.
        time.sleep(1.5)
        self.assertEqual(len(self.ghl_by_alt("verity:" + vid)), 1)
        self.assertEqual(len(self.ghl_by_alt("twilio:" + sid)), 1)
        self.assertEqual(len(self.ghl_messages(c["id"])), 2)
        logged = [e for e in self.events("message.logged") if e["payload"].get("system") == "ghl"]
        self.assertEqual(logged, [], "our records echoing back are known by their ids")

    def test_ghl_provider_delivery_is_sent_through_verity_and_delivered_status_follows(self):
        phone = "+12055550182"
        c = self.ghl_contact(phone)
        mid = self.provider_outbound(c["id"], "Hi Ada, following up")
        sent = wait_for("Verity sends it", lambda: self.verity_sent(phone))
        self.assertEqual(sent[0]["externalId"], "ghl:" + mid)
        self.assertEqual(sent[0]["body"], "Hi Ada, following up")
        wait_for("GHL status delivered", lambda: self.ghl_status(mid) == "delivered")
        time.sleep(1)
        self.assertEqual(len(self.verity_sent(phone)), 1, "sent once")
        # The message's ids across systems are mapped.
        statuses = [e["payload"] for e in self.events("message.status")
                    if e["payload"].get("message_key") == "ghl:" + mid]
        self.assertTrue(any(s["system"] == "verity" for s in statuses), statuses)

    def test_send_to_an_opted_out_number_is_refused(self):
        phone = "+12055550183"
        c = self.ghl_contact(phone)
        self.verity_inbound(phone, "STOP")
        wait_for("GHL SMS DND", lambda: self.sms_dnd(phone) == "active")
        mid = self.provider_outbound(c["id"], "Last chance offer")
        wait_for("GHL status failed", lambda: self.ghl_status(mid) == "failed")
        refused = [e["payload"] for e in self.events("message.refused")]
        self.assertEqual(len(refused), 1, refused)
        self.assertEqual(refused[0]["message_key"], "ghl:" + mid)
        self.assertIn("sms opted out", refused[0]["reason"])
        self.assertEqual(self.verity_sent(phone), [])

    def test_an_erased_persons_opt_out_still_refuses_texts(self):
        """docs/privacy.md: `dfm erase` through the running service makes the
        person's events and webhooks unreadable, the chain still verifies,
        and a new contact with the same number is still not texted."""
        phone = "+12055550189"
        c = self.ghl_contact(phone, firstName="Erin")
        self.verity_inbound(phone, "STOP")
        wait_for("GHL SMS DND", lambda: self.sms_dnd(phone) == "active")
        created = [e for e in self.events("contact.created") if e["payload"]["fields"].get("phone") == phone]
        contact = created[0]["payload"]["contact_id"]
        needle = phone[2:].encode()
        self.assertNotEqual(self.dfm.files_holding(needle), [], "control: the service's files hold it now")
        r = self.erase(contact, "--reason", "request #42", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertFalse(out["already_erased"])
        self.assertIn("running service", out["how"])
        self.assertGreaterEqual(out["keys_destroyed"], 2)
        self.assertGreaterEqual(out["sources"], 1)
        self.assertGreaterEqual(out["subjects"], 1)
        # The person's events read as erased; the chain verifies; nothing in
        # the log (or the erasure event) shows the phone or the name.
        stream = [e for e in self.dfm.dump(with_body=True) if e["stream"] == "contact:" + contact]
        self.assertTrue(all(e.get("erased") for e in stream if e["type"] != "contact.erased"), stream)
        erased = [e for e in stream if e["type"] == "contact.erased"]
        self.assertEqual(len(erased), 1)
        self.assertEqual(erased[0]["payload"]["reason"], "request #42")
        dump = self.dfm.cli("log", "dump", "-d", self.dfm.data_dir, "--with-body").stdout
        self.assertNotIn(phone, dump)
        self.assertNotIn(phone[1:], dump)
        self.assertNotIn("Erin", dump)
        v = self.dfm.cli("log", "verify", "-d", self.dfm.data_dir)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # No file of the service holds the number any more (on a cluster:
        # no node's, no NATS server's).
        try:
            wait_for("no file with the number", lambda: not self.dfm.files_holding(needle), timeout=45)
        except AssertionError:
            self.assertEqual(self.dfm.files_holding(needle), [])
        # Asked again: the first erasure.
        again = self.erase(contact, "--reason", "again", "--json")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertTrue(json.loads(again.stdout)["already_erased"])
        # The same number comes back as a new GoHighLevel contact that knows
        # nothing of the opt-out: a text to it is refused all the same.
        self.ghl.post("/_sandbox/contacts/" + c["id"], {}, method="DELETE")
        for a in by_phone(self.alo.contacts(), phone, "phone_number"):
            self.alo.post("/_sandbox/contacts/" + str(a["id"]), {}, method="DELETE")
        before = len(self.events("contact.created"))
        status, body = self.ghl.post("/_sandbox/contacts", {"firstName": "New", "phone": phone})
        self.assertIn(status, (200, 201), body)
        new_id = body["contact"]["id"]
        wait_for("a new contact", lambda: len(self.events("contact.created")) > before)
        mid = self.provider_outbound(new_id, "Welcome back!")
        wait_for("GHL status failed", lambda: self.ghl_status(mid) == "failed")
        refused = [e["payload"] for e in self.events("message.refused")
                   if e["payload"].get("message_key") == "ghl:" + mid]
        self.assertEqual(len(refused), 1, refused)
        self.assertIn("before an erasure", refused[0]["reason"])
        self.assertEqual(self.verity_sent(phone), [])
        # An unknown contact is 1.
        missing = self.erase("no-such", "--reason", "x")
        self.assertEqual(missing.returncode, 1, missing.stdout + missing.stderr)

    def test_opt_out_racing_a_send_refuses_it(self):
        phone = "+12055550184"
        c = self.ghl_contact(phone)
        # Verity answers its sends 503 for a while (an outage that says it did
        # nothing: retried; one that leaves a send unanswered is not, since its
        # send route has no idempotency: docs/verity.md).
        status, body = self.verity.post("/_sandbox/faults", {"faults": [
            {"status": 503, "count": 1000, "method": "POST", "path_prefix": SEND_PATH}]})
        self.assertEqual(status, 200, body)
        mid = self.provider_outbound(c["id"], "Reminder: your appointment")
        # The send is waiting out Verity's outage when the person replies STOP (through Twilio):
        # told by Verity's refusals, not the log, whose dump can take seconds in cluster mode
        # (there the retries, ~8 s of them, once ran out before the STOP was sent).
        wait_for("send refused by Verity", lambda: [
            r for r in self.verity.requests(SEND_PATH) if r.get("status") == 503], timeout=30)
        status, body = self.twilio.post("/_sandbox/inbound", {"from": phone, "body": "STOP"})
        self.assertEqual(status, 201, body)
        refused = wait_for("refused", lambda: [e["payload"] for e in self.events("message.refused")])
        self.assertEqual(refused[0]["message_key"], "ghl:" + mid)
        self.assertTrue(refused[0].get("push_id"), "the waiting send was cancelled")
        wait_for("GHL status failed", lambda: self.ghl_status(mid) == "failed", timeout=30)
        self.verity.post("/_sandbox/faults", {}, method="DELETE")
        # Verity is back, and told of the opt-out, but never gets the text.
        wait_for("Verity opt-out", lambda: [
            x for x in self.verity.contacts() if x["phone"] == phone and x.get("smsOptOut")],
            timeout=30)
        time.sleep(2)
        self.assertEqual(self.verity_sent(phone), [])
        answered = [r for r in self.verity.requests(SEND_PATH)
                    if r.get("status") is not None and r["status"] != 503]
        self.assertEqual(answered, [], "only the attempts Verity refused while down, none after")

    # --- calls -----------------------------------------------------------

    def test_call_for_a_contact_ghl_does_not_know_yet(self):
        phone = "+12055550185"
        call_id = str(int(time.time() * 1000) % 1000000000)
        body = {"event": "OutboundPhoneCall-DispositionCompleted", "body": {
            "id": int(call_id), "direction": 2, "current_status": "completed", "duration": 66,
            "talk_time": 63, "call_disposition": "Interested", "incoming_number": "+12055550199",
            "lead_number": phone, "contact_id": 7700001, "has_recording": True,
            "direct_recording_url": "https://recordings.example.com/static/recording/x.mp3",
            "created_at": "2026-11-20 20:58:49", "updated_at": "2026-11-20 21:00:00",
            "contact": {"id": 7700001, "first_name": "Ana", "last_name": "Lopez",
                        "phone_number": phone, "is_dnc": False}}}
        status, answer = self.alo.post("/_sandbox/webhooks/send", {"body": body, "wait": True})
        self.assertEqual(status, 200, answer)
        rec = wait_for("call record in GHL", lambda: self.ghl_by_alt("aloware:" + call_id))
        cid = self.ghl_id(phone)
        self.assertEqual(rec[0]["contactId"], cid)
        self.assertEqual(rec[0]["type"], "Call")
        self.assertEqual(rec[0]["direction"], "outbound")
        # The contact Aloware knew reaches Verity too, so its texts match the same person.
        wait_for("contact in Verity", lambda: [x for x in self.verity.contacts() if x["phone"] == phone])
        notes = wait_for("recording note", lambda: self.ghl.get("/_sandbox/notes?contactId=" + cid)[1])
        self.assertIn("x.mp3", notes[0]["body"])
        wait_for("disposition tag", lambda: "disposition: interested" in (
            by_phone(self.ghl.contacts(), phone, "phone")[0].get("tags") or []))
        # Aloware's restated Call-Disposed for the same call: nothing written twice.
        restated = {"event": "Call-Disposed", "body": dict(body["body"])}
        self.alo.post("/_sandbox/webhooks/send", {"body": restated, "wait": True})
        time.sleep(1.5)
        self.assertEqual(len(self.ghl_by_alt("aloware:" + call_id)), 1)
        self.assertEqual(len(self.ghl.get("/_sandbox/notes?contactId=" + cid)[1]), 1)

    # --- tags -> lists ----------------------------------------------------

    def test_tag_removed_and_re_added_follows_in_aloware_lists(self):
        phone = "+12055550186"
        c = self.ghl_contact(phone, tags=["hot", "new lead"])

        def lists():
            a = by_phone(self.alo.contacts(), phone, "phone_number")
            return sorted(str(x) for x in (a[0].get("lists") or [])) if a else None

        wait_for("list 101", lambda: lists() == ["101"])
        self.ghl.post("/_sandbox/contacts", {"id": c["id"], "tags": ["hot", "call now", "new lead"]})
        wait_for("lists 101, 102", lambda: lists() == ["101", "102"])
        self.ghl.post("/_sandbox/contacts", {"id": c["id"], "tags": ["call now", "new lead"]})
        wait_for("101 removed", lambda: lists() == ["102"])
        self.ghl.post("/_sandbox/contacts", {"id": c["id"], "tags": ["hot", "call now", "new lead"]})
        wait_for("101 back", lambda: lists() == ["101", "102"])
        removals = self.alo.requests("/api/v1/webhook/powerdialer-remove-contact-from-lists")
        self.assertEqual(len(removals), 1, "only for the removal, only for this contact")

    def test_aloware_dnc_reaches_ghl_and_verity(self):
        phone = "+12055550188"
        self.ghl_contact(phone)
        wait_for("contact in Verity", lambda: [x for x in self.verity.contacts() if x["phone"] == phone])
        alo = by_phone(self.alo.contacts(), phone, "phone_number")[0]
        status, body = self.alo.post("/_sandbox/contacts", {"id": alo["id"], "is_dnc": True})
        self.assertEqual(status, 200, body)
        wait_for("GHL SMS DND", lambda: self.sms_dnd(phone) == "active")
        wait_for("GHL Call DND", lambda: ((by_phone(self.ghl.contacts(), phone, "phone")[0]
                                           .get("dndSettings") or {}).get("Call") or {})
                 .get("status") == "active")
        wait_for("Verity smsOptOut", lambda: [
            x for x in self.verity.contacts() if x["phone"] == phone and x.get("smsOptOut")])
        out = [e["payload"] for e in self.events("contact.opted_out")]
        self.assertEqual(len(out), 1, out)
        self.assertEqual(out[0]["system"], "aloware")
        self.assertEqual(out[0]["reason"], "is_dnc")

    # --- Verity contacts ---------------------------------------------------

    def test_contacts_and_opt_outs_reach_verity(self):
        phone = "+12055550187"
        self.ghl_contact(phone, email="ada@example.com")
        v = wait_for("contact in Verity", lambda: [
            x for x in self.verity.contacts() if x["phone"] == phone])
        self.assertEqual(v[0]["firstName"], "Ada")
        self.assertEqual(v[0]["email"], "ada@example.com")
        self.assertTrue(v[0]["externalRef"])
        status, body = self.twilio.post("/_sandbox/inbound", {"from": phone, "body": "STOP"})
        self.assertEqual(status, 201, body)
        wait_for("Verity smsOptOut", lambda: [
            x for x in self.verity.contacts() if x["phone"] == phone and x.get("smsOptOut")])
        # And an outbound send asked of Verity now would be refused by the engine first.
        out = [e["payload"] for e in self.events("push.requested")
               if e["payload"].get("op") == "opt_out" and e["payload"]["system"] == "verity"]
        self.assertEqual(len(out), 1)
        self.assertEqual(out[0]["priority"], 10)


class ClusterMessagesTest(clustertest.OnACluster, MessagesTest):
    """The same scenarios against three nodes on NATS behind nginx (issue
    48; clustertest.ClusterDfm); the erasure is asked of node0 and run by
    the node of the tenant's partition."""

    binary = staticmethod(lambda: base.DFM)

    def test_a_partition_taken_over_after_a_reload_runs_the_reloaded_configuration(self):
        """Every node reloads a configuration with a new tag list; then the
        default tenant's node dies. The node that takes the partition over
        syncs it with what the reload put in place, not what it started
        with."""
        for n in self.dfm.nodes:
            with open(n.config_path) as f:
                text = f.read()
            with open(n.config_path, "w") as f:
                f.write(text.replace('tag_lists = ["hot=101", "call now=102"]',
                                     'tag_lists = ["hot=101", "call now=102", "vip=103"]'))
            with open(os.path.join(n.data_dir, "admin.token")) as f:
                token = f.read().strip()
            st, _, answer = dfmtest.request("127.0.0.1", n.admin_port, "POST", "/v1/admin/reload",
                                            headers={"Authorization": "Bearer " + token})
            self.assertEqual(st, 200, answer)
        home = self.dfm.home()
        owner_name = self.dfm.owners()[home]
        self.dfm.kill9()
        wait_for("another node runs the partition",
                 lambda: (self.dfm.owners() or [owner_name] * (home + 1))[home] not in ("", owner_name),
                 timeout=60)
        phone = "+12055550185"
        self.ghl_contact(phone, tags=["vip"])

        def lists():
            a = by_phone(self.alo.contacts(), phone, "phone_number")
            return sorted(str(x) for x in (a[0].get("lists") or [])) if a else None
        wait_for("list 103", lambda: lists() == ["103"], timeout=30)

    def test_a_slow_release_keeps_the_nodes_other_leases(self):
        """A node gives a partition up (the others came back: rebalance)
        while the partition's stop is slow (a debug build's
        DFM_TEST_SLOW_RELEASE_MS: a long catch-up or erasure under way).
        Its other partition's lease is renewed meanwhile: none is lost."""
        self.dfm.stop()
        self.env["DFM_TEST_SLOW_RELEASE_MS"] = "8000"  # lease_ttl_s = 3
        self.dfm.start(env_extra=self.env)
        # The start's own rebalance may still be under way (slow on a
        # loaded machine): a partition being given up shows as node0's
        # until its stop ends, and a release planned now would be the one
        # counted below, with none left to come. Settled: node0 holds at
        # most its share and will not give one up before the others leave.
        wait_for("the start's rebalance ended",
                 lambda: (lambda o: bool(o) and all(o) and o.count("node0") <= 1)(self.dfm.owners()),
                 timeout=60)
        holder = self.dfm.nodes[0]
        for n in self.dfm.nodes[1:]:
            n.stop()
            self.dfm.down.append(n)
        wait_for("node0 holding both", lambda: self.dfm.owners() == ["node0", "node0"], timeout=60)

        def releases():
            with open(holder.log_path, errors="replace") as f:
                return f.read().count("event=partition_released")
        before = releases()
        self.dfm.start(env_extra=self.env)  # the others back: node0 gives one up, slowly
        wait_for("node0 giving one up", lambda: releases() > before, timeout=60)
        wait_for("its stop ended and another node runs it",
                 lambda: (self.dfm.owners() or []).count("node0") == 1 and all(self.dfm.owners()), timeout=60)
        _, _, text = dfmtest.request("127.0.0.1", holder.admin_port, "GET", "/metrics")
        losses = [ln for ln in text.decode().splitlines() if ln.startswith("dfm_cluster_lease_losses_total")]
        self.assertEqual(losses, ["dfm_cluster_lease_losses_total 0"], "node0 lost a lease it kept")

    def test_an_erasure_whose_node_died_is_finished_by_the_next(self):
        """The partition's node dies between recording an erasure and
        destroying its keys (a debug build's DFM_TEST_DIE_BEFORE_KEYS_DESTROYED
        exits there): the node that takes the partition over destroys them
        as it starts it (ApplyErasures), and nothing holds the number."""
        phone = "+12055550187"
        self.ghl_contact(phone, firstName="Dora")
        self.verity_inbound(phone, "STOP")
        wait_for("GHL SMS DND", lambda: self.sms_dnd(phone) == "active")
        contact = [e for e in self.events("contact.created")
                   if e["payload"]["fields"].get("phone") == phone][0]["payload"]["contact_id"]
        self.dfm.stop()
        self.env["DFM_TEST_DIE_BEFORE_KEYS_DESTROYED"] = "1"
        self.dfm.start(env_extra=self.env)
        home = self.dfm.home()
        owner_name = self.dfm.owners()[home]
        owner = self.dfm.nodes[int(owner_name[len("node"):])]
        # Asked of the partition's node itself: it dies with the request (asked
        # through another node, that node would wait out its ask's timeout).
        r = subprocess.run([self.dfm.binary, "erase", "-c", owner.config_path, contact, "--reason",
                            "request #43", "--json"], capture_output=True, text=True,
                           env={**dfmtest.environ(), **self.env})
        self.assertNotEqual(r.returncode, 0, "the node that erased died before answering: " + r.stdout)
        wait_for("the partition's node gone", lambda: owner.proc.poll() is not None)
        self.assertEqual(owner.proc.returncode, 137, "it died at the failpoint")
        self.dfm.down.append(owner)
        wait_for("another node runs the partition",
                 lambda: (self.dfm.owners() or [owner_name] * (home + 1))[home] not in ("", owner_name),
                 timeout=60)

        def stream():
            return [e for e in self.dfm.dump(with_body=True) if e["stream"] == "contact:" + contact]
        self.assertEqual([e["type"] for e in stream() if e["type"] == "contact.erased"], ["contact.erased"])
        wait_for("its events unreadable: the keys destroyed by the next node",
                 lambda: all(e.get("erased") for e in stream() if e["type"] != "contact.erased"), timeout=30)
        live = next(n for n in self.dfm.nodes if n not in self.dfm.down)
        logs = ""
        for n in self.dfm.nodes:
            if n is not owner:
                with open(n.log_path, errors="replace") as f:
                    logs += f.read()
        self.assertIn("event=erasures_applied_again count=1", logs)
        again = subprocess.run([self.dfm.binary, "erase", "-c", live.config_path, contact, "--reason", "again",
                                "--json"], capture_output=True, text=True, env={**dfmtest.environ(), **self.env})
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertTrue(json.loads(again.stdout)["already_erased"])
        self.dfm.start(env_extra=self.env)  # the dead node back
        needle = phone[2:].encode()
        try:
            wait_for("no file with the number", lambda: not self.dfm.files_holding(needle), timeout=45)
        except AssertionError:
            self.assertEqual(self.dfm.files_holding(needle), [])


if __name__ == "__main__":
    base.main()
