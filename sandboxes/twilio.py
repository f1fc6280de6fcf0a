#!/usr/bin/env python3
"""Twilio Programmable Messaging sandbox: the Message resource, status callbacks, inbound SMS, opt-out keywords.

Plays https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json
on loopback for one account. Behaviour follows Twilio's published documents
(the Message resource, error codes 20003/20404/20429/21211/21602/21603/21610,
"Outbound Message Status in Status Callbacks", the opt-out keyword support
article and its 2025 update, webhook security) and the fixtures in
tests/fixtures/twilio/. Choices where Twilio's documents are silent are
listed in sandboxes/README.md ("Twilio: choices where the vendor is silent").

Run: python3 sandboxes/twilio.py --port 0 --port-file /tmp/twilio.port [--webhook-url URL] ...
"""

import base64
import binascii
import datetime
import email.utils
import os
import re
import secrets
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (Sandbox, form_bytes, iso_ms, json_response,  # noqa: E402
                    normalize_phone, run, twilio_signature)

API_VERSION = "2010-04-01"
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
BODY_MAX = 1600

# Twilio's default keywords (support article "Twilio support for opt-out
# keywords"; REVOKE and OPTOUT added May 2025; no keyword with a space, so
# "OPT OUT" is not one). A message whose whole body is one of them.
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "YES", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}

# Twilio's descriptions of the delivery error codes the sandbox uses by default.
ERROR_TEXT = {30003: "Unreachable destination handset", 30005: "Unknown destination handset",
              30006: "Landline or unreachable carrier", 30007: "Message filtered",
              30008: "Unknown error"}

# GSM 03.38 basic character set (plus the extension table, 2 septets each).
GSM_BASIC = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
                "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENDED = set("^{}\\[~]|€\f")


def sid(prefix):
    return prefix + secrets.token_hex(16)


def rfc2822(ts):
    """Twilio's date format, e.g. "Thu, 24 Aug 2023 05:01:45 +0000"."""
    return email.utils.format_datetime(datetime.datetime.fromtimestamp(int(ts), tz=datetime.timezone.utc))


def segments(text):
    """SMS segments: GSM-7 160 (153 per part), else UCS-2 70 (67 per part)."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text):
        septets = sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


def keyword_of(text):
    """The body as Twilio's keyword filter reads it: one word, any case,
    surrounding whitespace and punctuation ignored (sandbox choice)."""
    return text.strip().strip(".,!?;:'\"()[]{}-").strip().upper()


def twilio_error(status, code, message, headers=None):
    """Twilio's REST error body: {"code", "message", "more_info", "status"}."""
    return json_response(status, {"code": code, "message": message,
                                  "more_info": "https://www.twilio.com/docs/errors/%d" % code,
                                  "status": status}, headers)


