"""Mixed load for the kill -9 test (crash_test.py --mixed): signed webhooks of
every vendor the test configures (GoHighLevel Ed25519, Aloware bearer, Verity
HMAC, Twilio HMAC-SHA1 over the URL, Telnyx Ed25519 over timestamp|body),
about a pool of people, so that the sync (router, contact and connector
actors, pushes to the GoHighLevel, Aloware and Verity sandboxes) runs under
the kills too. Each generator returns what to post and the provider event id
the log must hold for it, so the oracle outside the process can check it.
"""
import base64
import json
import time
import urllib.parse

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import dfmtest as t


class Mixed:
    def __init__(self, keys, rng, people=40):
        self.keys = keys
        self.rng = rng
        self.telnyx = ed25519.Ed25519PrivateKey.generate()
        self.phones = ["+1205556%04d" % i for i in range(people)]

    def telnyx_public_key(self):
        raw = self.telnyx.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def extra_config(self):
        return f'[telnyx]\npublic_key = "{self.telnyx_public_key()}"\n'

    def make(self, n, port):
        """Webhook number `n`: (system, provider id, path, body, headers)."""
        phone = self.rng.choice(self.phones)
        kind = n % 5
        if kind == 0:
            doc = json.loads(t.fixture("ghl/ContactCreate.json"))
            doc["type"] = "ContactUpdate" if self.rng.random() < 0.5 else "ContactCreate"
            doc["webhookId"] = f"mixed-ghl-{n}"
            doc["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            doc["phone"] = phone
            doc["email"] = "p%s@example.com" % phone[-4:]
            doc["id"] = "ghl" + phone[-4:]
            doc["firstName"] = self.rng.choice(["Ada", "Grace", "Alan", "Edsger"])
            body = json.dumps(doc).encode()
            return "ghl", doc["webhookId"], "/webhooks/ghl", body, {
                "Content-Type": "application/json", "X-GHL-Signature": self.keys.ghl_ed25519(body)}
        if kind == 1:
            doc = json.loads(t.fixture("verity/message.received.json"))
            doc["messageId"] = doc["eventId"] = f"mixed-verity-{n}"
            doc["from"] = phone
            doc["body"] = self.rng.choice(["See you at 3", "STOP", "START", "please stop texting me", "ok"])
            doc["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            body = json.dumps(doc).encode()
            return "verity", doc["eventId"], "/webhooks/verity", body, {
                "Content-Type": "application/json", "X-Texting-Signature": t.verity_signature(body)}
        if kind == 2:
            doc = json.loads(t.fixture("aloware/Call-Disposed.json"))
            doc["body"]["id"] = 500000 + n
            doc["body"]["lead_number"] = doc["body"]["contact"]["phone_number"] = phone
            body = json.dumps(doc).encode()
            pid = f'{doc["event"]}:{doc["body"]["id"]}:{doc["body"]["updated_at"]}'
            return "aloware", pid, "/webhooks/aloware", body, {
                "Content-Type": "application/json", "Authorization": "Bearer " + t.ALOWARE_TOKEN}
        if kind == 3:
            form = urllib.parse.urlencode({"MessageSid": f"SMmixed{n}", "From": phone, "To": "+12055550100",
                                           "Body": self.rng.choice(["hi", "STOP", "Running late"]),
                                           "SmsStatus": "received"}).encode()
            url = f"http://127.0.0.1:{port}/webhooks/twilio"
            return "twilio", f"SMmixed{n}:received", "/webhooks/twilio", form, {
                "Content-Type": "application/x-www-form-urlencoded", "Host": f"127.0.0.1:{port}",
                "X-Twilio-Signature": t.twilio_signature(url, form)}
        doc = {"data": {"event_type": "message.received", "id": f"mixed-telnyx-{n}",
                        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime()),
                        "payload": {"id": f"tx-{n}", "direction": "inbound",
                                    "from": {"phone_number": phone},
                                    "to": [{"phone_number": "+12055550100", "status": "webhook_delivered"}],
                                    "text": self.rng.choice(["hello", "STOP"]), "autoresponse_type": None}},
               "meta": {"attempt": 1}}
        body = json.dumps(doc).encode()
        ts = str(int(time.time()))
        sig = base64.b64encode(self.telnyx.sign(ts.encode() + b"|" + body)).decode()
        return "telnyx", doc["data"]["id"], "/webhooks/telnyx", body, {
            "Content-Type": "application/json", "telnyx-timestamp": ts, "telnyx-signature-ed25519": sig}
