#!/usr/bin/env python3
"""Apollo enrichment end to end over loopback (docs/sync-rules.md,
"Enrichment"): `dfm serve` between the GoHighLevel, Aloware and Apollo
sandboxes. A new contact with an email is asked about once; the answer is
recorded as contact.enriched and fills only empty fields, which reach
Aloware; a person's own value is never overridden; the same person is not
asked again (also after a kill -9); the daily credit budget holds lookups
until tomorrow while the sync goes on, and is never passed across a
rate-limit hold and a kill -9; Apollo's 429 is waited out and its 422 for
credits ends the lookup, not the sync.

Usage: enrichment_e2e_test.py --dfm PATH [-k NAME]
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import dfmtest  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import Sandbox, by_phone, wait_for  # noqa: E402

APOLLO_KEY = "it-apollo-key"


class Enrichment(unittest.TestCase):
    """The sandboxes and dfm with a daily credit budget of `budget`."""
    budget = "100"

    def setUp(self):
        self.dir = dfmtest.tempdir()
        self.dfm = dfmtest.Dfm(base.DFM, self.dir, extra_config=(
            f'[ghl]\ned25519_public_key_file = "{base.GHL_PUBLIC_KEY}"\n'
            '[sync]\ncontact_idle_s = 2\n'))
        hook = f"http://127.0.0.1:{self.dfm.port}/webhooks/"
        self.ghl = Sandbox("ghl", self.dir, ["--webhook-url", hook + "ghl"])
        self.alo = Sandbox("aloware", self.dir, ["--webhook-url", hook + "aloware",
                                                 "--webhook-auth", "bearer:" + dfmtest.ALOWARE_TOKEN])
        self.apollo = Sandbox("apollo", self.dir, ["--api-key", APOLLO_KEY])
        self.sandboxes = (self.ghl, self.alo, self.apollo)
        for s in self.sandboxes:
            s.start()
        self.env = {
            "DFM_GHL_API_BASE_URL": self.ghl.url,
            "DFM_GHL_LOCATION_ID": "loc_sandbox",
            "DFM_GHL_ACCESS_TOKEN": "sandbox-ghl-token",
            "DFM_ALOWARE_API_BASE_URL": self.alo.url,
            "DFM_ALOWARE_API_TOKEN": "sandbox-aloware-token",
            "DFM_APOLLO_API_BASE_URL": self.apollo.url + "/api/v1",
            "DFM_APOLLO_API_KEY": APOLLO_KEY,
            "DFM_APOLLO_DAILY_CREDIT_BUDGET": self.budget,
        }
        for system in ("GHL", "ALOWARE", "APOLLO"):
            self.env[f"DFM_{system}_RETRY_BASE_MS"] = "100"
            self.env[f"DFM_{system}_RETRY_MAX_MS"] = "1000"
            self.env[f"DFM_{system}_BREAKER_OPEN_MS"] = "1000"
        self.apollo_knows("ann@acme.io", "Annie", "Smith", "CTO", "acme.io")
        self.apollo_knows("bob@globex.com", "Bob", "Stone", "Head of Sales", "globex.com")
        self.apollo_knows("cy@initech.com", "Cy", "Long", "Engineer", "initech.com")
        for domain, name, size, industry in (("acme.io", "Acme Inc", 120, "software"),
                                             ("globex.com", "Globex", 5400, "energy"),
                                             ("initech.com", "Initech", 800, "consulting")):
            status, _ = self.apollo.post("/_sandbox/organizations", {
                "primary_domain": domain, "name": name, "estimated_num_employees": size,
                "industry": industry})
            self.assertEqual(status, 201)
        self.dfm.start(env_extra=self.env)

    def tearDown(self):
        base.tear_down(self.dfm, self.dir, self.sandboxes, self)

    # --- helpers ---------------------------------------------------------

    def apollo_knows(self, email, first, last, title, domain):
        status, body = self.apollo.post("/_sandbox/contacts", {
            "email": email, "first_name": first, "last_name": last, "title": title,
            "linkedin_url": "http://www.linkedin.com/in/" + first.lower(), "organization_domain": domain})
        self.assertEqual(status, 201, body)

    def events(self, type_):
        return [e["payload"] for e in self.dfm.dump(with_body=True) if e["type"] == type_]

    def ghl_user_creates(self, phone, first, email):
        status, body = self.ghl.post("/_sandbox/contacts", {"firstName": first, "lastName": "Doe",
                                                            "phone": phone, "email": email})
        self.assertIn(status, (200, 201), body)
        self.assertEqual(body["webhook"]["status"], 200, body)
        return body["contact"]

    def aloware_contact(self, phone):
        found = by_phone(self.alo.contacts(), phone, "phone_number")
        return found[0] if found else None

    def matches(self):
        return self.apollo.requests("/api/v1/people/match")

    def health(self):
        status, _, body = dfmtest.request("127.0.0.1", self.dfm.port, "GET", "/v1/health")
        self.assertEqual(status, 200, body)
        return json.loads(body)["parts"]["sync"]["connectors"]["default/apollo"]



class EnrichmentTest(Enrichment):

    def test_a_new_contact_is_enriched_once_and_only_empty_fields_are_filled(self):
        self.ghl_user_creates("+12055550201", "Ann", "ann@acme.io")
        enriched = wait_for("contact.enriched", lambda: self.events("contact.enriched"))
        self.assertEqual(len(enriched), 1)
        e = enriched[0]
        self.assertEqual((e["system"], e["outcome"]), ("apollo", "matched"))
        self.assertEqual(e["fields"]["asked.email"], "ann@acme.io")
        self.assertEqual(e["fields"]["asked.company_domain"], "acme.io")
        self.assertEqual(e["fields"]["title"], "CTO")
        self.assertEqual(e["fields"]["company_name"], "Acme Inc")
        self.assertEqual(e["fields"]["company_size"], "120")
        self.assertEqual(e["fields"]["industry"], "software")
        # The company fills Aloware's empty company_name; the first name a
        # person typed in GoHighLevel stays ("Annie" is Apollo's).
        alo = wait_for("company in Aloware", lambda: (self.aloware_contact("+12055550201") or {})
                       .get("company_name") == "Acme Inc" and self.aloware_contact("+12055550201"))
        self.assertEqual(alo["first_name"], "Ann")
        changes = [c for ch in self.events("contact.changed") if ch["system"] == "apollo"
                   for c in ch["changes"]]
        self.assertNotIn("first_name", [c["field"] for c in changes])
        self.assertIn("title", [c["field"] for c in changes])
        self.assertEqual(len(self.matches()), 1)
        # An edit, then a kill -9 and another edit: never asked again.
        ghl_id = by_phone(self.ghl.contacts(), "+12055550201", "phone")[0]["id"]
        status, body = self.ghl.post("/_sandbox/contacts", {"id": ghl_id, "lastName": "Dae"})
        self.assertIn(status, (200, 201), body)
        wait_for("the edit in Aloware",
                 lambda: (self.aloware_contact("+12055550201") or {}).get("last_name") == "Dae")
        self.dfm.kill9()
        self.dfm.start(env_extra=self.env)
        status, body = self.ghl.post("/_sandbox/contacts", {"id": ghl_id, "lastName": "Day"})
        wait_for("the next edit in Aloware",
                 lambda: (self.aloware_contact("+12055550201") or {}).get("last_name") == "Day")
        time.sleep(1)
        self.assertEqual(len(self.matches()), 1)
        self.assertEqual(self.apollo.get("/_sandbox/settings")[1]["charged"], 1)

    def test_apollo_429_is_waited_out_and_422_for_credits_ends_only_the_lookup(self):
        self.apollo.post("/_sandbox/faults", {"faults": [
            {"path_prefix": "/api/v1/people/match", "status": 429, "retry_after": 1}]})
        self.ghl_user_creates("+12055550202", "Bob", "bob@globex.com")
        wait_for("contact.enriched", lambda: self.events("contact.enriched"), timeout=30)
        tries = [r for r in self.matches() if r["status"] in (200, 429)]
        self.assertEqual([r["status"] for r in tries], [429, 200])
        # Credits spent at Apollo: the lookup is given up, the contact syncs.
        self.apollo.post("/_sandbox/settings", {"credits": 0})
        self.ghl_user_creates("+12055550203", "Cy", "cy@initech.com")
        wait_for("Cy in Aloware", lambda: self.aloware_contact("+12055550203"))
        wait_for("the lookup given up", lambda: [
            d for d in self.events("push.dead_lettered") if d.get("op") == "enrich"])
        failed = [a for a in self.events("push.attempted")
                  if a.get("op") == "enrich" and a["outcome"] == "failed"]
        self.assertEqual(len(failed), 1, "not retried")
        self.assertEqual(failed[0]["http_status"], 422)
        self.assertIn("Apollo credits are spent", failed[0]["detail"])
        self.assertEqual(len(self.events("contact.enriched")), 1)


class BudgetTest(Enrichment):
    """The tenant's daily credit budget: two credits."""
    budget = "2"

    def test_the_budget_spent_holds_lookups_for_tomorrow_not_the_sync(self):
        for phone, first, email in (("+12055550211", "Ann", "ann@acme.io"),
                                    ("+12055550212", "Bob", "bob@globex.com")):
            self.ghl_user_creates(phone, first, email)
        wait_for("two enriched", lambda: len(self.events("contact.enriched")) == 2)
        self.ghl_user_creates("+12055550213", "Cy", "cy@initech.com")
        wait_for("Cy in Aloware", lambda: self.aloware_contact("+12055550213"))
        asked = wait_for("Cy's lookup asked for", lambda: [
            p for p in self.events("push.requested") if p.get("op") == "enrich"
            and p["fields"].get("email") == "cy@initech.com"])
        self.assertTrue(asked)
        time.sleep(1.5)
        self.assertEqual(len(self.matches()), 2, "the third waits for tomorrow")
        h = self.health()
        self.assertEqual((h["credits_today"], h["credit_budget"], h["held"]), (2, 2, 1))
        self.assertEqual(self.apollo.get("/_sandbox/settings")[1]["charged"], 2)
        # The count survives a restart: still nothing more today.
        self.dfm.kill9()
        self.dfm.start(env_extra=self.env)
        time.sleep(2)
        self.assertEqual(len(self.matches()), 2)
        self.assertEqual(self.health()["credits_today"], 2)



