#!/usr/bin/env python3
"""Apollo.io enrichment API sandbox: people match, organization enrich, keys with scopes, rate limits, credits.

Plays docs/vendors/apollo.md ("Sandbox checklist") on loopback:
POST /api/v1/people/match (parameters in the query string, or a JSON body)
and GET /api/v1/organizations/enrich (also under /v1/...); the key only in
x-api-key; 401 in plain text; 403 API_INACCESSIBLE for a key without the
endpoint's scope or on the Free plan's people/match; fixed rate windows per
team and endpoint opening on the first request, with the x-rate-limit-*
headers on 2xx and 429 with retry-after; a credit balance (1 for a person
matched, 1 for an organization found, nothing for no match, every repeat
charged again; at zero 422 "Insufficient credits"). Choices where the notes
say NOT FOUND or ASSUMPTION are listed in sandboxes/README.md ("Apollo").

Run: python3 sandboxes/apollo.py --port 0 --port-file /tmp/apollo.port [--plan free|paid] [--credits N]
"""

import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Response, Sandbox, json_response, run  # noqa: E402

# docs/vendors/apollo.md section 5: enrichment endpoints' windows per plan.
PLANS = {
    "free": {"minute": 50, "hourly": 200, "24-hour": 600},
    "paid": {"minute": 1000, "hourly": None, "24-hour": None},
}
WINDOW_SECONDS = {"minute": 60, "hourly": 3600, "24-hour": 86400}
WINDOW_WORDS = {"minute": "per minute", "hourly": "per hour", "24-hour": "per day"}
ENDPOINTS = {"people/match": ("POST",), "organizations/enrich": ("GET",)}
UNAUTHORIZED = "Invalid access credentials."
NO_CREDITS = "Insufficient credits. Please upgrade your plan."


def hex_id():
    return "%024x" % random.getrandbits(96)


