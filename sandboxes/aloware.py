#!/usr/bin/env python3
"""Aloware API sandbox: Lead API (create/update by phone), Contact Lookup, Power Dialer removal, webhooks.

Plays https://app.aloware.com/api/v1/webhook/... on loopback. Behaviour
follows docs/vendors/aloware-api.md; each handler names the section it
follows ("doc §N"). Choices where that document says NOT FOUND / ASSUMPTION
are listed in sandboxes/README.md ("Aloware: choices where the vendor is silent").

Run: python3 sandboxes/aloware.py --port 0 --port-file /tmp/aloware.port [--webhook-url URL] ...
"""

import base64
import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Sandbox, json_bytes, json_response, normalize_phone, run, truthy  # noqa: E402

# doc §2: Lead API body fields stored on the contact (Aloware names).
TEXT_FIELDS = ("first_name", "last_name", "email", "company_name", "lead_source", "notes",
               "date_of_birth", "timezone", "city", "state", "zipcode", "country", "address",
               "website", "csf1", "csf2", "user_id", "line_id", "disposition_status_id")
VIEW_FIELDS = ("id", "first_name", "last_name", "name", "phone_number", "email", "company_name",
               "lead_source", "notes", "other_phone_numbers", "date_of_birth", "timezone", "address",
               "city", "state", "zipcode", "country", "website", "csf1", "csf2", "user_id", "line_id",
               "disposition_status_id", "is_dnc", "is_opted_out", "text_authorized", "intake_source",
               "tags", "tag_ids", "lists", "in_powerdialer", "created_at", "updated_at")


def split_list(value):
    """Comma-separated string (what Aloware's node sends) or a JSON list -> list of strings."""
    if value is None:
        return []
    if isinstance(value, list):
        items = value
    else:
        items = str(value).split(",")
    return [str(x).strip() for x in items if str(x).strip()]


def laravel_422(field, message):
    """Laravel validation error: {"message", "errors": {field: [...]}} (doc §2 ASSUMPTION)."""
    return json_response(422, {"message": message, "errors": {field: [message]}})


