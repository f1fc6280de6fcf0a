#!/usr/bin/env python3
"""GoHighLevel (LeadConnector) API v2 sandbox: contacts, notes, conversations and
messages, a custom conversation provider, OAuth, rate limits, signed webhooks.

Plays https://services.leadconnectorhq.com on loopback (same paths, no /v2
prefix) for one location. Behaviour follows docs/vendors/ghl-api.md; each
handler names the section it follows ("doc §N"). Where that document marks a
fact NOT FOUND / ASSUMPTION, the choice made here is listed in
sandboxes/README.md ("GoHighLevel: choices where the vendor is silent").

Run: python3 sandboxes/ghl.py --port 0 --port-file /tmp/ghl.port [--webhook-url URL] ...
"""

import base64
import collections
import datetime
import os
import re
import secrets
import string
import sys
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (REPO_ROOT, Delivery, Sandbox, iso_ms, json_bytes,  # noqa: E402
                    json_response, normalize_phone, parse_iso_ms, run)

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519, padding  # noqa: E402

# doc §1: accepted Version values (a wrong one is treated like a missing one).
VERSIONS = {"2021-07-28", "2021-04-15", "v3"}

# doc §3.2-3.4 (the OpenAPI DTOs, S1): properties each body may carry. Any
# other property is refused with 422 "property X should not exist" (S1 DTOs;
# the live API does this too, issue #262 quoted in research).
CREATE_FIELDS = {"firstName", "lastName", "name", "email", "locationId", "gender", "phone",
                 "address1", "city", "state", "postalCode", "website", "timezone", "dnd",
                 "dndSettings", "inboundDndSettings", "tags", "customFields", "source",
                 "dateOfBirth", "country", "companyName", "assignedTo"}
UPDATE_FIELDS = CREATE_FIELDS - {"locationId", "gender", "companyName"}
UPSERT_FIELDS = CREATE_FIELDS | {"createNewIfDuplicateAllowed"}
STRING_FIELDS = {"firstName", "lastName", "name", "email", "locationId", "gender", "phone",
                 "address1", "city", "state", "postalCode", "website", "timezone", "source",
                 "dateOfBirth", "country", "companyName", "assignedTo"}
DND_CHANNELS = ("Call", "Email", "SMS", "WhatsApp", "GMB", "FB")
DND_STATUSES = ("active", "inactive", "permanent")

# doc §6.2: the flat fields of contact webhooks (ContactCreate/Update).
WEBHOOK_FIELDS = ("address1", "city", "state", "companyName", "country", "source", "dateAdded",
                  "dateOfBirth", "dnd", "email", "name", "firstName", "lastName", "phone",
                  "postalCode", "tags", "website", "attachments", "assignedTo", "customFields")

# doc §4 (S2 ProcessMessageBodyDto): the `type` enum of the inbound-message
# endpoint; the outbound endpoint (ProcessOutboundMessageBodyDto) takes only Call.
INBOUND_TYPES = ("SMS", "RCS", "Email", "WhatsApp", "GMB", "IG", "FB", "Custom", "WebChat",
                 "Live_Chat", "Call", "IVR_Call", "Campaign_Call", "Campaign_VoiceMail", "TIKTOK",
                 "ALL_IN_ONE_CHAT", "FORM_SUBMISSION")
OUTBOUND_TYPES = ("Call",)
# The channels the sandbox's conversation provider carries (see README choices):
# request type -> (numeric `type`, `messageType` of GetMessageResponseDto,
# `messageType` of the message webhooks).
MESSAGE_KINDS = {"SMS": (2, "TYPE_SMS", "SMS"), "Call": (1, "TYPE_CALL", "CALL")}
CALL_STATUSES = ("pending", "completed", "answered", "busy", "no-answer", "failed", "canceled",
                 "voicemail")                                  # doc §4, CallDataDTO.status
DIRECTIONS = ("outbound", "inbound")
UPDATE_STATUSES = ("delivered", "failed", "pending", "read")   # doc §4.5, UpdateMessageStatusDto
INBOUND_FIELDS = {"type", "attachments", "message", "conversationId", "contactId",
                  "conversationProviderId", "html", "subject", "emailFrom", "emailTo", "emailCc",
                  "emailBcc", "emailMessageId", "altId", "direction", "date", "call"}
# contactId: added to the outbound call by the vendor after S2 (doc §4.2).
OUTBOUND_FIELDS = {"type", "attachments", "conversationId", "contactId", "conversationProviderId",
                   "altId", "date", "call"}
CALL_FIELDS = ("to", "from", "status")
STATUS_FIELDS = {"status", "error", "emailMessageId", "recipients"}
NOTE_FIELDS = {"userId", "body", "title", "color", "pinned"}      # doc §3.10, NotesDTO
MESSAGE_TYPE_FILTERS = {"TYPE_CALL", "TYPE_SMS", "TYPE_RCS", "TYPE_EMAIL", "TYPE_FACEBOOK",
                        "TYPE_GMB", "TYPE_INSTAGRAM", "TYPE_WHATSAPP", "TYPE_ACTIVITY_APPOINTMENT",
                        "TYPE_ACTIVITY_CONTACT", "TYPE_ACTIVITY_INVOICE", "TYPE_ACTIVITY_PAYMENT",
                        "TYPE_ACTIVITY_OPPORTUNITY", "TYPE_LIVE_CHAT", "TYPE_INTERNAL_COMMENTS",
                        "TYPE_ACTIVITY_EMPLOYEE_ACTION_LOG"}

SCOPES = ("contacts.readonly contacts.write conversations.readonly conversations.write "
          "conversations/message.readonly conversations/message.write")
ID_ALPHABET = string.ascii_letters + string.digits


def ghl_error(status, message, error=None, **extra):
    """doc §2: {"statusCode": N, "message": ...} (+ "error" for the DTOs that have it)."""
    body = {"statusCode": status, "message": message}
    if error:
        body["error"] = error
    body.update(extra)
    return json_response(status, body)


def unprocessable(messages):
    """doc §2 UnprocessableDTO: message is an array of strings."""
    return ghl_error(422, list(messages), "Unprocessable Entity")


