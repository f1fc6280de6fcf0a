#!/usr/bin/env python3
"""Self-test of the GoHighLevel sandbox's conversations, messages, notes and tags.

Starts sandboxes/ghl.py on free loopback ports with two local receivers (the
webhook URL and the custom provider's Delivery URL) and checks the routes of
docs/vendors/ghl-api.md §3.9, §3.10 and §4: conversations (create, search,
get), inbound and outbound messages and calls, the documented errors (wrong
type, wrong provider, unknown conversation, missing Version / auth), the
provider's status update, the ProviderOutboundMessage delivery (shaped like
tests/fixtures/ghl/ProviderOutboundMessage.json, Ed25519-signed), the
message, note and tag webhooks, the admin lists, the answer shapes, and the
state surviving kill -9.

Standard library + cryptography. Run: python3 tests/sandboxes/ghl_conversations_test.py
"""
import base64
import json
import os
import shutil
import sys
import tempfile
import time
import unittest
import urllib.parse

from cryptography.hazmat.primitives import serialization

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from sandbox_test import (GHL, GHL_PUBLIC_KEY, ROOT, Receiver, Sandbox, call,  # noqa: E402
                          drain_and_reset, free_port)

LOC = "loc_conv"
TOKEN = "conv-test-token"
PROVIDER = "prov-sms-1"
CALL_PROVIDER = "prov-call-1"
V_CONV = "2021-04-15"
V_CONTACTS = "2021-07-28"
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "ghl")  # copies of the shared vendor bodies
PHONE = "+12055550142"
OUR_NUMBER = "+12055550199"


def api(port, method, path, body=None, token=TOKEN, version=V_CONV):
    headers = {"Accept": "application/json"}
    if version:
        headers["Version"] = version
    if token:
        headers["Authorization"] = "Bearer " + token
    return call(port, method, path, body=body, headers=headers)


def fixture_keys(name):
    """The keys of a fixture, in order (webhookId/timestamp included)."""
    with open(os.path.join(FIXTURES, name)) as f:  # a missing fixture fails the test
        return list(json.load(f).keys())


