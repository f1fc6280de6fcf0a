#!/usr/bin/env python3
"""The status page and the keyed API (docs/status-page.md, docs/http-api.md),
against `dfm serve` between the four sandboxes, driven in headless Chromium
(Debian's chromium and chromium-driver, through python3-selenium).

- The page loads at 1280x800 and at phone width (nothing wider than the
  screen), shows each system's card, shows Aloware down while its sandbox
  is stopped and working again after it is back.
- On one company's service (OneTenantConsoleTest) the search answers a real
  contact in any spelling of its phone: where it exists, its STOP with since
  when and through which system, the "what to send IT" box; without sign-in
  nothing personal is on the page; signed in with a viewer key (`dfm keys
  create`), it is; signing out masks again; it works with JavaScript off.
  Where several tenants share the service, nobody signed in searches.
- The API: keys made by `dfm keys` (with the service running and without),
  roles, tenants, limits with their headers, and GET /v1/openapi.json
  valid against the OpenAPI Initiative's 3.1 schema.

Screenshots go to --screenshots (the build folder) for a person to look at.

Usage: console_e2e_test.py --dfm PATH [--screenshots DIR] [-k NAME]
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import clustertest  # noqa: E402
import dfmtest  # noqa: E402
import messages_e2e_test as messages  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import wait_for  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException, StaleElementReferenceException, WebDriverException)
from selenium.webdriver.common.by import By  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCHEMA = os.path.join(ROOT, "tests", "openapi", "node_modules", "@apidevtools", "openapi-schemas",
                      "schemas", "v3.1", "schema.json")
SHOTS = os.path.join(ROOT, "build", "screenshots")  # --screenshots DIR
PHONE = "+12055550401"
SPELLED = "(205) 555-0401"


def browser(workdir, width=1280, height=800, javascript=True):
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--window-size={width},{height}",
                "--user-data-dir=" + tempfile.mkdtemp(prefix="chromium-", dir=workdir)):
        o.add_argument(arg)
    if not javascript:
        o.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


class ConsolePage(unittest.TestCase):
    """The service and its sandboxes, a browser's helpers; the tests are
    below. `other_tenants`: the tenant "acme" besides "default"."""
    other_tenants = True
    make_dfm = messages.MessagesTest.make_dfm
    setUp = messages.MessagesTest.setUp
    verity_inbound = messages.MessagesTest.verity_inbound
    verity_sent = messages.MessagesTest.verity_sent
    ghl_contact = messages.MessagesTest.ghl_contact
    ghl_user_creates = base.SyncTest.ghl_user_creates

    def extra_env(self):
        """Quiet hours hold now for the test's people: a campaign's texts
        wait (tests/integration/campaigns_e2e_test.py sends them)."""
        return {"DFM_CAMPAIGNS_QUIET_HOURS": dfmtest.quiet_hours(open_now=False)}

    def tearDown(self):
        for d in getattr(self, "drivers", []):
            d.quit()
        messages.MessagesTest.tearDown(self)

    # --- helpers ---------------------------------------------------------

    def page(self, width=1280, height=800, javascript=True):
        d = browser(self.dir, width, height, javascript)
        self.drivers = getattr(self, "drivers", []) + [d]
        d.get(f"http://127.0.0.1:{self.dfm.port}/docs/visual")
        return d

    def shot(self, d, name):
        os.makedirs(SHOTS, exist_ok=True)
        d.save_screenshot(os.path.join(SHOTS, name + ".png"))

    def card(self, d, system):
        return d.find_element(By.CSS_SELECTOR, f'article.card[data-system="{system}"]')

    def card_state(self, system):
        """The card's state on a freshly loaded page (the page refreshes
        itself every 30 s; the test does not wait for that)."""
        d = self.drivers[0]
        d.get(f"http://127.0.0.1:{self.dfm.port}/docs/visual")
        return self.card(d, system).get_attribute("data-state")

    def key(self, role, tenant="*", name=None):
        r = self.cli("keys", "create", "-c", self.dfm.config_path, "--name", name or role,
                     "--role", role, "--tenant", tenant)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)["token"]

    def cli(self, *args):
        """`dfm` with the settings the test's service was started with."""
        env = dfmtest.environ()
        env.update(self.env)
        return subprocess.run([self.dfm.binary, *args], capture_output=True, text=True, env=env)

    def search(self, d, text):
        box = d.find_element(By.NAME, "q")
        box.clear()
        box.send_keys(text)
        d.find_element(By.CSS_SELECTOR, "form.search input[type=submit]").click()
        wait_for("the answer", lambda: d.find_elements(By.CSS_SELECTOR, ".story, #search-result"))

    def sign_in(self, d, token):
        d.find_element(By.ID, "key").send_keys(token)
        d.find_element(By.CSS_SELECTOR, "header button[type=submit]").click()
        def signed_in():
            try:
                return "Signed in" in d.find_element(By.TAG_NAME, "header").text
            except (NoSuchElementException, StaleElementReferenceException):  # the page is being replaced
                return False
            except WebDriverException as e:
                # Chromium's own word for a stale element, the page replaced
                # between finding the header and reading it.
                if "does not belong to the document" in str(e):
                    return False
                raise
        wait_for("signed in", signed_in)

    def api(self, path, key=None, method="GET", body=None, admin=False):
        headers = {"Authorization": "Bearer " + key} if key else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        port = self.dfm.admin_port if admin else self.dfm.port
        status, h, data = dfmtest.request("127.0.0.1", port, method, path,
                                          json.dumps(body) if body is not None else None, headers)
        return status, h, json.loads(data) if data.strip().startswith(b"{") else data