def new_id():
    """GHL ids look like 20 letters and digits (e.g. nmFmQEsNgz6AVpgLVUJ0)."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(20))


def lower(value):
    return value.lower() if isinstance(value, str) else None


def utc_time(text):
    """Seconds since the epoch of an ISO 8601 date and time in UTC ("Z" or
    "+00:00"), or None (a date alone, no zone, another offset)."""
    if not isinstance(text, str) or "T" not in text or not text.endswith(("Z", "+00:00")):
        return None
    return parse_iso_ms(text)


class GhlSandbox(Sandbox):
    """GoHighLevel API v2 sandbox (contacts, OAuth, rate limits, signed webhooks)."""

    vendor = "ghl"
    # Fixture README: GHL retries webhooks only on 429 (every ~10 min, 6 times;
    # compressed here to --webhook-backoff-ms); 5xx are not retried. "conn"
    # (no answer at all) is a sandbox assumption.
    default_retry_on = "conn,429"
    default_retries = 6

    @staticmethod
    def add_arguments(p):
        g = p.add_argument_group("GoHighLevel")
        g.add_argument("--location-id", default="loc_sandbox", help="the one location (default loc_sandbox)")
        g.add_argument("--company-id", default="cmp_sandbox", help="companyId in token answers (default cmp_sandbox)")
        g.add_argument("--client-id", default="sandbox-client-id", help="OAuth client_id accepted by /oauth/token (default sandbox-client-id)")
        g.add_argument("--client-secret", default="sandbox-client-secret", help="OAuth client_secret (default sandbox-client-secret)")
        g.add_argument("--access-token", default="sandbox-ghl-token",
                       help="pre-issued access token; behaves like a Private Integration Token: "
                            "never expires (default sandbox-ghl-token)")
        g.add_argument("--refresh-token", default="sandbox-ghl-refresh",
                       help="initial (single-use) refresh token (default sandbox-ghl-refresh)")
        g.add_argument("--token-ttl", type=int, default=86399,
                       help="lifetime in seconds of access tokens issued by /oauth/token (default 86399)")
        g.add_argument("--signing-key", default=os.path.join(REPO_ROOT, "etc/dev-keys/ghl-ed25519-private.pem"),
                       help="Ed25519 private key (PEM) for X-GHL-Signature (default etc/dev-keys/ghl-ed25519-private.pem)")
        g.add_argument("--rsa-signing-key", default=None,
                       help="optional RSA private key (PEM): also send the legacy X-WH-Signature")
        g.add_argument("--burst", type=int, default=100, help="requests per burst window (default 100)")
        g.add_argument("--burst-window-ms", type=int, default=10000, help="burst window (default 10000)")
        g.add_argument("--daily", type=int, default=200000, help="requests per day (default 200000)")
        g.add_argument("--allow-duplicates", action="store_true",
                       help='location setting "Allow Duplicate Contact" (default off)')
        g.add_argument("--duplicate-priority", default="email,phone",
                       help="order in which email/phone identify a contact (default email,phone)")
        g.add_argument("--not-found-status", type=int, choices=(400, 404), default=400,
                       help="status for an unknown contact id (default 400, see README)")
        g.add_argument("--no-webhook-date-updated", action="store_true",
                       help="leave dateUpdated out of contact webhooks (the vendor docs do not show it)")
        g.add_argument("--conversation-provider-id", default="sandbox-provider",
                       help="id of the custom (SMS) conversation provider that messages must name "
                            "(default sandbox-provider)")
        g.add_argument("--call-provider-id", default=None,
                       help="id of the call provider for type Call (default: the same as "
                            "--conversation-provider-id)")
        g.add_argument("--provider-url", default=None,
                       help="the provider's Delivery URL for ProviderOutboundMessage "
                            "(default: the webhook URL)")
        g.add_argument("--message-shapes", choices=("docs", "openapi", "live"), default="docs",
                       help="answer shapes of GET /conversations/{id}/messages and "
                            "GET /conversations/messages/{id}: docs = the vendor's reference pages "
                            "(list nested under \"messages\"), openapi = apps/conversations.json "
                            "(flat list), live = as reported from the live API (list nested, one "
                            "message wrapped in {\"message\", \"traceId\"}, meta.call) (default docs)")
        g.add_argument("--no-call-number-check", action="store_true",
                       help="do not require a call's contact-side number (from for inbound, to for "
                            "outbound) to be the contact's phone")
        g.add_argument("--no-message-webhooks", action="store_true",
                       help="send no InboundMessage/OutboundMessage/NoteCreate webhooks for API writes")

    def __init__(self, args):
        with open(args.signing_key, "rb") as f:
            self.signing_key = serialization.load_pem_private_key(f.read(), password=None)
        if not isinstance(self.signing_key, ed25519.Ed25519PrivateKey):
            raise ValueError("--signing-key is not an Ed25519 private key")
        self.rsa_key = None
        if args.rsa_signing_key:
            with open(args.rsa_signing_key, "rb") as f:
                self.rsa_key = serialization.load_pem_private_key(f.read(), password=None)
        self.window = collections.deque()  # times of the requests in the burst window
        self._flag_settings(args)
        super().__init__(args)
        # A state file from an earlier run keeps its tokens (refresh tokens are
        # single use across restarts); a --access-token it does not know yet
        # is added, so changing the flag works without deleting the state.
        with self.lock:
            if args.access_token and args.access_token not in self.state["access_tokens"]:
                self.state["access_tokens"][args.access_token] = {"expires_at": None, "kind": "static"}
                self.save()
            # A state file written before conversations existed gets them empty.
            for key, empty in (("conversations", {}), ("messages", {}), ("notes", {}),
                               ("message_seq", 0)):
                self.state.setdefault(key, empty)

    def _flag_settings(self, args):
        self.allow_duplicates = args.allow_duplicates
        self.priority = [x.strip() for x in args.duplicate_priority.split(",") if x.strip()]
        if sorted(self.priority) != ["email", "phone"]:
            raise ValueError("--duplicate-priority must name email and phone, e.g. phone,email")
        self.burst = args.burst
        self.burst_window_ms = args.burst_window_ms
        self.daily = args.daily
        self.token_ttl = args.token_ttl
        self.provider_url = args.provider_url or None

    # ------------------------------------------------------------ state

    def initial_state(self):
        """Contacts by id; live access tokens (expires_at None = never); the
        valid refresh tokens (single use); authorization codes; today's count;
        conversations, messages and notes by id (message_seq orders messages
        added in the same millisecond)."""
        return {
            "contacts": {},
            "conversations": {},
            "messages": {},
            "notes": {},
            "message_seq": 0,
            "access_tokens": {self.args.access_token: {"expires_at": None, "kind": "static"}},
            "refresh_tokens": [self.args.refresh_token] if self.args.refresh_token else [],
            "auth_codes": [],
            "daily": {"day": time.strftime("%Y-%m-%d", time.gmtime()), "count": 0},
        }

    def reset_vendor(self):
        self.window.clear()
        self._flag_settings(self.args)

    @property
    def location_id(self):
        return self.args.location_id

    # ------------------------------------------------------------ errors, headers

    def fault_response(self, status, fault):
        """doc §2: GHL-shaped error bodies for injected faults."""
        messages = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                    503: "Service Unavailable", 504: "Gateway Timeout", 401: "Invalid JWT",
                    400: "Bad Request", 404: "Not Found", 422: "Unprocessable Entity"}
        return ghl_error(status, messages.get(status, "Error"))

    def decorate(self, req, resp):
        """doc §8: the five rate-limit headers on every API response."""
        self._roll_day()
        self._prune_window()
        resp.headers.update({
            "X-RateLimit-Limit-Daily": str(self.daily),
            "X-RateLimit-Daily-Remaining": str(max(0, self.daily - self.state["daily"]["count"])),
            "X-RateLimit-Interval-Milliseconds": str(self.burst_window_ms),
            "X-RateLimit-Max": str(self.burst),
            "X-RateLimit-Remaining": str(max(0, self.burst - len(self.window))),
        })

    def _roll_day(self):
        today = time.strftime("%Y-%m-%d", time.gmtime())
        if self.state["daily"]["day"] != today:
            self.state["daily"] = {"day": today, "count": 0}

    def _prune_window(self):
        cutoff = time.monotonic() - self.burst_window_ms / 1000.0
        while self.window and self.window[0] <= cutoff:
            self.window.popleft()

    def _consume(self):
        """doc §8: sliding burst window + daily count for the location; None or a 429.
        The 429 body and the absence of Retry-After follow the doc §2 assumption."""
        self._roll_day()
        self._prune_window()
        if self.state["daily"]["count"] >= self.daily or len(self.window) >= self.burst:
            return ghl_error(429, "Too Many Requests")
        self.window.append(time.monotonic())
        # The daily count is saved with the next state change (not on every read).
        self.state["daily"]["count"] += 1
        return None

    # ------------------------------------------------------------ auth

    def _authenticate(self, req):
        """doc §1 table: Version checked first, then the bearer token."""
        if req.header("version") not in VERSIONS:
            return ghl_error(401, "version header was not found.")
        auth = req.header("authorization")
        if not auth:
            return ghl_error(401, "No Authorization header found for authentication!")
        scheme, _, token = auth.strip().partition(" ")
        token = token.strip()
        info = self.state["access_tokens"].get(token) if scheme.lower() == "bearer" else None
        if info is None:
            if token.startswith("pit-"):
                return ghl_error(401, "Invalid Private Integration token")
            return ghl_error(401, "Invalid JWT")
        if info["expires_at"] is not None and time.time() >= info["expires_at"]:
            # doc §2 UnauthorizedDTO (the body for an expired token is not published).
            return ghl_error(401, "Invalid token: access token is invalid", "Unauthorized")
        return None

    def _check_location(self, location_id):
        """doc §2 InvalidLocationDTO (live form with the trailing period, S11/S20)."""
        if location_id != self.location_id:
            return ghl_error(403, "The token does not have access to this location.")
        return None

    def _query_location(self, query):
        """The `locationId` query parameter a listing needs: 422 when absent, 403 when not ours;
        None when it is."""
        loc = query.get("locationId")
        if not loc:
            return unprocessable(["locationId should not be empty"])
        return self._check_location(loc)

    @staticmethod
    def _int_query(query, name, default):
        """(value, None), or (None, the 422 GoHighLevel answers for a non-number)."""
        try:
            return int(query.get(name, default)), None
        except ValueError:
            return None, unprocessable(["%s must be a number conforming to the specified constraints" % name])

    # ------------------------------------------------------------ routing

    ROUTES = [
        ("POST", re.compile(r"/oauth/token"), "oauth_token"),
        ("GET", re.compile(r"/locations/(?P<id>[^/]+)"), "get_location"),
        ("GET", re.compile(r"/contacts/search/duplicate"), "duplicate_search"),
        ("POST", re.compile(r"/contacts/search"), "search"),
        ("POST", re.compile(r"/contacts/upsert"), "upsert"),
        ("GET", re.compile(r"/contacts"), "list_contacts"),
        ("POST", re.compile(r"/contacts"), "create"),
        ("POST", re.compile(r"/contacts/(?P<id>[^/]+)/tags"), "add_tags"),
        ("DELETE", re.compile(r"/contacts/(?P<id>[^/]+)/tags"), "remove_tags"),
        ("POST", re.compile(r"/contacts/(?P<id>[^/]+)/notes"), "create_note"),
        ("GET", re.compile(r"/contacts/(?P<id>[^/]+)/notes"), "list_notes"),
        ("GET", re.compile(r"/contacts/(?P<id>[^/]+)/notes/(?P<note_id>[^/]+)"), "get_note"),
        ("POST", re.compile(r"/conversations/messages/inbound"), "add_inbound_message"),
        ("POST", re.compile(r"/conversations/messages/outbound"), "add_outbound_call"),
        ("PUT", re.compile(r"/conversations/messages/(?P<id>[^/]+)/status"), "update_message_status"),
        ("GET", re.compile(r"/conversations/messages/(?P<id>[^/]+)"), "get_message"),
        ("GET", re.compile(r"/conversations/search"), "search_conversations"),
        ("POST", re.compile(r"/conversations"), "create_conversation"),
        ("GET", re.compile(r"/conversations/(?P<id>[^/]+)/messages"), "list_messages"),
        ("GET", re.compile(r"/conversations/(?P<id>[^/]+)"), "get_conversation"),
        ("GET", re.compile(r"/contacts/(?P<id>[^/]+)"), "get"),
        ("PUT", re.compile(r"/contacts/(?P<id>[^/]+)"), "update"),
        ("DELETE", re.compile(r"/contacts/(?P<id>[^/]+)"), "delete"),
    ]

    def handle_api(self, req):
        path = req.path if req.path == "/" else req.path.rstrip("/")
        for method, pattern, name in self.ROUTES:
            m = pattern.fullmatch(path)
            if m and method == req.method:
                break
        else:
            # NestJS's answer for a route it does not have.
            return json_response(404, {"message": "Cannot %s %s" % (req.method, req.path),
                                       "error": "Not Found", "statusCode": 404})
        if name == "oauth_token":
            return self.oauth_token(req)
        denied = self._authenticate(req)
        if denied:
            return denied
        limited = self._consume()
        if limited:
            return limited
        if req.json_error:
            return ghl_error(400, "Bad Request")
        return getattr(self, name)(req, **m.groupdict())

    # ------------------------------------------------------------ OAuth (doc §5)

    def oauth_token(self, req):
        """POST /oauth/token (doc §5.1, S3): form fields client_id, client_secret,
        grant_type (refresh_token | authorization_code), refresh_token / code,
        user_type. Each refresh token is single use (doc §5.2): the answer
        carries a new one and the old one stops working."""
        form = req.body if isinstance(req.body, dict) else {}
        missing = [k for k in ("client_id", "client_secret", "grant_type") if not form.get(k)]
        if missing:
            return unprocessable(["%s should not be empty" % k for k in missing])
        grants = ("authorization_code", "refresh_token", "client_credentials")
        if form["grant_type"] not in grants:
            return unprocessable(["grant_type must be one of the following values: " + ", ".join(grants)])
        if form.get("user_type") and form["user_type"] not in ("Company", "Location"):
            return unprocessable(["user_type must be one of the following values: Company, Location"])
        if form["client_id"] != self.args.client_id or form["client_secret"] != self.args.client_secret:
            return ghl_error(401, "Invalid client: client credentials are invalid", "Unauthorized")
        if form["grant_type"] == "refresh_token":
            token = form.get("refresh_token")
            if not token:
                return unprocessable(["refresh_token should not be empty"])
            if token not in self.state["refresh_tokens"]:
                # doc §5.1 ASSUMPTION (the vendor's body is not published).
                return ghl_error(400, "Invalid grant: refresh token is invalid", "invalid_grant")
            self.state["refresh_tokens"].remove(token)
        elif form["grant_type"] == "authorization_code":
            code = form.get("code")
            if not code or code not in self.state["auth_codes"]:
                return ghl_error(400, "Invalid grant: authorization code is invalid", "invalid_grant")
            self.state["auth_codes"].remove(code)
        else:
            return ghl_error(400, "Unsupported grant type: client_credentials is not modelled by the sandbox")
        access, refresh = self._issue_tokens()
        self.save()
        return json_response(200, {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_ttl,
            "refresh_token": refresh,
            "scope": SCOPES,
            "userType": form.get("user_type") or "Location",
            "locationId": self.location_id,
            "companyId": self.args.company_id,
            "userId": "usr_sandbox",
            "planId": "plan_sandbox",
            "isBulkInstallation": False,
        })

    def _issue_tokens(self):
        access = "sbx-at-" + secrets.token_hex(24)
        refresh = "sbx-rt-" + secrets.token_hex(24)
        now = time.time()
        # Forget long-expired tokens so the state file does not grow forever.
        live = {t: i for t, i in self.state["access_tokens"].items()
                if i["expires_at"] is None or i["expires_at"] > now - 86400}
        live[access] = {"expires_at": now + self.token_ttl, "kind": "oauth"}
        self.state["access_tokens"] = live
        self.state["refresh_tokens"].append(refresh)
        return access, refresh

    # ------------------------------------------------------------ contacts: helpers

    def _find(self, cid):
        return self.state["contacts"].get(cid)

    def _not_found(self, cid):
        """Unknown contact id. Research doc §2 assumed 404; third-party code
        quotes 400 "Contact with id ... not found" from the live API, so 400 is
        the default (--not-found-status 404 gives the doc's assumption)."""
        if self.args.not_found_status == 404:
            return ghl_error(404, "Contact not found")
        return ghl_error(400, "Contact with id %s not found" % cid)

    def _match(self, email=None, phone=None, exclude=None):
        """Contacts matching by email (case-insensitive) / phone (E.164), as
        {"email": contact, "phone": contact} (a field absent when no match)."""
        out = {}
        e = lower(email.strip()) if isinstance(email, str) and email.strip() else None
        p = normalize_phone(phone) if phone else None
        for c in sorted(self.state["contacts"].values(), key=lambda c: c["dateAdded"]):
            if c["id"] == exclude:
                continue
            if e and "email" not in out and lower(c.get("email")) == e:
                out["email"] = c
            if p and "phone" not in out and c.get("phone") == p:
                out["phone"] = c
        return out

    def _first_match(self, matches):
        for field in self.priority:
            if field in matches:
                return field, matches[field]
        return None, None

    def _duplicate_error(self, field, c):
        """Create/update refused because the location does not allow
        duplicates: the live API's 400 (quoted by several third-party clients;
        the research doc §3.2 lists it as NOT FOUND in the vendor docs)."""
        return ghl_error(400, "This location does not allow duplicated contacts.",
                         meta={"contactName": c.get("name") or "", "contactId": c["id"],
                               "matchingField": field},
                         traceId=str(uuid.uuid4()))

    def _validate(self, body, allowed, need_location):
        """class-validator style checks of the DTOs (doc §3.2, §9)."""
        if not isinstance(body, dict):
            return ["body must be an object"]
        errs = ["property %s should not exist" % k for k in body if k not in allowed]
        for k in STRING_FIELDS & set(body):
            if body[k] is not None and not isinstance(body[k], str):
                errs.append("%s must be a string" % k)
        if need_location and not body.get("locationId"):
            errs.append("locationId should not be empty")
        if isinstance(body.get("email"), str) and body["email"].strip() and \
                not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", body["email"].strip()):
            errs.append("email must be an email")
        if "tags" in body and not (isinstance(body["tags"], list) and all(isinstance(t, str) for t in body["tags"])):
            errs.append("tags must be an array of strings" if isinstance(body["tags"], list) else "tags must be an array")
        if "dnd" in body and not isinstance(body["dnd"], bool):
            errs.append("dnd must be a boolean value")
        if "createNewIfDuplicateAllowed" in body and not isinstance(body["createNewIfDuplicateAllowed"], bool):
            errs.append("createNewIfDuplicateAllowed must be a boolean value")
        if "customFields" in body and not isinstance(body["customFields"], list):
            errs.append("customFields must be an array")
        if "dndSettings" in body:
            ds = body["dndSettings"]
            if not isinstance(ds, dict):
                errs.append("dndSettings must be an object")
            else:
                for ch, v in ds.items():
                    if ch not in DND_CHANNELS:
                        errs.append("dndSettings.property %s should not exist" % ch)
                    elif not isinstance(v, dict) or v.get("status") not in DND_STATUSES:
                        errs.append("dndSettings.%s.status must be one of the following values: %s"
                                    % (ch, ", ".join(DND_STATUSES)))
        return errs

    @staticmethod
    def _norm_tags(tags):
        """Tags are stored trimmed and lower-cased, without repeats (see README)."""
        out = []
        for t in tags or []:
            t = t.strip().lower()
            if t and t not in out:
                out.append(t)
        return out

    def _apply(self, c, body):
        """Writes the DTO fields of `body` into stored contact `c`."""
        for k, v in body.items():
            if k in ("locationId", "createNewIfDuplicateAllowed"):
                continue
            if k == "phone":
                c["phone"] = (normalize_phone(v) or v) if v else None
            elif k == "email":
                c["email"] = v.strip() if isinstance(v, str) and v.strip() else None
            elif k == "tags":
                c["tags"] = self._norm_tags(v)
            elif k == "customFields":
                # Request items {id|key, field_value} -> response items {id, value} (doc §3.2).
                fields = {f["id"]: f for f in c.get("customFields", [])}
                for item in v or []:
                    if isinstance(item, dict):
                        fid = item.get("id") or item.get("key")
                        if fid:
                            fields[fid] = {"id": fid, "value": item.get("field_value", item.get("value"))}
                c["customFields"] = list(fields.values())
            elif k == "dndSettings":
                ds = dict(c.get("dndSettings") or {})
                for ch, st in v.items():
                    ds[ch] = {"status": st.get("status"), "message": st.get("message", ""),
                              "code": st.get("code", "")}
                c["dndSettings"] = ds
            else:
                c[k] = v
        if "name" not in body and ("firstName" in body or "lastName" in body) or not c.get("name"):
            c["name"] = " ".join(x for x in (c.get("firstName"), c.get("lastName")) if x) or None

    def _new_contact(self, body, when=None):
        now = iso_ms(when)
        c = {"id": new_id(), "locationId": self.location_id, "firstName": None, "lastName": None,
             "name": None, "email": None, "phone": None, "tags": [], "dnd": False, "dndSettings": {},
             "address1": None, "city": None, "state": None, "postalCode": None, "country": None,
             "companyName": None, "website": None, "source": None, "timezone": None,
             "assignedTo": None, "dateOfBirth": None, "customFields": [], "attachments": [],
             "type": "lead", "dateAdded": now, "dateUpdated": now}
        self._apply(c, body)
        return c

    def view(self, c):
        """The contact as the API returns it (doc §3.1 keys, ISO ms Z dates)."""
        v = dict(c)
        v["emailLowerCase"] = lower(c.get("email"))
        v["firstNameLowerCase"] = lower(c.get("firstName"))
        v["lastNameLowerCase"] = lower(c.get("lastName"))
        v["fullNameLowerCase"] = lower(c.get("name"))
        v["contactName"] = c.get("name")
        return v

    @staticmethod
    def _snapshot(c):
        return {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
                for k, v in c.items()}

    def _changes(self, before, after):
        """The webhook types an edit causes (doc §6.2): ContactUpdate for any
        field, ContactDndUpdate for dnd/dndSettings, ContactTagUpdate for tags.
        No change -> no webhook."""
        keys = set(before) | set(after)
        changed = {k for k in keys if before.get(k) != after.get(k)} - {"dateUpdated"}
        kinds = []
        if changed - {"tags", "dnd", "dndSettings"}:
            kinds.append("ContactUpdate")
        if changed & {"dnd", "dndSettings"}:
            kinds.append("ContactDndUpdate")
        if "tags" in changed:
            kinds.append("ContactTagUpdate")
        return kinds

    # ------------------------------------------------------------ webhooks (doc §6)

    def webhook_body(self, kind, c):
        """A contact webhook shaped like tests/fixtures/ghl/<kind>.json."""
        body = {"type": kind, "webhookId": str(uuid.uuid4()), "timestamp": iso_ms(),
                "locationId": c.get("locationId", self.location_id), "id": c["id"]}
        if kind == "ContactDelete":
            body.update({"email": c.get("email"), "name": c.get("name"), "phone": c.get("phone"),
                         "tags": []})
            return body
        if kind == "ContactTagUpdate":
            body.update({k: c.get(k) for k in ("email", "name", "firstName", "lastName", "phone", "tags")})
        elif kind == "ContactDndUpdate":
            body.update({"phone": c.get("phone"), "email": c.get("email"), "dnd": c.get("dnd", False),
                         "dndSettings": c.get("dndSettings") or {}})
        else:
            body.update({k: c.get(k) for k in WEBHOOK_FIELDS})
        body["dateAdded"] = c["dateAdded"]
        if not self.args.no_webhook_date_updated:
            body["dateUpdated"] = c["dateUpdated"]
        return body

    def sign(self, raw):
        """X-GHL-Signature: base64 Ed25519 over the raw body (doc §6.1, fixtures
        README); X-WH-Signature (legacy RSA PKCS#1 v1.5 SHA-256) when configured."""
        headers = {"X-GHL-Signature": base64.b64encode(self.signing_key.sign(raw)).decode()}
        if self.rsa_key is not None:
            sig = self.rsa_key.sign(raw, padding.PKCS1v15(), hashes.SHA256())
            headers["X-WH-Signature"] = base64.b64encode(sig).decode()
        return headers

    def send_raw_webhook(self, body):
        raw = json_bytes(body)
        label = body.get("type", "?") if isinstance(body, dict) else "?"
        return self.webhooks.send(raw, self.sign(raw), label)

    def _emit(self, kinds, c):
        out = []
        for kind in kinds:
            out.append(self.send_raw_webhook(self.webhook_body(kind, c)))
        return [d for d in out if d is not None]

    # ------------------------------------------------------------ contacts endpoints (doc §3)

    def duplicate_search(self, req):
        """GET /contacts/search/duplicate?locationId=&number=&email= (doc §3.6):
        200 {"contact": {...}} or {"contact": null}."""
        denied = self._query_location(req.query)
        if denied:
            return denied
        matches = self._match(req.query.get("email"), req.query.get("number"))
        if self.allow_duplicates:
            order = ["email", "phone"]  # doc §3.6: email first, then phone
        else:
            order = self.priority       # the location's unique identifier order
        for field in order:
            if field in matches:
                return json_response(200, {"contact": self.view(matches[field])})
        return json_response(200, {"contact": None})

    def create(self, req):
        """POST /contacts/ (doc §3.2): 201 {"contact": {...}}; 422 on DTO errors;
        400 "does not allow duplicated contacts" when the setting is off and the
        email or phone already belongs to a contact."""
        body = req.body if req.body is not None else {}
        errs = self._validate(body, CREATE_FIELDS, need_location=True)
        if errs:
            return unprocessable(errs)
        denied = self._check_location(body["locationId"])
        if denied:
            return denied
        if not self.allow_duplicates:
            field, dup = self._first_match(self._match(body.get("email"), body.get("phone")))
            if dup:
                return self._duplicate_error(field, dup)
        c = self._new_contact(body)
        self.state["contacts"][c["id"]] = c
        self.save()
        self._emit(["ContactCreate"], c)
        return json_response(201, {"contact": self.view(c)})

    def get(self, req, id):
        """GET /contacts/:id (doc §3.1): 200 {"contact": {...}}."""
        c = self._find(id)
        if not c:
            return self._not_found(id)
        return json_response(200, {"contact": self.view(c)})

    def update(self, req, id):
        """PUT /contacts/:id (doc §3.3): 200 {"succeded": true, "contact": {...}}
        (the vendor's spelling). Tags in the body replace all tags."""
        c = self._find(id)
        if not c:
            return self._not_found(id)
        body = req.body if req.body is not None else {}
        errs = self._validate(body, UPDATE_FIELDS, need_location=False)
        if errs:
            return unprocessable(errs)
        if not self.allow_duplicates:
            field, dup = self._first_match(self._match(body.get("email"), body.get("phone"), exclude=id))
            if dup:
                return self._duplicate_error(field, dup)
        before = self._snapshot(c)
        self._apply(c, body)
        kinds = self._changes(before, c)
        if kinds:
            c["dateUpdated"] = iso_ms()
        self.save()
        self._emit(kinds, c)
        return json_response(200, {"succeded": True, "contact": self.view(c)})

    def delete(self, req, id):
        """DELETE /contacts/:id (doc §3.5): 200 {"succeded": true}."""
        c = self.state["contacts"].pop(id, None)
        if not c:
            return self._not_found(id)
        self.save()
        self._emit(["ContactDelete"], c)
        return json_response(200, {"succeded": True})

    def upsert(self, req):
        """POST /contacts/upsert (doc §3.4): 200 {"new", "contact", "traceId"}.
        Matching follows the duplicate setting: the first field of the priority
        order that matches wins; when duplicates are not allowed, the other
        field is not written if it belongs to another contact (issue #37).
        With duplicates allowed and createNewIfDuplicateAllowed true, always new."""
        body = req.body if req.body is not None else {}
        errs = self._validate(body, UPSERT_FIELDS, need_location=True)
        if errs:
            return unprocessable(errs)
        denied = self._check_location(body["locationId"])
        if denied:
            return denied
        trace = str(uuid.uuid4())
        target = None
        if not (self.allow_duplicates and body.get("createNewIfDuplicateAllowed")):
            matches = self._match(body.get("email"), body.get("phone"))
            field, target = self._first_match(matches)
            if target and not self.allow_duplicates:
                other = "phone" if field == "email" else "email"
                if other in matches and matches[other]["id"] != target["id"]:
                    body = {k: v for k, v in body.items() if k != other}
        if target is None:
            c = self._new_contact(body)
            self.state["contacts"][c["id"]] = c
            self.save()
            self._emit(["ContactCreate"], c)
            return json_response(200, {"new": True, "contact": self.view(c), "traceId": trace})
        before = self._snapshot(target)
        self._apply(target, body)
        kinds = self._changes(before, target)
        if kinds:
            target["dateUpdated"] = iso_ms()
        self.save()
        self._emit(kinds, target)
        return json_response(200, {"new": False, "contact": self.view(target), "traceId": trace})

    def _tags_body(self, req):
        body = req.body
        if not isinstance(body, dict) or "tags" not in body:
            return None, unprocessable(["tags must be an array", "tags should not be empty"])
        if not isinstance(body["tags"], list) or not all(isinstance(t, str) for t in body["tags"]):
            return None, unprocessable(["tags must be an array"])
        extra = [k for k in body if k != "tags"]
        if extra:
            return None, unprocessable(["property %s should not exist" % k for k in extra])
        return self._norm_tags(body["tags"]), None

    def add_tags(self, req, id):
        """POST /contacts/:id/tags {"tags": [...]} (doc §3.9): 201 {"tags": full set}."""
        return self._change_tags(req, id, 201, lambda before, tags: self._norm_tags(before + tags))

    def remove_tags(self, req, id):
        """DELETE /contacts/:id/tags {"tags": [...]} (doc §3.9): 200 {"tags": full set}."""
        return self._change_tags(req, id, 200, lambda before, tags: [t for t in before if t not in tags])

    def _change_tags(self, req, id, status, combine):
        """Applies `combine(old tags, request tags)`; a real change is saved and
        sends ContactTagUpdate."""
        c = self._find(id)
        if not c:
            return self._not_found(id)
        tags, err = self._tags_body(req)
        if err:
            return err
        before = list(c["tags"])
        c["tags"] = combine(before, tags)
        if c["tags"] != before:
            c["dateUpdated"] = iso_ms()
            self.save()
            self._emit(["ContactTagUpdate"], c)
        return json_response(status, {"tags": list(c["tags"])})

    # ------------------------------------------------------------ listing (doc §3.7, §3.8)

    def _sorted(self, sort):
        """Contacts in dateAdded, id order, then stably by each `sort` item
        ({field, direction}), the last item applied first."""
        contacts = sorted(self.state["contacts"].values(), key=lambda c: (c["dateAdded"], c["id"]))
        for s in reversed(sort or []):
            field, desc = s.get("field"), s.get("direction", "asc") == "desc"
            contacts.sort(key=lambda c, f=field: (c.get(f) is None, str(c.get(f) or "").lower()),
                          reverse=desc)
        return contacts

    @staticmethod
    def _cursor(c):
        """searchAfter of a contact: [dateAdded epoch ms, id] (doc §3.7)."""
        return [int(round(parse_iso_ms(c["dateAdded"]) * 1000)), c["id"]]

    def _filter_ok(self, c, f):
        if "group" in f:
            subs = f.get("filters") or []
            results = [self._filter_ok(c, s) for s in subs]
            return any(results) if str(f["group"]).upper() == "OR" else all(results)
        field, op, value = f.get("field"), f.get("operator"), f.get("value")
        v = self.view(c).get(field)
        if field == "phone" and isinstance(value, str):
            value = normalize_phone(value) or value
        if op == "eq":
            return (v in value) if isinstance(v, list) else (lower(v) == lower(value) if isinstance(v, str) else v == value)
        if op == "not_eq":
            return not self._filter_ok(c, dict(f, operator="eq"))
        if op == "contains":
            return isinstance(v, str) and isinstance(value, str) and value.lower() in v.lower()
        if op == "not_contains":
            return not self._filter_ok(c, dict(f, operator="contains"))
        if op == "exists":
            return v not in (None, "", [], {})
        if op == "not_exists":
            return v in (None, "", [], {})
        if op == "range" and isinstance(value, dict):
            x = parse_iso_ms(v) if isinstance(v, str) and parse_iso_ms(v) is not None else v
            for k, bound in value.items():
                b = parse_iso_ms(bound) if isinstance(bound, str) and parse_iso_ms(bound) is not None else bound
                if x is None or b is None:
                    return False
                if (k == "gt" and not x > b) or (k == "gte" and not x >= b) or \
                        (k == "lt" and not x < b) or (k == "lte" and not x <= b):
                    return False
            return True
        return False

    @staticmethod
    def _query_ok(c, q):
        if not q:
            return True
        q = q.lower()
        hay = " ".join(str(c.get(k) or "") for k in ("name", "firstName", "lastName", "email",
                                                     "phone", "companyName")).lower()
        return q in hay

    def search(self, req):
        """POST /contacts/search (doc §3.7): body locationId + pageLimit (<=500)
        required (else 422, S10); `page` (1-based, <=10,000 records) or
        `searchAfter` (cursor from the previous page's last contact);
        filters/sort/query. Answer {"contacts": [... each with searchAfter], "total"}.
        Default order: dateAdded then id, ascending (cursor [epoch ms, id])."""
        body = req.body if isinstance(req.body, dict) else {}
        errs = []
        if not body.get("locationId"):
            errs.append("locationId should not be empty")
        limit = body.get("pageLimit")
        if not isinstance(limit, int) or isinstance(limit, bool):
            errs.append("pageLimit must be a number conforming to the specified constraints")
        elif not 1 <= limit <= 500:
            errs.append("pageLimit must not be greater than 500" if limit > 500 else "pageLimit must not be less than 1")
        if "searchAfter" in body and "page" in body:
            errs.append("page should not exist when searchAfter is used")
        if "searchAfter" in body and not isinstance(body["searchAfter"], list):
            errs.append("searchAfter must be an array")
        if isinstance(body.get("query"), str) and len(body["query"]) > 75:
            errs.append("query must be shorter than or equal to 75 characters")
        if errs:
            return unprocessable(errs)
        denied = self._check_location(body["locationId"])
        if denied:
            return denied
        sort = body.get("sort") or []
        contacts = [c for c in self._sorted(sort)
                    if all(self._filter_ok(c, f) for f in (body.get("filters") or []))
                    and self._query_ok(c, body.get("query"))]
        total = len(contacts)
        if "searchAfter" in body:
            after = body["searchAfter"]
            if sort:
                ids = [c["id"] for c in contacts]
                start = ids.index(after[-1]) + 1 if after and after[-1] in ids else 0
                page = contacts[start:start + limit]
            else:
                key = (after[0], str(after[1])) if len(after) >= 2 else (after[0] if after else 0, "")
                page = [c for c in contacts if tuple(self._cursor(c)) > key][:limit]
        else:
            page_no = body.get("page", 1)
            if not isinstance(page_no, int) or page_no < 1:
                return unprocessable(["page must not be less than 1"])
            if page_no * limit > 10000:
                return ghl_error(400, "Standard pagination is limited to 10,000 records; use searchAfter")
            page = contacts[(page_no - 1) * limit: page_no * limit]
        out = []
        for c in page:
            v = self.view(c)
            v["searchAfter"] = self._cursor(c)
            out.append(v)
        return json_response(200, {"contacts": out, "total": total})

    def list_contacts(self, req):
        """GET /contacts/?locationId=&limit=&startAfterId=&startAfter=&query=
        (doc §3.8, DEPRECATED by the vendor): {"contacts", "count", "meta"}.
        Order dateAdded then id; startAfter is epoch ms of the last dateAdded."""
        denied = self._query_location(req.query)
        if denied:
            return denied
        limit, bad = self._int_query(req.query, "limit", "20")
        if bad:
            return bad
        if not 1 <= limit <= 100:
            return unprocessable(["limit must not be greater than 100" if limit > 100 else "limit must not be less than 1"])
        contacts = [c for c in self._sorted([]) if self._query_ok(c, req.query.get("query"))]
        total = len(contacts)
        after_id = req.query.get("startAfterId")
        after_ms = req.query.get("startAfter")
        if after_id or after_ms:
            key = (int(float(after_ms)) if after_ms else 0, after_id or "")
            if after_id and not after_ms and after_id in self.state["contacts"]:
                key = tuple(self._cursor(self.state["contacts"][after_id]))
            contacts = [c for c in contacts if tuple(self._cursor(c)) > key]
        page = contacts[:limit]
        more = len(contacts) > limit
        last = self._cursor(page[-1]) if page and more else None
        meta = {"total": total, "currentPage": None, "nextPage": None, "prevPage": None,
                "startAfterId": last[1] if last else None,
                "startAfter": last[0] if last else None,
                "nextPageUrl": None}
        if last:
            q = {"locationId": self.location_id, "limit": limit, "startAfterId": last[1], "startAfter": last[0]}
            meta["nextPageUrl"] = "/contacts/?" + urllib.parse.urlencode(q)
        return json_response(200, {"contacts": [self.view(c) for c in page], "count": total, "meta": meta})

    # ------------------------------------------------------------ notes (doc §3.10)

    def _not_found_kind(self, kind, ident):
        """An unknown conversation / message / note id: like an unknown contact
        (400 "<Kind> with id X not found" by default, 404 with
        --not-found-status 404; see README choices)."""
        if self.args.not_found_status == 404:
            return ghl_error(404, "%s not found" % kind)
        return ghl_error(400, "%s with id %s not found" % (kind, ident))

    @staticmethod
    def _string_errors(body, names, prefix=""):
        return ["%s%s must be a string" % (prefix, k) for k in names
                if k in body and body[k] is not None and not isinstance(body[k], str)]

    @staticmethod
    def _note_view(n):
        """GetNoteSchema (S1): id, body, userId, dateAdded, contactId, title, color, pinned."""
        return {k: n.get(k) for k in ("id", "body", "userId", "dateAdded", "contactId", "title",
                                      "color", "pinned")}

    def create_note(self, req, id):
        """POST /contacts/:contactId/notes (doc §3.10, S1 NotesDTO): body required;
        userId, title, color, pinned optional. 201 {"note": {...}}; 422 on DTO
        errors; unknown contact as for GET /contacts/:id. Sends NoteCreate (S7)."""
        body = req.body if req.body is not None else {}
        if not isinstance(body, dict):
            return unprocessable(["body must be an object"])
        errs = ["property %s should not exist" % k for k in body if k not in NOTE_FIELDS]
        text = body.get("body")
        if text is None or text == "":
            errs.append("body should not be empty")
        if not isinstance(text, str):
            errs.append("body must be a string")
        errs += self._string_errors(body, ("userId", "title", "color"))
        if "pinned" in body and not isinstance(body["pinned"], bool):
            errs.append("pinned must be a boolean value")
        if errs:
            return unprocessable(errs)
        c = self._find(id)
        if not c:
            return self._not_found(id)
        note = {"id": new_id(), "body": body["body"], "userId": body.get("userId"),
                "dateAdded": iso_ms(), "contactId": id, "title": body.get("title"),
                "color": body.get("color"), "pinned": bool(body.get("pinned", False))}
        self.state["notes"][note["id"]] = note
        self.save()
        if not self.args.no_message_webhooks:
            self.send_raw_webhook({"type": "NoteCreate", "webhookId": str(uuid.uuid4()),
                                   "timestamp": iso_ms(), "locationId": self.location_id,
                                   "id": note["id"], "body": note["body"], "contactId": id,
                                   "dateAdded": note["dateAdded"]})
        return json_response(201, {"note": self._note_view(note)})

    def _contact_notes(self, contact_id):
        """A contact's notes, newest first."""
        return sorted((n for n in self.state["notes"].values() if n["contactId"] == contact_id),
                      key=lambda n: (n["dateAdded"], n["id"]), reverse=True)

    def list_notes(self, req, id):
        """GET /contacts/:contactId/notes (doc §3.10): 200 {"notes": [...]}, newest first."""
        if not self._find(id):
            return self._not_found(id)
        return json_response(200, {"notes": [self._note_view(n) for n in self._contact_notes(id)]})

    def get_note(self, req, id, note_id):
        """GET /contacts/:contactId/notes/:id (doc §3.10): 200 {"note": {...}}."""
        if not self._find(id):
            return self._not_found(id)
        n = self.state["notes"].get(note_id)
        if not n or n["contactId"] != id:
            return self._not_found_kind("Note", note_id)
        return json_response(200, {"note": self._note_view(n)})

    # ------------------------------------------------------------ conversations (doc §4)

    def _providers(self):
        """request type -> the provider id that type must name."""
        return {"SMS": self.args.conversation_provider_id,
                "Call": self.args.call_provider_id or self.args.conversation_provider_id}

    def _conversation_of(self, contact_id):
        for conv in self.state["conversations"].values():
            if conv["contactId"] == contact_id:
                return conv
        return None

    def _new_conversation(self, contact_id):
        """One conversation per contact (ConversationProviders.md, "One
        conversationId is maintained per contact")."""
        now = iso_ms()
        conv = {"id": new_id(), "contactId": contact_id, "locationId": self.location_id,
                "dateAdded": now, "dateUpdated": now, "deleted": False, "inbox": True,
                "starred": False, "assignedTo": None, "unreadCount": 0, "lastMessageDate": None,
                "lastMessageBody": "", "lastMessageType": None, "lastMessageDirection": None}
        self.state["conversations"][conv["id"]] = conv
        return conv

    def _conversation_search_view(self, conv):
        """ConversationSchema (S2; required keys), plus the dates and the last
        message's direction."""
        c = self._find(conv["contactId"]) or {}
        return {"id": conv["id"], "contactId": conv["contactId"], "locationId": conv["locationId"],
                "lastMessageBody": conv["lastMessageBody"], "lastMessageType": conv["lastMessageType"],
                "lastMessageDirection": conv["lastMessageDirection"],
                "lastMessageDate": self._epoch_ms(conv["lastMessageDate"]),
                "type": "TYPE_PHONE", "unreadCount": conv["unreadCount"],
                "fullName": c.get("name") or "", "contactName": c.get("name") or "",
                "email": c.get("email") or "", "phone": c.get("phone") or "",
                "dateAdded": self._epoch_ms(conv["dateAdded"]),
                "dateUpdated": self._epoch_ms(conv["dateUpdated"])}

    @staticmethod
    def _epoch_ms(text):
        t = parse_iso_ms(text)
        return int(round(t * 1000)) if t is not None else None

    @staticmethod
    def _conversation_view(conv):
        """GetConversationByIdResponse (S2): type 1 = Phone."""
        v = {"id": conv["id"], "contactId": conv["contactId"], "locationId": conv["locationId"],
             "deleted": conv["deleted"], "inbox": conv["inbox"], "type": 1,
             "unreadCount": conv["unreadCount"], "starred": conv["starred"],
             "dateAdded": conv["dateAdded"], "dateUpdated": conv["dateUpdated"],
             "lastMessageDate": conv["lastMessageDate"]}
        if conv.get("assignedTo"):
            v["assignedTo"] = conv["assignedTo"]
        return v

    def create_conversation(self, req):
        """POST /conversations/ {locationId, contactId} (doc §4.3, S2
        CreateConversationDto): 201 {"success": true, "conversation":
        ConversationCreateResponseDto}. A contact that already has one: 400
        "Conversation with the contact id:X already exists!" (live answer, S22;
        the vendor declined to add the id to it, so search for it)."""
        body = req.body if req.body is not None else {}
        if not isinstance(body, dict):
            return unprocessable(["body must be an object"])
        errs = ["property %s should not exist" % k for k in body if k not in ("locationId", "contactId")]
        for k in ("locationId", "contactId"):
            if not isinstance(body.get(k), str) or not body[k]:
                errs.append("%s should not be empty" % k)
                if k in body and not isinstance(body[k], str):
                    errs.append("%s must be a string" % k)
        if errs:
            return unprocessable(errs)
        denied = self._check_location(body["locationId"])
        if denied:
            return denied
        cid = body["contactId"]
        if not self._find(cid):
            return self._not_found(cid)
        if self._conversation_of(cid):
            return ghl_error(400, "Conversation with the contact id:%s already exists!" % cid,
                             traceId=str(uuid.uuid4()))
        conv = self._new_conversation(cid)
        self.save()
        out = {k: conv[k] for k in ("id", "dateUpdated", "dateAdded", "deleted", "contactId",
                                    "locationId", "lastMessageDate")}
        return json_response(201, {"success": True, "conversation": out})

    def get_location(self, req, id):
        """GET /locations/{locationId} (doc §10; scope locations.readonly): 200
        {"location": {...}} for the sandbox's location; another id is not this
        token's: 403 as the other location-bound endpoints answer."""
        denied = self._check_location(id)
        if denied:
            return denied
        return json_response(200, {"location": {
            "id": self.location_id, "companyId": "company_sandbox", "name": "Sandbox Location",
            "timezone": "America/Chicago", "country": "US"}})

    def search_conversations(self, req):
        """GET /conversations/search?locationId=&contactId=&id=&query=&limit=&sort=
        &lastMessageType=&lastMessageDirection= (doc §4.3): 200 {"conversations":
        [ConversationSchema], "total"}, by last message date (then creation),
        newest first unless sort=asc. Immediate (no indexing lag, see README)."""
        q = req.query
        denied = self._query_location(q)
        if denied:
            return denied
        limit, bad = self._int_query(q, "limit", "20")
        if bad:
            return bad
        if q.get("sort") and q["sort"] not in ("asc", "desc"):
            return unprocessable(["sort must be one of the following values: asc, desc"])
        convs = list(self.state["conversations"].values())
        if q.get("contactId"):
            convs = [c for c in convs if c["contactId"] == q["contactId"]]
        if q.get("id"):
            convs = [c for c in convs if c["id"] == q["id"]]
        if q.get("lastMessageType"):
            convs = [c for c in convs if c["lastMessageType"] == q["lastMessageType"]]
        if q.get("lastMessageDirection"):
            convs = [c for c in convs if c["lastMessageDirection"] == q["lastMessageDirection"]]
        if q.get("query"):
            needle = q["query"].lower()
            digits = re.sub(r"\D", "", needle)
            kept = []
            for conv in convs:
                c = self._find(conv["contactId"]) or {}
                hay = " ".join(str(c.get(k) or "") for k in ("name", "email", "phone")).lower()
                if needle in hay or (digits and digits in re.sub(r"\D", "", c.get("phone") or "")) \
                        or needle in (conv["lastMessageBody"] or "").lower():
                    kept.append(conv)
            convs = kept
        convs.sort(key=lambda c: (c["lastMessageDate"] or c["dateAdded"], c["dateAdded"], c["id"]),
                   reverse=q.get("sort", "desc") == "desc")
        page = convs[:max(0, min(limit, 100))]
        return json_response(200, {"conversations": [self._conversation_search_view(c) for c in page],
                                   "total": len(convs)})

    def get_conversation(self, req, id):
        """GET /conversations/:conversationId (doc §4.3): 200 GetConversationByIdResponse (flat)."""
        conv = self.state["conversations"].get(id)
        if not conv:
            return self._not_found_kind("Conversation", id)
        return json_response(200, self._conversation_view(conv))

    # ------------------------------------------------------------ messages (doc §4)

    def _message_dto_errors(self, body, allowed, types):
        """class-validator style checks of ProcessMessageBodyDto /
        ProcessOutboundMessageBodyDto (doc §4.1, §4.2): 422 messages."""
        errs = ["property %s should not exist" % k for k in body if k not in allowed]
        t = body.get("type")
        if t is None or t == "":
            errs.append("type should not be empty")
        if t not in types:
            errs.append("type must be one of the following values: " + ", ".join(types))
        p = body.get("conversationProviderId")
        if not isinstance(p, str) or not p:
            errs.append("conversationProviderId should not be empty")
            if p is not None and not isinstance(p, str):
                errs.append("conversationProviderId must be a string")
        errs += self._string_errors(body, ("message", "conversationId", "contactId", "altId", "html",
                                           "subject", "emailFrom", "emailTo", "emailMessageId"))
        for k in ("attachments", "emailCc", "emailBcc"):
            if k in body:
                if not isinstance(body[k], list):
                    errs.append("%s must be an array" % k)
                elif not all(isinstance(x, str) for x in body[k]):
                    errs.append("each value in %s must be a string" % k)
        if "direction" in body and body["direction"] not in DIRECTIONS:
            errs.append("direction must be one of the following values: " + ", ".join(DIRECTIONS))
        if "date" in body and self._parse_date(body["date"]) is None:
            errs.append("date must be a valid ISO 8601 date string")
        if "call" in body:
            call = body["call"]
            if not isinstance(call, dict):
                errs.append("call must be an object")
            else:
                errs += ["call.property %s should not exist" % k for k in call if k not in CALL_FIELDS]
                errs += self._string_errors(call, ("to", "from"), "call.")
                if "status" in call and call["status"] not in CALL_STATUSES:
                    errs.append("call.status must be one of the following values: " + ", ".join(CALL_STATUSES))
        return errs

    @staticmethod
    def _parse_date(value):
        """Epoch seconds of an ISO 8601 date-time (a zone-less one is UTC), or None."""
        if not isinstance(value, str) or not re.match(r"\d{4}-\d\d-\d\d", value):
            return None
        try:
            d = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if d.tzinfo is None:
            d = d.replace(tzinfo=datetime.timezone.utc)
        return d.timestamp()

    @staticmethod
    def _call_outcome(direction, call_status):
        """(message status, callStatus) of a call (S7 InboundMessage/OutboundMessage
        "Call Status Details"): answered -> completed/completed; voicemail ->
        voicemail/voicemail inbound, completed/voicemail outbound; other values
        as given; no status -> completed (README choice)."""
        cs = call_status or "completed"
        if cs in ("answered", "completed"):
            return "completed", "completed"
        if cs == "voicemail":
            return ("voicemail" if direction == "inbound" else "completed"), "voicemail"
        return cs, cs

    def _resolve_conversation(self, body):
        """The conversation a message names: conversationId, or contactId alone
        (resolved or created, vendor's reference pages, doc §4.1/§4.2), or both
        (they must agree). Returns (conversation, contact, error response)."""
        conv_id, contact_id = body.get("conversationId"), body.get("contactId")
        if not conv_id and not contact_id:
            return None, None, ghl_error(400, "Either conversationId or contactId is required")
        conv = None
        if conv_id:
            conv = self.state["conversations"].get(conv_id)
            if not conv:
                return None, None, self._not_found_kind("Conversation", conv_id)
        if contact_id:
            contact = self._find(contact_id)
            if not contact:
                return None, None, self._not_found(contact_id)
            if conv and conv["contactId"] != contact_id:
                return None, None, ghl_error(400, "Conversation %s does not belong to contact %s"
                                             % (conv_id, contact_id))
            if conv is None:
                conv = self._conversation_of(contact_id) or self._new_conversation(contact_id)
        contact = self._find(conv["contactId"])
        if not contact:
            return None, None, self._not_found(conv["contactId"])
        return conv, contact, None

    def _add_message(self, req, endpoint):
        body = req.body if req.body is not None else {}
        if not isinstance(body, dict):
            return unprocessable(["body must be an object"])
        inbound_ep = endpoint == "inbound"
        errs = self._message_dto_errors(body, INBOUND_FIELDS if inbound_ep else OUTBOUND_FIELDS,
                                        INBOUND_TYPES if inbound_ep else OUTBOUND_TYPES)
        if errs:
            return unprocessable(errs)
        kind = body["type"]
        providers = self._providers()
        if kind not in providers:
            # A valid channel the sandbox's providers do not carry (README choice).
            return ghl_error(400, "The conversation provider %s does not support messages of type %s"
                             % (body["conversationProviderId"], kind), "Bad Request")
        if body["conversationProviderId"] != providers[kind]:
            # Live answer to a provider id that is not the app's (S21).
            return ghl_error(400, "Invalid conversationProviderId", "Bad Request")
        conv, contact, err = self._resolve_conversation(body)
        if err:
            return err
        # doc §4.1: "default is outbound" (ProcessMessageBodyDto.direction).
        direction = body.get("direction", "outbound") if inbound_ep else "outbound"
        call = None
        status, call_status = "delivered", None
        if kind == "Call":
            call = body.get("call")
            if not isinstance(call, dict):
                return ghl_error(400, "call is required for messages of type Call")
            call = {k: call.get(k) for k in CALL_FIELDS if k in call}
            side = "from" if direction == "inbound" else "to"
            # ConversationProviders.md: inbound calls' "from", outbound calls' "to"
            # must match an existing contact (here: the conversation's contact).
            if not self.args.no_call_number_check:
                number = normalize_phone(call.get(side)) if call.get(side) else None
                if not number or number != contact.get("phone"):
                    return ghl_error(400, "The call's %s number %s does not match the contact %s"
                                     % (side, call.get(side), contact["id"]))
            status, call_status = self._call_outcome(direction, call.get("status"))
        when = self._parse_date(body["date"]) if "date" in body else None
        msg = self._store_message(conv, kind=kind, direction=direction, status=status,
                                  body=body.get("message") if kind == "SMS" else None,
                                  attachments=list(body.get("attachments") or []),
                                  alt_id=body.get("altId"), provider=body["conversationProviderId"],
                                  source="api", user_id=None, call=call, call_status=call_status,
                                  endpoint=endpoint, when=when)
        self.save()
        if not self.args.no_message_webhooks:
            self.send_raw_webhook(self._message_webhook(msg))
        return json_response(200, {"success": True, "conversationId": conv["id"],
                                   "messageId": msg["id"], "message": "Message added successfully.",
                                   "contactId": msg["contactId"], "dateAdded": msg["dateAdded"]})

    def _store_message(self, conv, kind, direction, status, body, attachments, alt_id, provider,
                       source, user_id, call, call_status, endpoint, when=None):
        """Stores a message (every post: no de-duplication by altId, README) and
        updates its conversation."""
        self.state["message_seq"] += 1
        now = iso_ms()
        msg = {"id": new_id(), "seq": self.state["message_seq"], "altId": alt_id, "type": kind,
               "messageType": MESSAGE_KINDS[kind][1], "locationId": self.location_id,
               "contactId": conv["contactId"], "conversationId": conv["id"],
               "dateAdded": iso_ms(when) if when is not None else now, "dateUpdated": now,
               "body": body, "direction": direction, "status": status, "contentType": "text/plain",
               "attachments": attachments, "source": source, "userId": user_id,
               "conversationProviderId": provider, "call": call, "callStatus": call_status,
               "callDuration": None, "error": None, "endpoint": endpoint}
        self.state["messages"][msg["id"]] = msg
        if conv["lastMessageDate"] is None or msg["dateAdded"] >= conv["lastMessageDate"]:
            conv.update({"lastMessageDate": msg["dateAdded"], "lastMessageBody": body or "",
                         "lastMessageType": msg["messageType"], "lastMessageDirection": direction})
        if direction == "inbound":
            conv["unreadCount"] += 1
        conv["dateUpdated"] = now
        return msg

    def _message_view(self, msg):
        """GetMessageResponseDto (S2) with altId (vendor's reference page and
        issue #38, S23); meta.callStatus/callDuration for calls, or the live
        meta.call {status, duration} with --message-shapes live."""
        v = {"id": msg["id"]}
        if msg.get("altId") is not None:
            v["altId"] = msg["altId"]
        v.update({"type": MESSAGE_KINDS[msg["type"]][0], "messageType": msg["messageType"],
                  "locationId": msg["locationId"], "contactId": msg["contactId"],
                  "conversationId": msg["conversationId"], "dateAdded": msg["dateAdded"]})
        if msg.get("body") is not None:
            v["body"] = msg["body"]
        v.update({"direction": msg["direction"], "status": msg["status"],
                  "contentType": msg["contentType"], "attachments": list(msg["attachments"])})
        if msg["type"] == "Call":
            if self.args.message_shapes == "live":
                meta = {"call": {"status": msg["callStatus"]}}
                if msg.get("callDuration") is not None:
                    meta["call"]["duration"] = msg["callDuration"]
            else:
                meta = {"callStatus": msg["callStatus"]}
                if msg.get("callDuration") is not None:
                    meta["callDuration"] = msg["callDuration"]
            v["meta"] = meta
        v["source"] = msg["source"]
        if msg.get("userId"):
            v["userId"] = msg["userId"]
        v["conversationProviderId"] = msg["conversationProviderId"]
        return v

    def _message_webhook(self, msg):
        """InboundMessage / OutboundMessage (doc §6.3, S7; key order of the
        fixtures InboundMessage.json and OutboundMessage-call.json)."""
        inbound = msg["direction"] == "inbound"
        b = {"type": "InboundMessage" if inbound else "OutboundMessage",
             "webhookId": str(uuid.uuid4()), "timestamp": iso_ms(), "locationId": msg["locationId"],
             "attachments": list(msg["attachments"])}
        if msg["type"] == "SMS":
            b["body"] = msg["body"] or ""
        b["contactId"] = msg["contactId"]
        if msg["type"] == "SMS":
            b["contentType"] = msg["contentType"]
        b.update({"conversationId": msg["conversationId"], "dateAdded": msg["dateAdded"],
                  "direction": msg["direction"], "messageType": MESSAGE_KINDS[msg["type"]][2]})
        if msg.get("userId"):
            b["userId"] = msg["userId"]
        b.update({"messageId": msg["id"], "status": msg["status"]})
        if not inbound:
            b["source"] = msg["source"]
        b["conversationProviderId"] = msg["conversationProviderId"]
        if msg["type"] == "Call":
            if msg.get("callDuration") is not None:
                b["callDuration"] = msg["callDuration"]
            b["callStatus"] = msg["callStatus"]
        return b

    def add_inbound_message(self, req):
        """POST /conversations/messages/inbound (doc §4.1): type (enum),
        conversationProviderId, conversationId and/or contactId; message,
        attachments, altId, direction (default outbound), date, call{to, from,
        status}. 200 ProcessMessageResponseDto. Sends InboundMessage or
        OutboundMessage by direction."""
        return self._add_message(req, "inbound")

    def add_outbound_call(self, req):
        """POST /conversations/messages/outbound (doc §4.2): an external outbound
        call, type Call only; 200 ProcessMessageResponseDto; sends OutboundMessage."""
        return self._add_message(req, "outbound")

    def _conversation_messages(self, conv_id):
        """A conversation's messages, newest first (then the latest added first)."""
        return sorted((m for m in self.state["messages"].values() if m["conversationId"] == conv_id),
                      key=lambda m: (m["dateAdded"], m["seq"]), reverse=True)

    def list_messages(self, req, id):
        """GET /conversations/:conversationId/messages?lastMessageId=&limit=&type=
        (doc §4.4): newest first; `limit` default 20 (at most 100 are answered);
        `lastMessageId` continues after that message; `type` a comma list of
        TYPE_*. Shape by --message-shapes (docs/live: {"messages": {"lastMessageId",
        "nextPage", "messages"}}; openapi: the three keys at the top)."""
        conv = self.state["conversations"].get(id)
        if not conv:
            return self._not_found_kind("Conversation", id)
        q = req.query
        limit, bad = self._int_query(q, "limit", "20")
        if bad:
            return bad
        msgs = self._conversation_messages(id)
        if q.get("type"):
            wanted = {t.strip() for t in q["type"].split(",") if t.strip()}
            bad = sorted(wanted - MESSAGE_TYPE_FILTERS)
            if bad:
                return unprocessable(["type must be one of the following values: "
                                      + ", ".join(sorted(MESSAGE_TYPE_FILTERS))])
            msgs = [m for m in msgs if m["messageType"] in wanted]
        if q.get("lastMessageId"):
            ids = [m["id"] for m in msgs]
            if q["lastMessageId"] not in ids:
                return self._not_found_kind("Message", q["lastMessageId"])
            msgs = msgs[ids.index(q["lastMessageId"]) + 1:]
        limit = max(1, min(limit, 100))
        page = msgs[:limit]
        inner = {"lastMessageId": page[-1]["id"] if page else None,
                 "nextPage": len(msgs) > limit,
                 "messages": [self._message_view(m) for m in page]}
        if self.args.message_shapes == "openapi":
            return json_response(200, inner)
        return json_response(200, {"messages": inner})

    def get_message(self, req, id):
        """GET /conversations/messages/:id (doc §4.4): GetMessageResponseDto; with
        --message-shapes live wrapped as {"message": {...}, "traceId"}."""
        msg = self.state["messages"].get(id)
        if not msg:
            return self._not_found_kind("Message", id)
        if self.args.message_shapes == "live":
            return json_response(200, {"message": self._message_view(msg), "traceId": str(uuid.uuid4())})
        return json_response(200, self._message_view(msg))

    def update_message_status(self, req, id):
        """PUT /conversations/messages/:messageId/status (doc §4.5, S2
        UpdateMessageStatusDto): status (delivered|failed|pending|read), error
        {code, type, message}, emailMessageId, recipients. Only the conversation
        provider may update its messages (ConversationProviders.md): another
        message gets 403 "No conversation provider found for this message"
        (S24). 200 {"conversationId", "messageId", "status"}."""
        body = req.body if req.body is not None else {}
        if not isinstance(body, dict):
            return unprocessable(["body must be an object"])
        errs = ["property %s should not exist" % k for k in body if k not in STATUS_FIELDS]
        if body.get("status") in (None, ""):
            errs.append("status should not be empty")
        if body.get("status") not in UPDATE_STATUSES:
            errs.append("status must be one of the following values: " + ", ".join(UPDATE_STATUSES))
        if "error" in body:
            e = body["error"]
            if not isinstance(e, dict):
                errs.append("error must be an object")
            else:
                errs += ["error.property %s should not exist" % k for k in e
                         if k not in ("code", "type", "message")]
                for k in ("code", "type", "message"):
                    if not isinstance(e.get(k), str):
                        errs.append("error.%s must be a string" % k)
        errs += self._string_errors(body, ("emailMessageId",))
        if "recipients" in body and not (isinstance(body["recipients"], list)
                                         and all(isinstance(r, str) for r in body["recipients"])):
            errs.append("recipients must be an array of strings")
        if errs:
            return unprocessable(errs)
        msg = self.state["messages"].get(id)
        if not msg:
            return self._not_found_kind("Message", id)
        if msg.get("conversationProviderId") not in set(self._providers().values()):
            return ghl_error(403, "No conversation provider found for this message")
        msg["status"] = body["status"]
        msg["error"] = body.get("error")
        msg["dateUpdated"] = iso_ms()
        self.save()
        out = {"conversationId": msg["conversationId"], "messageId": msg["id"], "status": msg["status"]}
        if body.get("emailMessageId"):
            out["emailMessageId"] = body["emailMessageId"]
        return json_response(200, out)

    # ------------------------------------------------------------ provider delivery

    def provider_body(self, msg, contact):
        """ProviderOutboundMessage, SMS (doc §6.3, S7 ProviderOutboundMessage.md;
        fixture ProviderOutboundMessage.json): no webhookId, timestamp or
        conversationId - the vendor's page lists only these keys."""
        return {"contactId": msg["contactId"], "locationId": msg["locationId"],
                "messageId": msg["id"], "type": msg["type"], "phone": contact.get("phone"),
                "message": msg["body"] or "", "attachments": list(msg["attachments"]),
                "userId": msg["userId"]}

    def _send_to(self, url, body, label):
        """Queues a signed delivery to `url` on the webhook sender (same queue,
        order, retry policy and log as the webhooks). None when url is None."""
        if not url:
            return None
        raw = json_bytes(body)
        w = self.webhooks
        with w.lock:
            w.seq += 1
            hdrs = {"Content-Type": "application/json"}
            if w.user_agent:
                hdrs["User-Agent"] = w.user_agent
            hdrs.update(self.sign(raw))
            d = Delivery(w.seq, label, url, raw, hdrs, time.time() + w.delay_s)
            w.log.append(d)
            w.queue.append(d)
            w.cond.notify()
            return d

    def admin_provider_outbound(self, body):
        """An agent sending a text in GHL through the custom provider: stores an
        outbound message (status pending, source app) in the contact's
        conversation (created if needed), POSTs ProviderOutboundMessage to the
        provider URL and OutboundMessage to the webhook URL. Returns (status,
        doc or error, deliveries)."""
        cid = body.get("contactId")
        contact = self._find(cid) if isinstance(cid, str) else None
        if not contact:
            return 404, "no contact %s" % cid, []
        kind = body.get("type", "SMS")
        if kind != "SMS":
            return 400, "the sandbox's provider delivers type SMS only", []
        if not contact.get("phone"):
            return 400, "contact %s has no phone" % cid, []
        text = body.get("message", "")
        attachments = body.get("attachments", [])
        if not isinstance(text, str) or not isinstance(attachments, list):
            return 400, "message must be a string and attachments a list", []
        conv = self._conversation_of(cid) or self._new_conversation(cid)
        msg = self._store_message(conv, kind="SMS", direction="outbound", status="pending", body=text,
                                  attachments=list(attachments), alt_id=None,
                                  provider=self._providers()["SMS"], source="app",
                                  user_id=body.get("userId", "usr_sandbox"), call=None,
                                  call_status=None, endpoint="provider")
        self.save()
        deliveries = [self._send_to(self.provider_url or self.webhooks.url,
                                    self.provider_body(msg, contact), "ProviderOutboundMessage")]
        if body.get("webhook", True) is not False and not self.args.no_message_webhooks:
            deliveries.append(self.send_raw_webhook(self._message_webhook(msg)))
        return 200, {"message": self.admin_message(msg), "conversationId": conv["id"]}, deliveries

    @staticmethod
    def admin_message(msg):
        return {k: v for k, v in msg.items() if k != "seq"}

    # ------------------------------------------------------------ admin ("the GHL UI")

    def admin_contacts(self):
        return [self.view(c) for c in sorted(self.state["contacts"].values(),
                                             key=lambda c: (c["dateAdded"], c["id"]))]

    def admin_save_contact(self, fields):
        """A user creating (no "id") or editing a contact in the GHL UI: no
        DTO or duplicate checks; "webhook": false suppresses the webhook;
        "dateAdded" may back-date a new contact (for backfill tests) and
        "dateUpdated" date an edit (the vendor's clock at the edit, for tests
        that need an edit at a set distance from another): ISO UTC times
        (utc_time), else 400. A new contact's "dateUpdated" is its
        dateAdded: one given is ignored."""
        send = fields.pop("webhook", True) is not False
        cid = fields.pop("id", None)
        for k in ("locationId", "createNewIfDuplicateAllowed"):
            fields.pop(k, None)
        if "tags" in fields and not isinstance(fields["tags"], list):
            return 400, "tags must be a list", []
        if "dndSettings" in fields and not isinstance(fields["dndSettings"], dict):
            return 400, "dndSettings must be an object", []
        if cid is None:
            added = fields.pop("dateAdded", None)
            when = utc_time(added)
            if added is not None and when is None:
                return 400, "dateAdded must be an ISO 8601 UTC time", []
            fields.pop("dateUpdated", None)
            c = self._new_contact(fields, when)
            self.state["contacts"][c["id"]] = c
            kinds = ["ContactCreate"]
        else:
            c = self._find(cid)
            if not c:
                return 404, "no contact %s" % cid, []
            fields.pop("dateAdded", None)
            stamped = fields.pop("dateUpdated", None)
            if stamped is not None:
                when = utc_time(stamped)
                if when is None:
                    return 400, "dateUpdated must be an ISO 8601 UTC time", []
                stamped = iso_ms(when)
            before = self._snapshot(c)
            self._apply(c, fields)
            kinds = self._changes(before, c)
            if kinds:
                c["dateUpdated"] = stamped or iso_ms()
        self.save()
        deliveries = self._emit(kinds, c) if send else []
        return (201 if cid is None else 200), self.view(c), deliveries

    def admin_delete_contact(self, cid):
        c = self.state["contacts"].pop(cid, None)
        if not c:
            return 404, "no contact %s" % cid, []
        self.save()
        return 200, cid, self._emit(["ContactDelete"], c)

    def settings(self):
        return {"allow_duplicates": self.allow_duplicates, "duplicate_priority": self.priority,
                "burst": self.burst, "burst_window_ms": self.burst_window_ms, "daily": self.daily,
                "token_ttl": self.token_ttl, "location_id": self.location_id,
                "provider_url": self.provider_url,
                "conversation_provider_id": self._providers()["SMS"],
                "call_provider_id": self._providers()["Call"],
                "message_shapes": self.args.message_shapes}

    def apply_settings(self, values):
        """Run-time changes (not persisted; /_sandbox/reset restores the flags)."""
        for k, v in values.items():
            if k == "allow_duplicates" and isinstance(v, bool):
                self.allow_duplicates = v
            elif k == "duplicate_priority" and isinstance(v, list) and sorted(v) == ["email", "phone"]:
                self.priority = list(v)
            elif k in ("burst", "burst_window_ms", "daily") and isinstance(v, int) and v > 0:
                setattr(self, k, v)
                self.window.clear()
            elif k == "token_ttl" and isinstance(v, int) and v > 0:
                self.token_ttl = v
            elif k == "provider_url" and (v is None or isinstance(v, str)):
                self.provider_url = v or None
            else:
                return "cannot set %s to %r" % (k, v)
        return None

    def handle_admin(self, req):
        """The conversation admin endpoints first (their waiting for deliveries
        happens outside the lock), then the common ones."""
        resp = self._conversation_admin(req)
        return resp if resp is not None else super().handle_admin(req)

    def _conversation_admin(self, req):
        path = req.path.rstrip("/")
        m, q = req.method, req.query
        if path == "/_sandbox/conversations" and m == "GET":
            with self.lock:
                convs = sorted(self.state["conversations"].values(), key=lambda c: (c["dateAdded"], c["id"]))
                out = []
                for conv in convs:
                    if q.get("contactId") and conv["contactId"] != q["contactId"]:
                        continue
                    v = dict(conv)
                    v["messageCount"] = sum(1 for x in self.state["messages"].values()
                                            if x["conversationId"] == conv["id"])
                    out.append(v)
            return json_response(200, out)
        if path == "/_sandbox/messages" and m == "GET":
            with self.lock:
                msgs = sorted(self.state["messages"].values(), key=lambda x: x["seq"])
                out = [self.admin_message(x) for x in msgs
                       if (not q.get("contactId") or x["contactId"] == q["contactId"])
                       and (not q.get("conversationId") or x["conversationId"] == q["conversationId"])]
            return json_response(200, out)
        if path == "/_sandbox/notes" and m == "GET":
            with self.lock:
                notes = sorted(self.state["notes"].values(), key=lambda n: (n["dateAdded"], n["id"]))
                out = [dict(n) for n in notes if not q.get("contactId") or n["contactId"] == q["contactId"]]
            return json_response(200, out)
        if path == "/_sandbox/provider-outbound" and m == "POST":
            if req.json_error or not isinstance(req.body, dict):
                return json_response(400, {"error": "body must be a JSON object"})
            with self.lock:
                status, result, deliveries = self.admin_provider_outbound(dict(req.body))
            if status >= 400:
                return json_response(status, {"error": result})
            provider = deliveries[0]
            doc = self._with_deliveries(result, deliveries, wait=req.body.get("wait", True))
            doc["delivery"] = None
            if provider is not None:
                doc["delivery"] = next(o for o in doc["webhooks"] if o["seq"] == provider.seq)
            else:
                doc["error"] = "no provider URL or webhook URL configured: nothing was delivered"
            return json_response(200, doc)
        return None

    def admin_extra(self, req):
        """GHL-only admin endpoints: tokens and authorization codes."""
        path = req.path.rstrip("/")
        body = req.body if isinstance(req.body, dict) else {}
        if path == "/_sandbox/oauth" and req.method == "GET":
            now = time.time()
            return json_response(200, {
                "access_tokens": [{"token": t, "kind": i["kind"],
                                   "expires_at": iso_ms(i["expires_at"]) if i["expires_at"] else None,
                                   "expired": i["expires_at"] is not None and now >= i["expires_at"]}
                                  for t, i in self.state["access_tokens"].items()],
                "refresh_tokens": list(self.state["refresh_tokens"]),
                "auth_codes": list(self.state["auth_codes"])})
        if path == "/_sandbox/oauth/expire" and req.method == "POST":
            # {"token": T} expires one access token; {} expires all of them.
            token = body.get("token")
            hit = 0
            for t, i in self.state["access_tokens"].items():
                if token is None or t == token:
                    i["expires_at"] = time.time() - 1
                    hit += 1
            self.save()
            return json_response(200, {"expired": hit})
        if path == "/_sandbox/oauth/code" and req.method == "POST":
            code = "sbx-code-" + secrets.token_hex(12)
            self.state["auth_codes"].append(code)
            self.save()
            return json_response(200, {"code": code})
        return None


if __name__ == "__main__":
    sys.exit(run(GhlSandbox))