class TwilioSandbox(Sandbox):
    """Twilio Programmable Messaging sandbox (Messages.json, signed callbacks and inbound SMS, STOP filtering)."""

    vendor = "twilio"
    webhook_user_agent = "TwilioProxy/1.1"
    # Twilio's webhook connection defaults: one retry (rc=1) on a connect
    # failure or timeout (rp=ct); HTTP answers are not retried.
    default_retry_on = "conn"
    default_retries = 1

    @staticmethod
    def add_arguments(p):
        g = p.add_argument_group("Twilio")
        g.add_argument("--account-sid", default="AC0123456789abcdef0123456789abcdef",
                       help="the one account (Basic auth user; default AC0123456789abcdef0123456789abcdef)")
        g.add_argument("--auth-token", default="sandbox-twilio-token",
                       help="Basic auth password and the webhook signing key (default sandbox-twilio-token)")
        g.add_argument("--from-number", default="+12055550100",
                       help="the account's number: the Messaging Service's sender and the default inbound To "
                            "(default +12055550100)")
        g.add_argument("--messaging-service-sid", default="MG0123456789abcdef0123456789abcdef",
                       help='the one Messaging Service ("" = none); inbound SMS carry it')
        g.add_argument("--signing-url", default=None,
                       help="URL signed in inbound webhooks' X-Twilio-Signature (default: --webhook-url); "
                            "the public URL when the webhook passes a reverse proxy")
        g.add_argument("--status-callback-url", default=None,
                       help="status callbacks of sends without a StatusCallback parameter (the Messaging "
                            "Service's setting; default: none)")
        g.add_argument("--callback-rewrite", default=None, metavar="PUBLIC=LOCAL",
                       help="deliver status callbacks whose URL starts with PUBLIC to LOCAL + the rest, "
                            "still signing the PUBLIC URL (a reverse proxy in between)")
        g.add_argument("--delivery-delay-ms", type=int, default=50,
                       help="ms between the sent and the delivered/undelivered callbacks (default 50)")

    def __init__(self, args):
        if not ACCOUNT_SID.match(args.account_sid):
            raise ValueError("--account-sid must be AC followed by 32 hex digits")
        if args.messaging_service_sid and not SERVICE_SID.match(args.messaging_service_sid):
            raise ValueError("--messaging-service-sid must be MG followed by 32 hex digits, or empty")
        if normalize_phone(args.from_number) != args.from_number:
            raise ValueError("--from-number must be an E.164 number")
        self._flag_settings(args)
        super().__init__(args)

    def _flag_settings(self, args):
        self.signing_url = args.signing_url
        self.status_callback_url = args.status_callback_url
        self.callback_rewrite = self._parse_rewrite(args.callback_rewrite)
        self.delivery_delay_ms = args.delivery_delay_ms
        self.fail_deliveries = {}  # E.164 -> {"status": "undelivered"|"failed", "error_code": N}

    @staticmethod
    def _parse_rewrite(spec):
        if not spec:
            return None
        public, sep, local = spec.partition("=")
        if not sep or not public or not local:
            raise ValueError("--callback-rewrite must be PUBLIC_PREFIX=LOCAL_PREFIX")
        return public, local

    # ------------------------------------------------------------ state

    def initial_state(self):
        """Messages by sid (oldest first) and the unsubscribed numbers."""
        return {"messages": {}, "optouts": {}}

    def reset_vendor(self):
        self._flag_settings(self.args)

    @property
    def base(self):
        return "/%s/Accounts/%s" % (API_VERSION, self.args.account_sid)

    # ------------------------------------------------------------ errors

    def fault_response(self, status, fault):
        """Injected faults in Twilio's error shape: 20429 Too Many Requests,
        20500 Internal Server Error, 20503 Service Unavailable; other
        statuses 20000 + status."""
        known = {401: (20003, "Authenticate"), 404: (20404, "The requested resource was not found"),
                 429: (20429, "Too Many Requests"), 500: (20500, "Internal Server Error"),
                 503: (20503, "Service Unavailable")}
        code, message = known.get(status, (20000 + status, "Error"))
        return twilio_error(status, code, message)

    # ------------------------------------------------------------ routing

    def _authenticated(self, req):
        auth = req.header("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        return user == self.args.account_sid and password == self.args.auth_token

    def handle_api(self, req):
        if not self._authenticated(req):
            return twilio_error(401, 20003, "Authenticate",
                                {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        not_found = twilio_error(404, 20404, "The requested resource %s was not found" % req.path)
        m = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)\.json", req.path)
        if m and req.method == "GET":
            # Fetch an Account (docs/vendors/twilio-api.md): the one account.
            if m.group(1) != self.args.account_sid:
                return not_found
            return json_response(200, self.account())
        m = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/Messages\.json", req.path)
        if m and req.method == "POST":
            if m.group(1) != self.args.account_sid:
                return not_found
            return self.create_message(req)
        m = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/Messages/([^/]+)\.json", req.path)
        if m and req.method == "GET":
            msg = self.state["messages"].get(m.group(2))
            if m.group(1) != self.args.account_sid or msg is None:
                return not_found
            return json_response(200, self.view(msg))
        return not_found

    def account(self):
        """The Account resource as Twilio's API shows it (active, Full)."""
        created = rfc2822(self.state.get("created", time.time()))
        return {"sid": self.args.account_sid, "friendly_name": "Sandbox account",
                "status": "active", "type": "Full", "owner_account_sid": self.args.account_sid,
                "auth_token": self.args.auth_token, "date_created": created, "date_updated": created,
                "uri": self.base + ".json",
                "subresource_uris": {"messages": self.base + "/Messages.json"}}

    # ------------------------------------------------------------ messages

    @staticmethod
    def _reached(msg, now=None):
        """The timeline entries reached by `now` (at least the initial one):
        [{"t", "status", "error_code"?}, ...]; the last is the current status."""
        now = time.time() if now is None else now
        n = 1
        for i, entry in enumerate(msg["timeline"]):
            if entry["t"] <= now:
                n = i + 1
        return msg["timeline"][:n]

    def view(self, msg, now=None):
        """The Message resource as Twilio's API shows it (JSON)."""
        reached = self._reached(msg, now)
        cur = reached[-1]
        # With a Messaging Service the sender is assigned after "accepted":
        # until then "from" is null and num_segments "0" (Message resource doc).
        assigned = cur["status"] != "accepted"
        if msg["direction"] == "inbound":
            sent = msg["created"]
        else:
            sent = next((e["t"] for e in reached if e["status"] == "sent"), None)
        uri = "%s/Messages/%s.json" % (self.base, msg["sid"])
        code = cur.get("error_code")
        return {
            "account_sid": self.args.account_sid,
            "api_version": API_VERSION,
            "body": msg["body"],
            "date_created": rfc2822(msg["created"]),
            "date_sent": rfc2822(sent) if sent is not None else None,
            "date_updated": rfc2822(cur["t"]),
            "direction": msg["direction"],
            "error_code": code,
            "error_message": ERROR_TEXT.get(code) if code else None,
            "from": msg["from"] if assigned else None,
            "messaging_service_sid": msg["messaging_service_sid"],
            "num_media": "0",
            "num_segments": str(msg["num_segments"]) if assigned else "0",
            "price": None,
            "price_unit": "USD",
            "sid": msg["sid"],
            "status": cur["status"],
            "subresource_uris": {"media": "%s/Messages/%s/Media.json" % (self.base, msg["sid"])},
            "to": msg["to"],
            "uri": uri,
        }

    def create_message(self, req):
        """POST .../Messages.json (form): To, From or MessagingServiceSid, Body,
        StatusCallback. 201 with the Message resource (queued; accepted with a
        Messaging Service); 400 with 21604/21211/21603/21212/21705/21602/21617/21610."""
        p = req.body if isinstance(req.body, dict) else {}
        to_raw = p.get("To", "")
        if not to_raw:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        to = normalize_phone(to_raw)
        if not to:
            return twilio_error(400, 21211, "The 'To' number %s is not a valid phone number." % to_raw)
        frm_raw, service = p.get("From", ""), p.get("MessagingServiceSid", "")
        if not frm_raw and not service:
            return twilio_error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required "
                                            "to send a message.")
        frm = None
        if frm_raw:
            frm = normalize_phone(frm_raw)
            if not frm:
                return twilio_error(400, 21212, "The 'From' number %s is not a valid phone number, "
                                                "shortcode, or alphanumeric sender ID." % frm_raw)
        if service and (not SERVICE_SID.match(service) or service != self.args.messaging_service_sid):
            return twilio_error(400, 21705, "The Messaging Service is invalid.")
        body = p.get("Body", "")
        if not body:
            return twilio_error(400, 21602, "Message body is required.")
        if len(body) > BODY_MAX:
            return twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if to in self.state["optouts"]:
            return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")

        t0 = time.time()
        t1 = t0 + self.delivery_delay_ms / 1000.0
        fail = self.fail_deliveries.get(to)
        timeline = [{"t": t0, "status": "accepted" if service else "queued"}]
        if service:
            timeline.append({"t": t0, "status": "queued"})
        if fail and fail["status"] == "failed":
            timeline.append({"t": t0, "status": "failed", "error_code": fail["error_code"]})
        else:
            timeline.append({"t": t0, "status": "sent"})
            timeline.append({"t": t1, "status": "undelivered", "error_code": fail["error_code"]} if fail
                            else {"t": t1, "status": "delivered"})
        msg = {"sid": sid("SM"), "direction": "outbound-api", "to": to,
               "from": frm or self.args.from_number, "body": body, "num_segments": segments(body),
               "messaging_service_sid": service or None, "created": t0, "timeline": timeline,
               "status_callback": p.get("StatusCallback") or None}
        self.state["messages"][msg["sid"]] = msg
        self.save()
        answer = self.view(msg, now=t0 - 1)  # as created: the initial status
        self._status_callbacks(msg)
        return json_response(201, answer)

    # ------------------------------------------------------------ webhooks

    def _deliver(self, params, signed_url, label, not_before=None, deliver_url=None):
        """POSTs `params` form-encoded, signed over `signed_url`, to
        `deliver_url` (default: the webhook URL)."""
        raw = form_bytes(params)
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "I-Twilio-Idempotency-Token": str(uuid.uuid4())}
        if signed_url:
            headers["X-Twilio-Signature"] = twilio_signature(self.args.auth_token, signed_url, params)
        return self.webhooks.send(raw, headers, label, url=deliver_url, not_before=not_before)

    def _status_callbacks(self, msg):
        """Status callbacks (form) for each status after the initial one
        (Twilio sends none for the initial status), to StatusCallback or
        --status-callback-url, signed over that URL."""
        url = msg["status_callback"] or self.status_callback_url
        if not url:
            return []
        deliver_to = url
        if self.callback_rewrite and url.startswith(self.callback_rewrite[0]):
            deliver_to = self.callback_rewrite[1] + url[len(self.callback_rewrite[0]):]
        out = []
        for entry in msg["timeline"][1:]:
            params = [("SmsSid", msg["sid"]), ("SmsStatus", entry["status"]),
                      ("MessageStatus", entry["status"]), ("To", msg["to"])]
            if msg["messaging_service_sid"]:
                params.append(("MessagingServiceSid", msg["messaging_service_sid"]))
            params += [("MessageSid", msg["sid"]), ("AccountSid", self.args.account_sid),
                       ("From", msg["from"]), ("ApiVersion", API_VERSION)]
            if entry.get("error_code"):
                params.append(("ErrorCode", str(entry["error_code"])))
            d = self._deliver(params, url, "status:" + entry["status"], not_before=entry["t"],
                              deliver_url=deliver_to)
            if d is not None:
                out.append(d)
        return out

    def alerts(self):
        """The Debugger's alerts (Monitor's Alert resource, trimmed): error
        12300 "Invalid Content-Type" for each answer to an incoming-message
        webhook that was 2xx but not text/xml or application/xml (Twilio
        reads it as TwiML; status callbacks may answer anything)."""
        out = []
        for d in self.webhooks.list():
            if not d["event"].startswith("inbound"):
                continue
            for a in d["attempts"]:
                ctype = (a.get("content_type") or "").split(";")[0].strip().lower()
                if a.get("status") and 200 <= a["status"] < 300 and ctype not in ("text/xml", "application/xml"):
                    out.append({"error_code": "12300", "log_level": "error", "request_url": d["url"],
                                "resource_sid": d["body"].get("MessageSid") if isinstance(d["body"], dict) else None,
                                "alert_text": "Invalid Content-Type: " + (a.get("content_type") or "(none)"),
                                "date_created": a["at"]})
        return out

    def send_raw_webhook(self, body):
        """Any parameters (e.g. a fixture parsed into a dict), signed and POSTed
        like an inbound-SMS webhook."""
        params = list(body.items()) if isinstance(body, dict) else []
        label = dict(params).get("SmsStatus", "?")
        return self._deliver(params, self.signing_url or self.webhooks.url, label)

    def receive(self, frm, to, text):
        """An inbound SMS: stored, STOP/START/HELP keywords applied (Advanced
        Opt-Out: OptOutType), the webhook form sent to --webhook-url."""
        now = time.time()
        service = self.args.messaging_service_sid or None
        msg = {"sid": sid("SM"), "direction": "inbound", "to": to, "from": frm, "body": text,
               "num_segments": segments(text), "messaging_service_sid": service, "created": now,
               "timeline": [{"t": now, "status": "received"}], "status_callback": None}
        self.state["messages"][msg["sid"]] = msg
        word = keyword_of(text)
        opt = None
        if word in STOP_WORDS:
            opt = "STOP"
            if frm not in self.state["optouts"]:
                self.state["optouts"][frm] = {"at": iso_ms(now), "messageSid": msg["sid"]}
        elif word in START_WORDS:
            opt = "START"
            self.state["optouts"].pop(frm, None)
        elif word in HELP_WORDS:
            opt = "HELP"
        self.save()
        us = "US" if frm.startswith("+1") else ""
        them_us = "US" if to.startswith("+1") else ""
        params = [("ToCountry", them_us), ("ToState", ""), ("SmsMessageSid", msg["sid"]), ("NumMedia", "0"),
                  ("ToCity", ""), ("FromZip", ""), ("SmsSid", msg["sid"]), ("FromState", ""),
                  ("SmsStatus", "received"), ("FromCity", ""), ("Body", text), ("FromCountry", us),
                  ("To", to)]
        if service:
            params.append(("MessagingServiceSid", service))
        params += [("ToZip", ""), ("NumSegments", str(msg["num_segments"])), ("MessageSid", msg["sid"]),
                   ("AccountSid", self.args.account_sid)]
        if opt:
            params.append(("OptOutType", opt))
        params += [("From", frm), ("ApiVersion", API_VERSION)]
        d = self._deliver(params, self.signing_url or self.webhooks.url, "inbound" + (":" + opt if opt else ""))
        return msg, opt, [d] if d is not None else []

    # ------------------------------------------------------------ admin

    def admin_contacts(self):
        return []  # Twilio keeps no contacts; see /_sandbox/optouts

    def admin_save_contact(self, fields):
        return 400, "Twilio keeps no contacts (see /_sandbox/optouts, /_sandbox/inbound)", []

    def admin_delete_contact(self, cid):
        return 404, "Twilio keeps no contacts", []

    def settings(self):
        return {"signing_url": self.signing_url, "status_callback_url": self.status_callback_url,
                "callback_rewrite": "=".join(self.callback_rewrite) if self.callback_rewrite else None,
                "delivery_delay_ms": self.delivery_delay_ms, "fail_deliveries": dict(self.fail_deliveries)}

    def apply_settings(self, values):
        """Run-time changes (not persisted; /_sandbox/reset restores the flags)."""
        for k, v in values.items():
            try:
                if k in ("signing_url", "status_callback_url") and (v is None or isinstance(v, str)):
                    setattr(self, k, v or None)
                elif k == "callback_rewrite" and (v is None or isinstance(v, str)):
                    self.callback_rewrite = self._parse_rewrite(v)
                elif k == "delivery_delay_ms" and isinstance(v, int) and v >= 0:
                    self.delivery_delay_ms = v
                else:
                    return "cannot set %s to %r" % (k, v)
            except ValueError as e:
                return str(e)
        return None

    def admin_extra(self, req):
        """Twilio-only admin endpoints: inbound SMS, messages, failing deliveries, opt-outs."""
        path = req.path.rstrip("/")
        body = req.body if isinstance(req.body, dict) else {}
        m = req.method
        if path == "/_sandbox/inbound" and m == "POST":
            frm = normalize_phone(body.get("from"))
            to = normalize_phone(body.get("to") or self.args.from_number)
            text = body.get("body")
            if not frm or not to:
                return json_response(400, {"error": "from (and to) must be phone numbers"})
            if not isinstance(text, str):
                return json_response(400, {"error": "body must be a string"})
            msg, opt, deliveries = self.receive(frm, to, text)
            doc = {"message": self.view(msg), "optOutType": opt}
            wait = body.get("wait", True)
            return lambda: json_response(201, self._with_deliveries(doc, deliveries, wait=wait))
        if path == "/_sandbox/alerts" and m == "GET":
            return json_response(200, self.alerts())
        if path == "/_sandbox/messages" and m == "GET":
            return json_response(200, [self.view(x) for x in self.state["messages"].values()])
        if path == "/_sandbox/fail-deliveries":
            if m == "GET":
                return json_response(200, {"fail_deliveries": dict(self.fail_deliveries)})
            if m == "POST":
                to = normalize_phone(body.get("to"))
                status = body.get("status", "undelivered")
                if not to or status not in ("undelivered", "failed"):
                    return json_response(400, {"error": 'expected {"to": E.164, "status"?: "undelivered"|"failed", '
                                                        '"error_code"?: N}'})
                code = body.get("error_code", 30003 if status == "undelivered" else 30008)
                if not isinstance(code, int):
                    return json_response(400, {"error": "error_code must be an integer"})
                self.fail_deliveries[to] = {"status": status, "error_code": code}
                return json_response(200, {"fail_deliveries": dict(self.fail_deliveries)})
            if m == "DELETE":
                to = normalize_phone(req.query.get("to") or body.get("to"))
                if to:
                    self.fail_deliveries.pop(to, None)
                else:
                    self.fail_deliveries.clear()
                return json_response(200, {"fail_deliveries": dict(self.fail_deliveries)})
        if path == "/_sandbox/optouts":
            if m == "GET":
                return json_response(200, {"optouts": self.state["optouts"]})
            if m == "POST":
                phone, opted = normalize_phone(body.get("phone")), body.get("optedOut", True)
                if not phone or not isinstance(opted, bool):
                    return json_response(400, {"error": 'expected {"phone": E.164, "optedOut": bool}'})
                if opted:
                    self.state["optouts"].setdefault(phone, {"at": iso_ms(), "messageSid": None})
                else:
                    self.state["optouts"].pop(phone, None)
                self.save()
                return json_response(200, {"optouts": self.state["optouts"]})
        return None


if __name__ == "__main__":
    sys.exit(run(TwilioSandbox))
