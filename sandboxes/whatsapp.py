#!/usr/bin/env python3
"""WhatsApp Cloud API sandbox: the Graph messages endpoint, the 24-hour window, pacing, signed notifications.

Plays docs/vendors/whatsapp.md on loopback for one business phone number:
POST /{version}/{phone-number-id}/messages with a Bearer token (text, media
by link, templates, read receipts), answering Meta's success and error
bodies ({"error":{"message","type","code","error_data","fbtrace_id"}});
the customer-service window (a free-form message more than 24 h after the
person's last message fails with 131047, by default asynchronously as a
`failed` status, as Meta mostly does; `--window-error sync` answers 400);
throughput per number (130429) and the pair rate limit (131056), both HTTP
400 by default (`--limit-status 429` for the older table); 190 for a bad
token; 130403 for a person the business blocked. Notifications (messages,
statuses sent/delivered/read/failed, user_preferences) are POSTed signed
X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>. The admin
API plays the person: /_sandbox/inbound (a message from them),
/_sandbox/inbound_batch (several messages in one notification: changes
and entries, as Meta batches them),
/_sandbox/read (they read ours), /_sandbox/preferences (stop/resume
marketing), /_sandbox/block, /_sandbox/verify (Meta's GET handshake
against the webhook URL), GET /_sandbox/messages (what was sent).

Run: python3 sandboxes/whatsapp.py --port 0 --port-file /tmp/wa.port --webhook-url URL
"""

import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Response, Sandbox, json_bytes, json_response, run  # noqa: E402

WINDOW_S = 24 * 3600
TEXT_MAX = 4096
CAPTION_MAX = 1024
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")

ERRORS = {
    100: ("Invalid parameter", "OAuthException"),
    190: ("Error validating access token: Session has expired.", "OAuthException"),
    130403: ("This business has blocked the end user", "OAuthException"),
    130429: ("Rate limit hit", "OAuthException"),
    131047: ("Re-engagement message", "OAuthException"),
    131051: ("Unsupported message type", "OAuthException"),
    131056: ("(Business Account, Consumer Account) pair rate limit hit", "OAuthException"),
}
DETAILS = {
    130403: "The business has blocked this user. Do not retry.",
    130429: "Cloud API message throughput has been reached.",
    131047: "Message failed to send because more than 24 hours have passed since the customer "
            "last replied to this number.",
    131056: "Too many messages sent from the sender phone number to the same recipient phone "
            "number in a short period of time.",
}


def graph_error(status, code, details=None):
    message, etype = ERRORS.get(code, ("Invalid parameter", "OAuthException"))
    err = {"message": "(#%d) %s" % (code, message), "type": etype, "code": code,
           "fbtrace_id": secrets.token_urlsafe(12)}
    if code != 190:
        err["error_data"] = {"messaging_product": "whatsapp",
                             "details": details or DETAILS.get(code, message)}
    else:
        err["error_subcode"] = 463
    return json_response(status, {"error": err})


def wamid():
    return "wamid." + secrets.token_urlsafe(40)


