#!/usr/bin/env python3
"""Self-test of the vendor sandboxes (sandboxes/ghl.py, sandboxes/aloware.py).

Starts each sandbox as a subprocess on a free loopback port and checks what
the end-to-end tests rely on: the vendors' required headers and error bodies,
contact round trips, duplicate handling, OAuth refresh rotation and expiry,
rate-limit headers and 429, the fault queue, the outage switch, state kept
across kill -9, and the webhooks sent back (GHL: Ed25519 X-GHL-Signature
checked with etc/dev-keys/ghl-ed25519-public.pem; Aloware: Authorization).

Standard library + cryptography. Run: python3 tests/sandboxes/sandbox_test.py
"""
import base64
import collections
import http.client
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GHL = os.path.join(ROOT, "sandboxes", "ghl.py")
ALOWARE = os.path.join(ROOT, "sandboxes", "aloware.py")
GHL_PUBLIC_KEY = os.path.join(ROOT, "etc", "dev-keys", "ghl-ed25519-public.pem")

LOC = "loc_test"
TOKEN = "test-ghl-token"
V = "2021-07-28"
ALO_TOKEN = "test-aloware-token"
ALO_BEARER = "alo-hook-secret"


sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from dfmtest import free_port  # noqa: E402


def call(port, method, path, body=None, headers=None, form=None, timeout=10):
    """One request on a fresh connection -> (status, headers lower-cased, parsed body)."""
    hdrs = dict(headers or {})
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        raw = r.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, parsed
    finally:
        conn.close()


def ghl(port, method, path, body=None, token=TOKEN, version=V, **kw):
    headers = {"Accept": "application/json"}
    if version:
        headers["Version"] = version
    if token:
        headers["Authorization"] = "Bearer " + token
    return call(port, method, path, body=body, headers=headers, **kw)


