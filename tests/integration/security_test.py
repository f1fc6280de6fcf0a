"""Attacks on the running service (issue 37), each one that succeeded before
its fix: the real `dfm` binary over loopback, with vendor sandboxes where an
attack would reach a vendor. docs/security.md says what each verification
binds.

Usage: security_test.py --dfm PATH [-k NAME]
"""
import base64
import http.client
import json
import os
import sys
import time
import unittest
import urllib.parse
import uuid

from cryptography.hazmat.primitives import serialization

sys.path.insert(0, os.path.dirname(__file__))
import clustertest  # noqa: E402
import dfmtest  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import Sandbox, wait_for  # noqa: E402

DFM = None
GHL_PRIVATE_KEY = os.path.join(base.ROOT, "etc", "dev-keys", "ghl-ed25519-private.pem")
VERITY_KEY = "it-verity-api-key"


def ghl_sign(body):
    """X-GHL-Signature as GoHighLevel makes it (the development key stands in
    for GoHighLevel's, which signs every location's webhooks alike)."""
    with open(GHL_PRIVATE_KEY, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return base64.b64encode(key.sign(body)).decode()


class GhlTenantBinding(unittest.TestCase):
    """A body GoHighLevel signed for another location, without a timestamp
    (a ProviderOutboundMessage has none), used to make the service text a
    number of the attacker's choice."""

    def setUp(self):
        self.dir = dfmtest.tempdir()
        self.dfm = self.make_dfm(extra_config=(
            f'[ghl]\ned25519_public_key_file = "{base.GHL_PUBLIC_KEY}"\n'
            f'[tenants.other.ghl]\ned25519_public_key_file = "{base.GHL_PUBLIC_KEY}"\n'
            'location_id = "loc-other"\n'
            '[sync]\ncontact_idle_s = 2\n'))
        hook = f"http://127.0.0.1:{self.dfm.port}/webhooks/"
        self.ghl = Sandbox("ghl", self.dir, ["--webhook-url", hook + "ghl",
                                             "--conversation-provider-id", "prov"])
        self.verity = Sandbox("verity", self.dir, ["--webhook-url", hook + "verity",
                                                   "--webhook-secret", dfmtest.VERITY_SECRET,
                                                   "--api-key", VERITY_KEY])
        self.sandboxes = (self.ghl, self.verity)
        for s in self.sandboxes:
            s.start()
        self.dfm.start(env_extra={
            "DFM_GHL_API_BASE_URL": self.ghl.url,
            "DFM_GHL_LOCATION_ID": "loc_sandbox",
            "DFM_GHL_ACCESS_TOKEN": "sandbox-ghl-token",
            "DFM_GHL_CONVERSATION_PROVIDER_ID": "prov",
            "DFM_VERITY_API_BASE_URL": self.verity.url,
            "DFM_VERITY_CONTACTS_API": "true",  # this deployment's Verity has /v1/contacts
            "DFM_VERITY_API_KEY": VERITY_KEY,
        })

    def make_dfm(self, extra_config=""):
        return dfmtest.Dfm(DFM, self.dir, extra_config=extra_config)

    def tearDown(self):
        base.tear_down(self.dfm, self.dir, self.sandboxes, self)

    def post(self, path, doc):
        body = json.dumps(doc).encode()
        return dfmtest.request("127.0.0.1", self.dfm.port, "POST", path, body, {
            "Content-Type": "application/json", "X-GHL-Signature": ghl_sign(body)})

    def texts_to(self, phone):
        return [m for m in self.verity.get("/_sandbox/messages")[1]
                if m["direction"] == "outbound" and m["to"] == phone]

    def test_a_body_of_another_location_sends_nothing(self):
        victim = "+12055550199"
        attack = {"contactId": "attackers-contact", "locationId": "attackers-location",
                  "messageId": "m-" + uuid.uuid4().hex, "type": "SMS", "phone": victim,
                  "message": "Your account is locked, call +1 205 555 0100", "attachments": []}
        for path in ("/webhooks/ghl", "/t/other/webhooks/ghl"):
            status, _, data = self.post(path, attack)
            self.assertEqual(status, 401, data)
            self.assertEqual(json.loads(data)["error"], "unauthorized")
            self.assertIn("locationId", json.loads(data)["detail"])
        # Nothing was written, and nothing was sent.
        self.assertEqual(self.dfm.webhooks(), [])
        time.sleep(1.0)
        self.assertEqual(self.texts_to(victim), [])

        # The same delivery GoHighLevel really signed for this location, for
        # a contact it never made known: recorded, not sent, reported failed.
        attack["locationId"] = "loc_sandbox"
        status, _, data = self.post("/webhooks/ghl", attack)
        self.assertEqual(status, 200, data)
        refused = wait_for("the refusal", lambda: [
            e for e in self.dfm.dump(with_body=True) if e["type"] == "message.refused"])
        self.assertIn("had not made known", json.dumps(refused[0]))
        time.sleep(1.0)
        self.assertEqual(self.texts_to(victim), [])
        # Posted again (no timestamp to expire): one event, still nothing sent.
        status, _, data = self.post("/webhooks/ghl", attack)
        self.assertEqual((status, json.loads(data)["status"]), (200, "duplicate"))
        self.assertEqual(len(self.dfm.webhooks()), 1)

        # Control: a contact GoHighLevel made known first is texted.
        status, body = self.ghl.post("/_sandbox/contacts", {"firstName": "Ada", "phone": victim})
        self.assertIn(status, (200, 201), body)
        wait_for("the contact's link", lambda: [
            e for e in self.dfm.dump() if e["type"] == "contact.created"])
        status, body = self.ghl.post("/_sandbox/provider-outbound", {
            "contactId": body["contact"]["id"], "message": "Hi Ada", "type": "SMS"})
        self.assertEqual(status, 200, body)
        wait_for("the text through Verity", lambda: self.texts_to(victim))


class TwilioReplay(unittest.TestCase):
    """One signed form posted again under forged I-Twilio-Idempotency-Token
    headers (the signature does not cover them): an old START replayed after
    a newer STOP."""

    PHONE = "+12055550142"

    def setUp(self):
        self.dir = dfmtest.tempdir()
        self.dfm = self.make_dfm()
        self.dfm.start()

    def make_dfm(self, extra_config=""):
        return dfmtest.Dfm(DFM, self.dir, extra_config=extra_config)

    def tearDown(self):
        base.tear_down(self.dfm, self.dir, ())

    def form(self, sid, text, opt_out_type):
        fields = {"MessageSid": sid, "SmsSid": sid, "SmsStatus": "received", "Body": text,
                  "From": self.PHONE, "To": "+12055550100", "OptOutType": opt_out_type,
                  "AccountSid": "AC0123456789abcdef0123456789abcdef"}
        return "&".join(f"{k}={urllib.parse.quote_plus(v)}" for k, v in fields.items()).encode()

    def post(self, body, token):
        url = f"http://127.0.0.1:{self.dfm.port}/webhooks/twilio"
        status, headers, data = dfmtest.request("127.0.0.1", self.dfm.port, "POST", "/webhooks/twilio",
                                          body, {"Content-Type": "application/x-www-form-urlencoded",
                                                 "X-Twilio-Signature": dfmtest.twilio_signature(url, body),
                                                 "I-Twilio-Idempotency-Token": token})
        self.assertEqual(status, 200, data)
        return headers["x-dfm-status"]  # the body is TwiML

    def sms_opted_out(self):
        r = self.dfm.cli("as-of", "now", self.PHONE, "-d", self.dfm.data_dir, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout.splitlines()[0])["consent"]["sms"]["opted_out"]

    def test_a_replayed_start_has_no_power_over_a_newer_stop(self):
        stop1, start, stop2 = (self.form("SM" + uuid.uuid4().hex, t, o)
                               for t, o in (("STOP", "STOP"), ("START", "START"), ("STOP", "STOP")))
        for body in (stop1, start, stop2):
            self.assertEqual(self.post(body, str(uuid.uuid4())), "accepted")
        for _ in range(3):  # the START again, each time under a new forged token
            self.assertEqual(self.post(start, str(uuid.uuid4())), "duplicate")
        self.assertEqual(len(self.dfm.webhooks()), 3)
        wait_for("the sync", lambda: [e for e in self.dfm.dump() if e["type"] == "contact.opted_out"]
                 and len([e for e in self.dfm.dump() if e["type"].startswith("contact.opted")]) == 3)
        self.assertTrue(self.sms_opted_out())


class DamagedWal(unittest.TestCase):
    """One flipped byte in the middle of the WAL made the service start with
    4 of 15 acknowledged events, ready, and `dfm log verify` say intact."""

    def setUp(self):
        self.dir = dfmtest.tempdir()
        self.dfm = dfmtest.Dfm(DFM, self.dir, extra_config="[sync]\nenabled = false\n")

    def tearDown(self):
        base.tear_down(self.dfm, self.dir, ())

    def test_the_service_refuses_to_start_until_the_operator_recovers(self):
        self.dfm.start()
        conn = http.client.HTTPConnection("127.0.0.1", self.dfm.port, timeout=10)
        for i in range(15):
            resp, doc = dfmtest.post_verity(conn, f"wal-{i}", "x" * 200)
            self.assertEqual((resp.status, doc["status"]), (200, "accepted"))
        conn.close()
        self.assertEqual(self.dfm.stop(), 0)
        dfmtest.damage_wal(self.dfm.data_dir)

        with self.assertRaises(RuntimeError) as refused:
            self.dfm.start(timeout=10)
        self.assertIn("damaged before its end", str(refused.exception))
        self.assertIn("dfm log recover", str(refused.exception))
        verify = self.dfm.cli("log", "verify", "-d", self.dfm.data_dir)
        self.assertNotEqual(verify.returncode, 0, verify.stdout)
        self.assertNotIn("intact", verify.stdout)

        recover = self.dfm.cli("log", "recover", "-d", self.dfm.data_dir)
        self.assertEqual(recover.returncode, 0, recover.stderr)
        self.assertIn("were acknowledged and are lost", recover.stdout)
        self.dfm.start()
        recorded = [e for e in self.dfm.dump(with_body=True) if e["type"] == "log.recovered"]
        self.assertEqual(len(recorded), 1)
        self.assertEqual(recorded[0]["payload"]["lost_to"], 15)
        self.assertEqual(self.dfm.cli("log", "verify", "-d", self.dfm.data_dir).returncode, 0)
        self.dfm.stop()


class ClusterGhlTenantBinding(clustertest.OnACluster, GhlTenantBinding):
    """The same against three nodes on NATS behind nginx."""
    binary = staticmethod(lambda: DFM)


class ClusterTwilioReplay(clustertest.OnACluster, TwilioReplay):
    """The same against three nodes on NATS behind nginx."""
    binary = staticmethod(lambda: DFM)


class ClusterLateResend(clustertest.OnACluster, GhlTenantBinding):
    """A webhook sent again after its ingest stream's de-duplication window
    (2 s here, 10 minutes by default) is answered `duplicate` by its
    partition's node, with the first delivery's event id, and stays one
    event (issue 48). GoHighLevel's message webhooks carry no timestamp,
    so nothing else refuses them late."""
    binary = staticmethod(lambda: DFM)
    cluster_extra = "dedup_window_s = 2\n"

    def test_a_webhook_sent_again_past_the_window_is_a_duplicate(self):
        message = {"contactId": "c-" + uuid.uuid4().hex, "locationId": "loc_sandbox",
                   "messageId": "m-" + uuid.uuid4().hex, "type": "SMS", "phone": "+12055550188",
                   "message": "see you at noon", "attachments": []}
        status, _, data = self.post("/webhooks/ghl", message)
        self.assertEqual((status, json.loads(data)["status"]), (200, "accepted"), data)
        first = json.loads(data)["event_id"]
        wait_for("in the partition's log", lambda: len(self.dfm.webhooks()) == 1)
        time.sleep(3)  # past the stream's window
        for _ in range(3):  # through nginx: whichever node takes it
            status, _, data = self.post("/webhooks/ghl", message)
            self.assertEqual((status, json.loads(data)["status"]), (200, "duplicate"), data)
            self.assertEqual(json.loads(data)["event_id"], first)
        time.sleep(1.0)
        self.assertEqual(len(self.dfm.webhooks()), 1)
        # Control: another message is accepted.
        message["messageId"] = "m-" + uuid.uuid4().hex
        status, _, data = self.post("/webhooks/ghl", message)
        self.assertEqual((status, json.loads(data)["status"]), (200, "accepted"), data)


if __name__ == "__main__":
    DFM, argv = dfmtest.dfm_args()
    base.DFM = DFM
    unittest.main(argv=argv)
