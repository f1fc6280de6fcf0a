#!/usr/bin/env python3
"""Self-test of the Verity and Twilio sandboxes (sandboxes/verity.py, sandboxes/twilio.py).

Starts each sandbox as a subprocess on a free loopback port, with a small
local HTTP receiver for the webhooks, and checks what the connectors and the
end-to-end tests rely on:

  Verity  (docs/verity.md): paths, Bearer auth, the {"error": {"code",
          "message"}} bodies, contact upsert 201/200 and validation, sending
          202, idempotent externalId, opt-out 422 (smsOptOut, STOP text,
          START clears), webhooks message.sent -> message.delivered /
          message.failed and message.received -> optout.stop, each signed with
          X-Texting-Signature (hex HMAC-SHA256, verified here), faults.
  Twilio  (Twilio's documents): Messages.json create/fetch, Basic auth,
          Twilio's error bodies (20003, 20404, 21211, 21602, 21603, 21610,
          20429), status callbacks sent -> delivered / undelivered with
          X-Twilio-Signature re-verified by an independent verifier that is
          first checked against Twilio's known-answer vector, the inbound-SMS
          form with OptOutType, --signing-url and --callback-rewrite.
  Both:   state kept across kill -9 + restart on the same port (--state).

Standard library; reuses the helpers of sandbox_test.py (which imports
cryptography). Run: python3 tests/sandboxes/verity_twilio_test.py
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sandbox_test as base  # noqa: E402  (Sandbox, Receiver, call, drain_and_reset)

ROOT = base.ROOT
sys.path.insert(0, os.path.join(ROOT, "sandboxes"))
import common  # noqa: E402  (the sandboxes' signers, checked against the vectors)

VERITY = os.path.join(ROOT, "sandboxes", "verity.py")
TWILIO = os.path.join(ROOT, "sandboxes", "twilio.py")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")  # copies of the shared vendor bodies

V_KEY = "test-verity-key"
V_SECRET = "test-verity-secret"
V_FROM = "+12055550100"

T_SID = "AC" + "ab" * 16
T_TOKEN = "test-twilio-token"
T_SERVICE = "MG" + "cd" * 16
T_PUBLIC = "https://dfm.example.test/webhooks/twilio"

call = base.call


# ---------------------------------------------------------------- verifiers (independent of sandboxes/common.py)

def verity_signature_ok(secret, raw, header):
    """X-Texting-Signature: hex HMAC-SHA256 of the raw body (either case)."""
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return bool(header) and hmac.compare_digest(expected, header.lower())


def twilio_expected_signature(token, url, params):
    """Twilio's algorithm, written from its security document: the full URL,
    then each POST parameter's name and value, sorted by name, HMAC-SHA1
    keyed with the auth token, base64."""
    data = url
    for name in sorted(params):
        values = params[name] if isinstance(params[name], list) else [params[name]]
        for value in sorted(values):
            data += name + value
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def form_of(raw):
    return dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))


def wait_log(port, n, timeout=10):
    """The sandbox's webhook log once it has n entries, all done."""
    deadline = time.time() + timeout
    while True:
        log = call(port, "GET", "/_sandbox/webhooks")[2]
        if len(log) >= n and all(w["done"] for w in log):
            return log
        if time.time() > deadline:
            raise AssertionError("webhook log: %d entries, expected %d" % (len(log), n))
        time.sleep(0.02)