class Sandbox:
    """A sandbox subprocess: start (port 0 + port file, or a given port), kill."""

    def __init__(self, script, workdir, args, port=0):
        self.script, self.workdir, self.args = script, workdir, list(args)
        self.port = port
        self.proc = None

    def start(self, timeout=15):
        port_file = os.path.join(self.workdir, "port-%s" % os.path.basename(self.script))
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.log_path = os.path.join(self.workdir, "stderr-%s.log" % os.path.basename(self.script))
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, self.script, "--port", str(self.port), "--port-file", port_file] + self.args,
            stdout=subprocess.PIPE, stderr=self.log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                raise RuntimeError("sandbox exited: " + self.stderr())
            if os.path.exists(port_file):
                with open(port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    line = self.proc.stdout.readline().decode().strip()
                    assert line == "listening on 127.0.0.1:%d" % self.port, line
                    return self
            time.sleep(0.02)
        raise RuntimeError("sandbox did not start")

    def stderr(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.log.close()

    def stop(self):
        """SIGTERM; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        assert "Traceback" not in self.stderr(), self.stderr()
        return self.proc.returncode


class Receiver:
    """A webhook receiver: records requests, answers with scripted statuses (default 200)."""

    def __init__(self):
        self.requests = []
        self.answers = collections.deque()
        self.cond = threading.Condition()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.cond:
                    status = outer.answers.popleft() if outer.answers else 200
                    outer.requests.append({"path": self.path, "raw": raw, "status": status,
                                           "headers": {k.lower(): v for k, v in self.headers.items()}})
                    outer.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self):
        with self.cond:
            self.requests = []
            self.answers.clear()

    def wait(self, n, timeout=10):
        """The first n requests (fails when fewer arrive in time)."""
        with self.cond:
            self.cond.wait_for(lambda: len(self.requests) >= n, timeout)
            if len(self.requests) < n:
                raise AssertionError("expected %d webhooks, got %d" % (n, len(self.requests)))
            return list(self.requests[:n])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def drain_and_reset(port, receiver):
    """Waits for webhooks still in flight from the previous test, then resets."""
    deadline = time.time() + 10
    while time.time() < deadline:
        if all(w["done"] for w in call(port, "GET", "/_sandbox/webhooks")[2]):
            break
        time.sleep(0.02)
    status = call(port, "POST", "/_sandbox/reset")[0]
    receiver.reset()
    return status


def with_ghl_signature_check(test, hook):
    """Asserts the webhook's X-GHL-Signature verifies against the dev public key."""
    with open(GHL_PUBLIC_KEY, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    sig = hook["headers"].get("x-ghl-signature")
    test.assertTrue(sig, "no X-GHL-Signature")
    try:
        key.verify(base64.b64decode(sig), hook["raw"])
    except InvalidSignature:
        test.fail("X-GHL-Signature does not verify")
    tampered = hook["raw"].replace(b'"type"', b'"typo"')
    with test.assertRaises(InvalidSignature):
        key.verify(base64.b64decode(sig), tampered)


# ====================================================================== GHL

class GhlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ghl-sbx-")
        cls.receiver = Receiver()
        cls.sbx = Sandbox(GHL, cls.tmp, [
            "--state", os.path.join(cls.tmp, "state.json"), "--location-id", LOC,
            "--access-token", TOKEN, "--refresh-token", "rt-initial",
            "--client-id", "cid", "--client-secret", "csecret",
            "--webhook-url", cls.receiver.url, "--webhook-backoff-ms", "50"]).start()
        cls.port = cls.sbx.port

    @classmethod
    def tearDownClass(cls):
        code = cls.sbx.stop()
        cls.receiver.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert code == 0, "sandbox exit code %s on SIGTERM" % code

    def setUp(self):
        self.assertEqual(drain_and_reset(self.port, self.receiver), 200)

    def admin(self, method, path, body=None):
        return call(self.port, method, "/_sandbox" + path, body=body)

    def create(self, **fields):
        body = dict({"locationId": LOC}, **fields)
        status, _, doc = ghl(self.port, "POST", "/contacts/", body)
        self.assertEqual(status, 201, doc)
        return doc["contact"]

    # -- headers and auth (ghl-api.md §1)
    def test_required_headers(self):
        s, h, b = ghl(self.port, "GET", "/contacts/x", version=None)
        self.assertEqual((s, b), (401, {"statusCode": 401, "message": "version header was not found."}))
        for name in ("x-ratelimit-limit-daily", "x-ratelimit-daily-remaining",
                     "x-ratelimit-interval-milliseconds", "x-ratelimit-max", "x-ratelimit-remaining"):
            self.assertIn(name, h)
        s, _, b = ghl(self.port, "GET", "/contacts/x", version="2099-01-01")
        self.assertEqual((s, b["message"]), (401, "version header was not found."))
        s, _, b = ghl(self.port, "GET", "/contacts/x", token=None)
        self.assertEqual((s, b), (401, {"statusCode": 401,
                                        "message": "No Authorization header found for authentication!"}))
        s, _, b = ghl(self.port, "GET", "/contacts/x", token="garbage")
        self.assertEqual((s, b), (401, {"statusCode": 401, "message": "Invalid JWT"}))
        s, _, b = ghl(self.port, "GET", "/contacts/x", token="pit-garbage")
        self.assertEqual((s, b["message"]), (401, "Invalid Private Integration token"))
        # Version values of conversations and v3 are accepted on any path.
        self.assertEqual(ghl(self.port, "GET", "/contacts/x", version="2021-04-15")[0], 400)
        self.assertEqual(ghl(self.port, "GET", "/contacts/x", version="v3")[0], 400)

    # -- contacts (ghl-api.md §3)
    def test_contact_round_trip(self):
        c = self.create(firstName="Ann", lastName="Lee", email="Ann.Lee@Example.com",
                        phone="(205) 555-0142", tags=["Hot", "new lead"], companyName="Acme")
        self.assertEqual(c["phone"], "+12055550142")
        self.assertEqual(c["tags"], ["hot", "new lead"])
        self.assertEqual(c["locationId"], LOC)
        self.assertEqual(len(c["id"]), 20)
        self.assertRegex(c["dateAdded"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        for key in ("dnd", "dndSettings", "address1", "city", "state", "postalCode", "country",
                    "companyName", "dateUpdated"):
            self.assertIn(key, c)

        s, _, b = ghl(self.port, "GET", "/contacts/" + c["id"])
        self.assertEqual((s, b["contact"]["email"]), (200, "Ann.Lee@Example.com"))

        q = "/contacts/search/duplicate?locationId=%s&number=%s" % (LOC, urllib.parse.quote("+12055550142"))
        s, _, b = ghl(self.port, "GET", q)
        self.assertEqual((s, b["contact"]["id"]), (200, c["id"]))
        q = "/contacts/search/duplicate?locationId=%s&email=%s" % (LOC, urllib.parse.quote("ann.lee@example.com"))
        self.assertEqual(ghl(self.port, "GET", q)[2]["contact"]["id"], c["id"])
        q = "/contacts/search/duplicate?locationId=%s&number=%%2B19995550100" % LOC
        self.assertEqual(ghl(self.port, "GET", q)[2], {"contact": None})

        s, _, b = ghl(self.port, "PUT", "/contacts/" + c["id"], {"firstName": "Anna", "dnd": True})
        self.assertEqual(s, 200, b)
        self.assertIs(b["succeded"], True)
        self.assertEqual(b["contact"]["firstName"], "Anna")
        self.assertEqual(b["contact"]["companyName"], "Acme")
        # UpdateContactDto has no companyName: the DTO check refuses it.
        s, _, b = ghl(self.port, "PUT", "/contacts/" + c["id"], {"companyName": "X"})
        self.assertEqual((s, b["message"]), (422, ["property companyName should not exist"]))

        s, _, b = ghl(self.port, "POST", "/contacts/%s/tags" % c["id"], {"tags": ["VIP"]})
        self.assertEqual((s, b), (201, {"tags": ["hot", "new lead", "vip"]}))
        s, _, b = ghl(self.port, "DELETE", "/contacts/%s/tags" % c["id"], {"tags": ["hot"]})
        self.assertEqual((s, b), (200, {"tags": ["new lead", "vip"]}))
        s, _, b = ghl(self.port, "POST", "/contacts/%s/tags" % c["id"], {})
        self.assertEqual(s, 422)

        s, _, b = ghl(self.port, "DELETE", "/contacts/" + c["id"])
        self.assertEqual((s, b), (200, {"succeded": True}))
        s, _, b = ghl(self.port, "GET", "/contacts/" + c["id"])
        self.assertEqual((s, b), (400, {"statusCode": 400, "message": "Contact with id %s not found" % c["id"]}))
        self.assertEqual(ghl(self.port, "PUT", "/contacts/nope", {"firstName": "x"})[0], 400)
        self.assertEqual(ghl(self.port, "DELETE", "/contacts/nope")[0], 400)

    def test_validation(self):
        s, _, b = ghl(self.port, "POST", "/contacts/", {"firstName": "x"})
        self.assertEqual(s, 422)
        self.assertEqual(b["error"], "Unprocessable Entity")
        self.assertIn("locationId should not be empty", b["message"])
        s, _, b = ghl(self.port, "POST", "/contacts/", {"locationId": LOC, "bogus": 1, "email": "nope"})
        self.assertEqual(s, 422)
        self.assertIn("property bogus should not exist", b["message"])
        self.assertIn("email must be an email", b["message"])
        s, _, b = ghl(self.port, "POST", "/contacts/", {"locationId": "other"})
        self.assertEqual((s, b["message"]), (403, "The token does not have access to this location."))
        s, _, b = ghl(self.port, "GET", "/nothing/here")
        self.assertEqual((s, b["statusCode"]), (404, 404))

    def test_duplicates_and_upsert(self):
        a = self.create(firstName="A", email="a@example.com", phone="+12055550101")
        b = self.create(firstName="B", phone="+12055550102")
        s, _, err = ghl(self.port, "POST", "/contacts/", {"locationId": LOC, "phone": "205-555-0101"})
        self.assertEqual(s, 400)
        self.assertEqual(err["message"], "This location does not allow duplicated contacts.")
        self.assertEqual(err["meta"]["contactId"], a["id"])
        self.assertEqual(err["meta"]["matchingField"], "phone")
        s, _, err = ghl(self.port, "POST", "/contacts/", {"locationId": LOC, "email": "A@EXAMPLE.com",
                                                          "phone": "+12055550102"})
        self.assertEqual((s, err["meta"]["matchingField"], err["meta"]["contactId"]), (400, "email", a["id"]))

        # Upsert: matched by email (first in priority); B's phone is not moved onto A.
        s, _, up = ghl(self.port, "POST", "/contacts/upsert",
                       {"locationId": LOC, "email": "a@example.com", "phone": "+12055550102", "lastName": "Z"})
        self.assertEqual(s, 200, up)
        self.assertEqual((up["new"], up["contact"]["id"], up["contact"]["phone"], up["contact"]["lastName"]),
                         (False, a["id"], "+12055550101", "Z"))
        self.assertTrue(up["traceId"])
        s, _, up = ghl(self.port, "POST", "/contacts/upsert", {"locationId": LOC, "phone": "+12055550103"})
        self.assertEqual((s, up["new"]), (200, True))
        s, _, up = ghl(self.port, "POST", "/contacts/upsert", {"locationId": LOC, "phone": "2055550102"})
        self.assertEqual((up["new"], up["contact"]["id"]), (False, b["id"]))

        # With "Allow Duplicate Contact" on, the same phone makes a second contact.
        self.assertEqual(self.admin("POST", "/settings", {"allow_duplicates": True})[0], 200)
        c2 = self.create(phone="+12055550101")
        self.assertNotEqual(c2["id"], a["id"])
        s, _, up = ghl(self.port, "POST", "/contacts/upsert", {"locationId": LOC, "phone": "+12055550101",
                                                               "createNewIfDuplicateAllowed": True})
        self.assertIs(up["new"], True)
        self.assertEqual(len(self.admin("GET", "/contacts")[2]), 5)

    def test_search_pagination(self):
        ids = []
        for i in range(7):
            s, _, b = self.admin("POST", "/contacts", {"firstName": "P%d" % i, "phone": "+1205555020%d" % i,
                                                       "dateAdded": "2026-01-01T00:00:0%d.000Z" % i,
                                                       "webhook": False})
            self.assertEqual(s, 201, b)
            ids.append(b["contact"]["id"])
        self.assertNotIn("webhook", b)
        s, _, b = ghl(self.port, "POST", "/contacts/search", {"locationId": LOC})
        self.assertEqual(s, 422)
        seen, after = [], None
        for _ in range(5):
            body = {"locationId": LOC, "pageLimit": 3}
            if after:
                body["searchAfter"] = after
            s, _, b = ghl(self.port, "POST", "/contacts/search", body)
            self.assertEqual(s, 200, b)
            self.assertEqual(b["total"], 7)
            if not b["contacts"]:
                break
            seen += [c["id"] for c in b["contacts"]]
            after = b["contacts"][-1]["searchAfter"]
            self.assertIsInstance(after[0], int)
        self.assertEqual(seen, ids)
        s, _, b = ghl(self.port, "POST", "/contacts/search", {"locationId": LOC, "pageLimit": 3, "page": 3})
        self.assertEqual([c["id"] for c in b["contacts"]], ids[6:])
        s, _, b = ghl(self.port, "POST", "/contacts/search",
                      {"locationId": LOC, "pageLimit": 10,
                       "filters": [{"field": "phone", "operator": "eq", "value": "+12055550203"}]})
        self.assertEqual([c["id"] for c in b["contacts"]], [ids[3]])
        # The deprecated list endpoint pages with meta.startAfterId/startAfter.
        seen, q = [], "/contacts/?locationId=%s&limit=3" % LOC
        while True:
            s, _, b = ghl(self.port, "GET", q)
            self.assertEqual(s, 200, b)
            seen += [c["id"] for c in b["contacts"]]
            if not b["meta"]["startAfterId"]:
                break
            q = "/contacts/?locationId=%s&limit=3&startAfterId=%s&startAfter=%d" % (
                LOC, b["meta"]["startAfterId"], b["meta"]["startAfter"])
        self.assertEqual(seen, ids)

    # -- OAuth (ghl-api.md §5)
    def test_oauth_refresh(self):
        form = {"client_id": "cid", "client_secret": "csecret", "grant_type": "refresh_token",
                "refresh_token": "rt-initial", "user_type": "Location"}
        s, _, t1 = call(self.port, "POST", "/oauth/token", form=form)
        self.assertEqual(s, 200, t1)
        self.assertEqual((t1["token_type"], t1["userType"], t1["locationId"], t1["expires_in"]),
                         ("Bearer", "Location", LOC, 86399))
        self.assertNotEqual(t1["refresh_token"], "rt-initial")
        self.assertIn("contacts.write", t1["scope"])
        # Single use: the old refresh token is dead, the new one works once.
        s, _, err = call(self.port, "POST", "/oauth/token", form=form)
        self.assertEqual((s, err["statusCode"], err["message"]),
                         (400, 400, "Invalid grant: refresh token is invalid"))
        self.assertEqual(ghl(self.port, "GET", "/contacts/?locationId=" + LOC, token=t1["access_token"])[0], 200)
        s, _, err = call(self.port, "POST", "/oauth/token", form=dict(form, client_secret="wrong",
                                                                      refresh_token=t1["refresh_token"]))
        self.assertEqual(s, 401)
        s, _, err = call(self.port, "POST", "/oauth/token", form={"grant_type": "refresh_token"})
        self.assertEqual((s, err["error"]), (422, "Unprocessable Entity"))
        # Expiry: a 1-second token answers 401 once it has expired.
        self.admin("POST", "/settings", {"token_ttl": 1})
        s, _, t2 = call(self.port, "POST", "/oauth/token", form=dict(form, refresh_token=t1["refresh_token"]))
        self.assertEqual((s, t2["expires_in"]), (200, 1))
        self.assertEqual(ghl(self.port, "GET", "/contacts/?locationId=" + LOC, token=t2["access_token"])[0], 200)
        time.sleep(1.1)
        s, _, err = ghl(self.port, "GET", "/contacts/?locationId=" + LOC, token=t2["access_token"])
        self.assertEqual((s, err), (401, {"statusCode": 401, "message": "Invalid token: access token is invalid",
                                          "error": "Unauthorized"}))
        # The admin API can expire any token, even the pre-issued one.
        self.admin("POST", "/oauth/expire", {"token": TOKEN})
        self.assertEqual(ghl(self.port, "GET", "/contacts/?locationId=" + LOC)[0], 401)
        # Authorization-code grant with a code issued by the admin API.
        code = self.admin("POST", "/oauth/code")[2]["code"]
        s, _, t3 = call(self.port, "POST", "/oauth/token", form={
            "client_id": "cid", "client_secret": "csecret", "grant_type": "authorization_code", "code": code})
        self.assertEqual(s, 200, t3)
        self.assertEqual(call(self.port, "POST", "/oauth/token", form={
            "client_id": "cid", "client_secret": "csecret", "grant_type": "authorization_code",
            "code": code})[0], 400)

    # -- rate limits (ghl-api.md §8)
    def test_rate_limit(self):
        self.admin("POST", "/settings", {"burst": 5, "burst_window_ms": 1000})
        remaining = []
        for _ in range(5):
            s, h, _ = ghl(self.port, "GET", "/contacts/?locationId=" + LOC)
            self.assertEqual(s, 200)
            remaining.append(int(h["x-ratelimit-remaining"]))
            self.assertEqual((h["x-ratelimit-max"], h["x-ratelimit-interval-milliseconds"]), ("5", "1000"))
            self.assertEqual(h["x-ratelimit-limit-daily"], "200000")
        self.assertEqual(remaining, [4, 3, 2, 1, 0])
        s, h, b = ghl(self.port, "GET", "/contacts/?locationId=" + LOC)
        self.assertEqual((s, b), (429, {"statusCode": 429, "message": "Too Many Requests"}))
        self.assertEqual(h["x-ratelimit-remaining"], "0")
        time.sleep(1.05)
        s, h, _ = ghl(self.port, "GET", "/contacts/?locationId=" + LOC)
        self.assertEqual(s, 200)
        used = 200000 - int(h["x-ratelimit-daily-remaining"])
        self.assertEqual(used, 6)  # the 429 was not counted
        # The daily limit: one more request allowed, then 429.
        self.admin("POST", "/settings", {"daily": used + 1, "burst": 100})
        s, h, _ = ghl(self.port, "GET", "/contacts/?locationId=" + LOC)
        self.assertEqual((s, h["x-ratelimit-daily-remaining"]), (200, "0"))
        self.assertEqual(ghl(self.port, "GET", "/contacts/?locationId=" + LOC)[0], 429)

    # -- faults and outages (admin API)
    def test_faults(self):
        s, _, b = self.admin("POST", "/faults", {"faults": [
            {"status": 429, "retry_after": 1, "count": 1}, {"status": 500, "count": 2}]})
        self.assertEqual((s, len(b["faults"])), (200, 2))
        path = "/contacts/?locationId=" + LOC
        s, h, b = ghl(self.port, "GET", path)
        self.assertEqual((s, h.get("retry-after"), b), (429, "1", {"statusCode": 429, "message": "Too Many Requests"}))
        for _ in range(2):
            s, _, b = ghl(self.port, "GET", path)
            self.assertEqual((s, b), (500, {"statusCode": 500, "message": "Internal Server Error"}))
        self.assertEqual(ghl(self.port, "GET", path)[0], 200)
        self.assertEqual(self.admin("GET", "/faults")[2], {"faults": []})

        self.admin("POST", "/faults", {"faults": [{"latency_ms": 300, "count": 1}]})
        t0 = time.time()
        self.assertEqual(ghl(self.port, "GET", path)[0], 200)
        self.assertGreaterEqual(time.time() - t0, 0.3)

        self.admin("POST", "/faults", {"faults": [{"drop": True}]})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            ghl(self.port, "GET", path)
        self.assertEqual(ghl(self.port, "GET", path)[0], 200)

        # Matchers: only requests under /contacts/search get this fault.
        self.admin("POST", "/faults", {"faults": [{"status": 503, "path_prefix": "/contacts/search"}]})
        self.assertEqual(ghl(self.port, "GET", path)[0], 200)
        self.assertEqual(ghl(self.port, "POST", "/contacts/search", {"locationId": LOC, "pageLimit": 1})[0], 503)

        self.admin("POST", "/down", {"seconds": 0.6})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            ghl(self.port, "GET", path)
        self.assertEqual(self.admin("GET", "/health")[0], 200)  # admin stays up
        time.sleep(0.7)
        self.assertEqual(ghl(self.port, "GET", path)[0], 200)

        journal = self.admin("GET", "/requests?path_prefix=/contacts/search")[2]
        self.assertEqual([e["status"] for e in journal], [503])
        self.assertEqual(journal[0]["headers"]["version"], V)
        self.assertEqual(journal[0]["body"], {"locationId": LOC, "pageLimit": 1})
        statuses = [e["status"] for e in self.admin("GET", "/requests")[2]]
        self.assertEqual(statuses[:4], [429, 500, 500, 200])
        self.assertIn(None, statuses)  # the dropped ones

    # -- webhooks (ghl-api.md §6, fixtures)
    def test_ui_edits_dated_in_utc(self):
        c = self.create(firstName="D", phone="+12055550151")
        s, _, b = self.admin("POST", "/contacts", {"id": c["id"], "city": "Vestavia",
                                                   "dateUpdated": "2026-11-30T10:00:00+00:00"})
        self.assertEqual(s, 200, b)
        self.assertEqual(b["contact"]["dateUpdated"], "2026-11-30T10:00:00.000Z")
        for bad in ("2026-11-30", "2026-11-30T10:00:00", "2026-11-30T10:00:00+02:00", 5):
            s, _, b = self.admin("POST", "/contacts", {"id": c["id"], "city": "X" + str(bad),
                                                       "dateUpdated": bad})
            self.assertEqual(s, 400, (bad, b))
            s, _, b = self.admin("POST", "/contacts", {"firstName": "N", "dateAdded": bad})
            self.assertEqual(s, 400, (bad, b))

    def test_webhooks(self):
        c = self.create(firstName="W", email="w@example.com", phone="+12055550150")
        hook = self.receiver.wait(1)[0]
        with_ghl_signature_check(self, hook)
        self.assertEqual(hook["headers"]["content-type"], "application/json")
        body = json.loads(hook["raw"])
        self.assertEqual((body["type"], body["locationId"], body["id"], body["phone"]),
                         ("ContactCreate", LOC, c["id"], "+12055550150"))
        self.assertRegex(body["timestamp"], r"Z$")
        self.assertEqual(len(body["webhookId"]), 36)
        for key in ("dateAdded", "dateUpdated", "tags", "email", "firstName", "customFields"):
            self.assertIn(key, body)

        # A user edits in the UI: the admin call waits for delivery.
        s, _, b = self.admin("POST", "/contacts", {"id": c["id"], "tags": ["x"], "city": "Dolomite"})
        self.assertEqual(s, 200, b)
        self.assertEqual(b["webhook"]["status"], 200)
        self.assertEqual([w["event"] for w in b["webhooks"]], ["ContactUpdate", "ContactTagUpdate"])
        hooks = self.receiver.wait(3)
        self.assertEqual(json.loads(hooks[2]["raw"])["tags"], ["x"])
        with_ghl_signature_check(self, hooks[2])

        ghl(self.port, "PUT", "/contacts/" + c["id"], {"dndSettings": {"SMS": {"status": "active"}}})
        dnd = json.loads(self.receiver.wait(4)[3]["raw"])
        self.assertEqual((dnd["type"], dnd["dndSettings"]["SMS"]["status"]), ("ContactDndUpdate", "active"))
        ghl(self.port, "PUT", "/contacts/" + c["id"], {"city": "Dolomite"})  # no change: no webhook

        # GHL retries 429 but not 5xx (fixtures/README.md).
        self.receiver.answers.extend([429, 200])
        s, _, b = self.admin("POST", "/contacts", {"firstName": "R", "phone": "+12055550151"})
        self.assertEqual((s, b["webhook"]["status"], b["webhook"]["attempts"]), (201, 200, 2))
        self.receiver.answers.append(500)
        s, _, b = self.admin("DELETE", "/contacts/" + c["id"])
        self.assertEqual((s, b["webhook"]["status"], b["webhook"]["attempts"]), (200, 500, 1))
        hooks = self.receiver.wait(7)
        self.assertEqual(len(hooks), 7)
        deleted = json.loads(hooks[6]["raw"])
        self.assertEqual((deleted["type"], deleted["id"]), ("ContactDelete", c["id"]))
        log = self.admin("GET", "/webhooks")[2]
        self.assertEqual([w["event"] for w in log], ["ContactCreate", "ContactUpdate", "ContactTagUpdate",
                                                      "ContactDndUpdate", "ContactCreate", "ContactDelete"])
        self.assertEqual([w["status"] for w in log], [200, 200, 200, 200, 200, 500])

        # Any vendor body (e.g. a fixture) can be sent signed through the sandbox.
        fixture = {"type": "InboundMessage", "locationId": LOC, "body": "hi"}
        s, _, b = self.admin("POST", "/webhooks/send", {"body": fixture})
        self.assertEqual((s, b["webhook"]["status"]), (200, 200))
        with_ghl_signature_check(self, self.receiver.wait(8)[7])


# ====================================================================== Aloware

class AlowareTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="alo-sbx-")
        cls.receiver = Receiver()
        cls.sbx = Sandbox(ALOWARE, cls.tmp, [
            "--state", os.path.join(cls.tmp, "state.json"), "--api-token", ALO_TOKEN,
            "--webhook-url", cls.receiver.url, "--webhook-auth", "bearer:" + ALO_BEARER]).start()
        cls.port = cls.sbx.port

    @classmethod
    def tearDownClass(cls):
        code = cls.sbx.stop()
        cls.receiver.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert code == 0, "sandbox exit code %s on SIGTERM" % code

    def setUp(self):
        self.assertEqual(drain_and_reset(self.port, self.receiver), 200)

    def forms(self, **fields):
        return call(self.port, "POST", "/api/v1/webhook/forms", dict({"api_token": ALO_TOKEN}, **fields))

    def lookup(self, phone, token=ALO_TOKEN):
        q = urllib.parse.urlencode({"api_token": token, "phone_number": phone})
        return call(self.port, "GET", "/api/v1/webhook/contact/phone-number?" + q)

    def test_auth(self):
        s, _, b = call(self.port, "POST", "/api/v1/webhook/forms", {"phone_number": "+12055550142"})
        self.assertEqual((s, b), (401, {"message": "Unauthenticated."}))
        s, _, b = self.forms(api_token="wrong", phone_number="+12055550142")
        self.assertEqual((s, b), (401, {"message": "Unauthenticated."}))
        self.assertEqual(self.lookup("+12055550142", token="wrong")[0], 401)
        self.assertEqual(call(self.port, "GET", "/api/v1/nothing")[0], 404)

    def test_lead_api_round_trip(self):
        s, _, b = self.forms(first_name="Ann")
        self.assertEqual(s, 422)
        self.assertIn("phone_number", b["errors"])
        s, _, b = self.forms(phone_number="(205) 555-0142", first_name="Ann", last_name="Lee",
                             email="ann@example.com", tags="hot,new lead", list_ids="12,13", is_dnc=0)
        self.assertEqual((s, b), (201, {"message": "Contact created."}))
        s, _, c = self.lookup("2055550142")
        self.assertEqual(s, 200, c)
        self.assertEqual((c["phone_number"], c["first_name"], c["email"], c["is_dnc"], c["tags"], c["lists"]),
                         ("+12055550142", "Ann", "ann@example.com", False, ["hot", "new lead"], ["12", "13"]))
        self.assertIsInstance(c["id"], int)
        self.assertRegex(c["created_at"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
        s, _, b = self.forms(phone_number="+12055550142", first_name="Anna")
        self.assertEqual((s, b), (409, {"message": "Contact already exists."}))
        s, _, b = self.forms(phone_number="+12055550142", first_name="Anna", force_update=1, is_dnc=True,
                             tags="vip")
        self.assertEqual((s, b), (200, {"message": "Contact updated."}))
        c = self.lookup("+12055550142")[2]
        self.assertEqual((c["first_name"], c["is_dnc"], c["tags"]), ("Anna", True, ["hot", "new lead", "vip"]))
        s, _, b = self.lookup("+12055550199")
        self.assertEqual((s, b), (404, {"error": "Contact not found."}))
        s, _, b = self.lookup("12")
        self.assertEqual((s, b), (400, {"error": "Phone number is empty or invalid."}))
        s, _, b = call(self.port, "POST", "/api/v1/webhook/powerdialer-remove-contact-from-lists",
                       {"api_token": ALO_TOKEN, "contact_id": c["id"]})
        self.assertEqual(s, 200, b)
        s, _, b = call(self.port, "POST", "/api/v1/webhook/powerdialer-remove-contact-from-lists",
                       {"api_token": ALO_TOKEN, "contact_id": 1})
        self.assertEqual((s, b), (404, {"message": "The requested contact id does not exist."}))
        # Form-encoded bodies are accepted too.
        s, _, b = call(self.port, "POST", "/api/v1/webhook/forms",
                       form={"api_token": ALO_TOKEN, "phone_number": "+12055550143"})
        self.assertEqual(s, 201)

    def test_webhooks(self):
        self.forms(phone_number="+12055550160", first_name="W")
        hook = self.receiver.wait(1)[0]
        self.assertEqual(hook["headers"]["authorization"], "Bearer " + ALO_BEARER)
        self.assertEqual(hook["headers"]["user-agent"], "GuzzleHttp/7")
        body = json.loads(hook["raw"])
        self.assertEqual(body["event"], "Contact Created")
        self.assertEqual((body["body"]["phone_number"], body["body"]["first_name"]), ("+12055550160", "W"))
        cid = body["body"]["id"]
        # A user edits in the UI (Basic auth now): the admin call waits for delivery.
        self.assertEqual(call(self.port, "POST", "/_sandbox/settings",
                              {"webhook_auth": "basic:user:pass"})[0], 200)
        s, _, b = call(self.port, "POST", "/_sandbox/contacts", {"id": cid, "is_dnc": True})
        self.assertEqual((s, b["webhook"]["status"], b["contact"]["is_dnc"]), (200, 200, True))
        hook = self.receiver.wait(2)[1]
        self.assertEqual(hook["headers"]["authorization"], "Basic " + base64.b64encode(b"user:pass").decode())
        body = json.loads(hook["raw"])
        self.assertEqual((body["event"], body["body"]["id"], body["body"]["is_dnc"]), ("Contact Updated", cid, True))
        # Aloware does not retry a 500 (aloware-api.md §7.1).
        self.receiver.answers.append(500)
        s, _, b = call(self.port, "POST", "/_sandbox/contacts", {"phone_number": "+12055550161"})
        self.assertEqual((s, b["webhook"]["status"], b["webhook"]["attempts"]), (201, 500, 1))

    def test_faults(self):
        call(self.port, "POST", "/_sandbox/faults", {"faults": [{"status": 429, "retry_after": 2},
                                                                {"status": 500}]})
        s, h, b = self.lookup("+12055550142")
        self.assertEqual((s, h["retry-after"], b), (429, "2", {"message": "Too Many Attempts."}))
        s, _, b = self.lookup("+12055550142")
        self.assertEqual((s, b), (500, {"message": "Server Error"}))
        self.assertEqual(self.lookup("+12055550142")[0], 404)
        journal = call(self.port, "GET", "/_sandbox/requests")[2]
        self.assertEqual([e["status"] for e in journal], [429, 500, 404])
        self.assertEqual(journal[0]["query"]["phone_number"], "+12055550142")


# ====================================================================== restarts

def restart_after_kill9(sbx):
    """kill -9 the sandbox, then start it again on the same port (retried
    while the port is still held)."""
    sbx.kill9()
    deadline = time.time() + 10
    while True:
        try:
            return sbx.start()
        except (RuntimeError, AssertionError):
            if time.time() > deadline:
                raise
            time.sleep(0.1)


class RestartTest(unittest.TestCase):
    """kill -9, then a restart on the same port with the same state file."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sbx-restart-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def restart(self, sbx):
        return restart_after_kill9(sbx)

    def test_ghl_state_survives_kill9(self):
        sbx = Sandbox(GHL, self.tmp, ["--state", os.path.join(self.tmp, "ghl.json"), "--location-id", LOC,
                                      "--access-token", TOKEN, "--refresh-token", "rt0"], port=free_port()).start()
        try:
            s, _, b = ghl(sbx.port, "POST", "/contacts/", {"locationId": LOC, "phone": "+12055550170"})
            self.assertEqual(s, 201)
            cid = b["contact"]["id"]
            form = {"client_id": "sandbox-client-id", "client_secret": "sandbox-client-secret",
                    "grant_type": "refresh_token", "refresh_token": "rt0"}
            s, _, tok = call(sbx.port, "POST", "/oauth/token", form=form)
            self.assertEqual(s, 200)
            port = sbx.port
            sbx = self.restart(sbx)
            self.assertEqual(sbx.port, port)
            s, _, b = ghl(sbx.port, "GET", "/contacts/" + cid, token=tok["access_token"])
            self.assertEqual((s, b["contact"]["phone"]), (200, "+12055550170"))
            self.assertEqual(call(sbx.port, "POST", "/oauth/token", form=form)[0], 400)
            s, _, _ = call(sbx.port, "POST", "/oauth/token", form=dict(form, refresh_token=tok["refresh_token"]))
            self.assertEqual(s, 200)
        finally:
            self.assertEqual(sbx.stop(), 0)

    def test_aloware_state_survives_kill9(self):
        sbx = Sandbox(ALOWARE, self.tmp, ["--state", os.path.join(self.tmp, "alo.json")],
                      port=free_port()).start()
        try:
            body = {"api_token": "sandbox-aloware-token", "phone_number": "+12055550180", "first_name": "K"}
            self.assertEqual(call(sbx.port, "POST", "/api/v1/webhook/forms", body)[0], 201)
            sbx = self.restart(sbx)
            q = "/api/v1/webhook/contact/phone-number?api_token=sandbox-aloware-token&phone_number=%2B12055550180"
            s, _, c = call(sbx.port, "GET", q)
            self.assertEqual((s, c["first_name"]), (200, "K"))
            body2 = dict(body, phone_number="+12055550181")
            self.assertEqual(call(sbx.port, "POST", "/api/v1/webhook/forms", body2)[0], 201)
            q2 = q.replace("0180", "0181")
            self.assertEqual(call(sbx.port, "GET", q2)[2]["id"], c["id"] + 1)
        finally:
            self.assertEqual(sbx.stop(), 0)


if __name__ == "__main__":
    started = time.time()
    result = unittest.main(exit=False, verbosity=2).result
    print("sandbox self-test: %.1f s" % (time.time() - started))
    sys.exit(0 if result.wasSuccessful() else 1)
