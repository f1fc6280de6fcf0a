#!/usr/bin/env python3
"""`dfm diagnose` against the four sandboxes (app/diagnose.h): everything
fine with the service running, then each broken thing reported precisely
on its own line, with exit 1: a wrong GoHighLevel token, a stopped Aloware,
a conversation provider GoHighLevel does not know, a Twilio auth token that
is not the account's, a data directory others may read.

Usage: diagnose_test.py --dfm PATH [-k NAME]
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import dfmtest  # noqa: E402
import messages_e2e_test as messages  # noqa: E402
import sync_e2e_test as base  # noqa: E402

TWILIO_SID = "AC0123456789abcdef0123456789abcdef"  # the sandbox's default account


class DiagnoseTest(unittest.TestCase):
    setUp = messages.MessagesTest.setUp
    tearDown = messages.MessagesTest.tearDown

    def diagnose(self, *args, **env):
        e = dfmtest.environ()
        e.update(self.env)
        e.update({"DFM_TWILIO_ACCOUNT_SID": TWILIO_SID, "DFM_TWILIO_API_BASE_URL": self.twilio.url})
        e.update(env)
        r = subprocess.run([self.dfm.binary, "diagnose", "-c", self.dfm.config_path, "--json", *args],
                           capture_output=True, text=True, env=e)
        doc = json.loads(r.stdout)
        return r.returncode, {c["check"]: c for c in doc["checks"]}, doc

    def failed(self, checks):
        return {k: v for k, v in checks.items() if v["state"] == "fail"}

    def test_all_fine_with_the_service_running(self):
        code, checks, doc = self.diagnose()
        self.assertEqual(self.failed(checks), {})
        self.assertEqual((code, doc["ok"]), (0, True))
        self.assertEqual(checks["service"]["state"], "ok")
        for name in ("configuration", "data directory", "free space", "event log", "clock",
                     "GoHighLevel [default] token and location",
                     "GoHighLevel [default] conversation provider",
                     "Aloware [default] API token", "Verity [default] API key",
                     "Twilio [default] account and auth token",
                     "Verity [default] webhooks", "Verity [acme] webhooks"):
            self.assertEqual(checks[name]["state"], "ok", (name, checks.get(name)))
        self.assertRegex(checks["GoHighLevel [default] limits"]["detail"], r"left in this window")
        text = subprocess.run([self.dfm.binary, "diagnose", "-c", self.dfm.config_path],
                              capture_output=True, text=True,
                              env=dict(dfmtest.environ(), **self.env)).stdout
        self.assertIn("✓ Verity [default] API key: taken", text)
        self.assertNotIn(messages.VERITY_KEY, text)
        self.assertNotIn("sandbox-ghl-token", text)

    def test_each_broken_thing_on_its_own_line(self):
        cases = [
            ({"DFM_GHL_ACCESS_TOKEN": "wrong-token"}, "GoHighLevel [default] token and location",
             "refused our credentials", "ghl.access_token"),
            ({"DFM_GHL_CONVERSATION_PROVIDER_ID": "not-installed"},
             "GoHighLevel [default] conversation provider", "does not know provider not-installed",
             "ghl.conversation_provider_id"),
            ({"DFM_GHL_LOCATION_ID": "loc_other"}, "GoHighLevel [default] token and location",
             "location loc_other is not this token's", "ghl.location_id"),
            ({"DFM_TWILIO_AUTH_TOKEN": "not-the-account's"}, "Twilio [default] account and auth token",
             "refused our credentials", "twilio.auth_token"),
            ({"DFM_VERITY_API_KEY": "wrong"}, "Verity [default] API key", "refused", "verity.api_key"),
        ]
        for env, check, detail, hint in cases:
            with self.subTest(check=check, env=env):
                code, checks, doc = self.diagnose(**env)
                self.assertEqual(code, 1)
                self.assertFalse(doc["ok"])
                self.assertEqual(list(self.failed(checks)), [check])
                self.assertIn(detail, checks[check]["detail"])
                self.assertIn(hint, checks[check]["hint"])

    def test_a_stopped_sandbox_and_an_open_data_directory(self):
        self.alo.stop()
        os.chmod(self.dfm.data_dir, 0o755)
        code, checks, _ = self.diagnose()
        self.assertEqual(code, 1)
        self.assertEqual(sorted(self.failed(checks)), ["Aloware [default] API token", "data directory"])
        self.assertIn("not reached", checks["Aloware [default] API token"]["detail"])
        self.assertIn("aloware.api_base_url", checks["Aloware [default] API token"]["hint"])
        self.assertIn("chmod", checks["data directory"]["hint"])
        os.chmod(self.dfm.data_dir, 0o700)


if __name__ == "__main__":
    base.main()
