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

import collections
import os
import re
import secrets
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import REPO_ROOT, Sandbox, iso_ms, json_response, run  # noqa: E402
from ghl_base import VERSIONS, SCOPES, ghl_error, unprocessable, utc_time  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402
from ghl_contacts import GhlContacts  # noqa: E402
from ghl_conversations import GhlConversations  # noqa: E402
from ghl_messages import GhlMessages  # noqa: E402


class GhlSandbox(GhlContacts, GhlConversations, GhlMessages, Sandbox):
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