class ApolloSandbox(Sandbox):
    """Apollo.io enrichment API sandbox (people match, organization enrich, scopes, limits, credits)."""

    vendor = "apollo"

    @staticmethod
    def add_arguments(p):
        g = p.add_argument_group("Apollo")
        g.add_argument("--api-key", default="sandbox-apollo-key",
                       help="a master key of the team (default sandbox-apollo-key)")
        g.add_argument("--plan", choices=sorted(PLANS), default="paid",
                       help="the team's plan: its rate limits (default paid)")
        g.add_argument("--credits", type=int, default=10000, help="the team's credit balance (default 10000)")

    def __init__(self, args):
        self._flag_settings(args)
        super().__init__(args)

    def _flag_settings(self, args):
        self.plan = args.plan
        self.windows = {}  # (endpoint, window) -> [opened_at, used]

    # ------------------------------------------------------------ state

    def initial_state(self):
        """People by lower-case email; organizations by domain; keys -> scopes
        ("*" for a master key); the credit balance and what was charged."""
        return {"people": {}, "organizations": {}, "keys": {self.args.api_key: ["*"]},
                "credits": self.args.credits, "charged": 0}

    def reset_vendor(self):
        self._flag_settings(self.args)

    # ------------------------------------------------------------ errors

    def fault_response(self, status, fault):
        if status == 401:
            return Response(401, UNAUTHORIZED, {"Content-Type": "text/plain"})
        if status == 429:
            return json_response(429, {"message": "The maximum number of api calls allowed for "
                                                  "api/v1/people/match is 1000 times per minute."},
                                 {"Retry-After": "1"})
        if status == 422:
            return json_response(422, {"error": NO_CREDITS})
        if status >= 500:
            return json_response(status, {"error": "Internal server error"})
        return json_response(status, {"error": "Injected fault %d" % status})

    # ------------------------------------------------------------ routing

    def handle_api(self, req):
        m = re.fullmatch(r"/(?:api/)?v1/(people/match|organizations/enrich)", req.path)
        if not m:
            return json_response(404, {"error": "Not found"})
        endpoint = m.group(1)
        if req.method not in ENDPOINTS[endpoint]:
            return json_response(404, {"error": "Not found"})
        # Section 1: only x-api-key authenticates (a Bearer key is refused).
        key = req.header("x-api-key")
        scopes = self.state["keys"].get(key) if key else None
        if scopes is None:
            return Response(401, UNAUTHORIZED, {"Content-Type": "text/plain"})
        if "*" not in scopes and endpoint not in scopes:
            return json_response(403, {"error": "This API key is not authorized to access api/v1/%s. Request "
                                                "an API key from your administrator that includes this "
                                                "endpoint in its configured scope." % endpoint,
                                       "error_code": "API_INACCESSIBLE"})
        if self.plan == "free" and endpoint == "people/match":
            return json_response(403, {"error": "api/v1/people/match is not accessible with this api_key on a "
                                                "free plan. Please upgrade your plan from "
                                                "https://app.apollo.io/.",
                                       "error_code": "API_INACCESSIBLE"})
        limited = self._count(endpoint)
        if limited:
            return limited
        params = dict(req.query)
        if isinstance(req.body, dict):
            params.update({k: str(v) for k, v in req.body.items()})  # ASSUMPTION: body over query
        if endpoint == "people/match":
            resp = self.people_match(params)
        else:
            resp = self.organization_enrich(params)
        if resp.status == 200:
            self._limit_headers(endpoint, resp)
        return resp

    # ------------------------------------------------------------ limits

    def _count(self, endpoint):
        """Fixed windows per endpoint, each opening on its first request."""
        now = time.time()
        limits = PLANS[self.plan]
        for window, limit in limits.items():
            if limit is None:
                continue
            w = self.windows.setdefault((endpoint, window), [now, 0])
            if now - w[0] >= WINDOW_SECONDS[window]:
                w[0], w[1] = now, 0
            if w[1] >= limit:
                wait = int(w[0] + WINDOW_SECONDS[window] - now) + 1
                return json_response(429, {"message": "The maximum number of api calls allowed for api/v1/%s "
                                                      "is %d times %s. Please upgrade your plan from "
                                                      "https://app.apollo.io/#/settings/plans/upgrade."
                                                      % (endpoint, limit, WINDOW_WORDS[window])},
                                     {"retry-after": str(wait)})
        for window, limit in limits.items():
            if limit is not None:
                self.windows[(endpoint, window)][1] += 1
        return None

    def _limit_headers(self, endpoint, resp):
        names = {"minute": ("x-rate-limit-minute", "x-minute-usage", "x-minute-requests-left"),
                 "hourly": ("x-rate-limit-hourly", "x-hourly-usage", "x-hourly-requests-left"),
                 "24-hour": ("x-rate-limit-24-hour", "x-24-hour-usage", "x-24-hour-requests-left")}
        for window, limit in PLANS[self.plan].items():
            limit_h, usage_h, left_h = names[window]
            if limit is None:
                resp.headers[limit_h] = ""  # an unlimited window: empty limit, no usage
                continue
            used = self.windows[(endpoint, window)][1]
            resp.headers[limit_h] = str(limit)
            resp.headers[usage_h] = str(used)
            resp.headers[left_h] = str(max(limit - used, 0))

    def _charge(self):
        """False when the balance is spent (the caller answers 422)."""
        if self.state["credits"] <= 0:
            return False
        self.state["credits"] -= 1
        self.state["charged"] += 1
        self.save()
        return True

    # ------------------------------------------------------------ endpoints

    def people_match(self, p):
        if p.get("reveal_phone_number") == "true" and not p.get("webhook_url"):
            return json_response(400, {"status": "failed", "error_code": "INVALID_REQUEST",
                                       "error_message": "invalid request, missing details"})
        if self.state["credits"] <= 0:
            return json_response(422, {"error": NO_CREDITS})
        person = self._find_person(p)
        if person is None:
            return json_response(200, {"person": None})
        if not self._charge():
            return json_response(422, {"error": NO_CREDITS})
        doc = dict(person)
        org = self.state["organizations"].get(person.get("organization_domain", ""))
        doc.pop("organization_domain", None)
        if org:
            doc["organization"] = org
            doc["organization_id"] = org["id"]
        return json_response(200, {"person": doc, "request_id": random.randint(-2**63, 2**63 - 1)})

    def _find_person(self, p):
        email = (p.get("email") or "").strip().lower()
        if email:
            return self.state["people"].get(email)
        first, last = (p.get("first_name") or "").lower(), (p.get("last_name") or "").lower()
        domain = (p.get("domain") or "").lower()
        company = (p.get("organization_name") or "").lower()
        if not (first or last) or not (domain or company):
            return None
        for person in self.state["people"].values():
            org = self.state["organizations"].get(person.get("organization_domain", ""), {})
            if (person.get("first_name", "").lower() == first and person.get("last_name", "").lower() == last
                    and ((domain and person.get("organization_domain") == domain)
                         or (company and org.get("name", "").lower() == company))):
                return person
        return None

    def organization_enrich(self, p):
        if not any(p.get(k) for k in ("domain", "linkedin_url", "name", "website")):
            return json_response(422, {"error": "Required parameter 'domain' missing"})
        if self.state["credits"] <= 0:
            return json_response(422, {"error": NO_CREDITS})
        domain = (p.get("domain") or "").lower().removeprefix("www.")
        org = self.state["organizations"].get(domain)
        if org is None:
            return json_response(200, {})
        if not self._charge():
            return json_response(422, {"error": NO_CREDITS})
        return json_response(200, {"organization": org})

    # ------------------------------------------------------------ admin

    def admin_contacts(self):
        return list(self.state["people"].values())

    def admin_save_contact(self, fields):
        """Seeds a person Apollo knows: {"email", "first_name", "last_name",
        "title", "linkedin_url", "organization_domain"}."""
        email = str(fields.get("email", "")).strip().lower()
        if not email:
            return 400, "email is required", []
        person = {"id": hex_id(), "first_name": "", "last_name": "", "title": "", "email": email,
                  "email_status": "verified", "linkedin_url": None, "organization_domain": ""}
        person.update({k: v for k, v in fields.items() if k in person and k != "id"})
        person["name"] = (person["first_name"] + " " + person["last_name"]).strip()
        self.state["people"][email] = person
        self.save()
        return 201, person, []

    def admin_delete_contact(self, cid):
        for email, person in list(self.state["people"].items()):
            if person["id"] == cid or email == cid:
                del self.state["people"][email]
                self.save()
                return 200, cid, []
        return 404, "no person %s" % cid, []

    def settings(self):
        return {"plan": self.plan, "credits": self.state["credits"], "charged": self.state["charged"],
                "keys": self.state["keys"]}

    def apply_settings(self, values):
        """plan, credits (the balance), keys ({key: [scopes]}, "*" = master)."""
        for k, v in values.items():
            if k == "plan" and v in PLANS:
                self.plan = v
                self.windows = {}
            elif k == "credits" and isinstance(v, int) and v >= 0:
                self.state["credits"] = v
            elif k == "keys" and isinstance(v, dict):
                self.state["keys"] = {str(key): list(scopes) for key, scopes in v.items()}
            else:
                return "cannot set %s to %r" % (k, v)
        self.save()
        return None

    def admin_extra(self, req):
        """Apollo-only: seed organizations (POST /_sandbox/organizations
        {"primary_domain", "name", "industry", "estimated_num_employees", ...})."""
        path = req.path.rstrip("/")
        if path == "/_sandbox/organizations":
            if req.method == "GET":
                return json_response(200, list(self.state["organizations"].values()))
            if req.method == "POST" and isinstance(req.body, dict):
                domain = str(req.body.get("primary_domain", "")).lower()
                if not domain:
                    return json_response(400, {"error": "primary_domain is required"})
                org = {"id": hex_id(), "name": "", "website_url": "http://www." + domain,
                       "linkedin_url": None, "primary_domain": domain, "industry": "",
                       "estimated_num_employees": None}
                org.update({k: v for k, v in req.body.items() if k != "id"})
                self.state["organizations"][domain] = org
                self.save()
                return json_response(201, org)
        return None


if __name__ == "__main__":
    sys.exit(run(ApolloSandbox))
