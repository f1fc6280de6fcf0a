#!/usr/bin/env python3
"""HaloPSA API sandbox: OAuth2 client credentials, Users under Clients and Sites, custom fields, webhooks.

Plays docs/vendors/halopsa.md ("Sandbox checklist") on loopback: POST
/auth/token (form body; ?tenant= required for a hosted instance; 401
{"error":"invalid_client"}), GET /api/authinfo, and under /api with a
Bearer token: Users (GET list/search/pages, GET by id, POST arrays that
create without "id" and update with it, answering 201 and the saved user),
Client (GET, POST: a new client gets its main site), Site, FieldInfo (a
bare array). Errors {"Message": ...}; 401 without a body for a missing,
unknown or expired token; 429 with Retry-After past a rolling budget per
client id. Webhooks: a JSON envelope with the user under "user", Basic auth
or none, never signed; POST /_sandbox/users_batch saves several users and
sends one batched delivery (a JSON array of envelopes, as v2.164+ batches). Choices where the notes say NOT FOUND or ASSUMPTION
are listed in sandboxes/README.md ("HaloPSA").

Run: python3 sandboxes/halopsa.py --port 0 --port-file /tmp/halo.port [--tenant NAME] [--webhook-url URL]
"""

import base64
import datetime
import os
import re
import secrets
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Response, Sandbox, json_bytes, json_response, run  # noqa: E402

USER_KEYS = ("name", "firstname", "surname", "emailaddress", "phonenumber", "mobilenumber", "title",
             "inactive", "neversendemails", "neversendmarketingemails", "notes")


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def message(status, text):
    return json_response(status, {"Message": text})