def verify_ed25519(test, hook):
    with open(GHL_PUBLIC_KEY, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    sig = hook["headers"].get("x-ghl-signature")
    test.assertTrue(sig, "no X-GHL-Signature")
    key.verify(base64.b64decode(sig), hook["raw"])  # raises InvalidSignature


def start(tmp, receiver, provider_receiver, extra=(), port=0, state=True):
    args = ["--location-id", LOC, "--access-token", TOKEN,
            "--conversation-provider-id", PROVIDER, "--call-provider-id", CALL_PROVIDER,
            "--webhook-url", receiver.url, "--webhook-backoff-ms", "50"]
    if provider_receiver is not None:
        args += ["--provider-url", provider_receiver.url]
    if state:
        args += ["--state", os.path.join(tmp, "state.json")]
    return Sandbox(GHL, tmp, args + list(extra), port=port).start()


class ConversationsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ghl-conv-")
        cls.hooks = Receiver()
        cls.provider = Receiver()
        cls.sbx = start(cls.tmp, cls.hooks, cls.provider)
        cls.port = cls.sbx.port

    @classmethod
    def tearDownClass(cls):
        code = cls.sbx.stop()
        cls.hooks.close()
        cls.provider.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert code == 0, "sandbox exit code %s on SIGTERM" % code

    def setUp(self):
        self.assertEqual(drain_and_reset(self.port, self.hooks), 200)
        self.provider.reset()

    # -- helpers
    def admin(self, method, path, body=None):
        return call(self.port, method, "/_sandbox" + path, body=body)

    def contact(self, **fields):
        fields.setdefault("phone", PHONE)
        fields.setdefault("firstName", "Ann")
        fields["webhook"] = False
        s, _, b = self.admin("POST", "/contacts", fields)
        self.assertEqual(s, 201, b)
        return b["contact"]

    def conversation(self, contact_id):
        s, _, b = api(self.port, "POST", "/conversations/", {"locationId": LOC, "contactId": contact_id})
        self.assertEqual(s, 201, b)
        return b["conversation"]["id"]

    def sms(self, conv, contact, **extra):
        body = {"type": "SMS", "conversationId": conv, "contactId": contact,
                "conversationProviderId": PROVIDER, "message": "hello", "direction": "inbound"}
        body.update(extra)
        return api(self.port, "POST", "/conversations/messages/inbound", body)

    def hooks_of(self, receiver, n):
        out = []
        for h in receiver.wait(n):
            out.append(dict(h, body=json.loads(h["raw"])))
        return out

    def messages(self, conv, query=""):
        s, _, b = api(self.port, "GET", "/conversations/%s/messages%s" % (conv, query))
        self.assertEqual(s, 200, b)
        return b["messages"]

    # -- headers, auth, rate-limit headers, faults (ghl-api.md §1, §2, §8)
    def test_headers_and_auth(self):
        c = self.contact()
        for method, path in (("POST", "/conversations/"), ("GET", "/conversations/search?locationId=" + LOC),
                             ("POST", "/conversations/messages/inbound"),
                             ("PUT", "/conversations/messages/x/status"),
                             ("POST", "/contacts/%s/notes" % c["id"])):
            s, h, b = api(self.port, method, path, {}, version=None)
            self.assertEqual((s, b), (401, {"statusCode": 401, "message": "version header was not found."}), path)
            self.assertIn("x-ratelimit-remaining", h)
            s, _, b = api(self.port, method, path, {}, token=None)
            self.assertEqual((s, b["message"]), (401, "No Authorization header found for authentication!"))
            s, _, b = api(self.port, method, path, {}, token="garbage")
            self.assertEqual((s, b["message"]), (401, "Invalid JWT"))
        # The contacts Version is accepted on conversation paths too (README choice).
        s, _, _ = api(self.port, "GET", "/conversations/search?locationId=" + LOC, version=V_CONTACTS)
        self.assertEqual(s, 200)
        self.assertEqual(self.admin("POST", "/faults", {"faults": [
            {"status": 429, "path_prefix": "/conversations"}]})[0], 200)
        s, _, b = api(self.port, "GET", "/conversations/search?locationId=" + LOC)
        self.assertEqual((s, b), (429, {"statusCode": 429, "message": "Too Many Requests"}))
        self.assertEqual(api(self.port, "GET", "/conversations/search?locationId=" + LOC)[0], 200)

    # -- conversations (§4.3)
    def test_conversation_create_search_get(self):
        c = self.contact(email="ann@example.com")
        s, _, b = api(self.port, "POST", "/conversations/", {"locationId": LOC, "contactId": c["id"]})
        self.assertEqual(s, 201, b)
        self.assertIs(b["success"], True)
        conv = b["conversation"]
        for k in ("id", "dateUpdated", "dateAdded", "deleted", "contactId", "locationId", "lastMessageDate"):
            self.assertIn(k, conv)
        self.assertEqual((conv["contactId"], conv["locationId"], conv["deleted"]), (c["id"], LOC, False))
        # One conversation per contact: the live answer, without the id.
        s, _, b = api(self.port, "POST", "/conversations/", {"locationId": LOC, "contactId": c["id"]})
        self.assertEqual((s, b["message"]), (400, "Conversation with the contact id:%s already exists!" % c["id"]))
        self.assertNotIn(conv["id"], json.dumps(b))
        s, _, b = api(self.port, "POST", "/conversations/", {"locationId": LOC, "contactId": "nope"})
        self.assertEqual((s, b), (400, {"statusCode": 400, "message": "Contact with id nope not found"}))
        s, _, b = api(self.port, "POST", "/conversations/", {"contactId": c["id"], "extra": 1})
        self.assertEqual(s, 422)
        self.assertEqual(b["error"], "Unprocessable Entity")
        self.assertIn("locationId should not be empty", b["message"])
        self.assertIn("property extra should not exist", b["message"])
        s, _, b = api(self.port, "POST", "/conversations/", {"locationId": "other", "contactId": c["id"]})
        self.assertEqual((s, b["message"]), (403, "The token does not have access to this location."))

        q = "/conversations/search?locationId=%s&contactId=%s" % (LOC, c["id"])
        s, _, b = api(self.port, "GET", q)
        self.assertEqual((s, b["total"], len(b["conversations"])), (200, 1, 1))
        found = b["conversations"][0]
        for k in ("id", "contactId", "locationId", "lastMessageBody", "lastMessageType", "type",
                  "unreadCount", "fullName", "contactName", "email", "phone"):
            self.assertIn(k, found)
        self.assertEqual((found["id"], found["phone"], found["email"]), (conv["id"], PHONE, "ann@example.com"))
        s, _, b = api(self.port, "GET", "/conversations/search?locationId=%s&contactId=other" % LOC)
        self.assertEqual(b, {"conversations": [], "total": 0})
        s, _, b = api(self.port, "GET", "/conversations/search?locationId=%s&query=%s"
                      % (LOC, urllib.parse.quote(PHONE)))
        self.assertEqual(b["total"], 1)
        s, _, b = api(self.port, "GET", "/conversations/search?contactId=" + c["id"])
        self.assertEqual((s, b["message"]), (422, ["locationId should not be empty"]))

        s, _, b = api(self.port, "GET", "/conversations/" + conv["id"])
        self.assertEqual(s, 200, b)
        for k in ("contactId", "locationId", "deleted", "inbox", "type", "unreadCount", "id"):
            self.assertIn(k, b)
        self.assertEqual((b["id"], b["type"]), (conv["id"], 1))
        s, _, b = api(self.port, "GET", "/conversations/nope")
        self.assertEqual((s, b), (400, {"statusCode": 400, "message": "Conversation with id nope not found"}))

    # -- messages (§4.1, §4.4)
    def test_inbound_sms_round_trip(self):
        c = self.contact()
        conv = self.conversation(c["id"])
        s, _, b = self.sms(conv, c["id"], altId="alw-1", date="2026-11-20T10:19:58.750-05:00",
                           attachments=["https://example.com/a.png"])
        self.assertEqual(s, 200, b)
        self.assertEqual(set(b), {"success", "conversationId", "messageId", "message", "contactId", "dateAdded"})
        self.assertIs(b["success"], True)
        self.assertEqual((b["conversationId"], b["contactId"]), (conv, c["id"]))
        self.assertEqual(b["dateAdded"], "2026-11-20T15:19:58.750Z")
        mid = b["messageId"]

        hook = self.hooks_of(self.hooks, 1)[0]
        verify_ed25519(self, hook)
        w = hook["body"]
        self.assertEqual(list(w.keys()), fixture_keys("InboundMessage.json"))
        self.assertEqual((w["type"], w["messageType"], w["direction"], w["status"]),
                         ("InboundMessage", "SMS", "inbound", "delivered"))
        self.assertEqual((w["messageId"], w["conversationId"], w["contactId"], w["body"]),
                         (mid, conv, c["id"], "hello"))
        self.assertEqual((w["conversationProviderId"], w["attachments"]), (PROVIDER, ["https://example.com/a.png"]))

        # The same altId again: stored again (no de-duplication is documented).
        s, _, b2 = self.sms(conv, c["id"], altId="alw-1", message="again")
        self.assertEqual(s, 200)
        self.assertNotEqual(b2["messageId"], mid)

        doc = self.messages(conv)
        self.assertEqual(set(doc), {"lastMessageId", "nextPage", "messages"})
        self.assertEqual([m["id"] for m in doc["messages"]], [b2["messageId"], mid])  # newest first
        self.assertEqual(doc["lastMessageId"], mid)
        self.assertIs(doc["nextPage"], False)
        m = doc["messages"][1]
        for k in ("id", "type", "messageType", "locationId", "contactId", "conversationId", "dateAdded",
                  "direction", "contentType"):
            self.assertIn(k, m)
        self.assertEqual((m["altId"], m["type"], m["messageType"], m["body"], m["status"], m["source"]),
                         ("alw-1", 2, "TYPE_SMS", "hello", "delivered", "api"))
        self.assertEqual(m["conversationProviderId"], PROVIDER)

        s, _, one = api(self.port, "GET", "/conversations/messages/" + mid)
        self.assertEqual((s, one), (200, m))
        s, _, b = api(self.port, "GET", "/conversations/messages/nope")
        self.assertEqual((s, b["message"]), (400, "Message with id nope not found"))

        # An outbound-direction text goes through the inbound endpoint.
        s, _, b = self.sms(conv, c["id"], direction="outbound", message="sent from Aloware", altId="alw-2")
        self.assertEqual(s, 200, b)
        w = self.hooks_of(self.hooks, 3)[2]["body"]
        self.assertEqual((w["type"], w["direction"], w["source"], w["body"]),
                         ("OutboundMessage", "outbound", "api", "sent from Aloware"))
        # ProcessMessageBodyDto: direction "default is outbound".
        body = {"type": "SMS", "conversationId": conv, "contactId": c["id"],
                "conversationProviderId": PROVIDER, "message": "no direction"}
        s, _, b = api(self.port, "POST", "/conversations/messages/inbound", body)
        self.assertEqual(s, 200, b)
        self.assertEqual(self.hooks_of(self.hooks, 4)[3]["body"]["direction"], "outbound")
        # contactId alone: the contact's conversation is used.
        body = {"type": "SMS", "contactId": c["id"], "conversationProviderId": PROVIDER,
                "message": "by contact", "direction": "inbound"}
        s, _, b = api(self.port, "POST", "/conversations/messages/inbound", body)
        self.assertEqual((s, b["conversationId"]), (200, conv))

        # Paging: limit, nextPage, lastMessageId; type filter.
        page1 = self.messages(conv, "?limit=2")
        self.assertEqual((len(page1["messages"]), page1["nextPage"]), (2, True))
        page2 = self.messages(conv, "?limit=2&lastMessageId=" + page1["lastMessageId"])
        page3 = self.messages(conv, "?limit=2&lastMessageId=" + page2["lastMessageId"])
        ids = [x["id"] for p in (page1, page2, page3) for x in p["messages"]]
        self.assertEqual(len(ids), 5)
        self.assertEqual(len(set(ids)), 5)
        self.assertIs(page3["nextPage"], False)
        self.assertEqual(self.messages(conv, "?type=TYPE_CALL")["messages"], [])
        self.assertEqual(len(self.messages(conv, "?type=TYPE_SMS,TYPE_CALL")["messages"]), 5)

        s, _, b = api(self.port, "GET", "/conversations/search?locationId=%s&contactId=%s" % (LOC, c["id"]))
        last = b["conversations"][0]
        self.assertEqual((last["lastMessageBody"], last["lastMessageType"]), ("by contact", "TYPE_SMS"))

    def test_calls(self):
        c = self.contact()
        conv = self.conversation(c["id"])
        inbound = {"type": "Call", "conversationId": conv, "contactId": c["id"],
                   "conversationProviderId": CALL_PROVIDER, "direction": "inbound", "altId": "call-1",
                   "call": {"to": OUR_NUMBER, "from": "(205) 555-0142", "status": "completed"}}
        s, _, b = api(self.port, "POST", "/conversations/messages/inbound", inbound)
        self.assertEqual(s, 200, b)
        w = self.hooks_of(self.hooks, 1)[0]["body"]
        self.assertEqual((w["type"], w["messageType"], w["direction"], w["status"], w["callStatus"]),
                         ("InboundMessage", "CALL", "inbound", "completed", "completed"))
        self.assertNotIn("body", w)

        vm = dict(inbound, altId="call-2", call=dict(inbound["call"], status="voicemail"))
        s, _, b = api(self.port, "POST", "/conversations/messages/inbound", vm)
        self.assertEqual(s, 200, b)
        w = self.hooks_of(self.hooks, 2)[1]["body"]
        self.assertEqual((w["status"], w["callStatus"]), ("voicemail", "voicemail"))

        out = {"type": "Call", "conversationId": conv, "conversationProviderId": CALL_PROVIDER,
               "altId": "call-3", "attachments": ["https://example.com/rec.mp3"],
               "date": "2020-11-20T15:29:42.250Z",
               "call": {"to": PHONE, "from": OUR_NUMBER, "status": "voicemail"}}
        s, _, b = api(self.port, "POST", "/conversations/messages/outbound", out)
        self.assertEqual(s, 200, b)
        self.assertEqual(b["dateAdded"], "2020-11-20T15:29:42.250Z")
        w = self.hooks_of(self.hooks, 3)[2]["body"]
        self.assertEqual((w["type"], w["messageType"], w["direction"], w["status"], w["callStatus"]),
                         ("OutboundMessage", "CALL", "outbound", "completed", "voicemail"))
        self.assertEqual(w["attachments"], ["https://example.com/rec.mp3"])
        missing = set(fixture_keys("OutboundMessage-call.json")) - set(w) - {"userId", "callDuration"}
        self.assertEqual(missing, set())

        s, _, m = api(self.port, "GET", "/conversations/messages/" + b["messageId"])
        self.assertEqual((m["type"], m["messageType"], m["meta"], m["altId"]),
                         (1, "TYPE_CALL", {"callStatus": "voicemail"}, "call-3"))
        calls = self.messages(conv, "?type=TYPE_CALL")["messages"]
        # Newest first by dateAdded: the back-dated call-3 comes last.
        self.assertEqual([x["altId"] for x in calls], ["call-2", "call-1", "call-3"])

        # The outbound call by contactId alone (vendor's newer reference page);
        # null counts as absent (class-validator's IsOptional).
        body = {k: v for k, v in out.items() if k != "conversationId"}
        s, _, b = api(self.port, "POST", "/conversations/messages/outbound", dict(body, contactId=c["id"]))
        self.assertEqual((s, b.get("conversationId")), (200, conv))
        s, _, b = api(self.port, "POST", "/conversations/messages/outbound",
                      dict(out, conversationId=None, contactId=c["id"], altId="call-4"))
        self.assertEqual((s, b.get("conversationId")), (200, conv))

        # The contact-side number must be the contact's (ConversationProviders.md).
        bad = dict(out, call={"to": "+12055550100", "from": OUR_NUMBER, "status": "completed"})
        s, _, b = api(self.port, "POST", "/conversations/messages/outbound", bad)
        self.assertEqual(s, 400)
        self.assertIn("does not match the contact", b["message"])
        s, _, b = api(self.port, "POST", "/conversations/messages/outbound",
                      {k: v for k, v in out.items() if k != "call"})
        self.assertEqual((s, b["message"]), (400, "call is required for messages of type Call"))
        # The outbound endpoint takes only Call, and only its DTO's fields.
        s, _, b = api(self.port, "POST", "/conversations/messages/outbound", dict(out, type="SMS"))
        self.assertEqual((s, b["message"]), (422, ["type must be one of the following values: Call"]))
        s, _, b = api(self.port, "POST", "/conversations/messages/outbound", dict(out, message="x"))
        self.assertEqual((s, b["message"]), (422, ["property message should not exist"]))
        s, _, b = api(self.port, "POST", "/conversations/messages/outbound",
                      dict(out, call={"to": PHONE, "status": "ringing"}))
        self.assertEqual(s, 422)
        self.assertTrue(b["message"][0].startswith("call.status must be one of the following values"))
        # A call naming the SMS provider.
        s, _, b = api(self.port, "POST", "/conversations/messages/outbound",
                      dict(out, conversationProviderId=PROVIDER))
        self.assertEqual((s, b["message"]), (400, "Invalid conversationProviderId"))

    def test_message_errors(self):
        c = self.contact()
        other = self.contact(phone="+12055550143", firstName="Bob")
        conv = self.conversation(c["id"])
        s, _, b = self.sms(conv, c["id"], type="Fax")
        self.assertEqual(s, 422)
        self.assertEqual(b["error"], "Unprocessable Entity")
        self.assertTrue(b["message"][0].startswith("type must be one of the following values: SMS, RCS, Email"))
        s, _, b = self.sms(conv, c["id"], type="Email")
        self.assertEqual((s, b["statusCode"]), (400, 400))
        s, _, b = self.sms(conv, c["id"], conversationProviderId="someone-else")
        self.assertEqual((s, b), (400, {"statusCode": 400, "message": "Invalid conversationProviderId",
                                        "error": "Bad Request"}))
        s, _, b = self.sms(conv, c["id"], conversationProviderId=CALL_PROVIDER)
        self.assertEqual((s, b["message"]), (400, "Invalid conversationProviderId"))
        s, _, b = self.sms("nope", c["id"])
        self.assertEqual((s, b), (400, {"statusCode": 400, "message": "Conversation with id nope not found"}))
        s, _, b = self.sms(conv, other["id"])
        self.assertEqual(s, 400)
        s, _, b = self.sms(conv, "ghost")
        self.assertEqual((s, b["message"]), (400, "Contact with id ghost not found"))
        s, _, b = self.sms(None, None)  # null = absent (IsOptional)
        self.assertEqual((s, b["message"]), (400, "Either conversationId or contactId is required"))
        body = {"type": "SMS", "conversationProviderId": PROVIDER, "message": "x"}
        s, _, b = api(self.port, "POST", "/conversations/messages/inbound", body)
        self.assertEqual((s, b["message"]), (400, "Either conversationId or contactId is required"))
        body = {"type": "SMS", "conversationId": conv, "contactId": c["id"]}
        s, _, b = api(self.port, "POST", "/conversations/messages/inbound", body)
        self.assertEqual((s, b["message"]), (422, ["conversationProviderId should not be empty"]))
        s, _, b = self.sms(conv, c["id"], direction="sideways", date="yesterday", bogus=True)
        self.assertEqual(s, 422)
        self.assertEqual(set(b["message"]), {"property bogus should not exist",
                                             "direction must be one of the following values: outbound, inbound",
                                             "date must be a valid ISO 8601 date string"})
        s, _, b = self.sms(conv, c["id"], attachments="x")
        self.assertEqual((s, b["message"]), (422, ["attachments must be an array"]))
        s, _, b = api(self.port, "GET", "/conversations/nope/messages")
        self.assertEqual((s, b["message"]), (400, "Conversation with id nope not found"))
        # Nothing was stored by the refused posts.
        self.assertEqual(self.admin("GET", "/messages")[2], [])

    # -- provider delivery and status update (§4.5, §6.3)
    def test_provider_outbound_and_status(self):
        c = self.contact()
        s, _, b = self.admin("POST", "/provider-outbound", {"contactId": c["id"], "message": "Hi from GHL",
                                                             "type": "SMS", "userId": "usr_agent", "wait": True})
        self.assertEqual(s, 200, b)
        msg = b["message"]
        self.assertEqual((msg["status"], msg["direction"], msg["type"], msg["source"], msg["body"]),
                         ("pending", "outbound", "SMS", "app", "Hi from GHL"))
        self.assertEqual(b["delivery"]["status"], 200)
        self.assertEqual(b["delivery"]["event"], "ProviderOutboundMessage")
        conv = b["conversationId"]
        self.assertEqual(msg["conversationId"], conv)  # created for the contact

        delivered = self.hooks_of(self.provider, 1)[0]
        verify_ed25519(self, delivered)
        p = delivered["body"]
        self.assertEqual(list(p.keys()), fixture_keys("ProviderOutboundMessage.json"))
        self.assertEqual(p, {"contactId": c["id"], "locationId": LOC, "messageId": msg["id"], "type": "SMS",
                             "phone": PHONE, "message": "Hi from GHL", "attachments": [], "userId": "usr_agent"})
        self.assertNotIn("webhookId", p)
        self.assertEqual(delivered["path"], urllib.parse.urlsplit(self.provider.url).path)
        # The general OutboundMessage webhook goes to the webhook URL.
        w = self.hooks_of(self.hooks, 1)[0]["body"]
        self.assertEqual((w["type"], w["messageId"], w["status"], w["source"], w["userId"]),
                         ("OutboundMessage", msg["id"], "pending", "app", "usr_agent"))
        logged = [x["event"] for x in self.admin("GET", "/webhooks")[2]]
        self.assertEqual(sorted(logged), ["OutboundMessage", "ProviderOutboundMessage"])

        # The provider reports delivery.
        path = "/conversations/messages/%s/status" % msg["id"]
        s, _, b = api(self.port, "PUT", path, {"status": "delivered"})
        self.assertEqual((s, b), (200, {"conversationId": conv, "messageId": msg["id"], "status": "delivered"}))
        self.assertEqual(api(self.port, "GET", "/conversations/messages/" + msg["id"])[2]["status"], "delivered")
        s, _, b = api(self.port, "PUT", path, {"status": "failed",
                                               "error": {"code": "1", "type": "saas", "message": "carrier"}})
        self.assertEqual(s, 200, b)
        stored = self.admin("GET", "/messages?contactId=" + c["id"])[2]
        self.assertEqual((stored[0]["status"], stored[0]["error"]["message"]), ("failed", "carrier"))
        s, _, b = api(self.port, "PUT", path, {"status": "sent"})
        self.assertEqual((s, b["message"]), (422, ["status must be one of the following values: "
                                                   "delivered, failed, pending, read"]))
        s, _, b = api(self.port, "PUT", path, {"status": "failed", "error": {"message": "x"}})
        self.assertEqual((s, b["message"]), (422, ["error.code must be a string", "error.type must be a string"]))
        s, _, b = api(self.port, "PUT", path, {})
        self.assertEqual(s, 422)
        s, _, b = api(self.port, "PUT", "/conversations/messages/nope/status", {"status": "read"})
        self.assertEqual((s, b["message"]), (400, "Message with id nope not found"))

        # Admin errors.
        self.assertEqual(self.admin("POST", "/provider-outbound", {"contactId": "nope", "message": "x"})[0], 404)
        nophone = self.admin("POST", "/contacts", {"email": "x@example.com", "webhook": False})[2]["contact"]
        self.assertEqual(self.admin("POST", "/provider-outbound",
                                    {"contactId": nophone["id"], "message": "x"})[0], 400)
        self.assertEqual(self.admin("POST", "/provider-outbound",
                                    {"contactId": c["id"], "message": "x", "type": "Email"})[0], 400)

    # -- notes (§3.10)
    def test_notes(self):
        c = self.contact()
        path = "/contacts/%s/notes" % c["id"]
        s, _, b = api(self.port, "POST", path, {"body": "first note", "userId": "usr_1"}, version=V_CONTACTS)
        self.assertEqual(s, 201, b)
        n1 = b["note"]
        self.assertEqual((n1["body"], n1["userId"], n1["contactId"], n1["pinned"]),
                         ("first note", "usr_1", c["id"], False))
        for k in ("id", "dateAdded", "title", "color"):
            self.assertIn(k, n1)
        w = self.hooks_of(self.hooks, 1)[0]
        verify_ed25519(self, w)
        self.assertEqual((w["body"]["type"], w["body"]["id"], w["body"]["body"], w["body"]["contactId"]),
                         ("NoteCreate", n1["id"], "first note", c["id"]))
        time.sleep(0.002)
        s, _, b = api(self.port, "POST", path, {"body": "second", "title": "T", "pinned": True}, version=V_CONTACTS)
        self.assertEqual(s, 201, b)
        n2 = b["note"]
        s, _, b = api(self.port, "GET", path, version=V_CONTACTS)
        self.assertEqual((s, [n["id"] for n in b["notes"]]), (200, [n2["id"], n1["id"]]))
        s, _, b = api(self.port, "GET", path + "/" + n1["id"], version=V_CONTACTS)
        self.assertEqual((s, b), (200, {"note": n1}))
        s, _, b = api(self.port, "GET", path + "/nope", version=V_CONTACTS)
        self.assertEqual((s, b["message"]), (400, "Note with id nope not found"))

        s, _, b = api(self.port, "POST", path, {}, version=V_CONTACTS)
        self.assertEqual((s, b["message"]), (422, ["body should not be empty", "body must be a string"]))
        s, _, b = api(self.port, "POST", path, {"body": "x", "color": 3, "bogus": 1}, version=V_CONTACTS)
        self.assertEqual((s, b["message"]), (422, ["property bogus should not exist", "color must be a string"]))
        s, _, b = api(self.port, "POST", "/contacts/ghost/notes", {"body": "x"}, version=V_CONTACTS)
        self.assertEqual((s, b), (400, {"statusCode": 400, "message": "Contact with id ghost not found"}))
        s, _, b = api(self.port, "GET", "/contacts/ghost/notes", version=V_CONTACTS)
        self.assertEqual(s, 400)
        notes = self.admin("GET", "/notes?contactId=" + c["id"])[2]
        self.assertEqual([n["id"] for n in notes], [n1["id"], n2["id"]])
        self.assertEqual(self.admin("GET", "/notes?contactId=other")[2], [])

    # -- tags (§3.9): ContactTagUpdate with the full set
    def test_tag_webhooks(self):
        c = self.contact(tags=["new lead"])
        path = "/contacts/%s/tags" % c["id"]
        s, _, b = api(self.port, "POST", path, {"tags": ["Hot", "call now"]}, version=V_CONTACTS)
        self.assertEqual((s, b), (201, {"tags": ["new lead", "hot", "call now"]}))
        hook = self.hooks_of(self.hooks, 1)[0]
        verify_ed25519(self, hook)
        w = hook["body"]
        self.assertEqual((w["type"], w["id"], w["tags"]), ("ContactTagUpdate", c["id"], ["new lead", "hot", "call now"]))
        self.assertEqual(set(fixture_keys("ContactTagUpdate.json")) - set(w), set())
        # No change, no webhook.
        s, _, b = api(self.port, "POST", path, {"tags": ["hot"]}, version=V_CONTACTS)
        self.assertEqual(s, 201)
        s, _, b = api(self.port, "DELETE", path, {"tags": ["hot"]}, version=V_CONTACTS)
        self.assertEqual((s, b), (200, {"tags": ["new lead", "call now"]}))
        hooks = self.hooks_of(self.hooks, 2)
        self.assertEqual(hooks[1]["body"]["tags"], ["new lead", "call now"])
        # A user editing the tags in the UI.
        s, _, b = self.admin("POST", "/contacts", {"id": c["id"], "tags": ["vip"]})
        self.assertEqual(s, 200, b)
        self.assertEqual([x["event"] for x in b["webhooks"]], ["ContactTagUpdate"])
        hooks = self.hooks_of(self.hooks, 3)
        self.assertEqual((hooks[2]["body"]["type"], hooks[2]["body"]["tags"]), ("ContactTagUpdate", ["vip"]))
        time.sleep(0.2)
        self.assertEqual(len(self.hooks.requests), 3)

    # -- admin lists
    def test_admin_lists(self):
        a, b = self.contact(), self.contact(phone="+12055550143")
        conv_a = self.conversation(a["id"])
        self.sms(conv_a, a["id"], altId="m1")
        self.admin("POST", "/provider-outbound", {"contactId": b["id"], "message": "hey"})
        convs = self.admin("GET", "/conversations")[2]
        self.assertEqual(sorted(c["contactId"] for c in convs), sorted([a["id"], b["id"]]))
        self.assertTrue(all(c["messageCount"] == 1 for c in convs))
        msgs = self.admin("GET", "/messages")[2]
        self.assertEqual([(m["type"], m["direction"], m["altId"], m["status"]) for m in msgs],
                         [("SMS", "inbound", "m1", "delivered"), ("SMS", "outbound", None, "pending")])
        for k in ("body", "call", "attachments", "conversationProviderId"):
            self.assertIn(k, msgs[0])
        self.assertEqual(len(self.admin("GET", "/messages?contactId=" + b["id"])[2]), 1)
        self.assertEqual(len(self.admin("GET", "/messages?conversationId=" + conv_a)[2]), 1)
        settings = self.admin("GET", "/settings")[2]
        self.assertEqual((settings["conversation_provider_id"], settings["call_provider_id"]),
                         (PROVIDER, CALL_PROVIDER))
        self.assertEqual(self.admin("POST", "/reset")[0], 200)
        self.assertEqual(self.admin("GET", "/messages")[2], [])
        self.assertEqual(self.admin("GET", "/conversations")[2], [])


class ShapesAndRestartTest(unittest.TestCase):
    """--message-shapes, and state (conversations, messages, notes) across kill -9."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ghl-conv-r-")
        self.hooks = Receiver()
        self.provider = Receiver()
        self.running = []

    def tearDown(self):
        for s in self.running:
            if s.proc.poll() is None:
                s.stop()
        self.hooks.close()
        self.provider.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def boot(self, extra=(), port=0, tmp=None):
        s = start(tmp or self.tmp, self.hooks, self.provider, extra, port=port)
        self.running.append(s)
        return s

    def seed(self, port):
        s, _, b = call(port, "POST", "/_sandbox/contacts", {"firstName": "Ann", "phone": PHONE, "webhook": False})
        cid = b["contact"]["id"]
        s, _, b = api(port, "POST", "/conversations/", {"locationId": LOC, "contactId": cid})
        conv = b["conversation"]["id"]
        body = {"type": "Call", "conversationId": conv, "contactId": cid, "conversationProviderId": CALL_PROVIDER,
                "direction": "inbound", "altId": "c-1", "call": {"from": PHONE, "to": OUR_NUMBER, "status": "answered"}}
        s, _, b = api(port, "POST", "/conversations/messages/inbound", body)
        self.assertEqual(s, 200, b)
        return cid, conv, b["messageId"]

    def test_shapes(self):
        live = self.boot(["--message-shapes", "live"], tmp=tempfile.mkdtemp(dir=self.tmp))
        cid, conv, mid = self.seed(live.port)
        s, _, b = api(live.port, "GET", "/conversations/messages/" + mid)
        self.assertEqual(set(b), {"message", "traceId"})
        self.assertEqual(b["message"]["meta"], {"call": {"status": "completed"}})
        b = api(live.port, "GET", "/conversations/%s/messages" % conv)[2]
        self.assertEqual(b["messages"]["messages"][0]["altId"], "c-1")

        flat = self.boot(["--message-shapes", "openapi"], tmp=tempfile.mkdtemp(dir=self.tmp))
        cid, conv, mid = self.seed(flat.port)
        b = api(flat.port, "GET", "/conversations/%s/messages" % conv)[2]
        self.assertEqual(set(b), {"lastMessageId", "nextPage", "messages"})
        self.assertEqual((b["messages"][0]["id"], b["messages"][0]["altId"]), (mid, "c-1"))
        self.assertEqual(api(flat.port, "GET", "/conversations/messages/" + mid)[2]["id"], mid)

    def test_state_survives_kill9(self):
        port = free_port()
        first = self.boot(port=port)
        cid, conv, mid = self.seed(port)
        s, _, note = api(port, "POST", "/contacts/%s/notes" % cid, {"body": "kept"}, version=V_CONTACTS)
        self.assertEqual(s, 201)
        s, _, b = call(port, "POST", "/_sandbox/provider-outbound", {"contactId": cid, "message": "out"})
        self.assertEqual(s, 200, b)
        pending = b["message"]["id"]
        first.kill9()

        second = self.boot(port=port)
        s, _, b = api(port, "GET", "/conversations/search?locationId=%s&contactId=%s" % (LOC, cid))
        self.assertEqual((s, [c["id"] for c in b["conversations"]]), (200, [conv]))
        msgs = api(port, "GET", "/conversations/%s/messages" % conv)[2]["messages"]["messages"]
        self.assertEqual(sorted(m["id"] for m in msgs), sorted([mid, pending]))
        self.assertEqual(api(port, "GET", "/contacts/%s/notes" % cid, version=V_CONTACTS)[2]["notes"][0]["id"],
                         note["note"]["id"])
        # New messages after the restart do not reuse ids or reorder.
        s, _, b = api(port, "POST", "/conversations/messages/inbound",
                      {"type": "SMS", "conversationId": conv, "contactId": cid,
                       "conversationProviderId": PROVIDER, "message": "after", "direction": "inbound"})
        self.assertEqual(s, 200, b)
        self.assertEqual(api(port, "GET", "/conversations/%s/messages?limit=1" % conv)[2]["messages"]
                         ["messages"][0]["id"], b["messageId"])
        self.assertEqual(second.stop(), 0)

        # Another app's provider may not update these messages' status.
        self.boot(["--conversation-provider-id", "someone-else", "--call-provider-id", "someone-else"], port=port)
        s, _, b = api(port, "PUT", "/conversations/messages/%s/status" % pending, {"status": "delivered"})
        self.assertEqual((s, b), (403, {"statusCode": 403, "message": "No conversation provider found for this message"}))


if __name__ == "__main__":
    started = time.time()
    try:
        unittest.main(verbosity=1)
    finally:
        print("ghl conversations self-test: %.1f s" % (time.time() - started), file=sys.stderr)
