#!/usr/bin/env python3
"""`dfm serve` behind nginx on loopback: signatures verified through the proxy
(Twilio's over the configured public URL), request ids, and every error
answer, as a vendor would see them."""
import json
import re
import shutil
import time
import unittest

import dfmtest as t

BINARY = None


class BehindNginx(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = t.tempdir()
        cls.keys = t.Keys()
        cls.host = "hooks.example.com"
        cls.dfm = t.Dfm(BINARY, cls.dir, keys=cls.keys,
                        public_base_url=f"https://{cls.host}/dfm")
        cls.dfm.start()
        cls.nginx = t.Nginx(cls.dir, cls.dfm.port)
        cls.nginx.start()

    @classmethod
    def tearDownClass(cls):
        cls.nginx.stop()
        code = cls.dfm.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert code == 0, f"dfm exited {code} on SIGTERM"

    def via_proxy(self, path, body, headers, method="POST"):
        h = {"Host": self.host}
        h.update(headers)
        return t.request("127.0.0.1", self.nginx.port, method, "/dfm" + path, body, h)

    def direct(self, path, body, headers):
        return t.request("127.0.0.1", self.dfm.port, "POST", path, body, headers)

    def assert_accepted(self, resp, status="accepted"):
        code, headers, body = resp
        self.assertEqual(code, 200, body)
        self.assertEqual(json.loads(body)["status"], status)
        return json.loads(body)

    def assert_error(self, resp, code, error):
        status, headers, body = resp
        self.assertEqual(status, code, body)
        doc = json.loads(body)
        self.assertEqual(doc["error"], error)
        self.assertTrue(doc["detail"])
        self.assertTrue(headers.get("x-request-id"))

    def test_twilio_signature_over_the_configured_public_url(self):
        body = t.fixture("twilio/inbound-sms.form")
        public = f"https://{self.host}/dfm/webhooks/twilio"  # server.public_base_url + path
        sig = t.twilio_signature(public, body)
        h = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig}
        code, headers, answer = self.via_proxy("/webhooks/twilio", body, h)
        self.assertEqual(code, 200, answer)
        self.assertEqual(headers.get("content-type"), "text/xml; charset=utf-8")  # TwiML
        self.assertIn(b"<Response></Response>", answer)
        self.assertEqual(headers.get("x-dfm-status"), "accepted")
        # A signature over the internal URL is not accepted, through the proxy or not.
        internal = f"http://127.0.0.1:{self.dfm.port}/webhooks/twilio"
        h2 = dict(h, **{"X-Twilio-Signature": t.twilio_signature(internal, body)})
        self.assert_error(self.via_proxy("/webhooks/twilio", body, h2), 401, "unauthorized")
        self.assert_error(self.direct("/webhooks/twilio", body, h2), 401, "unauthorized")
        # Nor one over a URL the caller names in Host and forwarded headers,
        # from a peer dfm trusts as a proxy (this test's is 127.0.0.1): they
        # used to rebuild the URL that was checked.
        forged = "https://attacker.example/x/webhooks/twilio"
        h3 = dict(h, **{"X-Twilio-Signature": t.twilio_signature(forged, body),
                        "Host": "attacker.example", "X-Forwarded-Proto": "https",
                        "X-Forwarded-Host": "attacker.example", "X-Forwarded-Prefix": "/x"})
        self.assert_error(self.direct("/webhooks/twilio", body, h3), 401, "unauthorized")

    def test_every_vendor_through_the_proxy(self):
        ghl = t.ghl_body("it-ghl-ed-1")
        self.assert_accepted(self.via_proxy("/webhooks/ghl", ghl, {
            "Content-Type": "application/json", "X-GHL-Signature": self.keys.ghl_ed25519(ghl)}))
        legacy = t.ghl_body("it-ghl-rsa-1")
        self.assert_accepted(self.via_proxy("/webhooks/ghl", legacy, {
            "Content-Type": "application/json", "X-WH-Signature": self.keys.ghl_rsa(legacy)}))
        verity = t.verity_body("it-msg-1")
        vh = {"Content-Type": "application/json", "X-Texting-Signature": t.verity_signature(verity)}
        first = self.assert_accepted(self.via_proxy("/webhooks/verity", verity, vh))
        again = self.assert_accepted(self.via_proxy("/webhooks/verity", verity, vh), "duplicate")
        self.assertEqual(first["event_id"], again["event_id"])
        self.assert_error(self.via_proxy("/t/acme/webhooks/verity", verity, vh), 401, "unauthorized")
        acme = dict(vh, **{"X-Texting-Signature": t.verity_signature(verity, t.ACME_VERITY_SECRET)})
        self.assert_accepted(self.via_proxy("/t/acme/webhooks/verity", verity, acme))
        aloware = t.fixture("aloware/Call-Disposed.json")
        self.assert_accepted(self.via_proxy("/webhooks/aloware", aloware, {
            "Content-Type": "application/json", "Authorization": "Bearer " + t.ALOWARE_TOKEN}))
        ping = self.via_proxy("/webhooks/aloware", t.fixture("aloware/test-ping.json"), {
            "Content-Type": "application/json", "Authorization": "Bearer " + t.ALOWARE_TOKEN})
        self.assertEqual(json.loads(ping[2])["status"], "ignored")

        events = self.dfm.webhooks()
        ids = [e["payload"]["provider_event_id"] for e in events]
        self.assertIn("it-ghl-ed-1", ids)
        self.assertIn("it-ghl-rsa-1", ids)
        self.assertEqual(ids.count("message.received:it-msg-1"), 2)  # default and acme
        self.assertEqual(len([e for e in events if e["tenant"] == "acme"]), 1)
        verify = self.dfm.cli("log", "verify", "-d", self.dfm.data_dir, "--json")
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        self.assertTrue(json.loads(verify.stdout)["ok"])

    def test_request_ids(self):
        body = t.verity_body("it-rid-1")
        h = {"Content-Type": "application/json", "X-Texting-Signature": t.verity_signature(body)}
        _, headers, _ = self.via_proxy("/webhooks/verity", body, dict(h, **{"X-Request-ID": "vendor-abc-1"}))
        self.assertEqual(headers["x-request-id"], "vendor-abc-1")
        _, headers, _ = self.via_proxy("/webhooks/verity", t.verity_body("it-rid-2"), {
            "Content-Type": "application/json",
            "X-Texting-Signature": t.verity_signature(t.verity_body("it-rid-2"))})
        self.assertRegex(headers["x-request-id"], r"^[0-9a-f]{32}$")  # nginx's $request_id
        events = self.dfm.webhooks()
        rid = [e["payload"]["request_id"] for e in events
               if e["payload"]["provider_event_id"] == "message.received:it-rid-1"]
        self.assertEqual(rid, ["vendor-abc-1"])
        # A refused webhook is logged (at info) with its request id.
        bad = dict(h, **{"X-Request-ID": "vendor-refused-1", "X-Texting-Signature": "00" * 32})
        self.assertEqual(self.via_proxy("/webhooks/verity", body, bad)[0], 401)
        deadline = time.time() + 10  # lines are written by spdlog's own thread
        while True:
            with open(self.dfm.log_path) as f:
                log = f.read()
            refused = [line for line in log.splitlines()
                       if "request_id=vendor-refused-1" in line and "status=401" in line]
            if refused or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(refused), 1, log[-2000:])
        # A caller's text stays inside its quoted value: it cannot write
        # fields of its own into the line.
        forged = dict(h, **{"X-Request-ID": "vendor-forged-1",
                            "Content-Type": 'text/plain" status=200 injected="1'})
        self.assertEqual(self.via_proxy("/webhooks/verity", body, forged)[0], 415)
        deadline = time.time() + 10
        while True:
            with open(self.dfm.log_path) as f:
                lines = [x for x in f.read().splitlines() if "request_id=vendor-forged-1" in x]
            if lines or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(lines), 1)
        fields = re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', lines[0])
        self.assertEqual([v for k, v in fields if k == "status"], ["415"], lines[0])
        self.assertNotIn("injected", [k for k, _ in fields])
        # Logs carry request ids and never the people's data.
        self.assertNotIn("+12055550142", log)
        self.assertNotIn("Sounds good", log)

    def test_error_answers(self):
        body = t.verity_body("it-err-1")
        good = {"Content-Type": "application/json", "X-Texting-Signature": t.verity_signature(body)}
        before = len(self.dfm.webhooks())
        bad_json = b'{"eventType": "message.received",'
        self.assert_error(self.via_proxy("/webhooks/verity", bad_json, {
            "Content-Type": "application/json",
            "X-Texting-Signature": t.verity_signature(bad_json)}), 400, "malformed_body")
        no_id = b'{"eventType": "message.received"}'
        self.assert_error(self.via_proxy("/webhooks/verity", no_id, {
            "Content-Type": "application/json",
            "X-Texting-Signature": t.verity_signature(no_id)}), 400, "malformed_body")
        self.assert_error(self.via_proxy("/webhooks/verity", body, dict(good, **{
            "X-Texting-Signature": "00" * 32})), 401, "unauthorized")
        self.assert_error(self.via_proxy("/webhooks/verity", body, {
            "Content-Type": "application/json"}), 401, "unauthorized")
        self.assert_error(self.via_proxy("/webhooks/aloware", t.fixture("aloware/Call-Disposed.json"), {
            "Content-Type": "application/json", "Authorization": "Bearer wrong"}), 401, "unauthorized")
        self.assert_error(self.via_proxy("/webhooks/zapier", body, good), 404, "not_found")
        self.assert_error(self.via_proxy("/t/nobody/webhooks/verity", body, good), 404, "not_found")
        big = b'{"eventType":"message.received","messageId":"x","pad":"' + b"x" * 70000 + b'"}'
        self.assert_error(self.via_proxy("/webhooks/verity", big, {
            "Content-Type": "application/json",
            "X-Texting-Signature": t.verity_signature(big)}), 413, "body_too_large")
        self.assert_error(self.via_proxy("/webhooks/verity", body, dict(good, **{
            "Content-Type": "text/plain"})), 415, "unsupported_media_type")
        self.assertEqual(len(self.dfm.webhooks()), before, "no error appends anything")

    def test_health_through_proxy(self):
        for path in ("/healthz", "/readyz", "/v1/health"):
            status, _, body = self.via_proxy(path, None, {}, method="GET")
            self.assertEqual(status, 200, path)
        body = t.verity_body("it-health-1")
        self.assert_accepted(self.via_proxy("/webhooks/verity", body, {
            "Content-Type": "application/json", "X-Texting-Signature": t.verity_signature(body)}))
        doc = json.loads(self.via_proxy("/v1/health", None, {}, method="GET")[2])
        event_log = doc["parts"]["event_log"]
        self.assertEqual(event_log["state"], "writable")
        self.assertNotIn("storage", doc["parts"])
        self.assertGreaterEqual(event_log["events_appended"], 1)
        self.assertGreaterEqual(event_log["events_appended"], event_log["group_commits"])
        self.assertGreaterEqual(event_log["group_commits"], 1)
        self.assertEqual(event_log["failed_commits"], 0)
        self.assertEqual(event_log["wals_deleted_whole"], 0)
        self.assertIn("wal_trash_bytes", event_log)
        # RocksDB's checksums run on dfm's CRC-32C (storage/crc32c.h): the
        # binary exports it and this CPU has the instruction.
        with open("/proc/cpuinfo") as f:
            sse42 = " sse4_2" in f.read()
        self.assertEqual(event_log["crc32c_hardware"], 1 if sse42 else 0)


if __name__ == "__main__":
    BINARY, argv = t.dfm_args()
    unittest.main(argv=argv, verbosity=2)
