#!/usr/bin/env python3
"""HaloPSA end to end over loopback: `dfm serve` between the GoHighLevel,
Aloware, Verity, HaloPSA (hosted: ?tenant=) and Apollo sandboxes.

A GoHighLevel lead becomes a HaloPSA user under its company's Client
(created once, then matched by the email domain), enriched by Apollo into
its title and a custom field; a user created or changed in HaloPSA reaches
GoHighLevel, Aloware and Verity; a HaloPSA outage (and a refused token) is waited
out and the user is written once; the same person created in three systems
at once is one contact with one record in each; three contacts of one new
company at once make one Client, and a duplicate made by someone else is
named by `dfm diagnose`; `dfm diagnose` names a
mapped custom field HaloPSA lacks and one of the wrong type; a one-click
unsubscribe reaches HaloPSA's "never send emails" and GoHighLevel's Email DND.

Usage: halopsa_e2e_test.py --dfm PATH [-k NAME]
"""
import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import dfmtest  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import Sandbox, by_phone, wait_for  # noqa: E402

HALO_USER, HALO_PASS = "halo-hook", "it-halo-webhook-password"
APOLLO_KEY = "it-apollo-key"
VERITY_KEY = "it-verity-key"


class HaloTest(unittest.TestCase):
    def setUp(self):
        self.dir = dfmtest.tempdir()
        self.dfm = dfmtest.Dfm(base.DFM, self.dir, extra_config=(
            f'[ghl]\ned25519_public_key_file = "{base.GHL_PUBLIC_KEY}"\n'
            '[sync]\ncontact_idle_s = 2\n'))
        hook = f"http://127.0.0.1:{self.dfm.port}/webhooks/"
        self.ghl = Sandbox("ghl", self.dir, ["--webhook-url", hook + "ghl"])
        self.alo = Sandbox("aloware", self.dir, ["--webhook-url", hook + "aloware",
                                                 "--webhook-auth", "bearer:" + dfmtest.ALOWARE_TOKEN])
        self.halo = Sandbox("halopsa", self.dir, ["--webhook-url", hook + "halopsa", "--tenant", "acmemsp",
                                                  "--webhook-auth", f"basic:{HALO_USER}:{HALO_PASS}"])
        self.apollo = Sandbox("apollo", self.dir, ["--api-key", APOLLO_KEY])
        self.verity = Sandbox("verity", self.dir, ["--webhook-url", hook + "verity",
                                                   "--webhook-secret", dfmtest.VERITY_SECRET,
                                                   "--api-key", VERITY_KEY])
        self.sandboxes = (self.ghl, self.alo, self.halo, self.apollo, self.verity)
        for s in self.sandboxes:
            s.start()
        self.env = {
            "DFM_GHL_API_BASE_URL": self.ghl.url,
            "DFM_GHL_LOCATION_ID": "loc_sandbox",
            "DFM_GHL_ACCESS_TOKEN": "sandbox-ghl-token",
            "DFM_ALOWARE_API_BASE_URL": self.alo.url,
            "DFM_ALOWARE_API_TOKEN": "sandbox-aloware-token",
            "DFM_HALOPSA_API_BASE_URL": self.halo.url,
            "DFM_HALOPSA_TENANT": "acmemsp",
            "DFM_HALOPSA_CLIENT_ID": "sandbox-halo-client",
            "DFM_HALOPSA_CLIENT_SECRET": "sandbox-halo-secret",
            "DFM_HALOPSA_USERNAME": HALO_USER,
            "DFM_HALOPSA_PASSWORD": HALO_PASS,
            "DFM_HALOPSA_CUSTOM_FIELDS": "linkedin_url=CFLinkedIn, industry=CFIndustry",
            "DFM_APOLLO_API_BASE_URL": self.apollo.url + "/api/v1",
            "DFM_APOLLO_API_KEY": APOLLO_KEY,
            "DFM_VERITY_API_BASE_URL": self.verity.url,
            "DFM_VERITY_CONTACTS_API": "true",  # this deployment's Verity has /v1/contacts
            "DFM_VERITY_API_KEY": VERITY_KEY,
            "DFM_UNSUBSCRIBE_SECRET": "it-halo-unsubscribe-secret-0123456789ab",
        }
        for system in ("GHL", "ALOWARE", "HALOPSA", "APOLLO", "VERITY"):
            self.env[f"DFM_{system}_RETRY_BASE_MS"] = "100"
            self.env[f"DFM_{system}_RETRY_MAX_MS"] = "1000"
            self.env[f"DFM_{system}_BREAKER_OPEN_MS"] = "1000"
        self.apollo.post("/_sandbox/organizations", {"primary_domain": "acme.io", "name": "Acme Inc",
                                                      "industry": "software", "estimated_num_employees": 120})
        self.apollo.post("/_sandbox/contacts", {
            "email": "ann@acme.io", "first_name": "Ann", "last_name": "Smith", "title": "CTO",
            "linkedin_url": "http://www.linkedin.com/in/ann", "organization_domain": "acme.io"})
        self.dfm.start(env_extra=self.env)

    def tearDown(self):
        base.tear_down(self.dfm, self.dir, self.sandboxes, self)

    # --- helpers ---------------------------------------------------------

    def events(self, type_):
        return [e["payload"] for e in self.dfm.dump(with_body=True) if e["type"] == type_]

    def halo_users(self, email):
        return [u for u in self.halo.contacts() if u.get("emailaddress") == email]

    def halo_clients(self):
        return self.halo.get("/_sandbox/clients")[1]["clients"]

    def ghl_lead(self, phone, first, email, company=None):
        doc = {"firstName": first, "lastName": "Smith", "phone": phone, "email": email}
        if company:
            doc["companyName"] = company
        status, body = self.ghl.post("/_sandbox/contacts", doc)
        self.assertIn(status, (200, 201), body)
        self.assertEqual(body["webhook"]["status"], 200, body)
        return body["contact"]

    @staticmethod
    def custom(user, name):
        return next((c["value"] for c in user["customfields"] if c["name"] == name), None)

    # --- scenarios -------------------------------------------------------

    def test_a_ghl_lead_becomes_a_halopsa_user_under_its_client_and_is_enriched(self):
        self.ghl_lead("+12055550301", "Ann", "ann@acme.io", company="Acme Inc")
        user = wait_for("Ann in HaloPSA, enriched", lambda: [
            u for u in self.halo_users("ann@acme.io") if u["title"] == "CTO"
            and self.custom(u, "CFLinkedIn") == "http://www.linkedin.com/in/ann"
            and self.custom(u, "CFIndustry") == "software"])[0]
        self.assertEqual((user["firstname"], user["surname"], user["phonenumber"]), ("Ann", "Smith", "+12055550301"))
        acme = [c for c in self.halo_clients() if c["name"] == "Acme Inc"]
        self.assertEqual(len(acme), 1)
        self.assertEqual(acme[0]["domain"], "acme.io")
        self.assertEqual((user["client_id"], user["site_id_int"]), (acme[0]["id"], acme[0]["main_site_id"]))
        # Bob names no company: his email's domain finds Acme's client.
        self.ghl_lead("+12055550302", "Bob", "bob@acme.io")
        bob = wait_for("Bob in HaloPSA", lambda: self.halo_users("bob@acme.io"))[0]
        self.assertEqual(bob["client_id"], acme[0]["id"])
        self.assertEqual(len([c for c in self.halo_clients() if c["name"] == "Acme Inc"]), 1)
        token_calls = self.halo.requests("/auth/token")
        self.assertTrue(token_calls)
        self.assertTrue(all(r["query"].get("tenant") == "acmemsp" for r in token_calls))
        time.sleep(1)
        self.assertEqual(len(self.halo_users("ann@acme.io")), 1)
        self.assertEqual(len(self.halo_users("bob@acme.io")), 1)

    def test_a_user_created_or_changed_in_halopsa_reaches_ghl_aloware_and_verity(self):
        status, body = self.halo.post("/_sandbox/contacts", {
            "firstname": "Hal", "surname": "Jordan", "emailaddress": "hal@globex.com",
            "phonenumber": "+12055550311", "title": "Buyer"})
        self.assertEqual(status, 201, body)
        self.assertEqual(body["webhook"]["status"], 200, body)
        wait_for("Hal in GoHighLevel", lambda: by_phone(self.ghl.contacts(), "+12055550311", "phone"))
        wait_for("Hal in Aloware", lambda: by_phone(self.alo.contacts(), "+12055550311", "phone_number"))
        wait_for("Hal in Verity", lambda: by_phone(self.verity.contacts(), "+12055550311", "phone"))
        hal = body["contact"]["id"]
        status, body = self.halo.post("/_sandbox/contacts", {"id": hal, "surname": "Jordan-Ray"})
        self.assertEqual(body["webhook"]["status"], 200, body)
        wait_for("the change in GoHighLevel", lambda: [
            c for c in by_phone(self.ghl.contacts(), "+12055550311", "phone") if c["lastName"] == "Jordan-Ray"])
        wait_for("the change in Aloware", lambda: [
            c for c in by_phone(self.alo.contacts(), "+12055550311", "phone_number")
            if c["last_name"] == "Jordan-Ray"])
        # A webhook without the right Basic credentials is refused.
        status, _, _ = dfmtest.request("127.0.0.1", self.dfm.port, "POST", "/webhooks/halopsa",
                                       body=b'{"id":"x","event":"user updated"}',
                                       headers={"Content-Type": "application/json",
                                                "Authorization": "Basic d3Jvbmc6d3Jvbmc="})
        self.assertEqual(status, 401)
        self.assertEqual(len(self.halo_users("hal@globex.com")), 1, "the echo wrote nothing back")
        # A batched delivery (v2.164+: a JSON array): each user its own fact.
        status, body = self.halo.post("/_sandbox/users_batch", {"users": [
            {"firstname": "Ivy", "surname": "Lam", "emailaddress": "ivy@globex.com", "phonenumber": "+12055550312"},
            {"id": hal, "title": "Head Buyer"},
            {"firstname": "Jon", "surname": "Oke", "emailaddress": "jon@globex.com", "phonenumber": "+12055550313"}]})
        self.assertEqual((status, body["webhook"]["status"]), (200, 200), body)
        wait_for("Ivy in GoHighLevel", lambda: by_phone(self.ghl.contacts(), "+12055550312", "phone"))
        wait_for("Jon in GoHighLevel", lambda: by_phone(self.ghl.contacts(), "+12055550313", "phone"))
        wait_for("Jon in Aloware", lambda: by_phone(self.alo.contacts(), "+12055550313", "phone_number"))

    def test_a_backfill_lists_every_user_in_id_order(self):
        """`dfm backfill halopsa`: users made while nobody listened (no
        webhook) are read page by page in id order, with the user before
        each later page read too (a deletion between pages skips nobody:
        HaloBackfill in the unit tests), and synced."""
        phones = ["+1205555033%d" % i for i in range(5)]
        for i, p in enumerate(phones):
            status, body = self.halo.post("/_sandbox/contacts", {
                "firstname": "Back%d" % i, "surname": "Fill", "emailaddress": "back%d@globex.com" % i,
                "phonenumber": p, "webhook": False})
            self.assertEqual(status, 201, body)
        self.assertEqual(self.dfm.stop(), 0)
        env = dict(os.environ)
        env.update(self.env)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        r = subprocess.run([base.DFM, "backfill", "-c", self.dfm.config_path, "halopsa", "--page-size", "2"],
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("5 contacts read, 5 imported", r.stdout)
        pages = [q["query"] for q in self.halo.get("/_sandbox/requests?path_prefix=/api/Users")[1]
                 if q["method"] == "GET" and q["query"].get("pageinate") == "true"]
        self.assertEqual(len(pages), 5, pages)  # pages 1-3, the users before pages 2 and 3
        for query in pages:
            self.assertEqual((query.get("order"), query.get("orderdesc")), ("id", "false"), query)
        self.dfm.start(env_extra=self.env)
        for p in phones:
            wait_for("backfilled " + p, lambda p=p: by_phone(self.ghl.contacts(), p, "phone"))

    def test_a_halopsa_outage_and_a_refused_token_are_waited_out(self):
        self.halo.post("/_sandbox/faults", {"faults": [{"path_prefix": "/api/Users", "status": 401}]})
        self.halo.post("/_sandbox/down", {"seconds": 4})
        self.ghl_lead("+12055550321", "Cy", "cy@initech.com", company="Initech")
        time.sleep(2)
        self.assertEqual(self.halo_users("cy@initech.com"), [])
        wait_for("Cy in Aloware meanwhile", lambda: by_phone(self.alo.contacts(), "+12055550321", "phone_number"))
        wait_for("Cy in HaloPSA after it is back", lambda: self.halo_users("cy@initech.com"), timeout=60)
        time.sleep(1)
        self.assertEqual(len(self.halo_users("cy@initech.com")), 1)
        self.assertEqual(len([c for c in self.halo_clients() if c["name"] == "Initech"]), 1)
        self.assertGreaterEqual(len(self.halo.requests("/auth/token")), 2, "a new token after the 401")

    def test_the_same_person_created_in_three_systems_at_once_is_one_contact(self):
        email, phone = "dee@umbrella.com", "+12055550331"
        makers = [
            lambda: self.ghl.post("/_sandbox/contacts", {"firstName": "Dee", "lastName": "Ward", "phone": phone,
                                                         "email": email}),
            lambda: self.alo.post("/_sandbox/contacts", {"first_name": "Dee", "last_name": "Ward",
                                                         "phone_number": phone, "email": email}),
            lambda: self.halo.post("/_sandbox/contacts", {"firstname": "Dee", "surname": "Ward",
                                                          "emailaddress": email, "phonenumber": phone}),
        ]
        threads = [threading.Thread(target=m) for m in makers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(4)
        wait_for("quiet", lambda: all(
            c["held"] == 0 for c in json.loads(dfmtest.request(
                "127.0.0.1", self.dfm.port, "GET", "/v1/health")[2])["parts"]["sync"]["connectors"].values()))
        created = [e for e in self.events("contact.created")]
        self.assertEqual(len({e["contact_id"] for e in created}), 1, created)
        self.assertEqual(len(by_phone(self.ghl.contacts(), phone, "phone")), 1)
        self.assertEqual(len(by_phone(self.alo.contacts(), phone, "phone_number")), 1)
        self.assertEqual(len(self.halo_users(email)), 1)
        self.assertEqual(len(by_phone(self.verity.contacts(), phone, "phone")), 1)

    def test_three_contacts_of_one_new_company_at_once_make_one_client(self):
        # Issue 51: three identical POST /api/Client within 11 ms, each user
        # filed under a different new Client.
        leads = [("+12055550341", "Ada", "ada@umbrella-labs.com"), ("+12055550342", "Bo", "bo@umbrella-labs.com"),
                 ("+12055550343", "Cy", "cy@umbrella-labs.com")]
        threads = [threading.Thread(target=self.ghl_lead, args=(p, f, e), kwargs={"company": "Umbrella Labs"})
                   for p, f, e in leads]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for _, _, email in leads:
            wait_for(email + " in HaloPSA", lambda email=email: self.halo_users(email))
        umbrella = [c for c in self.halo_clients() if c["name"] == "Umbrella Labs"]
        self.assertEqual(len(umbrella), 1, self.halo_clients())
        creates = [q for q in self.halo.requests("/api/Client") if q["method"] == "POST"]
        self.assertEqual(len(creates), 1, creates)
        self.assertEqual({self.halo_users(e)[0]["client_id"] for _, _, e in leads}, {umbrella[0]["id"]})
        # A duplicate made in HaloPSA by someone else: the lowest id still
        # takes new users, and `dfm diagnose` names the two.
        token = json.loads(dfmtest.request(
            "127.0.0.1", self.halo.port, "POST", "/auth/token?tenant=acmemsp",
            body=b"grant_type=client_credentials&client_id=sandbox-halo-client&client_secret=sandbox-halo-secret",
            headers={"Content-Type": "application/x-www-form-urlencoded"})[2])["access_token"]
        status, _, body = dfmtest.request("127.0.0.1", self.halo.port, "POST", "/api/Client",
                                          body=b'[{"name": "Umbrella Labs"}]',
                                          headers={"Content-Type": "application/json",
                                                   "Authorization": "Bearer " + token})
        self.assertEqual(status, 201, body)
        r = subprocess.run([self.dfm.binary, "diagnose", "-c", self.dfm.config_path, "--json"],
                           capture_output=True, text=True, env=dict(dfmtest.environ(), **self.env))
        checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
        clients = checks["HaloPSA [default] clients"]
        self.assertEqual(clients["state"], "fail", clients)
        self.assertIn("new users go to %d" % umbrella[0]["id"], clients["detail"])

    def test_a_one_click_unsubscribe_reaches_every_system_that_keeps_email_consent(self):
        self.ghl_lead("+12055550321", "Una", "una@globex.com")
        wait_for("Una in HaloPSA", lambda: self.halo_users("una@globex.com"))
        r = subprocess.run([base.DFM, "unsubscribe-link", "-c", self.dfm.config_path, "--email", "una@globex.com",
                            "--json"], capture_output=True, text=True, env=dict(dfmtest.environ(), **self.env))
        self.assertEqual(r.returncode, 0, r.stderr)
        url = json.loads(r.stdout)["url"]
        status, _, body = dfmtest.request("127.0.0.1", self.dfm.port, "POST", url.split(str(self.dfm.port), 1)[1],
                                          body=b"List-Unsubscribe=One-Click",
                                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, body)
        wait_for("HaloPSA never sends her email", lambda: [
            u for u in self.halo_users("una@globex.com") if u.get("neversendemails") is True])
        wait_for("GHL Email DND", lambda: [
            c for c in by_phone(self.ghl.contacts(), "+12055550321", "phone")
            if ((c.get("dndSettings") or {}).get("Email") or {}).get("status") == "active"])
        sms = [c for c in by_phone(self.ghl.contacts(), "+12055550321", "phone")
               if ((c.get("dndSettings") or {}).get("SMS") or {}).get("status") == "active"]
        self.assertEqual(sms, [], "only email")

    def test_diagnose_names_a_missing_and_a_mistyped_custom_field(self):
        env = dict(dfmtest.environ(), **self.env)
        r = subprocess.run([self.dfm.binary, "diagnose", "-c", self.dfm.config_path, "--json"],
                           capture_output=True, text=True, env=env)
        checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
        self.assertEqual(checks["HaloPSA [default] client credentials"]["state"], "ok", checks)
        self.assertEqual(checks["HaloPSA [default] custom fields"]["state"], "ok", checks)
        env["DFM_HALOPSA_CUSTOM_FIELDS"] = "linkedin_url=CFLinkedIn, industry=CFSector, company_size=CFStartDate"
        r = subprocess.run([self.dfm.binary, "diagnose", "-c", self.dfm.config_path, "--json"],
                           capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 1)
        checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
        cf = checks["HaloPSA [default] custom fields"]
        self.assertEqual(cf["state"], "fail")
        self.assertIn("no field CFSector (for industry)", cf["detail"])
        self.assertIn("CFStartDate (for company_size) is not a text field", cf["detail"])
        self.assertIn("halopsa.custom_fields", cf["hint"])
        env["DFM_HALOPSA_CLIENT_SECRET"] = "not-the-halo-secret-9f2"
        r = subprocess.run([self.dfm.binary, "diagnose", "-c", self.dfm.config_path, "--json"],
                           capture_output=True, text=True, env=env)
        checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
        self.assertEqual(checks["HaloPSA [default] client credentials"]["state"], "fail")
        self.assertNotIn("not-the-halo-secret-9f2", r.stdout)


if __name__ == "__main__":
    base.main()