class HoldAndRestartBudgetTest(Enrichment):
    """Issue 51: a budget of three, a rate-limit hold and a restart."""
    budget = "3"

    def test_a_rate_limit_hold_and_a_restart_never_pass_the_budget(self):
        # Apollo answered "no more this minute" and the held questions all
        # went in one millisecond when the hold ended: five matched, five
        # credits, against a budget of three (seven across a restart).
        self.apollo_knows("dee@hooli.com", "Dee", "Ward", "COO", "hooli.com")
        self.apollo_knows("eve@umbrella.com", "Eve", "Park", "CFO", "umbrella.com")
        self.apollo.post("/_sandbox/faults", {"faults": [
            {"path_prefix": "/api/v1/people/match", "status": 429, "retry_after": 2, "count": 4}]})
        people = [("+12055550221", "Ann", "ann@acme.io"), ("+12055550222", "Bob", "bob@globex.com"),
                  ("+12055550223", "Cy", "cy@initech.com"), ("+12055550224", "Dee", "dee@hooli.com"),
                  ("+12055550225", "Eve", "eve@umbrella.com")]
        for phone, first, email in people[:3]:
            self.ghl_user_creates(phone, first, email)
        wait_for("the hold", lambda: [r for r in self.matches() if r["status"] == 429])
        self.dfm.kill9()  # questions held, some maybe asked
        self.dfm.start(env_extra=self.env)
        for phone, first, email in people[3:]:
            self.ghl_user_creates(phone, first, email)
        for phone, _, _ in people:  # the contacts sync whatever the budget
            wait_for(phone + " in Aloware", lambda phone=phone: self.aloware_contact(phone))
        # The budget is spent in the engine's count: a question reserved and
        # cut off by the kill before Apollo answered counts as spent, so
        # Apollo may have charged fewer, never more.
        wait_for("the day's budget spent", lambda: self.health()["credits_today"] >= 3, timeout=60)
        time.sleep(5)  # every hold over: nothing more goes today
        charged = self.apollo.get("/_sandbox/settings")[1]["charged"]
        self.assertLessEqual(charged, 3)
        self.assertEqual(len([r for r in self.matches() if r["status"] == 200]), charged)
        enriched = len(self.events("contact.enriched"))
        self.assertLessEqual(enriched, charged)
        h = self.health()
        self.assertEqual((h["credits_today"], h["credit_budget"]), (3, 3))
        self.assertGreaterEqual(h["held"], 5 - charged)

if __name__ == "__main__":
    base.main()
