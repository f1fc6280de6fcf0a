#!/usr/bin/env python3
"""Verity texting API sandbox: contacts (upsert by phone), sending texts, opt-outs, signed webhooks.

Verity is the in-house texting platform (over Telnyx); it has no public API
document, so docs/verity.md is the contract and this sandbox plays exactly
that contract on loopback: "API DF-Middleware calls" (each handler names the
part it follows) and "Webhooks Verity sends". Choices where that contract is
silent are listed in sandboxes/README.md ("Verity: choices where the contract
is silent").

Run: python3 sandboxes/verity.py --port 0 --port-file /tmp/verity.port [--webhook-url URL] ...
"""

import os
import re
import secrets
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (Sandbox, hmac_sha256_hex, iso_ms, json_bytes,  # noqa: E402
                    json_response, run)

# docs/verity.md: phone numbers are E.164, checked with exactly this pattern.
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BODY_MAX = 1600
EXTERNAL_ID_MAX = 200

# docs/verity.md ("Opt-out words"): a whole text of one of these, after
# removing punctuation, upper-casing and collapsing whitespace.
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"}
START_WORDS = {"START", "UNSTOP", "YES"}

CONTACT_STRING_KEYS = ("email", "firstName", "lastName", "externalRef")

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid():
    """A 26-character ULID (48-bit ms time + 80 random bits, Crockford base32)."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def keyword(text):
    """The text as the opt-out rule reads it: no punctuation, upper case, one space."""
    return " ".join(re.sub(r"[^\w\s]", "", text).upper().split())


def verity_error(status, code, message, headers=None):
    """docs/verity.md: every error is {"error": {"code", "message"}}."""
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


def invalid(message):
    return verity_error(400, "invalid_request", message)


# The send route the Verity platform exposes to DF-Middleware (docs/verity.md, "Sending").
INTEGRATION_SEND = "/api/integrations/df-middleware/send-message"


def integration_error(status, message):
    """That route's error shape: {"success": false, "error": message}."""
    return json_response(status, {"success": False, "error": message})