class AlowareSandbox(Sandbox):
    """Aloware API sandbox (Lead API, Contact Lookup, Power Dialer list removal, contact webhooks)."""

    vendor = "aloware"
    webhook_user_agent = "GuzzleHttp/7"  # doc §7.1 (observed header)
    # doc §7.1: observed no retries after HTTP 500. "conn" (no answer) is a
    # sandbox assumption.
    default_retry_on = "conn"

    @staticmethod
    def add_arguments(p):
        g = p.add_argument_group("Aloware")
        g.add_argument("--api-token", default="sandbox-aloware-token",
                       help="the accepted api_token (default sandbox-aloware-token)")
        g.add_argument("--webhook-auth", default="none",
                       help='Authorization of sent webhooks: none, "bearer:TOKEN" or "basic:USER:PASS"')
        g.add_argument("--webhook-delay-seconds", type=float, default=0.0,
                       help="the webhook's delay setting in seconds (doc §7.1; default 0)")
        g.add_argument("--contact-created-event", default="Contact Created",
                       help='event name of contact creations (vendor unpublished; default "Contact Created")')
        g.add_argument("--contact-updated-event", default="Contact Updated",
                       help='event name of contact updates (default "Contact Updated")')
        g.add_argument("--contact-dnc-event", default="",
                       help="extra event sent when is_dnc changes (default: none; the update event carries is_dnc)")
        g.add_argument("--contact-deleted-event", default="",
                       help="event sent when a contact is deleted in the UI (default: none, not documented)")
        g.add_argument("--id-style", choices=("int", "string", "mixed"), default="int",
                       help="ids in webhooks/lookups as numbers, strings, or alternating (doc §7.4; default int)")
        g.add_argument("--utc-offset-minutes", type=int, default=0,
                       help="zone of the zone-less created_at/updated_at, minutes east of UTC (default 0)")
        g.add_argument("--existing-without-force", choices=("conflict", "fill"), default="conflict",
                       help="Lead API on an existing phone without force_update: 409 (default) "
                            "or fill only blank fields (doc §2 gives both readings)")
        g.add_argument("--throttle", type=int, default=0,
                       help="INVENTED limit: requests per minute per token, Laravel-style headers "
                            "and 429 (default 0 = no limit; the vendor documents none)")
        g.add_argument("--default-country", default="1", help="country code for 10-digit numbers (default 1)")

    def __init__(self, args):
        self.auth_header = self._parse_auth(args.webhook_auth)
        self.existing_without_force = args.existing_without_force
        self.throttle = args.throttle
        self.throttle_window = {}  # token -> [window start (monotonic), count]
        super().__init__(args)

    @staticmethod
    def _parse_auth(spec):
        if not spec or spec == "none":
            return None
        kind, _, rest = spec.partition(":")
        if kind == "bearer" and rest:
            return "Bearer " + rest
        if kind == "basic" and ":" in rest:
            return "Basic " + base64.b64encode(rest.encode()).decode()
        raise ValueError('--webhook-auth must be none, "bearer:TOKEN" or "basic:USER:PASS"')

    # ------------------------------------------------------------ state

    def initial_state(self):
        """Contacts by id (stringified integer) and the next id."""
        return {"contacts": {}, "next_id": 7000001}

    def reset_vendor(self):
        self.throttle_window.clear()
        self.existing_without_force = self.args.existing_without_force
        self.throttle = self.args.throttle
        self.auth_header = self._parse_auth(self.args.webhook_auth)

    def _now(self):
        """doc §7.4: 'YYYY-MM-DD HH:MM:SS', no zone, in the account's zone."""
        t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=self.args.utc_offset_minutes)
        return t.strftime("%Y-%m-%d %H:%M:%S")

    # ------------------------------------------------------------ errors, headers

    def fault_response(self, status, fault):
        """Laravel-shaped bodies (doc §1/§6 ASSUMPTION) for injected faults."""
        messages = {429: "Too Many Attempts.", 500: "Server Error", 502: "Bad Gateway",
                    503: "Service Unavailable", 504: "Gateway Timeout", 401: "Unauthenticated.",
                    404: "Not Found", 400: "Bad Request", 422: "The given data was invalid."}
        return json_response(status, {"message": messages.get(status, "Error")})

    def decorate(self, req, resp):
        """INVENTED (doc §6 ASSUMPTION): Laravel throttle headers when --throttle is on."""
        if not self.throttle:
            return
        _, count = self.throttle_window.get(self._token(req) or "-", (0, 0))
        resp.headers["X-RateLimit-Limit"] = str(self.throttle)
        resp.headers["X-RateLimit-Remaining"] = str(max(0, self.throttle - count))

    def _throttled(self, req):
        if not self.throttle:
            return None
        token = self._token(req) or "-"
        now = time.monotonic()
        start, count = self.throttle_window.get(token, (now, 0))
        if now - start >= 60:
            start, count = now, 0
        if count >= self.throttle:
            wait = max(1, int(60 - (now - start) + 0.999))
            return json_response(429, {"message": "Too Many Attempts."},
                                 {"Retry-After": str(wait), "X-RateLimit-Reset": str(int(time.time()) + wait)})
        self.throttle_window[token] = (start, count + 1)
        return None

    # ------------------------------------------------------------ auth

    @staticmethod
    def _token(req):
        """doc §1: api_token in the JSON body (POST) or the query (GET); either
        place is accepted on any method (Laravel reads both)."""
        if isinstance(req.body, dict) and req.body.get("api_token"):
            return str(req.body["api_token"])
        return req.query.get("api_token")

    # ------------------------------------------------------------ routing

    ROUTES = {
        ("POST", "/api/v1/webhook/forms"): "forms",
        ("GET", "/api/v1/webhook/contact/phone-number"): "lookup",
        ("GET", "/api/v1/webhook/users"): "users",
        ("POST", "/api/v1/webhook/powerdialer-remove-contact-from-lists"): "powerdialer_remove",
    }

    def handle_api(self, req):
        path = req.path.rstrip("/") or "/"
        name = self.ROUTES.get((req.method, path))
        if not name:
            if any(p == path for (_, p) in self.ROUTES):
                return json_response(405, {"message": "The %s method is not supported for route %s."
                                                      % (req.method, path.lstrip("/"))})
            return json_response(404, {"message": "The route %s could not be found." % path.lstrip("/")})
        limited = self._throttled(req)
        if limited:
            return limited
        if self._token(req) != self.args.api_token:
            return json_response(401, {"message": "Unauthenticated."})
        if req.json_error:
            return json_response(400, {"message": "Malformed JSON body."})
        return getattr(self, name)(req)

    # ------------------------------------------------------------ contacts

    def _by_phone(self, e164):
        for c in self.state["contacts"].values():
            if c["phone_number"] == e164:
                return c
        return None

    def _render_id(self, value, seq=0):
        if self.args.id_style == "string" or (self.args.id_style == "mixed" and seq % 2):
            return str(value)
        return value

    def view(self, c, seq=0):
        """The contact as lookups and webhooks show it (doc §3/§7.4 keys)."""
        v = {k: c.get(k) for k in VIEW_FIELDS}
        v["id"] = self._render_id(c["id"], seq)
        return v

    def _apply(self, c, body, only_blank=False):
        """Writes Lead API fields (doc §2 table) into contact `c`.
        Tags/tag_id/list_ids only add (no removal API, doc §4)."""
        for k in TEXT_FIELDS:
            if k in body and body[k] is not None:
                if only_blank and c.get(k) not in (None, ""):
                    continue
                c[k] = body[k]
        if body.get("name") and not body.get("first_name") and not body.get("last_name"):
            first, _, last = str(body["name"]).strip().partition(" ")
            if not (only_blank and c.get("first_name")):
                c["first_name"] = first or None
            if not (only_blank and c.get("last_name")):
                c["last_name"] = last or None
        if "other_phone_numbers" in body:
            c["other_phone_numbers"] = body["other_phone_numbers"]
        if "is_dnc" in body and not (only_blank and c.get("is_dnc")):
            c["is_dnc"] = truthy(body["is_dnc"])
        for tag in split_list(body.get("tags")):
            if tag not in c["tags"]:
                c["tags"].append(tag)
        if body.get("tag_id") is not None and str(body["tag_id"]) not in c["tag_ids"]:
            c["tag_ids"].append(str(body["tag_id"]))
        for lst in split_list(body.get("list_ids")):
            if lst not in c["lists"]:
                c["lists"].append(lst)
        if truthy(body.get("add_to_powerdialer")):
            c["in_powerdialer"] = True
            # The assigned user's Power Dialer queue (docs/vendors/aloware-api.md
            # §4: no list can be named), at its top or bottom.
            queue = self.state.setdefault("powerdialer", [])
            if c["id"] not in queue:
                if str(body.get("powerdialer_position", "bottom")).lower() == "top":
                    queue.insert(0, c["id"])
                else:
                    queue.append(c["id"])
        c["name"] = " ".join(x for x in (c.get("first_name"), c.get("last_name")) if x) or None

    def _new(self, e164, source):
        now = self._now()
        cid = self.state["next_id"]
        self.state["next_id"] += 1
        c = {k: None for k in VIEW_FIELDS}
        c.update({"id": cid, "phone_number": e164, "is_dnc": False, "is_opted_out": False,
                  "text_authorized": 1, "intake_source": source, "tags": [], "tag_ids": [],
                  "lists": [], "in_powerdialer": False, "created_at": now, "updated_at": now})
        return c

    def _events_for(self, before, c):
        """Webhook events of an edit: the update event when anything changed,
        plus --contact-dnc-event when is_dnc changed."""
        changed = {k for k in c if before.get(k) != c.get(k)} - {"updated_at"}
        events = []
        if changed:
            events.append(self.args.contact_updated_event)
            if "is_dnc" in changed and self.args.contact_dnc_event:
                events.append(self.args.contact_dnc_event)
        return events

    # ------------------------------------------------------------ webhooks (doc §7)

    def send_raw_webhook(self, body):
        headers = {"Authorization": self.auth_header} if self.auth_header else {}
        label = body.get("event", "?") if isinstance(body, dict) else "?"
        return self.webhooks.send(json_bytes(body), headers, label)

    def _emit(self, events, c):
        out = []
        for event in events:
            seq = self.webhooks.seq + 1
            d = self.send_raw_webhook({"event": event, "body": self.view(c, seq)})
            if d is not None:
                out.append(d)
        return out

    # ------------------------------------------------------------ endpoints

    def forms(self, req):
        """POST /api/v1/webhook/forms (doc §2, §9.1): create or update the contact
        whose phone_number matches. 201 {"message": "Contact created."}; 200
        {"message": "Contact updated."}; 409 {"message": "Contact already exists."}
        without force_update (or fill blanks, --existing-without-force fill);
        422 Laravel-style when phone_number is missing or not a number.
        The answer carries no contact id (doc §2): look the contact up."""
        body = req.body if isinstance(req.body, dict) else {}
        raw = body.get("phone_number")
        if raw in (None, ""):
            return laravel_422("phone_number", "The phone number field is required.")
        e164 = normalize_phone(raw, self.args.default_country)
        if not e164:
            return laravel_422("phone_number", "The phone number format is invalid.")
        c = self._by_phone(e164)
        if c is None:
            c = self._new(e164, "api")
            self._apply(c, body)
            self.state["contacts"][str(c["id"])] = c
            self.save()
            self._emit([self.args.contact_created_event], c)
            return json_response(201, {"message": "Contact created."})
        force = truthy(body.get("force_update"))
        if not force and self.existing_without_force == "conflict":
            return json_response(409, {"message": "Contact already exists."})
        before = dict(c, tags=list(c["tags"]), tag_ids=list(c["tag_ids"]), lists=list(c["lists"]))
        self._apply(c, body, only_blank=not force)
        events = self._events_for(before, c)
        if events:
            c["updated_at"] = self._now()
        self.save()
        self._emit(events, c)
        return json_response(200, {"message": "Contact updated."})

    def lookup(self, req):
        """GET /api/v1/webhook/contact/phone-number?api_token=&phone_number= (doc §3):
        200 contact object; 400 {"error": "Phone number is empty or invalid."};
        404 {"error": "Contact not found."}."""
        e164 = normalize_phone(req.query.get("phone_number"), self.args.default_country)
        if not e164:
            return json_response(400, {"error": "Phone number is empty or invalid."})
        c = self._by_phone(e164)
        if c is None:
            return json_response(404, {"error": "Contact not found."})
        return json_response(200, self.view(c))

    def users(self, req):
        """GET /api/v1/webhook/users?api_token= (doc §5): the account's users with
        their status codes (0 offline ... 6 ringing); the sandbox has one."""
        return json_response(200, [{"id": 42, "name": "Sandbox Agent", "status": 1}])

    def powerdialer_remove(self, req):
        """POST /api/v1/webhook/powerdialer-remove-contact-from-lists {api_token,
        contact_id} (doc §4): 200 / 404 {"message": ...}."""
        body = req.body if isinstance(req.body, dict) else {}
        cid = body.get("contact_id")
        if cid in (None, ""):
            return laravel_422("contact_id", "The contact id field is required.")
        c = self.state["contacts"].get(str(cid))
        if c is None:
            return json_response(404, {"message": "The requested contact id does not exist."})
        # Choice (README): the lists `list_ids` adds to are the lists the Power
        # Dialer works from, so "all Power Dialer lists" empties them.
        c["in_powerdialer"] = False
        c["lists"] = []
        self.state["powerdialer"] = [x for x in self.state.get("powerdialer", []) if x != c["id"]]
        self.save()
        return json_response(200, {"message": "The contact has been removed from the Power Dialer lists."})

    # ------------------------------------------------------------ admin ("the Aloware UI")

    def admin_contacts(self):
        return [self.view(c) for c in sorted(self.state["contacts"].values(), key=lambda c: c["id"])]

    def admin_save_contact(self, fields):
        """A user creating (no "id") or editing a contact in the Aloware UI.
        Fields use Aloware names; in the UI "tags"/"lists" replace the sets
        (a list or comma string); "webhook": false suppresses the webhook."""
        send = fields.pop("webhook", True) is not False
        cid = fields.pop("id", None)
        replace = {k: split_list(fields.pop(k)) for k in ("tags", "lists") if k in fields}
        if cid is None:
            e164 = normalize_phone(fields.get("phone_number"), self.args.default_country)
            if not e164:
                return 400, "phone_number is required and must be a phone number", []
            if self._by_phone(e164):
                return 409, "a contact with phone %s exists" % e164, []
            c = self._new(e164, "ui")
            self._apply(c, fields)
            c.update(replace)
            self.state["contacts"][str(c["id"])] = c
            events = [self.args.contact_created_event]
        else:
            c = self.state["contacts"].get(str(cid))
            if c is None:
                return 404, "no contact %s" % cid, []
            before = dict(c, tags=list(c["tags"]), tag_ids=list(c["tag_ids"]), lists=list(c["lists"]))
            if "phone_number" in fields:
                e164 = normalize_phone(fields["phone_number"], self.args.default_country)
                if not e164:
                    return 400, "phone_number must be a phone number", []
                other = self._by_phone(e164)
                if other is not None and other is not c:
                    return 409, "a contact with phone %s exists" % e164, []
                c["phone_number"] = e164
            self._apply(c, fields)
            c.update(replace)
            events = self._events_for(before, c)
            if events:
                c["updated_at"] = self._now()
        self.save()
        deliveries = self._emit(events, c) if send else []
        return (201 if cid is None else 200), self.view(c), deliveries

    def admin_delete_contact(self, cid):
        c = self.state["contacts"].pop(str(cid), None)
        if c is None:
            return 404, "no contact %s" % cid, []
        self.save()
        events = [self.args.contact_deleted_event] if self.args.contact_deleted_event else []
        return 200, cid, self._emit(events, c)

    def admin_extra(self, req):
        """The Power Dialer (docs/vendors/aloware-api.md §4): GET
        /_sandbox/powerdialer, the queue (contact views, in order); POST
        /_sandbox/powerdialer/call {"phone_number"?, "call_disposition",
        "talk_time"?, "outcome": "completed"|"failed"}: the agent calls the
        contact (the first queued when no phone is named), who leaves the
        queue, and the call's webhooks go out as Aloware sends them (§7.3):
        OutboundPhoneCall-Disposition<Completed|Failed>, then Call-Disposed
        with the same id."""
        path = req.path.rstrip("/")
        queue = self.state.setdefault("powerdialer", [])
        if path == "/_sandbox/powerdialer" and req.method == "GET":
            return json_response(200, [self.view(self.state["contacts"][str(i)]) for i in queue
                                       if str(i) in self.state["contacts"]])
        if path != "/_sandbox/powerdialer/call" or req.method != "POST":
            return None
        body = req.body if isinstance(req.body, dict) else {}
        e164 = normalize_phone(body.get("phone_number"), self.args.default_country)
        c = self._by_phone(e164) if e164 else (self.state["contacts"].get(str(queue[0])) if queue else None)
        if c is None or c["id"] not in queue:
            return json_response(404, {"error": "nobody of that number is on the Power Dialer"})
        queue.remove(c["id"])
        c["in_powerdialer"] = False
        self.state["call_seq"] = self.state.get("call_seq", 940868000) + 1
        outcome = body.get("outcome", "completed")
        now = self._now()
        call = {"id": self.state["call_seq"], "direction": 2,
                "current_status": "completed" if outcome == "completed" else "failed",
                "disposition_status2": 4 if outcome == "completed" else 5,
                "duration": int(body.get("talk_time", 60)) + 5, "talk_time": int(body.get("talk_time", 60)),
                "call_disposition": body.get("call_disposition", "Interested"), "lead_number": c["phone_number"],
                "contact_id": c["id"], "user_id": 42, "created_at": now, "updated_at": now,
                "contact": {"id": c["id"], "phone_number": c["phone_number"], "is_dnc": c["is_dnc"]}}
        self.save()
        sent = [self.send_raw_webhook({"event": "OutboundPhoneCall-Disposition" +
                                       ("Completed" if outcome == "completed" else "Failed"), "body": call}),
                self.send_raw_webhook({"event": "Call-Disposed", "body": dict(call, updated_at=self._now())})]
        return json_response(200, {"call": call, "webhooks": [d.to_json() for d in sent if d is not None]})

    def settings(self):
        return {"webhook_auth": self.auth_header, "existing_without_force": self.existing_without_force,
                "throttle": self.throttle}

    def apply_settings(self, values):
        """Run-time changes (not persisted; /_sandbox/reset restores the flags)."""
        for k, v in values.items():
            try:
                if k == "webhook_auth":
                    self.auth_header = self._parse_auth(v)
                elif k == "existing_without_force" and v in ("conflict", "fill"):
                    self.existing_without_force = v
                elif k == "throttle" and isinstance(v, int) and v >= 0:
                    self.throttle = v
                    self.throttle_window.clear()
                else:
                    return "cannot set %s to %r" % (k, v)
            except ValueError as e:
                return str(e)
        return None


if __name__ == "__main__":
    sys.exit(run(AlowareSandbox))
