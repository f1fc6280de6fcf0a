#!/usr/bin/env python3
"""GoHighLevel (LeadConnector) API v2 sandbox: contacts, OAuth, rate limits, signed webhooks.

Plays https://services.leadconnectorhq.com on loopback (same paths, no /v2
prefix) for one location. Behaviour follows docs/vendors/ghl-api.md; each
handler names the section it follows ("doc §N"). Where that document marks a
fact NOT FOUND / ASSUMPTION, the choice made here is listed in
sandboxes/README.md ("GoHighLevel: choices where the vendor is silent").

Run: python3 sandboxes/ghl.py --port 0 --port-file /tmp/ghl.port [--webhook-url URL] ...
"""

import base64
import collections
import os
import re
import secrets
import string
import sys
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (REPO_ROOT, Sandbox, iso_ms, json_bytes,  # noqa: E402
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

    def _flag_settings(self, args):
        self.allow_duplicates = args.allow_duplicates
        self.priority = [x.strip() for x in args.duplicate_priority.split(",") if x.strip()]
        if sorted(self.priority) != ["email", "phone"]:
            raise ValueError("--duplicate-priority must name email and phone, e.g. phone,email")
        self.burst = args.burst
        self.burst_window_ms = args.burst_window_ms
        self.daily = args.daily
        self.token_ttl = args.token_ttl

    # ------------------------------------------------------------ state

    def initial_state(self):
        """Contacts by id; live access tokens (expires_at None = never); the
        valid refresh tokens (single use); authorization codes; today's count."""
        return {
            "contacts": {},
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

    # ------------------------------------------------------------ routing

    ROUTES = [
        ("POST", re.compile(r"/oauth/token"), "oauth_token"),
        ("GET", re.compile(r"/contacts/search/duplicate"), "duplicate_search"),
        ("POST", re.compile(r"/contacts/search"), "search"),
        ("POST", re.compile(r"/contacts/upsert"), "upsert"),
        ("GET", re.compile(r"/contacts"), "list_contacts"),
        ("POST", re.compile(r"/contacts"), "create"),
        ("POST", re.compile(r"/contacts/(?P<id>[^/]+)/tags"), "add_tags"),
        ("DELETE", re.compile(r"/contacts/(?P<id>[^/]+)/tags"), "remove_tags"),
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
        """A contact webhook shaped like /work/shared/fixtures/ghl/<kind>.json."""
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
        loc = req.query.get("locationId")
        if not loc:
            return unprocessable(["locationId should not be empty"])
        denied = self._check_location(loc)
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
        loc = req.query.get("locationId")
        if not loc:
            return unprocessable(["locationId should not be empty"])
        denied = self._check_location(loc)
        if denied:
            return denied
        try:
            limit = int(req.query.get("limit", "20"))
        except ValueError:
            return unprocessable(["limit must be a number conforming to the specified constraints"])
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
            q = {"locationId": loc, "limit": limit, "startAfterId": last[1], "startAfter": last[0]}
            meta["nextPageUrl"] = "/contacts/?" + urllib.parse.urlencode(q)
        return json_response(200, {"contacts": [self.view(c) for c in page], "count": total, "meta": meta})

    # ------------------------------------------------------------ admin ("the GHL UI")

    def admin_contacts(self):
        return [self.view(c) for c in sorted(self.state["contacts"].values(),
                                             key=lambda c: (c["dateAdded"], c["id"]))]

    def admin_save_contact(self, fields):
        """A user creating (no "id") or editing a contact in the GHL UI: no
        DTO or duplicate checks; "webhook": false suppresses the webhook;
        "dateAdded" may back-date a new contact (for backfill tests)."""
        send = fields.pop("webhook", True) is not False
        cid = fields.pop("id", None)
        for k in ("locationId", "createNewIfDuplicateAllowed"):
            fields.pop(k, None)
        if "tags" in fields and not isinstance(fields["tags"], list):
            return 400, "tags must be a list", []
        if "dndSettings" in fields and not isinstance(fields["dndSettings"], dict):
            return 400, "dndSettings must be an object", []
        if cid is None:
            when = parse_iso_ms(fields.pop("dateAdded", None))
            fields.pop("dateUpdated", None)
            c = self._new_contact(fields, when)
            self.state["contacts"][c["id"]] = c
            kinds = ["ContactCreate"]
        else:
            c = self._find(cid)
            if not c:
                return 404, "no contact %s" % cid, []
            fields.pop("dateAdded", None)
            fields.pop("dateUpdated", None)
            before = self._snapshot(c)
            self._apply(c, fields)
            kinds = self._changes(before, c)
            if kinds:
                c["dateUpdated"] = iso_ms()
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
                "token_ttl": self.token_ttl, "location_id": self.location_id}

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
            else:
                return "cannot set %s to %r" % (k, v)
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