class SignerVectors(unittest.TestCase):
    """The verifiers above, and the sandboxes' signer, against published vectors."""

    def test_twilio_known_answer(self):
        # ../shared/fixtures/README.md (beside the checkout), from Twilio's security document.
        params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
                  "From": "+12349013030", "To": "+18005551212"}
        url = "https://mycompany.com/myapp.php?foo=1&bar=2"
        self.assertEqual(twilio_expected_signature("12345", url, params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
        self.assertEqual(common.twilio_signature("12345", url, params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
        self.assertEqual(common.twilio_signature("12345", url, list(params.items())[::-1]),
                         "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")

    def test_hmac_sha256_hex_known_answer(self):
        # fixtures README (Meta's vector): HMAC-SHA256 key "secret" over "test", hex.
        want = "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
        self.assertTrue(verity_signature_ok("secret", b"test", want))
        self.assertTrue(verity_signature_ok("secret", b"test", want.upper()))
        self.assertFalse(verity_signature_ok("secret", b"test!", want))
        self.assertEqual(common.hmac_sha256_hex("secret", b"test"), want)


# ====================================================================== Verity

class SandboxWithReceiver(unittest.TestCase):
    """One sandbox (cls.sbx on cls.port) whose webhooks go to cls.receiver,
    started by the subclass's setUpClass; reset before each test."""

    @classmethod
    def tearDownClass(cls):
        code = cls.sbx.stop()
        cls.receiver.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert code == 0, "sandbox exit code %s on SIGTERM" % code

    def setUp(self):
        self.assertEqual(base.drain_and_reset(self.port, self.receiver), 200)


class VerityTest(SandboxWithReceiver):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="verity-sbx-")
        cls.receiver = base.Receiver()
        cls.sbx = base.Sandbox(VERITY, cls.tmp, [
            "--state", os.path.join(cls.tmp, "state.json"), "--api-key", V_KEY,
            "--webhook-secret", V_SECRET, "--from-number", V_FROM,
            "--webhook-url", cls.receiver.url, "--webhook-backoff-ms", "50"]).start()
        cls.port = cls.sbx.port


    def api(self, method, path, body=None, key=V_KEY, headers=None):
        hdrs = {"Authorization": "Bearer " + key} if key else {}
        hdrs.update(headers or {})
        return call(self.port, method, path, body=body, headers=hdrs)

    def admin(self, method, path, body=None):
        return call(self.port, method, "/_sandbox" + path, body=body)

    def hooks(self, n):
        """The first n webhooks received, each checked for its signature."""
        out = []
        for h in self.receiver.wait(n):
            self.assertEqual(h["headers"]["content-type"], "application/json")
            self.assertTrue(verity_signature_ok(V_SECRET, h["raw"], h["headers"].get("x-texting-signature")),
                            "X-Texting-Signature does not verify")
            self.assertFalse(verity_signature_ok(V_SECRET, h["raw"] + b" ", h["headers"]["x-texting-signature"]))
            out.append(json.loads(h["raw"]))
        return out

    def assert_error(self, resp, status, code):
        s, _, b = resp
        self.assertEqual(s, status, b)
        self.assertEqual(set(b), {"error"})
        self.assertEqual(set(b["error"]), {"code", "message"})
        self.assertEqual(b["error"]["code"], code)
        self.assertIsInstance(b["error"]["message"], str)
        return b["error"]["message"]

    def test_auth(self):
        self.assert_error(self.api("GET", "/v1/contacts/%2B12055550142", key=None), 401, "unauthorized")
        self.assert_error(self.api("GET", "/v1/contacts/%2B12055550142", key="wrong"), 401, "unauthorized")
        self.assert_error(self.api("POST", "/v1/messages", {"to": "+12055550142", "body": "x"}, key="wrong"),
                          401, "unauthorized")
        s, _, _ = call(self.port, "GET", "/v1/contacts/%2B12055550142", headers={"Authorization": "Basic " + V_KEY})
        self.assertEqual(s, 401)
        self.assert_error(self.api("GET", "/v1/nothing"), 404, "not_found")
        journal = self.admin("GET", "/requests")[2]
        self.assertEqual([e["status"] for e in journal], [401, 401, 401, 401, 404])

    def test_contacts(self):
        s, _, b = self.api("POST", "/v1/contacts", {"phone": "+12055550142", "email": "ann@example.com",
                                                    "firstName": "Ann", "externalRef": "p-1"})
        self.assertEqual(s, 201, b)
        c = b["contact"]
        self.assertRegex(c["id"], r"^vc_")
        self.assertEqual(set(c), {"id", "phone", "email", "firstName", "lastName", "externalRef", "smsOptOut",
                                  "createdAt", "updatedAt"})
        self.assertEqual((c["phone"], c["lastName"], c["smsOptOut"]), ("+12055550142", None, False))
        self.assertRegex(c["createdAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        # Keys absent are left unchanged; null clears; 200 on update.
        s, _, b = self.api("POST", "/v1/contacts", {"phone": "+12055550142", "lastName": "Lee", "email": None})
        self.assertEqual(s, 200, b)
        self.assertEqual((b["contact"]["id"], b["contact"]["firstName"], b["contact"]["lastName"],
                          b["contact"]["email"], b["contact"]["externalRef"]), (c["id"], "Ann", "Lee", None, "p-1"))
        s, _, b = self.api("GET", "/v1/contacts/" + urllib.parse.quote("+12055550142", safe=""))
        self.assertEqual((s, b["contact"]["lastName"]), (200, "Lee"))
        self.assert_error(self.api("GET", "/v1/contacts/%2B12055550199"), 404, "not_found")
        # Validation: the message names the key.
        for body, key in (({"email": "a@example.com"}, "phone"), ({"phone": "2055550142"}, "phone"),
                          ({"phone": "+02055550142"}, "phone"), ({"phone": 12055550142}, "phone"),
                          ({"phone": "+12055550142", "email": "nope"}, "email"),
                          ({"phone": "+12055550142", "firstName": 3}, "firstName"),
                          ({"phone": "+12055550142", "smsOptOut": "yes"}, "smsOptOut")):
            self.assertIn(key, self.assert_error(self.api("POST", "/v1/contacts", body), 400, "invalid_request"))
        self.assert_error(self.api("POST", "/v1/contacts", [1]), 400, "invalid_request")
        s, _, b = call(self.port, "POST", "/v1/contacts", headers={"Authorization": "Bearer " + V_KEY},
                       form={"phone": "+12055550142"})
        self.assertEqual((s, b["error"]["code"]), (400, "invalid_request"))
        self.assertEqual([c["phone"] for c in self.admin("GET", "/contacts")[2]], ["+12055550142"])

    def test_send_and_webhooks(self):
        s, _, b = self.api("POST", "/v1/messages", {"to": "+12055550142", "body": "Hello Ann", "externalId": "out-1"})
        self.assertEqual(s, 202, b)
        m = b["message"]
        self.assertRegex(m["id"], r"^msg_[0-9A-Z]{26}$")
        self.assertRegex(m["conversationId"], r"^chat_")
        self.assertEqual((m["status"], m["direction"], m["to"], m["from"], m["body"], m["externalId"]),
                         ("queued", "outbound", "+12055550142", V_FROM, "Hello Ann", "out-1"))
        sent, delivered = self.hooks(2)
        for h, kind, status in ((sent, "message.sent", "sent"), (delivered, "message.delivered", "delivered")):
            self.assertEqual((h["eventType"], h["status"], h["eventId"]), (kind, status, kind + ":" + m["id"]))
            self.assertEqual((h["messageId"], h["externalId"], h["conversationId"], h["direction"],
                              h["from"], h["to"], h["body"]),
                             (m["id"], "out-1", m["conversationId"], "outbound", V_FROM, "+12055550142", "Hello Ann"))
            self.assertRegex(h["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertLessEqual(sent["timestamp"], delivered["timestamp"])
        s, _, b = self.api("GET", "/v1/messages/" + m["id"])
        self.assertEqual((s, b["message"]["status"]), (200, "delivered"))
        self.assert_error(self.api("GET", "/v1/messages/msg_nope"), 404, "not_found")

        # The same externalId again: 200 with the first message, nothing sent.
        s, _, b = self.api("POST", "/v1/messages", {"to": "+12055550142", "body": "other text", "externalId": "out-1"})
        self.assertEqual((s, b["message"]["id"], b["message"]["body"]), (200, m["id"], "Hello Ann"))
        self.assertEqual(len(wait_log(self.port, 2)), 2)

        # from given; no externalId: the webhooks carry none.
        s, _, b = self.api("POST", "/v1/messages", {"to": "+12055550143", "from": "+12055550101", "body": "x"})
        self.assertEqual((s, b["message"]["from"], b["message"]["externalId"]), (202, "+12055550101", None))
        self.assertNotIn("externalId", self.hooks(3)[2])

        # A failing number: message.sent then message.failed with errorCode/errorMessage.
        self.admin("POST", "/fail-deliveries", {"to": "+12055550144"})
        s, _, b = self.api("POST", "/v1/messages", {"to": "+12055550144", "body": "x"})
        self.assertEqual(s, 202)
        hooks = self.hooks(6)
        self.assertEqual([h["eventType"] for h in hooks[4:]], ["message.sent", "message.failed"])
        self.assertEqual((hooks[5]["status"], hooks[5]["errorCode"], hooks[5]["errorMessage"]),
                         ("failed", "40008", "Undeliverable"))
        s, _, b = self.api("GET", "/v1/messages/" + hooks[5]["messageId"])
        self.assertEqual((b["message"]["status"], b["message"]["errorCode"]), ("failed", "40008"))

        # Validation.
        for body, key in (({"body": "x"}, "to"), ({"to": "12055550142", "body": "x"}, "to"),
                          ({"to": "+12055550142"}, "body"), ({"to": "+12055550142", "body": ""}, "body"),
                          ({"to": "+12055550142", "body": "x" * 1601}, "body"),
                          ({"to": "+12055550142", "body": "x", "from": "abc"}, "from"),
                          ({"to": "+12055550142", "body": "x", "externalId": "e" * 201}, "externalId"),
                          ({"to": "+12055550142", "body": "x", "externalId": 5}, "externalId")):
            self.assertIn(key, self.assert_error(self.api("POST", "/v1/messages", body), 400, "invalid_request"))
        self.assertEqual(self.api("POST", "/v1/messages", {"to": "+12055550142", "body": "x" * 1600})[0], 202)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("POST", "/v1/messages", body=b'{"to":', headers={
                "Authorization": "Bearer " + V_KEY, "Content-Type": "application/json"})
            r = conn.getresponse()
            self.assertEqual((r.status, json.loads(r.read())["error"]["code"]), (400, "invalid_request"))
        finally:
            conn.close()

    def test_optouts(self):
        # smsOptOut on a contact: later sends 422.
        s, _, b = self.api("POST", "/v1/contacts", {"phone": "+12055550150", "smsOptOut": True})
        self.assertEqual((s, b["contact"]["smsOptOut"]), (201, True))
        self.assert_error(self.api("POST", "/v1/messages", {"to": "+12055550150", "body": "x"}),
                          422, "recipient_opted_out")
        self.api("POST", "/v1/contacts", {"phone": "+12055550150", "smsOptOut": False})
        self.assertEqual(self.api("POST", "/v1/messages", {"to": "+12055550150", "body": "x"})[0], 202)
        self.hooks(2)
        self.receiver.reset()
        self.admin("DELETE", "/webhooks")

        # An ordinary inbound text: message.received only.
        s, _, b = self.admin("POST", "/inbound", {"from": "+12055550151", "body": "stop by at 3pm?"})
        self.assertEqual((s, b["webhook"]["status"], len(b["webhooks"]), b["optOut"]), (201, 200, 1, None))
        h = self.hooks(1)[0]
        self.assertEqual((h["eventType"], h["direction"], h["from"], h["to"], h["status"], h["body"]),
                         ("message.received", "inbound", "+12055550151", V_FROM, "received", "stop by at 3pm?"))
        self.assertEqual(h["eventId"], "message.received:" + h["messageId"])

        # A whole-text opt-out word: message.received then optout.stop (same messageId).
        s, _, b = self.admin("POST", "/inbound", {"from": "+12055550151", "body": "  Opt-out. "})
        self.assertEqual((s, b["optOut"], [w["event"] for w in b["webhooks"]]),
                         (201, "stop", ["message.received", "optout.stop"]))
        received, stop = self.hooks(3)[1:]
        self.assertEqual((stop["eventType"], stop["messageId"], stop["eventId"], stop["from"]),
                         ("optout.stop", received["messageId"], "optout.stop:" + received["messageId"],
                          "+12055550151"))
        self.assertEqual(received["body"], "  Opt-out. ")
        self.assert_error(self.api("POST", "/v1/messages", {"to": "+12055550151", "body": "x"}),
                          422, "recipient_opted_out")
        self.assertIn("+12055550151", self.admin("GET", "/optouts")[2]["optouts"])
        # A contact for that number shows the opt-out.
        s, _, b = self.api("POST", "/v1/contacts", {"phone": "+12055550151"})
        self.assertEqual((s, b["contact"]["smsOptOut"]), (201, True))
        for word in ("STOP", "stopall", "Unsubscribe!", "cancel", "END", "quit", "revoke", "OPTOUT", "opt out"):
            s, _, b = self.admin("POST", "/inbound", {"from": "+12055550152", "body": word})
            self.assertEqual(b["optOut"], "stop", word)

        # START clears it; only message.received is sent.
        s, _, b = self.admin("POST", "/inbound", {"from": "+12055550151", "body": "Start"})
        self.assertEqual((b["optOut"], [w["event"] for w in b["webhooks"]]), ("start", ["message.received"]))
        self.assertEqual(self.api("POST", "/v1/messages", {"to": "+12055550151", "body": "welcome back"})[0], 202)
        self.assertEqual(self.api("GET", "/v1/contacts/%2B12055550151")[2]["contact"]["smsOptOut"], False)
        # Inbound messages can be read back too.
        inbound = [x for x in self.admin("GET", "/messages")[2] if x["direction"] == "inbound"]
        self.assertEqual(inbound[0]["body"], "stop by at 3pm?")
        self.assertEqual(self.api("GET", "/v1/messages/" + inbound[0]["id"])[2]["message"]["status"], "received")

    def test_webhook_retries(self):
        # Verity retries 5xx and connection errors (docs/verity.md).
        self.receiver.answers.extend([503, 200])
        s, _, b = self.admin("POST", "/inbound", {"from": "+12055550160", "body": "hi"})
        self.assertEqual((b["webhook"]["status"], b["webhook"]["attempts"]), (200, 2))
        self.receiver.answers.append(400)
        s, _, b = self.admin("POST", "/inbound", {"from": "+12055550160", "body": "hi"})
        self.assertEqual((b["webhook"]["status"], b["webhook"]["attempts"]), (400, 1))
        hooks = self.receiver.wait(3)
        self.assertEqual(hooks[0]["raw"], hooks[1]["raw"])  # a retry resends the same bytes
        # Any body, e.g. a fixture, signed as Verity signs.
        with open(os.path.join(FIXTURES, "verity", "optout.stop.json")) as f:
            fixture = json.load(f)
        s, _, b = self.admin("POST", "/webhooks/send", {"body": fixture})
        self.assertEqual((s, b["webhook"]["status"]), (200, 200))
        self.assertEqual(self.hooks(4)[3], fixture)

    def test_faults(self):
        self.admin("POST", "/faults", {"faults": [{"status": 429}, {"status": 429, "retry_after": 7},
                                                  {"status": 503}, {"drop": True}]})
        s, h, b = self.api("GET", "/v1/contacts/%2B12055550142")
        self.assertEqual((s, h.get("retry-after"), b["error"]["code"]), (429, "1", "rate_limited"))
        s, h, b = self.api("GET", "/v1/contacts/%2B12055550142")
        self.assertEqual((s, h.get("retry-after")), (429, "7"))
        self.assert_error(self.api("GET", "/v1/contacts/%2B12055550142"), 503, "internal")
        with self.assertRaises((ConnectionError, http.client.RemoteDisconnected)):
            self.api("GET", "/v1/contacts/%2B12055550142")
        self.assertEqual(self.api("GET", "/v1/contacts/%2B12055550142")[0], 404)
        self.admin("POST", "/down", {"seconds": 0.4})
        with self.assertRaises((ConnectionError, http.client.RemoteDisconnected)):
            self.api("POST", "/v1/messages", {"to": "+12055550142", "body": "x"})
        self.assertEqual(self.admin("GET", "/health")[2]["down"], True)
        time.sleep(0.5)
        self.assertEqual(self.api("POST", "/v1/messages", {"to": "+12055550142", "body": "x"})[0], 202)
        journal = self.admin("GET", "/requests")[2]
        self.assertEqual([e["status"] for e in journal], [429, 429, 503, None, 404, None, 202])
        self.assertEqual(journal[-1]["headers"]["authorization"], "Bearer " + V_KEY)
        self.assertEqual(journal[-1]["body"], {"to": "+12055550142", "body": "x"})


# ====================================================================== Twilio

class TwilioTest(SandboxWithReceiver):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="twilio-sbx-")
        cls.receiver = base.Receiver()
        cls.rport = int(cls.receiver.url.split(":")[2].split("/")[0])
        cls.sbx = base.Sandbox(TWILIO, cls.tmp, [
            "--state", os.path.join(cls.tmp, "state.json"), "--account-sid", T_SID, "--auth-token", T_TOKEN,
            "--messaging-service-sid", T_SERVICE, "--from-number", "+12055550100",
            "--webhook-url", cls.receiver.url + "/inbound", "--signing-url", T_PUBLIC,
            "--callback-rewrite", "https://public.example.test=http://127.0.0.1:%d" % cls.rport,
            "--webhook-backoff-ms", "50"]).start()
        cls.port = cls.sbx.port


    def api(self, method, path, form=None, user=T_SID, token=T_TOKEN):
        hdrs = {}
        if user is not None:
            hdrs["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (user, token)).encode()).decode()
        return call(self.port, method, "/2010-04-01/Accounts/%s%s" % (T_SID, path), form=form, headers=hdrs)

    def send(self, **params):
        return self.api("POST", "/Messages.json", form=params)

    def admin(self, method, path, body=None):
        return call(self.port, method, "/_sandbox" + path, body=body)

    def assert_twilio_error(self, resp, status, code):
        s, _, b = resp
        self.assertEqual(s, status, b)
        self.assertEqual(set(b), {"code", "message", "more_info", "status"})
        self.assertEqual((b["code"], b["status"], b["more_info"]),
                         (code, status, "https://www.twilio.com/docs/errors/%d" % code))
        return b["message"]

    def verified(self, hook, signed_url):
        """The form of a webhook whose X-Twilio-Signature verifies over signed_url."""
        self.assertEqual(hook["headers"]["content-type"], "application/x-www-form-urlencoded")
        self.assertTrue(hook["headers"].get("i-twilio-idempotency-token"))
        params = {}
        for k, v in urllib.parse.parse_qsl(hook["raw"].decode(), keep_blank_values=True):
            params.setdefault(k, []).append(v)
        sig = hook["headers"].get("x-twilio-signature")
        self.assertEqual(sig, twilio_expected_signature(T_TOKEN, signed_url, params), "X-Twilio-Signature")
        self.assertNotEqual(sig, twilio_expected_signature(T_TOKEN, signed_url + "x", params))
        return form_of(hook["raw"])

    def test_auth_and_errors(self):
        s, h, _ = self.api("GET", "/Messages/SM%s.json" % ("0" * 32), user=None)
        self.assertEqual(s, 401)
        self.assertIn("www-authenticate", h)
        self.assertEqual(self.assert_twilio_error(self.api("GET", "/Messages/SMx.json", token="bad"), 401, 20003),
                         "Authenticate")
        self.assert_twilio_error(self.api("POST", "/Messages.json", form={"To": "+12055550142"}, user="AC" + "0" * 32),
                                 401, 20003)
        self.assert_twilio_error(self.api("GET", "/Messages/SM%s.json" % ("0" * 32)), 404, 20404)
        # Another account in the path, with good credentials: 404.
        s, _, b = call(self.port, "GET", "/2010-04-01/Accounts/AC%s/Messages/SMx.json" % ("9" * 32),
                       headers={"Authorization": "Basic " + base64.b64encode(
                           ("%s:%s" % (T_SID, T_TOKEN)).encode()).decode()})
        self.assertEqual((s, b["code"]), (404, 20404))
        self.assert_twilio_error(self.send(From="+12055550100", Body="x"), 400, 21604)
        self.assertIn("not a valid phone number",
                      self.assert_twilio_error(self.send(To="12", From="+12055550100", Body="x"), 400, 21211))
        self.assert_twilio_error(self.send(To="+12055550142", Body="x"), 400, 21603)
        self.assert_twilio_error(self.send(To="+12055550142", From="+12055550100"), 400, 21602)
        self.assert_twilio_error(self.send(To="+12055550142", From="+12055550100", Body=""), 400, 21602)
        self.assert_twilio_error(self.send(To="+12055550142", From="+12055550100", Body="x" * 1601), 400, 21617)
        self.assert_twilio_error(self.send(To="+12055550142", MessagingServiceSid="MGnope", Body="x"), 400, 21705)
        # Faults in Twilio's shape.
        self.admin("POST", "/faults", {"faults": [{"status": 429, "retry_after": 2}, {"status": 500}]})
        s, h, b = self.send(To="+12055550142", From="+12055550100", Body="x")
        self.assertEqual((s, h.get("retry-after"), b["code"], b["status"]), (429, "2", 20429, 429))
        self.assertEqual(self.send(To="+12055550142", From="+12055550100", Body="x")[2]["code"], 20500)
        journal = self.admin("GET", "/requests")[2]
        self.assertEqual(journal[-1]["body"], {"To": "+12055550142", "From": "+12055550100", "Body": "x"})
        self.assertEqual(journal[-1]["fault"]["status"], 500)

    def test_send_and_status_callbacks(self):
        cb = self.receiver.url + "/status?tenant=t1"
        s, _, m = self.send(To="+12055550142", From="+12055550100", Body="Hello Ann", StatusCallback=cb)
        self.assertEqual(s, 201, m)
        self.assertRegex(m["sid"], r"^SM[0-9a-f]{32}$")
        self.assertEqual((m["account_sid"], m["to"], m["from"], m["body"], m["status"], m["direction"],
                          m["api_version"], m["num_segments"], m["error_code"], m["error_message"], m["price"],
                          m["messaging_service_sid"], m["date_sent"]),
                         (T_SID, "+12055550142", "+12055550100", "Hello Ann", "queued", "outbound-api",
                          "2010-04-01", "1", None, None, None, None, None))
        self.assertRegex(m["date_created"], r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000$")
        self.assertEqual(m["uri"], "/2010-04-01/Accounts/%s/Messages/%s.json" % (T_SID, m["sid"]))
        sent, delivered = self.receiver.wait(2)
        for hook, status in ((sent, "sent"), (delivered, "delivered")):
            self.assertEqual(hook["path"], "/hook/status?tenant=t1")
            self.assertEqual(hook["headers"]["user-agent"], "TwilioProxy/1.1")
            form = self.verified(hook, cb)
            self.assertEqual(form, {"SmsSid": m["sid"], "SmsStatus": status, "MessageStatus": status,
                                    "To": "+12055550142", "MessageSid": m["sid"], "AccountSid": T_SID,
                                    "From": "+12055550100", "ApiVersion": "2010-04-01"})
        self.assertNotEqual(sent["headers"]["i-twilio-idempotency-token"],
                            delivered["headers"]["i-twilio-idempotency-token"])
        s, _, b = self.api("GET", "/Messages/%s.json" % m["sid"])
        self.assertEqual((s, b["status"], b["sid"]), (200, "delivered", m["sid"]))
        self.assertIsNotNone(b["date_sent"])

        # With the Messaging Service: accepted, no From yet; callbacks queued, sent, then a failure.
        self.admin("POST", "/fail-deliveries", {"to": "+12055550143"})
        public_cb = "https://public.example.test/cb/twilio"
        s, _, m2 = self.send(To="(205) 555-0143", MessagingServiceSid=T_SERVICE, Body="Olá", StatusCallback=public_cb)
        self.assertEqual((s, m2["status"], m2["from"], m2["num_segments"], m2["to"], m2["messaging_service_sid"]),
                         (201, "accepted", None, "0", "+12055550143", T_SERVICE))
        hooks = self.receiver.wait(5)[2:]
        forms = [self.verified(h, public_cb) for h in hooks]  # signed over the public URL...
        self.assertEqual([h["path"] for h in hooks], ["/cb/twilio"] * 3)  # ...delivered through the rewrite
        self.assertEqual([f["MessageStatus"] for f in forms], ["queued", "sent", "undelivered"])
        self.assertEqual((forms[2]["ErrorCode"], forms[2]["MessagingServiceSid"], forms[2]["From"]),
                         ("30003", T_SERVICE, "+12055550100"))
        self.assertNotIn("ErrorCode", forms[1])
        b = self.api("GET", "/Messages/%s.json" % m2["sid"])[2]
        self.assertEqual((b["status"], b["error_code"], b["from"], b["num_segments"]),
                         ("undelivered", 30003, "+12055550100", "1"))
        # "failed": no sent callback.
        self.admin("POST", "/fail-deliveries", {"to": "+12055550144", "status": "failed", "error_code": 30007})
        self.admin("POST", "/settings", {"status_callback_url": self.receiver.url + "/default"})
        self.send(To="+12055550144", From="+12055550100", Body="x")
        hook = self.receiver.wait(6)[5]
        form = self.verified(hook, self.receiver.url + "/default")
        self.assertEqual((form["MessageStatus"], form["ErrorCode"]), ("failed", "30007"))
        log = wait_log(self.port, 6)
        self.assertEqual([w["event"] for w in log][-1], "status:failed")
        self.assertEqual(log[-1]["body"]["MessageStatus"], "failed")

    def test_inbound_and_opt_out(self):
        s, _, b = self.admin("POST", "/inbound", {"from": "+12055550142", "body": "See you this weekend!"})
        self.assertEqual((s, b["webhook"]["status"], b["optOutType"], b["message"]["direction"]),
                         (201, 200, None, "inbound"))
        hook = self.receiver.wait(1)[0]
        self.assertEqual(hook["path"], "/hook/inbound")
        form = self.verified(hook, T_PUBLIC)  # --signing-url
        with open(os.path.join(FIXTURES, "twilio", "inbound-sms.form")) as f:
            fixture = form_of(f.read().strip().encode())
        self.assertEqual(set(form), set(fixture) | {"MessagingServiceSid"})
        self.assertEqual((form["SmsStatus"], form["Body"], form["From"], form["To"], form["AccountSid"],
                          form["NumMedia"], form["NumSegments"], form["ApiVersion"], form["ToCountry"]),
                         ("received", "See you this weekend!", "+12055550142", "+12055550100", T_SID,
                          "0", "1", "2010-04-01", "US"))
        self.assertEqual(form["MessageSid"], form["SmsSid"])
        self.assertEqual(form["MessageSid"], form["SmsMessageSid"])
        self.assertNotIn("OptOutType", form)
        self.assertNotIn("MessageStatus", form)
        self.assertEqual(self.api("GET", "/Messages/%s.json" % form["MessageSid"])[2]["status"], "received")

        # STOP: OptOutType=STOP, then sends to that number are 21610.
        s, _, b = self.admin("POST", "/inbound", {"from": "+12055550142", "body": " stop "})
        self.assertEqual(b["optOutType"], "STOP")
        form = self.verified(self.receiver.wait(2)[1], T_PUBLIC)
        self.assertEqual((form["OptOutType"], form["Body"]), ("STOP", " stop "))
        self.assertEqual(self.assert_twilio_error(self.send(To="+12055550142", From="+12055550100", Body="x"),
                                                  400, 21610), "Attempt to send to unsubscribed recipient")
        self.assertIn("+12055550142", self.admin("GET", "/optouts")[2]["optouts"])
        for word, kind in (("STOPALL", "STOP"), ("unsubscribe", "STOP"), ("Cancel", "STOP"), ("END", "STOP"),
                           ("quit", "STOP"), ("REVOKE", "STOP"), ("optout", "STOP"), ("OPT OUT", None),
                           ("please stop", None), ("help", "HELP"), ("INFO", "HELP")):
            self.assertEqual(self.admin("POST", "/inbound", {"from": "+12055550145", "body": word})[2]["optOutType"],
                             kind, word)
        # START (or YES, UNSTOP) clears it.
        s, _, b = self.admin("POST", "/inbound", {"from": "+12055550142", "body": "Unstop"})
        self.assertEqual(b["optOutType"], "START")
        self.assertEqual(self.send(To="+12055550142", From="+12055550100", Body="welcome back")[0], 201)
        msgs = self.admin("GET", "/messages")[2]
        self.assertEqual([x["direction"] for x in msgs[:2]], ["inbound", "inbound"])
        self.assertEqual(msgs[-1]["direction"], "outbound-api")

        # A fixture sent through the sandbox, signed like Twilio does.
        with open(os.path.join(FIXTURES, "twilio", "inbound-sms-stop.form")) as f:
            fixture = form_of(f.read().strip().encode())
        n = len(self.receiver.requests)
        s, _, b = self.admin("POST", "/webhooks/send", {"body": fixture})
        self.assertEqual((s, b["webhook"]["status"]), (200, 200))
        self.assertEqual(self.verified(self.receiver.wait(n + 1)[n], T_PUBLIC), fixture)


# ====================================================================== restarts

class RestartTest(unittest.TestCase):
    """kill -9, then a restart on the same port with the same state file."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vt-restart-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def restart(self, sbx):
        return base.restart_after_kill9(sbx)

    def test_verity_state_survives_kill9(self):
        # No delivery delay: a restart can take less than the default 50 ms,
        # and the message would still read "sent" (CI met it, twice).
        sbx = base.Sandbox(VERITY, self.tmp, ["--state", os.path.join(self.tmp, "verity.json"),
                                              "--delivery-delay-ms", "0"],
                           port=base.free_port()).start()
        auth = {"Authorization": "Bearer sandbox-verity-key"}
        try:
            s, _, c = call(sbx.port, "POST", "/v1/contacts", {"phone": "+12055550170", "firstName": "K"}, headers=auth)
            self.assertEqual(s, 201)
            s, _, m = call(sbx.port, "POST", "/v1/messages", {"to": "+12055550171", "body": "x", "externalId": "e1"},
                           headers=auth)
            self.assertEqual(s, 202)
            call(sbx.port, "POST", "/_sandbox/inbound", {"from": "+12055550172", "body": "STOP"})
            port = sbx.port
            sbx = self.restart(sbx)
            self.assertEqual(sbx.port, port)
            s, _, b = call(sbx.port, "GET", "/v1/contacts/%2B12055550170", headers=auth)
            self.assertEqual((s, b["contact"]["id"], b["contact"]["firstName"]), (200, c["contact"]["id"], "K"))
            s, _, b = call(sbx.port, "POST", "/v1/messages", {"to": "+12055550171", "body": "y", "externalId": "e1"},
                           headers=auth)
            self.assertEqual((s, b["message"]["id"], b["message"]["status"]), (200, m["message"]["id"], "delivered"))
            s, _, b = call(sbx.port, "POST", "/v1/messages", {"to": "+12055550172", "body": "y"}, headers=auth)
            self.assertEqual((s, b["error"]["code"]), (422, "recipient_opted_out"))
        finally:
            self.assertEqual(sbx.stop(), 0)

    def test_twilio_state_survives_kill9(self):
        sbx = base.Sandbox(TWILIO, self.tmp, ["--state", os.path.join(self.tmp, "twilio.json"),
                                              "--delivery-delay-ms", "0"],
                           port=base.free_port()).start()
        sid_ = "AC0123456789abcdef0123456789abcdef"
        auth = {"Authorization": "Basic " + base64.b64encode((sid_ + ":sandbox-twilio-token").encode()).decode()}
        path = "/2010-04-01/Accounts/%s/Messages" % sid_
        try:
            s, _, m = call(sbx.port, "POST", path + ".json", form={"To": "+12055550180", "From": "+12055550100",
                                                                   "Body": "x"}, headers=auth)
            self.assertEqual(s, 201)
            call(sbx.port, "POST", "/_sandbox/inbound", {"from": "+12055550181", "body": "STOP"})
            sbx = self.restart(sbx)
            s, _, b = call(sbx.port, "GET", "%s/%s.json" % (path, m["sid"]), headers=auth)
            self.assertEqual((s, b["status"]), (200, "delivered"))
            s, _, b = call(sbx.port, "POST", path + ".json", form={"To": "+12055550181", "From": "+12055550100",
                                                                   "Body": "x"}, headers=auth)
            self.assertEqual((s, b["code"]), (400, 21610))
        finally:
            self.assertEqual(sbx.stop(), 0)


if __name__ == "__main__":
    started = time.time()
    result = unittest.main(exit=False, verbosity=2).result
    print("verity/twilio sandbox self-test: %.1f s" % (time.time() - started))
    sys.exit(0 if result.wasSuccessful() else 1)
