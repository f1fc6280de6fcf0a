#!/usr/bin/env python3
"""Telnyx Messaging (API v2) sandbox: sending texts, inbound texts, Telnyx's own
opt-out keywords, and Ed25519-signed webhooks.

Plays https://api.telnyx.com/v2/messages and the messaging webhooks on
loopback for one account, as docs/vendors/telnyx.md writes them down from
Telnyx's documents and SDKs: the envelope {"data": {"event_type", "id",
"occurred_at", "payload", "record_type": "event"}, "meta": {"attempt",
"delivered_to"}}; `telnyx-signature-ed25519` (base64 Ed25519 over
"{telnyx-timestamp}|{body}") and `telnyx-timestamp`; message.received,
message.sent, message.finalized; Advanced Opt-Out (whole-message STOP,
STOPALL, STOP ALL, UNSUBSCRIBE, CANCEL, END, QUIT block the number; START,
UNSTOP lift it; HELP answered) with `autoresponse_type`; 40300 "Blocked due
to STOP message"; errors {"errors": [{"code", "title", "detail"}]}.
Choices where Telnyx is silent are in sandboxes/README.md.

Run: python3 sandboxes/telnyx.py --port 0 --port-file /tmp/telnyx.port [--webhook-url URL] ...
"""

import base64
import os
import re
import sys
import time
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Sandbox, json_bytes, json_response, run  # noqa: E402

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
TEXT_MAX = 1600
STOP_WORDS = {"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "UNSTOP"}
HELP_WORDS = {"HELP"}


def keyword(text):
    """A whole message as the keyword filter reads it: trimmed, upper case, one space."""
    return " ".join(text.strip().upper().split())


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%03d+00:00" % int((ts % 1) * 1000)


def telnyx_error(status, code, title, detail, headers=None):
    """Telnyx's error body: {"errors": [{"code", "title", "detail"}]} (code a string)."""
    return json_response(status, {"errors": [{"code": code, "title": title, "detail": detail}]}, headers)


class TelnyxSandbox(Sandbox):
    """Telnyx Messaging sandbox (messages, opt-out keywords, signed webhooks)."""

    vendor = "telnyx"
    webhook_user_agent = "telnyx-webhooks"
    # Telnyx: a non-2xx answer (or none) is tried again, 3 attempts per URL.
    default_retry_on = "conn,4xx,5xx"
    default_retries = 2

    @staticmethod
    def add_arguments(p):
        g = p.add_argument_group("Telnyx")
        g.add_argument("--api-key", default="KEYsandbox", help="the accepted Bearer API key")
        g.add_argument("--private-key", default=None,
                       help="base64 of the 32-byte Ed25519 seed that signs webhooks (default: a new one)")
        g.add_argument("--from-number", default="+12055550100", help="the profile's number")
        g.add_argument("--delivery-delay-ms", type=int, default=50,
                       help="ms between message.sent and message.finalized (default 50)")

    def __init__(self, args):
        seed = base64.b64decode(args.private_key) if args.private_key else os.urandom(32)
        self.key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = base64.b64encode(
            self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
        self.clock_skew_s = 0
        super().__init__(args)

    def initial_state(self):
        return {"messages": {}, "blocked": {}}

    def reset_vendor(self):
        self.clock_skew_s = 0

    def fault_response(self, status, fault):
        if status == 429:
            return telnyx_error(429, "10011", "Too many requests", "Rate limit exceeded.",
                                {"x-ratelimit-limit": "100", "x-ratelimit-remaining": "0",
                                 "x-ratelimit-reset": "1"})
        if status == 401:
            return telnyx_error(401, "10009", "Authentication failed", "Could not understand the provided credentials.")
        if status >= 500:
            return telnyx_error(status, "10007", "Unexpected error", "An unexpected error occured.")
        return telnyx_error(status, "10015", "Bad Request", "Injected fault %d." % status)

    # ------------------------------------------------------------ API

    def handle_api(self, req):
        scheme, _, key = req.header("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.args.api_key:
            return telnyx_error(401, "10009", "Authentication failed",
                                "Could not understand the provided credentials.")
        if req.path.rstrip("/") == "/v2/messages" and req.method == "POST":
            if req.json_error or not isinstance(req.body, dict):
                return telnyx_error(400, "10015", "Bad Request", "The request body is not a JSON object.")
            return self.send_message(req.body)
        m = re.fullmatch(r"/v2/messages/([^/]+)", req.path)
        if m and req.method == "GET":
            msg = self.state["messages"].get(m.group(1))
            if msg is None:
                return telnyx_error(404, "10005", "Resource not found", "The requested resource was not found.")
            return json_response(200, {"data": msg})
        return telnyx_error(404, "10005", "Resource not found", "No route %s %s." % (req.method, req.path))

    def _blocked(self, to, frm):
        return to in self.state["blocked"]

    def send_message(self, body):
        to, frm, text = body.get("to"), body.get("from") or self.args.from_number, body.get("text")
        for name, value in (("to", to), ("from", frm)):
            if not isinstance(value, str) or not E164.match(value):
                return telnyx_error(400, "40310", "Invalid '%s' address" % name,
                                    "The '%s' address should be a valid E.164 number." % name)
        if not isinstance(text, str) or not text or len(text) > TEXT_MAX:
            return telnyx_error(400, "40305", "Invalid 'text' parameter",
                                "'text' must be a string of 1 to %d characters." % TEXT_MAX)
        if self._blocked(to, frm):
            return telnyx_error(400, "40300", "Blocked due to STOP message",
                                "Messages cannot be sent from '%s' to '%s' due to an existing block rule." % (frm, to))
        now = time.time()
        msg = self._message("outbound", frm, to, text, now, "queued")
        self.state["messages"][msg["id"]] = msg
        self.save()
        sent = dict(msg, to=[dict(msg["to"][0], status="sent")], sent_at=iso(now))
        self._emit("message.sent", sent, now)
        done = now + self.args.delivery_delay_ms / 1000.0
        final = dict(sent, to=[dict(msg["to"][0], status="delivered")], completed_at=iso(done))
        self._emit("message.finalized", final, done)
        return json_response(200, {"data": msg})

    # ------------------------------------------------------------ messages and webhooks

    def _message(self, direction, frm, to, text, when, status, autoresponse=None):
        m = {"id": str(uuid.uuid4()), "record_type": "message", "direction": direction, "type": "SMS",
             "messaging_profile_id": "40017f6e-sandbox-profile",
             "from": {"phone_number": frm, "carrier": "TELNYX LLC", "line_type": "VoIP"},
             "to": [{"phone_number": to, "status": status, "carrier": "T-MOBILE USA, INC.", "line_type": "Wireless"}],
             "cc": [], "text": text, "media": [], "encoding": "GSM-7", "parts": 1, "errors": [],
             "received_at": iso(when), "sent_at": None, "completed_at": None, "valid_until": None,
             "webhook_url": self.args.webhook_url, "webhook_failover_url": None}
        if direction == "inbound":
            m["autoresponse_type"] = autoresponse
        return m

    def sign(self, raw, ts):
        signature = self.key.sign(str(ts).encode() + b"|" + raw)
        return {"telnyx-signature-ed25519": base64.b64encode(signature).decode(),
                "telnyx-timestamp": str(ts)}

    def _emit(self, event_type, payload, when=None):
        body = {"data": {"event_type": event_type, "id": str(uuid.uuid4()),
                         "occurred_at": iso(when or time.time()), "payload": payload, "record_type": "event"},
                "meta": {"attempt": 1, "delivered_to": self.args.webhook_url}}
        raw = json_bytes(body)
        ts = int(time.time()) + self.clock_skew_s
        return self.webhooks.send(raw, self.sign(raw, ts), event_type, not_before=when)

    def receive(self, frm, to, text):
        now = time.time()
        word = keyword(text)
        auto = None
        if word in STOP_WORDS:
            auto = "STOP"
            self.state["blocked"][frm] = {"at": iso(now)}
        elif word in START_WORDS:
            auto = "START"
            self.state["blocked"].pop(frm, None)
        elif word in HELP_WORDS:
            auto = "HELP"
        m = self._message("inbound", frm, to, text, now, "webhook_delivered", auto)
        self.state["messages"][m["id"]] = m
        self.save()
        return m, self._emit("message.received", m, now)

    # ------------------------------------------------------------ admin

    def admin_contacts(self):
        return []

    def settings(self):
        return {"public_key": self.public_key, "clock_skew_s": self.clock_skew_s}

    def apply_settings(self, values):
        for k, v in values.items():
            if k == "clock_skew_s" and isinstance(v, int):
                self.clock_skew_s = v  # signs webhooks with a timestamp this far off
            else:
                return "cannot set %s to %r" % (k, v)
        return None

    def admin_extra(self, req):
        path = req.path.rstrip("/")
        body = req.body if isinstance(req.body, dict) else {}
        if path == "/_sandbox/inbound" and req.method == "POST":
            frm, to, text = body.get("from"), body.get("to") or self.args.from_number, body.get("text")
            if not (isinstance(frm, str) and E164.match(frm)) or not isinstance(text, str):
                return json_response(400, {"error": 'expected {"from": E.164, "text": string}'})
            m, delivery = self.receive(frm, to, text)
            return lambda: json_response(201, self._with_deliveries({"message": m}, [delivery]))
        if path == "/_sandbox/messages" and req.method == "GET":
            return json_response(200, list(self.state["messages"].values()))
        if path == "/_sandbox/blocked" and req.method == "GET":
            return json_response(200, self.state["blocked"])
        return None


if __name__ == "__main__":
    sys.exit(run(TelnyxSandbox))