class VeritySandbox(Sandbox):
    """Verity texting API sandbox (contacts, messages, opt-outs, X-Texting-Signature webhooks)."""

    vendor = "verity"
    # docs/verity.md: Verity retries webhooks on 5xx answers and connection errors.
    default_retry_on = "conn,5xx"
    default_retries = 3

    @staticmethod
    def add_arguments(p):
        g = p.add_argument_group("Verity")
        g.add_argument("--api-key", default="sandbox-verity-key",
                       help="the accepted Bearer API key (default sandbox-verity-key)")
        g.add_argument("--webhook-secret", default="sandbox-verity-secret",
                       help="shared secret of X-Texting-Signature (default sandbox-verity-secret)")
        g.add_argument("--from-number", default="+12055550100",
                       help="the account's number: default sender, default inbound recipient (default +12055550100)")
        g.add_argument("--delivery-delay-ms", type=int, default=50,
                       help="ms between message.sent and message.delivered/failed (default 50)")

    def __init__(self, args):
        if not E164.match(args.from_number):
            raise ValueError("--from-number must be an E.164 number")
        self._flag_settings(args)
        super().__init__(args)

    def _flag_settings(self, args):
        self.webhook_secret = args.webhook_secret
        self.delivery_delay_ms = args.delivery_delay_ms
        self.fail_deliveries = {}  # E.164 -> {"errorCode", "errorMessage"}

    # ------------------------------------------------------------ state

    def initial_state(self):
        """Contacts by phone; opted-out numbers; messages by id (oldest first);
        externalId -> message id; conversations by "ours|theirs"."""
        return {"contacts": {}, "optouts": {}, "messages": {}, "external_ids": {},
                "conversations": {}, "next_chat": 8801}

    def reset_vendor(self):
        self._flag_settings(self.args)

    # ------------------------------------------------------------ errors

    def fault_response(self, status, fault):
        """Injected faults in the contract's error shape; 429 always carries
        Retry-After (1 unless the fault gives retry_after)."""
        if status == 429:
            return verity_error(429, "rate_limited", "Too many requests; retry after the Retry-After seconds.",
                                {"Retry-After": "1"})
        if status >= 500:
            return verity_error(status, "internal", "Internal error; try again later.")
        codes = {400: "invalid_request", 401: "unauthorized", 404: "not_found", 422: "recipient_opted_out"}
        return verity_error(status, codes.get(status, "invalid_request"), "Injected fault %d." % status)

    # ------------------------------------------------------------ routing

    def handle_api(self, req):
        """Authorization first (every route), then the route, then the body."""
        auth = req.header("authorization", "")
        scheme, _, key = auth.partition(" ")
        path = req.path.rstrip("/") or "/"
        if path == INTEGRATION_SEND:
            # The integration route answers in its own shape: {"success": false, "error"}.
            if scheme.lower() != "bearer" or not key.strip():
                return integration_error(401, "Missing or invalid Authorization header")
            if not secrets.compare_digest(key.strip(), self.args.api_key):
                return integration_error(401, "Invalid API key")
        if not auth:
            return verity_error(401, "unauthorized", "Missing Authorization: Bearer <api key>.")
        if scheme.lower() != "bearer" or key.strip() != self.args.api_key:
            return verity_error(401, "unauthorized", "Invalid API key.")
        if path == "/v1/contacts" and req.method == "POST":
            return self._with_json(req, self.upsert_contact)
        m = re.fullmatch(r"/v1/contacts/([^/]+)", path)
        if m and req.method == "GET":
            return self.get_contact(urllib.parse.unquote(m.group(1)))
        if path == "/v1/messages" and req.method == "POST":
            return self._with_json(req, self.send_message)
        if path == INTEGRATION_SEND and req.method == "POST":
            return self._integration_json(req, self.integration_send)
        m = re.fullmatch(r"/v1/messages/([^/]+)", path)
        if m and req.method == "GET":
            return self.get_message(urllib.parse.unquote(m.group(1)))
        return verity_error(404, "not_found", "No route %s %s." % (req.method, req.path))

    @staticmethod
    def _with_json(req, handler):
        ctype = req.header("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return invalid("Content-Type must be application/json.")
        if req.json_error:
            return invalid("Body is not valid JSON.")
        if not isinstance(req.body, dict):
            return invalid("Body must be a JSON object.")
        return handler(req.body)

    # ------------------------------------------------------------ contacts

    def _opted_out(self, phone):
        return phone in self.state["optouts"]

    def contact_view(self, c):
        """docs/verity.md: the contact object; smsOptOut is the number's opt-out state."""
        return {"id": c["id"], "phone": c["phone"], "email": c.get("email"),
                "firstName": c.get("firstName"), "lastName": c.get("lastName"),
                "externalRef": c.get("externalRef"), "smsOptOut": self._opted_out(c["phone"]),
                "createdAt": c["createdAt"], "updatedAt": c["updatedAt"]}

    @staticmethod
    def _check_contact(body):
        """The first problem of a contact body (400 message), or None."""
        phone = body.get("phone")
        if "phone" not in body or phone is None:
            return "phone is required."
        if not isinstance(phone, str):
            return "phone must be a string."
        if not E164.match(phone):
            return "phone must be an E.164 number (+ then 7 to 15 digits, no leading 0)."
        for k in CONTACT_STRING_KEYS:
            if k in body and body[k] is not None and not isinstance(body[k], str):
                return "%s must be a string or null." % k
        email = body.get("email")
        if email and not EMAIL.match(email):
            return "email is not a valid email address."
        if "smsOptOut" in body and not isinstance(body["smsOptOut"], bool):
            return "smsOptOut must be a boolean."
        return None

    def _set_optout(self, phone, opted_out, source, message_id=None):
        """Marks or clears the number's opt-out; True when that changed it."""
        if opted_out == self._opted_out(phone):
            return False
        if opted_out:
            self.state["optouts"][phone] = {"source": source, "at": iso_ms(), "messageId": message_id}
        else:
            del self.state["optouts"][phone]
        c = self.state["contacts"].get(phone)
        if c is not None:
            c["updatedAt"] = iso_ms()
        return True

    def _upsert(self, body):
        """Writes a (checked) contact body; returns (created, contact)."""
        phone = body["phone"]
        c = self.state["contacts"].get(phone)
        created = c is None
        now = iso_ms()
        if created:
            c = {"id": "vc_" + ulid(), "phone": phone, "email": None, "firstName": None,
                 "lastName": None, "externalRef": None, "createdAt": now, "updatedAt": now}
            self.state["contacts"][phone] = c
        changed = False
        for k in CONTACT_STRING_KEYS:
            if k in body:
                value = body[k] if body[k] != "" else None
                if c.get(k) != value:
                    c[k] = value
                    changed = True
        if "smsOptOut" in body:
            changed = self._set_optout(phone, body["smsOptOut"], "api") or changed
        if changed and not created:
            c["updatedAt"] = now
        return created, c

    def upsert_contact(self, body):
        """POST /v1/contacts (docs/verity.md): upsert by phone; absent keys are
        left unchanged, null or "" clears a string. 201 created / 200 updated,
        {"contact": {...}}; 400 invalid_request naming the key."""
        problem = self._check_contact(body)
        if problem:
            return invalid(problem)
        created, c = self._upsert(body)
        self.save()
        return json_response(201 if created else 200, {"contact": self.contact_view(c)})

    def get_contact(self, phone):
        """GET /v1/contacts/{phone} (docs/verity.md): 200 {"contact"} or 404."""
        if not E164.match(phone):
            return invalid("phone must be an E.164 number (URL-encoded, e.g. %2B12055550142).")
        c = self.state["contacts"].get(phone)
        if c is None:
            return verity_error(404, "not_found", "No contact with phone %s." % phone)
        return json_response(200, {"contact": self.contact_view(c)})

    # ------------------------------------------------------------ messages

    def _conversation(self, ours, theirs):
        key = ours + "|" + theirs
        conv = self.state["conversations"].get(key)
        if conv is None:
            conv = "chat_%d" % self.state["next_chat"]
            self.state["next_chat"] += 1
            self.state["conversations"][key] = conv
        return conv

    @staticmethod
    def _current(m, now=None):
        """The message's timeline entry in force now: [epoch, status, errorCode, errorMessage]."""
        now = time.time() if now is None else now
        current = m["timeline"][0]
        for entry in m["timeline"]:
            if entry[0] <= now:
                current = entry
        return current

    def message_view(self, m):
        """docs/verity.md: the message object with its current status."""
        _, status, code, text = self._current(m)
        return {"id": m["id"], "conversationId": m["conversationId"], "status": status,
                "direction": m["direction"], "to": m["to"], "from": m["from"], "body": m["body"],
                "externalId": m.get("externalId"), "createdAt": m["createdAt"],
                "errorCode": code, "errorMessage": text}

    @staticmethod
    def _check_message(body):
        to = body.get("to")
        if to is None:
            return "to is required."
        if not isinstance(to, str):
            return "to must be a string."
        if not E164.match(to):
            return "to must be an E.164 number (+ then 7 to 15 digits, no leading 0)."
        frm = body.get("from")
        if frm is not None:
            if not isinstance(frm, str):
                return "from must be a string."
            if not E164.match(frm):
                return "from must be an E.164 number (+ then 7 to 15 digits, no leading 0)."
        text = body.get("body")
        if text is None:
            return "body is required."
        if not isinstance(text, str):
            return "body must be a string."
        if not text.strip():
            return "body must not be empty."
        if len(text) > BODY_MAX:
            return "body must be at most %d characters (got %d)." % (BODY_MAX, len(text))
        ext = body.get("externalId")
        if ext is not None:
            if not isinstance(ext, str):
                return "externalId must be a string."
            if not 1 <= len(ext) <= EXTERNAL_ID_MAX:
                return "externalId must be 1 to %d characters." % EXTERNAL_ID_MAX
        return None

    def send_message(self, body):
        """POST /v1/messages (docs/verity.md): 202 {"message"} queued, then the
        webhooks message.sent and message.delivered (or message.failed); the
        same externalId again: 200 with the first message, nothing sent;
        422 recipient_opted_out; 400 invalid_request."""
        problem = self._check_message(body)
        if problem:
            return invalid(problem)
        ext = body.get("externalId")
        if ext is not None and ext in self.state["external_ids"]:
            first = self.state["messages"][self.state["external_ids"][ext]]
            return json_response(200, {"message": self.message_view(first)})
        to, frm = body["to"], body.get("from") or self.args.from_number
        if self._opted_out(to):
            return verity_error(422, "recipient_opted_out", "%s has opted out of texts." % to)
        t0 = time.time()
        t1 = t0 + self.delivery_delay_ms / 1000.0
        fail = self.fail_deliveries.get(to)
        final = ([t1, "failed", fail["errorCode"], fail["errorMessage"]] if fail
                 else [t1, "delivered", None, None])
        m = {"id": "msg_" + ulid(), "conversationId": self._conversation(frm, to), "direction": "outbound",
             "to": to, "from": frm, "body": body["body"], "externalId": ext, "createdAt": iso_ms(t0),
             "timeline": [[t0, "queued", None, None], [t0, "sent", None, None], final]}
        answer = self.message_view(m)
        answer.update(status="queued", errorCode=None, errorMessage=None)  # as created
        self.state["messages"][m["id"]] = m
        if ext is not None:
            self.state["external_ids"][ext] = m["id"]
        self.save()
        self._emit(self._event(m, "message.sent", "sent", t0), t0)
        end = "message.failed" if fail else "message.delivered"
        extra = {"errorCode": fail["errorCode"], "errorMessage": fail["errorMessage"]} if fail else {}
        self._emit(self._event(m, end, final[1], t1, **extra), t1)
        return json_response(202, {"message": answer})

    @staticmethod
    def _integration_json(req, handler):
        ctype = req.header("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json" or req.json_error or not isinstance(req.body, dict):
            return integration_error(400, "Body must be a JSON object (Content-Type: application/json)")
        return handler(req.body)

    def integration_send(self, body):
        """POST /api/integrations/df-middleware/send-message (docs/verity.md,
        "Sending"): {to, body, from?, conversationId?, correlationId?} ->
        200 {success, messageId, chatId, status: "queued"}; 409 recipient
        opted out; 400 {success: false, error} naming the key. Nothing is
        de-duplicated: the contract promises no idempotency, so the same
        correlationId twice is two texts."""
        for key in ("from", "conversationId", "correlationId"):
            if body.get(key) is not None and not isinstance(body[key], str):
                return integration_error(400, "%s must be a string" % key)
        problem = self._check_message({"to": body.get("to"), "from": body.get("from"), "body": body.get("body")})
        if problem:
            return integration_error(400, problem.rstrip("."))
        to, frm = body["to"], body.get("from") or self.args.from_number
        if self._opted_out(to):
            return integration_error(409, "recipient opted out")
        t0 = time.time()
        t1 = t0 + self.delivery_delay_ms / 1000.0
        fail = self.fail_deliveries.get(to)
        final = ([t1, "failed", fail["errorCode"], fail["errorMessage"]] if fail
                 else [t1, "delivered", None, None])
        conv = body.get("conversationId") or self._conversation(frm, to)
        m = {"id": "msg_" + ulid(), "conversationId": conv, "direction": "outbound",
             "to": to, "from": frm, "body": body["body"], "externalId": body.get("correlationId"),
             "createdAt": iso_ms(t0),
             "timeline": [[t0, "queued", None, None], [t0, "sent", None, None], final]}
        self.state["messages"][m["id"]] = m
        self.state.setdefault("integration_sends", []).append(m["id"])
        self.save()
        self._emit(self._event(m, "message.sent", "sent", t0), t0)
        end = "message.failed" if fail else "message.delivered"
        extra = {"errorCode": fail["errorCode"], "errorMessage": fail["errorMessage"]} if fail else {}
        self._emit(self._event(m, end, final[1], t1, **extra), t1)
        return json_response(200, {"success": True, "messageId": m["id"], "chatId": conv, "status": "queued"})

    def get_message(self, mid):
        """GET /v1/messages/{id} (docs/verity.md): 200 {"message"} with the current status, or 404."""
        m = self.state["messages"].get(mid)
        if m is None:
            return verity_error(404, "not_found", "No message %s." % mid)
        return json_response(200, {"message": self.message_view(m)})

    # ------------------------------------------------------------ webhooks

    def sign(self, raw):
        """docs/verity.md: X-Texting-Signature = hex HMAC-SHA256 of the raw body."""
        return {"X-Texting-Signature": hmac_sha256_hex(self.webhook_secret, raw)}

    def send_raw_webhook(self, body, not_before=None):
        raw = json_bytes(body)
        label = body.get("eventType", "?") if isinstance(body, dict) else "?"
        return self.webhooks.send(raw, self.sign(raw), label, not_before=not_before)

    @staticmethod
    def _event(m, event_type, status, when, **extra):
        """A webhook body: eventId "<eventType>:<messageId>" (unique per event:
        a message has at most one event of each type)."""
        body = {"eventId": "%s:%s" % (event_type, m["id"]), "eventType": event_type,
                "messageId": m["id"], "conversationId": m["conversationId"],
                "direction": m["direction"], "from": m["from"], "to": m["to"], "body": m["body"],
                "timestamp": iso_ms(when)}
        if status is not None:
            body["status"] = status
        if m.get("externalId") is not None:
            body["externalId"] = m["externalId"]
        body.update(extra)
        return body

    def _emit(self, body, when=None):
        return self.send_raw_webhook(body, not_before=when)

    def receive(self, frm, to, text):
        """An inbound text: stored, opt-out words applied, message.received
        (and optout.stop) sent. Returns (message, opt change, [Delivery])."""
        now = time.time()
        m = {"id": "msg_" + ulid(), "conversationId": self._conversation(to, frm), "direction": "inbound",
             "to": to, "from": frm, "body": text, "externalId": None, "createdAt": iso_ms(now),
             "timeline": [[now, "received", None, None]]}
        self.state["messages"][m["id"]] = m
        word = keyword(text)
        change = None
        if word in STOP_WORDS:
            change = "stop"
            self._set_optout(frm, True, "keyword", m["id"])
        elif word in START_WORDS:
            change = "start"
            self._set_optout(frm, False, "keyword", m["id"])
        self.save()
        deliveries = [self._emit(self._event(m, "message.received", "received", now))]
        if change == "stop":
            deliveries.append(self._emit(self._event(dict(m, body=text.strip()), "optout.stop", None, now)))
        return m, change, [d for d in deliveries if d is not None]

    # ------------------------------------------------------------ admin

    def admin_contacts(self):
        return [self.contact_view(c) for c in sorted(self.state["contacts"].values(),
                                                      key=lambda c: (c["createdAt"], c["id"]))]

    def admin_save_contact(self, fields):
        """A user creating ({"phone", ...}) or editing ({"id", ...}) a contact
        in Verity's UI: the API's rules, no webhook (Verity sends no contact
        webhooks)."""
        fields.pop("webhook", None)
        cid = fields.pop("id", None)
        if cid is not None:
            c = next((c for c in self.state["contacts"].values() if c["id"] == cid), None)
            if c is None:
                return 404, "no contact %s" % cid, []
            if "phone" in fields and fields["phone"] != c["phone"]:
                return 400, "the phone of a contact cannot change (it is the key)", []
            fields["phone"] = c["phone"]
        problem = self._check_contact(fields)
        if problem:
            return 400, problem, []
        created, c = self._upsert(fields)
        self.save()
        return (201 if created else 200), self.contact_view(c), []

    def admin_delete_contact(self, cid):
        for phone, c in list(self.state["contacts"].items()):
            if c["id"] == cid:
                del self.state["contacts"][phone]
                self.save()
                return 200, cid, []
        return 404, "no contact %s" % cid, []

    def settings(self):
        return {"webhook_secret": self.webhook_secret, "delivery_delay_ms": self.delivery_delay_ms,
                "fail_deliveries": dict(self.fail_deliveries)}

    def apply_settings(self, values):
        """Run-time changes (not persisted; /_sandbox/reset restores the flags)."""
        for k, v in values.items():
            if k == "webhook_secret" and isinstance(v, str) and v:
                self.webhook_secret = v
            elif k == "delivery_delay_ms" and isinstance(v, int) and v >= 0:
                self.delivery_delay_ms = v
            else:
                return "cannot set %s to %r" % (k, v)
        return None

    def admin_extra(self, req):
        """Verity-only admin endpoints: inbound texts, messages, failing
        deliveries, opt-outs."""
        path = req.path.rstrip("/")
        body = req.body if isinstance(req.body, dict) else {}
        m = req.method
        if path == "/_sandbox/inbound" and m == "POST":
            frm, to = body.get("from"), body.get("to") or self.args.from_number
            text = body.get("body")
            if not (isinstance(frm, str) and E164.match(frm)):
                return json_response(400, {"error": "from must be an E.164 number"})
            if not (isinstance(to, str) and E164.match(to)):
                return json_response(400, {"error": "to must be an E.164 number"})
            if not isinstance(text, str):
                return json_response(400, {"error": "body must be a string"})
            msg, change, deliveries = self.receive(frm, to, text)
            doc = {"message": self.message_view(msg), "optOut": change}
            wait = body.get("wait", True)
            return lambda: json_response(201, self._with_deliveries(doc, deliveries, wait=wait))
        if path == "/_sandbox/messages" and m == "GET":
            return json_response(200, [self.message_view(x) for x in self.state["messages"].values()])
        if path == "/_sandbox/fail-deliveries":
            if m == "GET":
                return json_response(200, {"fail_deliveries": dict(self.fail_deliveries)})
            if m == "POST":
                to = body.get("to")
                if not (isinstance(to, str) and E164.match(to)):
                    return json_response(400, {"error": "to must be an E.164 number"})
                self.fail_deliveries[to] = {"errorCode": str(body.get("errorCode", "40008")),
                                            "errorMessage": str(body.get("errorMessage", "Undeliverable"))}
                return json_response(200, {"fail_deliveries": dict(self.fail_deliveries)})
            if m == "DELETE":
                to = req.query.get("to") or body.get("to")
                if to:
                    self.fail_deliveries.pop(to, None)
                else:
                    self.fail_deliveries.clear()
                return json_response(200, {"fail_deliveries": dict(self.fail_deliveries)})
        if path == "/_sandbox/optouts":
            if m == "GET":
                return json_response(200, {"optouts": self.state["optouts"]})
            if m == "POST":
                phone, opted = body.get("phone"), body.get("optedOut", True)
                if not (isinstance(phone, str) and E164.match(phone)) or not isinstance(opted, bool):
                    return json_response(400, {"error": 'expected {"phone": E.164, "optedOut": bool}'})
                self._set_optout(phone, opted, "admin")
                self.save()
                return json_response(200, {"optouts": self.state["optouts"]})
        return None


if __name__ == "__main__":
    sys.exit(run(VeritySandbox))