class HaloSandbox(Sandbox):
    """HaloPSA API sandbox (client credentials, Users/Clients/Sites, FieldInfo, Basic-auth webhooks)."""

    vendor = "halopsa"
    default_retry_on = "conn,5xx"
    default_retries = 3

    @staticmethod
    def add_arguments(p):
        g = p.add_argument_group("HaloPSA")
        g.add_argument("--client-id", default="sandbox-halo-client", help="the API application's client ID")
        g.add_argument("--client-secret", default="sandbox-halo-secret", help="its client secret")
        g.add_argument("--tenant", default="", help="a hosted instance's tenant: ?tenant= must name it")
        g.add_argument("--token-ttl", type=int, default=3600, help="expires_in of a token, seconds (3600)")
        g.add_argument("--rate-limit", type=int, default=450, help="requests per rolling window (450)")
        g.add_argument("--rate-window", type=int, default=300, help="the window in seconds (300)")
        g.add_argument("--webhook-auth", default="none", help='none or "basic:USER:PASS"')

    def __init__(self, args):
        self._flag_settings(args)
        super().__init__(args)

    def _flag_settings(self, args):
        self.auth_header = self._parse_auth(args.webhook_auth)
        self.rate_limit = args.rate_limit
        self.calls = []  # monotonic times of API calls in the window

    @staticmethod
    def _parse_auth(spec):
        if not spec or spec == "none":
            return None
        kind, _, rest = spec.partition(":")
        if kind == "basic" and ":" in rest:
            return "Basic " + base64.b64encode(rest.encode()).decode()
        raise ValueError('--webhook-auth must be none or "basic:USER:PASS"')

    # ------------------------------------------------------------ state

    def initial_state(self):
        """Users, clients, sites by id (strings); custom field definitions;
        tokens -> expiry (Unix seconds); the next ids."""
        return {
            "users": {}, "tokens": {},
            "clients": {"1": {"id": 1, "name": "Walk-in", "domain": "", "website": "", "main_site_id": 1,
                              "main_site_name": "Main", "inactive": False}},
            "sites": {"1": {"id": 1, "name": "Main", "client_id": 1, "client_name": "Walk-in",
                            "inactive": False}},
            "fields": [
                {"id": 201, "name": "CFLinkedIn", "label": "LinkedIn", "type": 0, "inputtype": 5, "usage": 4},
                {"id": 202, "name": "CFIndustry", "label": "Industry", "type": 0, "inputtype": 0, "usage": 4},
                {"id": 203, "name": "CFStartDate", "label": "Start date", "type": 4, "inputtype": 0, "usage": 4},
            ],
            "next_user": 101, "next_client": 11, "next_site": 21,
        }

    def reset_vendor(self):
        self._flag_settings(self.args)

    # ------------------------------------------------------------ errors

    def fault_response(self, status, fault):
        if status == 401:
            return Response(401, b"", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if status == 429:
            return Response(429, b"", {"Retry-After": "1"})
        if status >= 500:
            return message(status, "An error has occurred.")
        return message(status, "Injected fault %d." % status)

    # ------------------------------------------------------------ routing

    def handle_api(self, req):
        if req.path == "/auth/token":
            return self.token(req) if req.method == "POST" else message(405, "Method not allowed")
        if req.path == "/api/authinfo" and req.method == "GET":
            base = "http://%s" % req.header("host", "127.0.0.1")
            doc = {"auth_url": base + "/auth"}
            if self.args.tenant:
                doc["tenant_id"] = self.args.tenant
            return json_response(200, doc)
        if not req.path.startswith("/api/"):
            return message(404, "Not found")
        auth = req.header("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if not token or self.state["tokens"].get(token, 0) < time.time():
            return Response(401, b"", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        now = time.monotonic()
        self.calls = [t for t in self.calls if now - t < self.args.rate_window]
        if len(self.calls) >= self.rate_limit:
            wait = int(self.args.rate_window - (now - self.calls[0])) + 1
            return Response(429, b"", {"Retry-After": str(wait)})
        self.calls.append(now)
        m = re.fullmatch(r"/api/(Users|Client|Site|FieldInfo)(?:/(\d+))?", req.path)
        if not m:
            return message(404, "Not found")
        entity, rid = m.group(1), m.group(2)
        if req.method == "GET":
            return self.get(entity, rid, req.query)
        if req.method == "POST" and rid is None:
            if req.json_error or not isinstance(req.body, list):
                return message(400, "The request body must be a JSON array of %s." % entity)
            return self.post(entity, req.body)
        return message(405, "The requested resource does not support http method '%s'." % req.method)

    def token(self, req):
        form = req.body if isinstance(req.body, dict) else {}
        if self.args.tenant and req.query.get("tenant") != self.args.tenant:
            return json_response(400, {"error": "invalid_request", "error_description": "unknown tenant"})
        if form.get("grant_type") != "client_credentials":
            return json_response(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != self.args.client_id or form.get("client_secret") != self.args.client_secret:
            return json_response(401, {"error": "invalid_client"})
        token = secrets.token_urlsafe(24)
        self.state["tokens"] = {t: e for t, e in self.state["tokens"].items() if e > time.time()}
        self.state["tokens"][token] = time.time() + self.args.token_ttl
        self.save()
        return json_response(200, {"access_token": token, "token_type": "Bearer",
                                   "expires_in": self.args.token_ttl, "scope": form.get("scope", "all")})

    # ------------------------------------------------------------ reads

    @staticmethod
    def page(items, q, plural):
        total = len(items)
        doc = {"record_count": total}
        if q.get("pageinate") == "true":
            size = max(1, int(q.get("page_size") or 50))
            no = max(1, int(q.get("page_no") or 1))
            doc.update({"page_no": no, "page_size": size})
            items = items[(no - 1) * size:no * size]
        elif q.get("count"):
            items = items[:int(q["count"])]
        doc[plural] = items
        return doc

    def get(self, entity, rid, q):
        if entity == "FieldInfo":
            fields = self.state["fields"]
            if rid:
                f = next((f for f in fields if str(f["id"]) == rid), None)
                return json_response(200, f) if f else message(404, "Not found")
            return json_response(200, fields)
        store = {"Users": "users", "Client": "clients", "Site": "sites"}[entity]
        if rid:
            item = self.state[store].get(rid)
            if item is None:
                return message(404, "Not found")
            return json_response(200, self.user_view(item) if entity == "Users" else item)
        # `order` names the field to sort by, `orderdesc=true` reverses it;
        # without one HaloPSA's order is not documented: by id here.
        field = q.get("order") or "id"
        items = sorted(self.state[store].values(),
                       key=lambda x: (x.get(field) is None, str(x.get(field, "")).lower()
                                      if not isinstance(x.get(field), (int, float)) else x[field]))
        if q.get("orderdesc") == "true":
            items.reverse()
        if q.get("includeinactive") != "true":
            items = [x for x in items if not x.get("inactive")]
        if entity == "Site" and q.get("client_id"):
            items = [x for x in items if str(x["client_id"]) == q["client_id"]]
        term = (q.get("search") or "").lower()
        if term:
            keys = ["name"] + (["emailaddress"] if entity == "Users" else [])
            if entity == "Users" and q.get("search_phonenumbers") == "true":
                keys = ["phonenumber", "mobilenumber"]
                term = re.sub(r"\D", "", term)
                items = [x for x in items if any(term and term in re.sub(r"\D", "", x.get(k) or "")
                                                 for k in keys)]
            else:
                items = [x for x in items if any(term in (x.get(k) or "").lower() for k in keys)]
        if entity == "Users":
            items = [self.user_view(u) for u in items]
        return json_response(200, self.page(items, q, {"Users": "users", "Client": "clients",
                                                        "Site": "sites"}[entity]))

    def user_view(self, u):
        v = dict(u)
        site = self.state["sites"].get(str(u["site_id"]), {})
        v["site_id"] = float(u["site_id"])  # HaloPSA sends it as a double
        v["site_id_int"] = u["site_id"]
        v["site_name"] = site.get("name", "")
        v["client_name"] = self.state["clients"].get(str(u["client_id"]), {}).get("name", "")
        return v

    # ------------------------------------------------------------ writes

    def post(self, entity, items):
        if entity not in ("Users", "Client", "Site") or not items:
            return message(400, "Nothing to save.")
        saved, deliveries = None, []
        for item in items:
            if not isinstance(item, dict):
                return message(400, "Each element must be an object.")
            if entity == "Users":
                status, saved, event = self.save_user(item)
                if status >= 400:
                    return message(status, saved)
                deliveries.append(self.emit(event, saved))
            elif entity == "Client":
                saved = self.save_client(item)
            else:
                if not item.get("name") or str(item.get("client_id")) not in self.state["clients"]:
                    return message(400, "A site needs a name and a valid client_id.")
                saved = self.new_site(item["name"], int(item["client_id"]))
        self.save()
        return json_response(201, self.user_view(saved) if entity == "Users" else saved)

    def custom_values(self, given, current):
        out = {str(c["id"]): c for c in current}
        for cf in given or []:
            f = next((f for f in self.state["fields"]
                      if ("id" in cf and f["id"] == cf["id"]) or ("name" in cf and f["name"] == cf["name"])), None)
            if f is None:
                return None, "Custom field %s does not exist." % (cf.get("name") or cf.get("id"))
            value = cf.get("value")
            out[str(f["id"])] = {"id": f["id"], "name": f["name"], "label": f["label"], "type": f["type"],
                                 "inputtype": f["inputtype"], "usage": f["usage"],
                                 "value": value, "display": "" if value is None else str(value)}
        return list(out.values()), None

    def save_user(self, item):
        """(status, user or reason, event)."""
        if item.get("id"):
            u = self.state["users"].get(str(int(item["id"])))
            if u is None:
                return 400, "User %s does not exist." % item["id"], None
            event = "user updated"
        else:
            site = self.state["sites"].get(str(int(item.get("site_id") or 0)))
            if site is None:
                return 400, "A user needs a valid site_id.", None
            if item.get("client_id") and int(item["client_id"]) != site["client_id"]:
                return 400, "Site %s is not client %s's." % (site["id"], item["client_id"]), None
            uid = self.state["next_user"]
            self.state["next_user"] += 1
            u = {"id": uid, "name": "", "firstname": "", "surname": "", "emailaddress": "", "phonenumber": "",
                 "mobilenumber": "", "title": "", "site_id": site["id"], "client_id": site["client_id"],
                 "inactive": False, "neversendemails": False, "neversendmarketingemails": False,
                 "customfields": [], "datecreated": now_iso()}
            event = "new user created"
        cfs, problem = self.custom_values(item.get("customfields"), u["customfields"])
        if problem:
            return 400, problem, None
        for k in USER_KEYS:
            if k in item:
                u[k] = item[k]
        if not item.get("name") and ("firstname" in item or "surname" in item):
            u["name"] = (u["firstname"] + " " + u["surname"]).strip()
        u["customfields"] = cfs
        self.state["users"][str(u["id"])] = u
        return 201, u, event

    def save_client(self, item):
        if item.get("id") and str(int(item["id"])) in self.state["clients"]:
            c = self.state["clients"][str(int(item["id"]))]
            c.update({k: v for k, v in item.items() if k in ("name", "domain", "website", "inactive")})
            return c
        cid = self.state["next_client"]
        self.state["next_client"] += 1
        c = {"id": cid, "name": item.get("name") or "New client", "domain": item.get("domain", ""),
             "website": item.get("website", ""), "inactive": False}
        self.state["clients"][str(cid)] = c
        site = self.new_site(item.get("newclient_sitename") or "Main", cid)
        c["main_site_id"], c["main_site_name"] = site["id"], site["name"]
        return c

    def new_site(self, name, client_id):
        sid = self.state["next_site"]
        self.state["next_site"] += 1
        s = {"id": sid, "name": name, "client_id": client_id,
             "client_name": self.state["clients"][str(client_id)]["name"], "inactive": False}
        self.state["sites"][str(sid)] = s
        return s

    # ------------------------------------------------------------ webhooks

    def envelope(self, event, user):
        return {"id": str(uuid.uuid4()), "webhook_id": "7d5c0e52-0f6e-4d44-9d8e-2f3c5a1b9e10",
                "notification_id": 41, "escmsg_id": str(uuid.uuid4()), "event": event,
                "message": "%s: %s" % (event, user["id"]), "object_id": user["id"], "agent_id": 1,
                "timestamp": now_iso(), "user": self.user_view(user)}

    def emit(self, event, user):
        return self.send_raw_webhook(self.envelope(event, user))

    def send_raw_webhook(self, body):
        headers = {"Authorization": self.auth_header} if self.auth_header else {}
        label = body.get("event", "?") if isinstance(body, dict) else "batch of %d" % len(body)
        return self.webhooks.send(json_bytes(body), headers, label)

    # ------------------------------------------------------------ admin

    def admin_contacts(self):
        return [self.user_view(u) for u in sorted(self.state["users"].values(), key=lambda u: u["id"])]

    def admin_save_contact(self, fields):
        """An agent creating (no "id"; site_id defaults to the Walk-in main
        site) or editing a user in HaloPSA: its webhook follows."""
        send = fields.pop("webhook", True) is not False
        if not fields.get("id"):
            fields.setdefault("site_id", 1)
        status, user, event = self.save_user(fields)
        if status >= 400:
            return status, user, []
        self.save()
        d = self.emit(event, user) if send else None
        return (201 if event == "new user created" else 200), self.user_view(user), [d]

    def admin_delete_contact(self, cid):
        if self.state["users"].pop(cid, None) is None:
            return 404, "no user %s" % cid, []
        self.save()
        return 200, cid, []

    def settings(self):
        return {"webhook_auth": self.auth_header, "rate_limit": self.rate_limit}

    def apply_settings(self, values):
        for k, v in values.items():
            if k == "rate_limit" and isinstance(v, int) and v >= 0:
                self.rate_limit = v
            elif k == "webhook_auth":
                try:
                    self.auth_header = self._parse_auth(v)
                except ValueError as e:
                    return str(e)
            else:
                return "cannot set %s to %r" % (k, v)
        return None

    def admin_extra(self, req):
        """HaloPSA-only: clients and sites as stored, custom field
        definitions (POST adds one, DELETE ?name= removes one)."""
        path = req.path.rstrip("/")
        if path == "/_sandbox/users_batch" and req.method == "POST":
            # Agents saving several users while the webhook batches (v2.164+:
            # by time or count): one delivery, a JSON array of the envelopes.
            users = req.body.get("users") if isinstance(req.body, dict) else None
            if not isinstance(users, list) or not users:
                return json_response(400, {"error": "users must be a non-empty list"})
            envelopes, saved = [], []
            for fields in users:
                fields = dict(fields)
                if not fields.get("id"):
                    fields.setdefault("site_id", 1)
                status, user, event = self.save_user(fields)
                if status >= 400:
                    return json_response(status, {"error": user})
                envelopes.append(self.envelope(event, user))
                saved.append(self.user_view(user))
            self.save()
            d = self.send_raw_webhook(envelopes)
            return lambda: json_response(200, self._with_deliveries({"users": saved}, [d]))
        if path == "/_sandbox/clients" and req.method == "GET":
            return json_response(200, {"clients": list(self.state["clients"].values()),
                                       "sites": list(self.state["sites"].values())})
        if path == "/_sandbox/fieldinfo":
            if req.method == "GET":
                return json_response(200, self.state["fields"])
            if req.method == "POST" and isinstance(req.body, dict) and req.body.get("name"):
                f = {"id": 200 + len(self.state["fields"]) + 1, "label": req.body["name"], "type": 0,
                     "inputtype": 0, "usage": 4}
                f.update(req.body)
                self.state["fields"].append(f)
                self.save()
                return json_response(201, f)
            if req.method == "DELETE":
                name = req.query.get("name")
                self.state["fields"] = [f for f in self.state["fields"] if f["name"] != name]
                self.save()
                return json_response(200, self.state["fields"])
        return None


if __name__ == "__main__":
    sys.exit(run(HaloSandbox))