class WhatsAppSandbox(Sandbox):
    """WhatsApp Cloud API sandbox (messages endpoint, window, pacing, signed notifications)."""

    vendor = "whatsapp"
    webhook_user_agent = "facebookexternalua"
    default_retry_on = "conn,4xx,5xx"
    default_retries = 5

    @staticmethod
    def add_arguments(p):
        g = p.add_argument_group("WhatsApp")
        g.add_argument("--phone-number-id", default="106540352242922", help="the business number's id")
        g.add_argument("--display-phone-number", default="15550783881", help="its number, digits")
        g.add_argument("--waba-id", default="102290129340398", help="the WhatsApp Business Account id")
        g.add_argument("--access-token", default="sandbox-wa-token", help="the accepted Bearer token")
        g.add_argument("--app-secret", default="sandbox-wa-app-secret", help="signs notifications")
        g.add_argument("--verify-token", default="sandbox-wa-verify", help="hub.verify_token for /_sandbox/verify")
        g.add_argument("--throughput", type=int, default=80, help="messages a second per number (80)")
        g.add_argument("--pair-burst", type=int, default=45, help="messages to one person in --pair-window (45)")
        g.add_argument("--pair-window", type=float, default=6.0, help="seconds (6)")
        g.add_argument("--window-error", choices=("async", "sync"), default="async",
                       help="131047 as a failed status after a 200 (async) or as the answer (sync)")
        g.add_argument("--limit-status", type=int, choices=(400, 429), default=400,
                       help="HTTP status of 130429/131056 (400 now; 429 in Meta's older table)")
        g.add_argument("--auto-deliver", choices=("on", "off"), default="on",
                       help="send sent+delivered statuses after each accepted message")

    def __init__(self, args):
        super().__init__(args)
        self._flag_settings(args)

    def _flag_settings(self, args):
        self.window_error = args.window_error
        self.limit_status = args.limit_status
        self.auto_deliver = args.auto_deliver == "on"
        self.sends = []  # monotonic times of accepted sends (throughput)
        self.pairs = {}  # wa_id -> [monotonic times]

    def initial_state(self):
        """messages: wamid -> what was sent and its statuses; last_inbound: wa_id -> epoch s;
        blocked: wa_ids the business blocked; inbound: wamids received from people."""
        return {"messages": {}, "last_inbound": {}, "blocked": [], "inbound": {}}

    def reset_vendor(self):
        self._flag_settings(self.args)

    def fault_response(self, status, fault):
        if status == 401:
            return graph_error(401, 190)
        if status == 429 or fault.get("code") == 130429:
            return graph_error(self.limit_status if status != 429 else 429, 130429)
        if fault.get("code"):
            return graph_error(status, int(fault["code"]))
        if status >= 500:
            return json_response(status, {"error": {"message": "An unknown error occurred", "type": "OAuthException",
                                                    "code": 1, "fbtrace_id": secrets.token_urlsafe(12)}})
        return graph_error(status, 100)

    # ------------------------------------------------------------ API

    def handle_api(self, req):
        parts = [p for p in req.path.split("/") if p]
        if len(parts) != 3 or parts[2] != "messages" or not parts[0].startswith("v"):
            return graph_error(400, 100, "Unknown path components: " + req.path)
        if req.method != "POST":
            return graph_error(400, 100, "Unsupported get request.")
        auth = req.header("authorization", "")
        if auth != "Bearer " + self.args.access_token:
            return graph_error(401, 190)
        if parts[1] != self.args.phone_number_id:
            return graph_error(400, 100, "Unsupported post request. Object with ID '%s' does not exist" % parts[1])
        body = req.body
        if req.json_error or not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return graph_error(400, 100, "The parameter messaging_product is required.")
        if body.get("status") == "read":
            mid = body.get("message_id")
            if mid not in self.state["inbound"]:
                return graph_error(400, 100, "Invalid parameter message_id")
            self.state["inbound"][mid]["read_by_business"] = True
            self.save()
            return json_response(200, {"success": True})
        return self.send(body)

    def send(self, body):
        to = str(body.get("to") or "").lstrip("+")
        if not to.isdigit() or not 8 <= len(to) <= 15:
            return graph_error(400, 100, "Invalid parameter to")
        mtype = body.get("type", "text")
        if mtype == "text":
            text = (body.get("text") or {}).get("body")
            if not isinstance(text, str) or not text or len(text) > TEXT_MAX:
                return graph_error(400, 100, "text.body is required and at most 4096 characters")
        elif mtype in MEDIA_KINDS:
            media = body.get(mtype) or {}
            if not media.get("link") and not media.get("id"):
                return graph_error(400, 100, "%s needs a link or an id" % mtype)
            if len(media.get("caption") or "") > CAPTION_MAX:
                return graph_error(400, 100, "caption is at most 1024 characters")
        elif mtype == "template":
            if not (body.get("template") or {}).get("name"):
                return graph_error(400, 100, "template.name is required")
        else:
            return graph_error(400, 131051)
        if to in self.state["blocked"]:
            return graph_error(400, 130403)
        now = time.monotonic()
        self.sends = [t for t in self.sends if now - t < 1.0]
        if len(self.sends) >= self.args.throughput:
            return graph_error(self.limit_status, 130429)
        window = [t for t in self.pairs.get(to, []) if now - t < self.args.pair_window]
        if len(window) >= self.args.pair_burst:
            self.pairs[to] = window
            return graph_error(self.limit_status, 131056)
        last = self.state["last_inbound"].get(to)
        outside = mtype != "template" and (last is None or time.time() - last > WINDOW_S)
        if outside and self.window_error == "sync":
            return graph_error(400, 131047)
        self.sends.append(now)
        window.append(now)
        self.pairs[to] = window
        mid = wamid()
        self.state["messages"][mid] = {"id": mid, "to": to, "type": mtype, "body": body, "at": time.time(),
                                       "statuses": []}
        self.save()
        opaque = body.get("biz_opaque_callback_data")
        if outside:
            self.status(mid, "failed", opaque, error=131047)
        elif self.auto_deliver:
            self.status(mid, "sent", opaque)
            self.status(mid, "delivered", opaque)
        answer = {"messaging_product": "whatsapp", "contacts": [{"input": body.get("to"), "wa_id": to}],
                  "messages": [{"id": mid}]}
        if mtype == "template":
            answer["messages"][0]["message_status"] = "accepted"
        return json_response(200, answer)

    # ------------------------------------------------------------ notifications

    def envelope(self, field, value):
        value = dict(value)
        value.setdefault("messaging_product", "whatsapp")
        value["metadata"] = {"display_phone_number": self.args.display_phone_number,
                             "phone_number_id": self.args.phone_number_id}
        return {"object": "whatsapp_business_account",
                "entry": [{"id": self.args.waba_id, "changes": [{"value": value, "field": field}]}]}

    def status(self, mid, status, opaque=None, error=None):
        m = self.state["messages"].get(mid)
        if m is None:
            return None
        st = {"id": mid, "status": status, "timestamp": str(int(time.time())), "recipient_id": m["to"]}
        if opaque:
            st["biz_opaque_callback_data"] = opaque
        if status in ("sent", "delivered", "read"):
            st["pricing"] = {"billable": True, "pricing_model": "PMP", "type": "free_customer_service",
                             "category": "service"}
        if error:
            message, _ = ERRORS.get(error, ("Message undeliverable", ""))
            st["errors"] = [{"code": error, "title": message, "message": message,
                             "error_data": {"details": DETAILS.get(error, message)},
                             "href": "/documentation/business-messaging/whatsapp/support/error-codes"}]
        m["statuses"].append(status)
        self.save()
        return self.send_raw_webhook(self.envelope("messages", {"statuses": [st]}))

    def send_raw_webhook(self, body):
        raw = json_bytes(body)
        sig = hmac.new(self.args.app_secret.encode(), raw, hashlib.sha256).hexdigest()
        return self.webhooks.send(raw, {"X-Hub-Signature-256": "sha256=" + sig}, "notification")

    def inbound(self, spec):
        """A message from a person: {"from": wa_id, "text": ..., or "type"+"media", "name", "at"}."""
        made = self.inbound_item(spec)
        if isinstance(made, str):
            return 400, made, None
        msg, contact = made
        d = self.send_raw_webhook(self.envelope("messages", {"contacts": [contact], "messages": [msg]}))
        return 200, {"id": msg["id"]}, d

    def inbound_batch(self, spec):
        """Several people's messages in one notification, as Meta batches them (up to 1,000 items):
        {"entries": [[[msg spec, ...] per change] per entry]}, or {"changes": [[msg spec, ...], ...]}
        for one entry. Every change is about this number; the messages are in the order given."""
        entries = spec.get("entries") or ([spec["changes"]] if spec.get("changes") else None)
        if not isinstance(entries, list) or not all(isinstance(e, list) and e for e in entries):
            return 400, "entries (or changes) must be non-empty lists", None
        body = {"object": "whatsapp_business_account", "entry": []}
        ids, items = [], 0
        for changes in entries:
            entry = {"id": self.args.waba_id, "changes": []}
            for specs in changes:
                if not isinstance(specs, list) or not specs:
                    return 400, "every change must be a non-empty list of messages", None
                msgs, contacts = [], {}
                for one in specs:
                    made = self.inbound_item(one)
                    if isinstance(made, str):
                        return 400, made, None
                    msgs.append(made[0])
                    contacts[made[1]["wa_id"]] = made[1]
                    ids.append(made[0]["id"])
                items += len(msgs)
                value = self.envelope("messages", {"contacts": list(contacts.values()), "messages": msgs})
                entry["changes"].append(value["entry"][0]["changes"][0])
            body["entry"].append(entry)
        if items > 1000:
            return 400, "Meta batches at most 1,000 updates", None
        return 200, {"ids": ids}, self.send_raw_webhook(body)

    def inbound_item(self, spec):
        """One inbound message of a person, recorded: (message, contact), or why it cannot be."""
        wa = str(spec.get("from") or "").lstrip("+")
        if not wa.isdigit():
            return "from must be a wa_id (digits)"
        mid = spec.get("id") or wamid()
        at = int(spec.get("at") or time.time())
        msg = {"from": wa, "id": mid, "timestamp": str(at), "type": spec.get("type", "text")}
        if msg["type"] == "text":
            msg["text"] = {"body": spec.get("text", "")}
        elif msg["type"] in MEDIA_KINDS:
            media = {"mime_type": spec.get("mime_type", "image/jpeg"), "sha256": secrets.token_hex(16),
                     "id": str(spec.get("media_id") or secrets.randbelow(10**15))}
            if spec.get("caption"):
                media["caption"] = spec["caption"]
            msg[msg["type"]] = media
        else:
            msg.update(spec.get("extra") or {})
        self.state["last_inbound"][wa] = max(self.state["last_inbound"].get(wa, 0), at)
        self.state["inbound"][mid] = {"from": wa, "at": at}
        self.save()
        return msg, {"profile": {"name": spec.get("name", "Sandbox Person")}, "wa_id": wa}

    # ------------------------------------------------------------ admin

    def admin_contacts(self):
        return [{"id": wa, "last_inbound": at} for wa, at in sorted(self.state["last_inbound"].items())]

    def admin_save_contact(self, fields):
        return 400, "people are made by /_sandbox/inbound", []

    def admin_delete_contact(self, cid):
        return 400, "nothing to delete", []

    def settings(self):
        return {"window_error": self.window_error, "limit_status": self.limit_status,
                "auto_deliver": self.auto_deliver}

    def apply_settings(self, values):
        for k, v in values.items():
            if k == "window_error" and v in ("async", "sync"):
                self.window_error = v
            elif k == "limit_status" and v in (400, 429):
                self.limit_status = v
            elif k == "auto_deliver" and isinstance(v, bool):
                self.auto_deliver = v
            else:
                return "cannot set %s to %r" % (k, v)
        return None

    def admin_extra(self, req):
        path, m = req.path.rstrip("/"), req.method
        body = req.body if isinstance(req.body, dict) else {}
        if path == "/_sandbox/messages" and m == "GET":
            return json_response(200, sorted(self.state["messages"].values(), key=lambda x: x["at"]))
        if path == "/_sandbox/inbound" and m == "POST":
            status, result, d = self.inbound(body)
            if status != 200:
                return json_response(status, {"error": result})
            return lambda: json_response(200, self._with_deliveries(dict(result), [d], body.get("wait", True)))
        if path == "/_sandbox/inbound_batch" and m == "POST":
            status, result, d = self.inbound_batch(body)
            if status != 200:
                return json_response(status, {"error": result})
            return lambda: json_response(200, self._with_deliveries(dict(result), [d], body.get("wait", True)))
        if path == "/_sandbox/last_inbound" and m == "POST":
            # Moves the person's last message back in time (the window test).
            wa = str(body.get("wa_id", "")).lstrip("+")
            self.state["last_inbound"][wa] = int(body.get("at", 0))
            self.save()
            return json_response(200, {"wa_id": wa, "last_inbound": self.state["last_inbound"][wa]})
        if path == "/_sandbox/read" and m == "POST":
            d = self.status(body.get("id"), "read", None)
            if d is None:
                return json_response(404, {"error": "no message %s" % body.get("id")})
            return lambda: json_response(200, self._with_deliveries({}, [d]))
        if path == "/_sandbox/preferences" and m == "POST":
            wa = str(body.get("wa_id", "")).lstrip("+")
            value = body.get("value", "stop")
            pref = {"wa_id": wa, "detail": "User requested to %s marketing messages" % value,
                    "category": "marketing_messages", "value": value, "timestamp": int(time.time())}
            d = self.send_raw_webhook(self.envelope("user_preferences",
                                                    {"contacts": [{"wa_id": wa}], "user_preferences": [pref]}))
            return lambda: json_response(200, self._with_deliveries({}, [d]))
        if path == "/_sandbox/block" and m == "POST":
            wa = str(body.get("wa_id", "")).lstrip("+")
            if wa not in self.state["blocked"]:
                self.state["blocked"].append(wa)
            self.save()
            return json_response(200, {"blocked": self.state["blocked"]})
        if path == "/_sandbox/verify" and m == "POST":
            url = body.get("url") or self.webhooks.url
            token = body.get("verify_token", self.args.verify_token)
            challenge = str(secrets.randbelow(10**9))
            q = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.challenge": challenge,
                                        "hub.verify_token": token})
            def verify():
                try:
                    with urllib.request.urlopen(url + ("&" if "?" in url else "?") + q, timeout=5) as r:
                        got = r.read().decode()
                        return json_response(200, {"status": r.status, "body": got, "ok": got == challenge})
                except urllib.error.HTTPError as e:
                    return json_response(200, {"status": e.code, "body": e.read().decode(), "ok": False})
            return verify
        return None


if __name__ == "__main__":
    sys.exit(run(WhatsAppSandbox))