class ConsoleTest(ConsolePage):
    """The tenants "default" and "acme" (one service for several
    companies)."""

    # --- the page --------------------------------------------------------

    def test_the_page_shows_each_system_down_and_recovered(self):
        d = self.page()
        self.assertEqual(d.find_element(By.ID, "summary").text, "All systems working")
        for system in ("ghl", "aloware", "verity"):
            self.assertIn(self.card(d, system).get_attribute("data-state"), ("working", "idle"))
        self.assertEqual(d.find_element(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
                         .get_attribute("content"), "30")
        self.shot(d, "status-1280x800")
        phone = self.page()
        phone.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                              {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
        phone.get(f"http://127.0.0.1:{self.dfm.port}/docs/visual")
        self.assertEqual(phone.execute_script("return window.innerWidth"), 390)
        self.assertLessEqual(phone.execute_script("return document.documentElement.scrollWidth"), 390,
                             "nothing is wider than a phone's screen")
        self.shot(phone, "status-phone")

        self.alo.stop()
        for i in range(3):
            self.ghl_user_creates("+1205555041%d" % i)
        wait_for("Aloware shown down", lambda: self.card_state("aloware") == "down", timeout=60)
        card = self.card(d, "aloware")
        self.assertRegex(card.find_element(By.CSS_SELECTOR, ".state").text,
                         r"^Down since \d\d:\d\d UTC, retrying$")
        self.assertRegex(card.text, r"Changes waiting\s+3")
        self.assertIn("need", d.find_element(By.ID, "summary").text)
        self.assertIn(self.card(d, "ghl").get_attribute("data-state"), ("working", "idle"))
        self.shot(d, "status-aloware-down")

        self.alo.start()
        # Working from its first answer; the three changes then drain.
        wait_for("Aloware working again, nothing waiting", lambda: self.card_state("aloware") == "working"
                 and re.search(r"Changes waiting\s+0", self.card(d, "aloware").text), timeout=90)
        card = self.card(d, "aloware")
        self.assertRegex(card.text, r"Syncs in the last hour\s+[3-9]")
        self.shot(d, "status-aloware-recovered")

    def test_nobody_signed_in_searches_where_several_tenants_share_the_service(self):
        self.ghl_contact(PHONE, email="ada@example.com")
        d = self.page()
        self.assertEqual(d.find_elements(By.NAME, "q"), [], "no search box for anybody")
        self.assertIn("Sign in with a viewer key to search for a contact: several tenants share "
                      "this service.", d.find_element(By.TAG_NAME, "main").text)
        self.sign_in(d, self.key("viewer", tenant="default", name="front desk"))
        self.search(d, SPELLED)
        self.assertIn(PHONE, d.find_element(By.CSS_SELECTOR, ".story").text)
        d.find_element(By.CSS_SELECTOR, "header button[type=submit]").click()  # sign out
        wait_for("signed out", lambda: "Signed out" in d.page_source)
        self.assertEqual(d.find_elements(By.NAME, "q"), [])

    # --- the API ---------------------------------------------------------

    def test_the_api_with_keys_roles_tenants_and_limits(self):
        self.ghl_contact(PHONE)
        viewer, operator = self.key("viewer"), self.key("operator")
        acme = self.key("viewer", tenant="acme")
        q = "?contact=" + urllib.parse.quote(SPELLED)
        status, headers, doc = self.api("/v1/contacts/trace" + q, viewer)
        self.assertEqual(status, 200, doc)
        self.assertTrue(any(i.get("kind") == "system" and i["system"] == "aloware" for i in doc["items"]))
        self.assertEqual(headers["x-ratelimit-limit"], "600")
        self.assertIn("x-ratelimit-remaining", headers)
        self.assertEqual(self.api("/v1/contacts/trace" + q, acme)[0], 404, "another tenant's contact")
        self.assertEqual(self.api("/v1/events?tenant=default", acme)[0], 403)
        status, _, csv = self.api("/v1/audit/opt-outs?format=csv", viewer)
        self.assertEqual(status, 200)
        self.assertTrue(csv.startswith(b"happened_at,recorded_at,"), csv[:80])
        for path in ("/v1/audit/violations", "/v1/audit/consent-conflicts", "/v1/dead-letters",
                     "/v1/contacts/as-of" + q + "&at=now", "/v1/events?limit=5"):
            status, _, doc = self.api(path, viewer)
            self.assertEqual(status, 200, (path, doc))
            self.assertIn("items", doc)
        status, h, doc = self.api("/v1/events")
        self.assertEqual((status, doc["error"]), (401, "unauthorized"))
        self.assert_pages_follow_the_log(viewer)
        body = {"conflict": 1, "dismiss": True}
        self.assertEqual(self.api("/v1/admin/settle", viewer, "POST", body, admin=True)[0], 403)
        self.assertEqual(self.api("/v1/admin/settle", operator, "POST", body, admin=True)[0], 404)
        self.assertEqual(self.api("/v1/admin/settle", operator, "POST", body)[0], 404,
                         "not on the main listener")
        # Backfills: an operator's; refused whole when they cannot run.
        self.assertEqual(self.api("/v1/admin/backfill", viewer, admin=True)[0], 403)
        status, _, doc = self.api("/v1/admin/backfill", operator, "POST", {"system": "twilio"}, admin=True)
        self.assertEqual((status, doc["error"]), (422, "not_backfillable"), doc)
        status, _, doc = self.api("/v1/admin/backfill", operator, "POST", {"page_size": 5}, admin=True)
        self.assertEqual((status, doc["error"]), (400, "malformed_body"), doc)
        status, _, doc = self.api("/v1/admin/backfill", operator, admin=True)
        self.assertEqual((status, doc), (200, {"backfills": []}), "nothing ran")
        actions = [e for e in self.dfm.dump(with_body=True) if e["type"] == "admin.action"]
        self.assertTrue(any('"action":"key.create"' in json.dumps(e) or
                            e.get("payload", {}).get("action") == "key.create" for e in actions))
        # dfm keys list and revoke, while the service runs.
        r = self.cli("keys", "list", "-c", self.dfm.config_path, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual(sorted(k["role"] for k in listed), ["operator", "viewer", "viewer"])
        self.assertNotIn(viewer, r.stdout)
        vid = viewer.split("_")[1]
        r = self.cli("keys", "revoke", "-c", self.dfm.config_path, vid)
        self.assertEqual(r.returncode, 0, r.stderr)
        # At once on a single node; on every node of a cluster within about
        # a second (docs/scale-out.md).
        wait_for("the revoked key refused", lambda: self.api("/v1/events", viewer)[0] == 401, timeout=5)

    def assert_pages_follow_the_log(self, viewer):
        """/v1/events three at a time, each page's `next_after` the next's
        `after`: the same events as one read, then only what came since."""
        def page(after, limit=3):
            status, _, doc = self.api(f"/v1/events?after={after}&limit={limit}", viewer)
            self.assertEqual(status, 200, doc)
            self.assertEqual(sorted(doc), ["items", "next_after"])
            return [e["seq"] for e in doc["items"]], doc["next_after"]

        whole, head = page(0, 10000)
        read, after = [], 0
        while True:
            seqs, after = page(after)
            read += seqs
            if not seqs:
                break
        self.assertGreater(len(whole), 3, "more than one page")
        self.assertEqual(read[:len(whole)], whole, "the sync may have appended more since")
        self.assertEqual(read, sorted(set(read)), "each once, in order")
        self.assertGreaterEqual(after, head)
        self.verity_inbound(PHONE, "Is the shop open on Sunday?")
        wait_for("the text read after the last page", lambda: "webhook.received" in [
            e["type"] for e in self.api(f"/v1/events?after={after}", viewer)[2]["items"]])
        self.assertTrue(all(s > after for s in page(after, 10000)[0]))
        self.assertEqual(self.api("/v1/events?after=x", viewer)[0], 400)

    def test_campaign_api_customers_payments_and_a_campaigns_life(self):
        self.ghl_contact(PHONE)
        viewer, operator = self.key("viewer"), self.key("operator")
        # Validation errors list every problem.
        status, _, doc = self.api("/v1/customers", operator, "POST", {"name": 7})
        self.assertEqual((status, doc["error"]), (400, "Validation error"), doc)
        self.assertEqual(sorted(d["field"] for d in doc["details"]), ["id", "name"])
        self.assertEqual(self.api("/v1/customers", viewer, "POST", {"id": "acme-co", "name": "Acme"})[0], 403)
        status, _, doc = self.api("/v1/customers", operator, "POST", {"id": "acme-co", "name": "Acme Co"})
        self.assertEqual((status, doc["type"]), (201, "customer.created"), doc)
        status, _, doc = self.api("/v1/customers", operator, "POST", {"id": "acme-co", "name": "Again"})
        self.assertEqual((status, doc["error"]), (409, "customer_exists"), doc)
        status, _, doc = self.api("/v1/customers/acme-co", viewer)
        self.assertEqual((status, doc["customer"]["name"], doc["customer"]["active"]), (200, "Acme Co", True), doc)
        self.assertEqual(self.api("/v1/customers/nobody", viewer)[0], 404)
        status, _, doc = self.api("/v1/campaigns", operator, "POST",
                                  {"id": "bad one", "customer": "acme-co", "audience": {},
                                   "steps": [{"channel": "fax", "delay_s": -1}]})
        self.assertEqual((status, doc["error"]), (400, "Validation error"), doc)
        fields = {d["field"] for d in doc["details"]}
        self.assertTrue({"id", "steps[0].channel", "steps[0].delay_s"} <= fields, doc)
        spec = {"id": "spring-1", "customer": "acme-co", "name": "Spring",
                "audience": {"members": [SPELLED, "+12055550499"]},
                "steps": [{"channel": "sms", "template": "Hi {{first_name|there}}, spring is here"}]}
        status, _, doc = self.api("/v1/campaigns", operator, "POST", spec)
        self.assertEqual(status, 201, doc)
        # Not started without a payment on record: the check says so.
        status, _, doc = self.api("/v1/campaigns/spring-1/validate", viewer, "POST")
        self.assertEqual((status, doc["ok"]), (200, False), doc)
        checks = {c["what"]: c for c in doc["checks"]}
        self.assertFalse(checks["payment"]["ok"], doc)
        self.assertTrue(checks["customer"]["ok"] and checks["steps"]["ok"], doc)
        self.assertIn("1 reachable", checks["audience"]["detail"], "one of the two members is known")
        status, _, doc = self.api("/v1/campaigns/spring-1/start", operator, "POST")
        self.assertEqual((status, doc["error"]), (422, "Validation error"), doc)
        self.assertIn("payment", [d["field"] for d in doc["details"]])
        # The same from the command line (through the service, its admin token).
        r = self.cli("campaigns", "check", "spring-1", "-c", self.dfm.config_path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("FAIL  payment: no payment on record", r.stdout)
        r = self.cli("campaigns", "list", "-c", self.dfm.config_path)
        self.assertEqual((r.returncode, r.stdout), (0, 'spring-1  draft  customer acme-co  "Spring"\n'),
                         r.stderr)
        r = self.cli("campaigns", "show", "-c", self.dfm.config_path)
        self.assertEqual(r.returncode, 2, "which campaign?")
        status, _, doc = self.api("/v1/campaigns/spring-1/tasks?stuck=true", viewer)
        self.assertEqual((status, doc), (200, {"tasks": [], "truncated": False}))
        self.assertEqual(self.api("/v1/campaigns/spring-1/tasks?state=lost", viewer)[0], 400)
        payment = {"amount": "12.50", "currency": "USD", "reference": "inv-1"}
        status, _, doc = self.api("/v1/customers/acme-co/payments", operator, "POST", payment)
        self.assertEqual((status, doc["type"]), (201, "payment.recorded"), doc)
        status, _, doc = self.api("/v1/customers/acme-co/payments", operator, "POST", payment)
        self.assertEqual((status, doc["status"]), (200, "duplicate"), "once per reference")
        self.assertEqual(self.api("/v1/customers/nobody/payments", operator, "POST", payment)[0], 404)
        status, _, doc = self.api("/v1/campaigns/spring-1/validate", viewer, "POST")
        self.assertTrue(doc["ok"], doc)
        r = self.cli("campaigns", "check", "spring-1", "-c", self.dfm.config_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(r.stdout.endswith("it can start\n"), r.stdout)
        # Its life: each change once, and only from where it is.
        for action, want in (("start", 200), ("pause", 200), ("pause", 409), ("resume", 200),
                             ("cancel", 200), ("resume", 409)):
            status, _, doc = self.api(f"/v1/campaigns/spring-1/{action}", operator, "POST",
                                      {"reason": "test"})
            self.assertEqual(status, want, (action, doc))
        self.assertEqual(self.api("/v1/campaigns/spring-1/pause", viewer, "POST")[0], 403)
        status, _, doc = self.api("/v1/campaigns/spring-1", viewer)
        self.assertEqual((status, doc["campaign"]["state"]), (200, "cancelled"), doc)
        wait_for("the listing", lambda: [c["state"] for c in self.api("/v1/campaigns", viewer)[2]
                                         ["campaigns"]] == ["cancelled"], timeout=10)
        r = self.cli("campaigns", "show", "spring-1", "-c", self.dfm.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("spring-1  cancelled", r.stdout)
        self.assertIn("step 0: sms after 0 s", r.stdout)
        types = [e["type"] for e in self.dfm.dump() if e["type"].split(".")[0] in
                 ("customer", "payment", "campaign")]
        self.assertEqual(types, ["customer.created", "campaign.created", "payment.recorded"] +
                         ["campaign.changed"] * 4)

    def test_a_running_campaign_makes_each_persons_task_and_a_stop_skips_it(self):
        self.ghl_contact(PHONE)
        self.ghl_contact("+12055550402", tags=["hot"])  # on list 101 (sync.tag_lists)
        viewer, operator = self.key("viewer"), self.key("operator")
        self.assertEqual(self.api("/v1/customers", operator, "POST", {"id": "acme-co", "name": "Acme"})[0], 201)
        self.assertEqual(self.api("/v1/customers/acme-co/payments", operator, "POST",
                                  {"amount": "9", "currency": "USD", "reference": "r1"})[0], 201)
        spec = {"id": "run-1", "customer": "acme-co", "audience": {"members": [SPELLED], "list": "101"},
                "steps": [{"channel": "sms", "template": "Hi"},
                          {"channel": "sms", "template": "Again", "delay_s": 86400}]}
        self.assertEqual(self.api("/v1/campaigns", operator, "POST", spec)[0], 201)
        status, _, doc = self.api("/v1/campaigns/run-1/validate", viewer, "POST")
        self.assertIn("2 named, 2 reachable", {c["what"]: c["detail"] for c in doc["checks"]}["audience"], doc)
        self.assertEqual(self.api("/v1/campaigns/run-1/start", operator, "POST")[0], 200)

        def tasks():
            return self.api("/v1/campaigns/run-1/tasks", viewer)[2]["tasks"]
        # Its actor makes each person's first step, due now; it is night
        # where they are (quiet hours), so each text waits for the morning.
        wait_for("a task for each person, deferred", lambda: [
            (t["step"], t["state"], t.get("reason")) for t in tasks()] ==
            [(0, "pending", "quiet_hours"), (0, "pending", "quiet_hours")], timeout=15)
        # The status page's campaigns card says how it goes, in words.
        d = self.page()

        def card():
            d.get(f"http://127.0.0.1:{self.dfm.port}/docs/visual")
            found = d.find_elements(By.CSS_SELECTOR, 'article.card.campaign[data-campaign="run-1"]')
            return found[0].find_element(By.CSS_SELECTOR, ".state").text if found else ""
        wait_for("the campaigns card", lambda: card() == "Running: 0 sent, 2 waiting.", timeout=15)
        # A STOP skips that person's waiting task within a tick or two.
        self.verity_inbound(PHONE, "STOP")
        wait_for("the STOP's task skipped", lambda: sorted(
            (t["state"], t.get("reason", "")) for t in tasks()) ==
            [("pending", "quiet_hours"), ("skipped", "opted_out")], timeout=15)
        wait_for("the card counting it", lambda: card() ==
                 "Running: 0 sent, 1 waiting, skipped 1 because the person opted out.", timeout=15)
        d.execute_script("document.getElementById('campaigns').scrollIntoView()")
        self.shot(d, "campaigns-card")
        self.assertNotIn(PHONE, d.page_source, "nobody's phone on the page")
        # The person's trace shows their campaign steps.
        status, _, doc = self.api("/v1/contacts/trace?contact=" + urllib.parse.quote(SPELLED), viewer)
        self.assertEqual(status, 200, doc)
        steps = [(i["campaign"], i["step"], i["channel"], i["state"], i["reason"])
                 for i in doc["items"] if i["kind"] == "campaign_step"]
        self.assertEqual(steps, [("run-1", 0, "sms", "skipped", "opted_out")])
        # Cancelled, the rest is skipped; the counts say why.
        self.assertEqual(self.api("/v1/campaigns/run-1/cancel", operator, "POST")[0], 200)
        wait_for("the rest skipped", lambda: self.api("/v1/campaigns/run-1", viewer)[2]["skipped"] ==
                 {"opted_out": 1, "cancelled": 1}, timeout=15)
        types = [e["type"] for e in self.dfm.dump() if e["type"].startswith("task.")]
        self.assertEqual(sorted(t for t in types if t != "task.deferred"),
                         ["task.created"] * 2 + ["task.skipped"] * 2, "each once; none claimed")
        self.assertEqual(self.verity_sent(PHONE) + self.verity_sent("+12055550402"), [],
                         "nothing sent in quiet hours")

    def test_limits_answer_429_with_their_headers(self):
        self.dfm.stop()
        with open(self.dfm.config_path, "a") as f:
            f.write("[api]\nrate_limit_per_key = 3\n")
        viewer = self.key("viewer")  # no service: appended to the log
        self.dfm.start(env_extra=self.env)
        self.assert_three_a_minute(viewer)

    def assert_three_a_minute(self, viewer):
        if time.gmtime().tm_sec > 55:
            time.sleep(6)  # the four in one window
        codes = [self.api("/v1/events", viewer)[0] for _ in range(4)]
        self.assertEqual(codes, [200, 200, 200, 429])
        status, headers, doc = self.api("/v1/events", viewer)
        self.assertEqual(doc["error"], "rate_limited")
        self.assertEqual(headers["x-ratelimit-remaining"], "0")
        self.assertEqual(headers["retry-after"], headers["x-ratelimit-reset"])
        self.assertLessEqual(int(headers["retry-after"]), 60)

    def test_the_openapi_document_is_valid_and_names_every_route(self):
        import jsonschema  # Debian's python3-jsonschema
        status, _, doc = self.api("/v1/openapi.json")
        self.assertEqual(status, 200)
        with open(SCHEMA) as f:
            schema = json.load(f)
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
        self.assertEqual([e.message for e in errors], [])
        self.assertEqual(doc["openapi"], "3.1.0")
        # Every operation the document names is answered by the service
        # (never 404 for its path and method); the unit test checks the
        # other way, against the route table.
        viewer = self.key("admin")
        for path, item in doc["paths"].items():
            for method in item:
                concrete = path.replace("{id}", "ffffffffffffffff")
                admin = path.startswith("/v1/admin/")
                status, _, body = self.api(concrete, viewer, method.upper(),
                                           {} if method in ("post", "delete") else None, admin=admin)
                if "{id}" in path and status == 404:
                    self.assertIn(body["error"], ("unknown_key", "unknown_customer", "unknown_campaign"))
                    continue
                self.assertNotIn(status, (404, 405), (method, path, body))


class OneTenantConsoleTest(ConsolePage):
    """The tenant "default" alone (one company's service): the page's
    search answers anybody, masked until signed in."""
    other_tenants = False

    def test_the_search_tells_a_contacts_story_masked_until_signed_in(self):
        self.ghl_contact(PHONE, email="ada@example.com")
        self.verity_inbound(PHONE, "STOP")
        wait_for("the opt-out recorded",
                 lambda: any(e["type"] == "contact.opted_out" for e in self.dfm.dump()))
        d = self.page()
        self.search(d, SPELLED)
        story = d.find_element(By.CSS_SELECTOR, ".story")
        self.assertIn("GoHighLevel", story.text)
        self.assertIn("Aloware", story.text)
        row = story.find_element(By.CSS_SELECTOR, 'tr[data-channel="sms"]')
        self.assertIn("Opted out", row.text)
        self.assertIn("Verity", row.text)
        self.assertIn("the person", row.text)
        report = story.find_element(By.TAG_NAME, "textarea").get_attribute("value")
        self.assertIn("Contact:", report)
        self.assertIn("System:", report)
        source = d.page_source
        for secret in (PHONE, PHONE[2:], "555-0401", "Lovelace", "ada@example.com"):
            self.assertNotIn(secret, source, "shown without sign-in")
        self.shot(d, "search-masked")

        viewer = self.key("viewer", name="front desk")
        self.sign_in(d, viewer)
        self.assertNotIn(viewer, d.page_source)
        self.search(d, "ada@example.com")
        story = d.find_element(By.CSS_SELECTOR, ".story")
        self.assertIn(PHONE, story.text)
        self.assertIn("Ada Lovelace", story.text)
        self.shot(d, "search-signed-in")
        d.find_element(By.CSS_SELECTOR, "header button[type=submit]").click()  # sign out
        wait_for("signed out", lambda: "Signed out" in d.page_source)
        self.search(d, SPELLED)
        self.assertNotIn(PHONE, d.page_source)

        # With JavaScript off the page and its search still work.
        plain = self.page(javascript=False)
        self.assertEqual(plain.find_element(By.ID, "summary").text, "All systems working")
        self.search(plain, SPELLED)
        self.assertIn("Opted out", plain.find_element(By.CSS_SELECTOR, ".story").text)
        self.assertTrue(plain.find_elements(By.CSS_SELECTOR, "button.copy[hidden]"),
                        "the Copy button stays hidden without its script")


class ClusterConsoleTest(clustertest.OnACluster, ConsoleTest):
    """The same against three nodes on NATS behind nginx (issue 48;
    clustertest.ClusterDfm): the page, its search and the API answered
    by whichever node nginx picks."""
    binary = staticmethod(lambda: base.DFM)

    def key(self, role, tenant="*", name=None):
        """A key made through node0 works on every node within about a
        second (docs/scale-out.md): the suite goes on once it does."""
        token = ConsoleTest.key(self, role, tenant, name)
        for n in self.dfm.nodes:
            wait_for(f"the key on {n.port}", lambda n=n: dfmtest.request(
                "127.0.0.1", n.port, "GET", "/v1/events?limit=1",
                headers={"Authorization": "Bearer " + token})[0] != 401, timeout=10)
        return token

    def test_limits_answer_429_with_their_headers(self):
        """A key's limit holds across the nodes nginx spreads its requests
        over (counted in DFM_LIMITS), not per node."""
        # Made through a node, not tried on each (a try would count): every
        # node folds the shared keys as it starts.
        viewer = ConsoleTest.key(self, "viewer")
        self.dfm.stop()
        for n in self.dfm.nodes:
            with open(n.config_path, "a") as f:
                f.write("[api]\nrate_limit_per_key = 3\n")
        self.dfm.start(env_extra=self.env)
        self.assert_three_a_minute(viewer)


if __name__ == "__main__":
    if "--screenshots" in sys.argv:
        i = sys.argv.index("--screenshots")
        SHOTS = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    base.main()
