#!/usr/bin/env python3
"""Campaigns' texts and emails end to end (docs/campaigns.md, "Texts and
emails"): `dfm serve` between the GoHighLevel, Aloware, Verity and Twilio
sandboxes and a real SMTP server (Debian's python3-aiosmtpd, STARTTLS and
AUTH), a campaign made and started through the keyed API, its texts
delivered by the Verity sandbox, its emails by the SMTP server.

- Each person's text goes once, rendered for them; a person who replied
  STOP gets none; a reply ends the person's later steps; the email step
  goes once with its one-click unsubscribe headers (RFC 8058), and that
  link's POST opts the person out of email; the call step puts the person
  on Aloware's Power Dialer and is done when the agent's call ends; the
  campaign completes when every task ended.
- `dfm campaigns tasks --reset` is accepted for a running campaign and
  refused (409) for a completed one.

Quiet hours are set to hold open now for the test's people (the console
suite sets them closed and sees texts wait).

Usage: campaigns_e2e_test.py --dfm PATH [-k NAME]
"""
import email
import os
import ssl
import subprocess
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import clustertest  # noqa: E402
import alerts_e2e_test as alerts  # noqa: E402
import console_e2e_test as console  # noqa: E402
import dfmtest  # noqa: E402
import messages_e2e_test as messages  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import wait_for  # noqa: E402

from aiosmtpd.controller import Controller  # noqa: E402

ANN, BO, CY = "+12055550501", "+12055550502", "+12055550503"
UNSUBSCRIBE_SECRET = "it-unsubscribe-secret-campaigns-0123456789"


class CampaignTest(unittest.TestCase):
    make_dfm = messages.MessagesTest.make_dfm
    setUp = messages.MessagesTest.setUp
    ghl_contact = messages.MessagesTest.ghl_contact
    verity_inbound = messages.MessagesTest.verity_inbound
    verity_sent = messages.MessagesTest.verity_sent
    key = console.ConsoleTest.key
    cli = console.ConsoleTest.cli
    api = console.ConsoleTest.api

    def extra_env(self):
        """Quiet hours open now; the SMTP server (STARTTLS, AUTH) as the mailer."""
        cert, key = os.path.join(self.dir, "smtp-cert.pem"), os.path.join(self.dir, "smtp-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True)
        port = dfmtest.free_port()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
        self.sink = alerts.Sink()
        self.smtp = Controller(self.sink, hostname="127.0.0.1", port=port, tls_context=tls,
                               require_starttls=True, authenticator=alerts.authenticator,
                               auth_required=True, auth_require_tls=True)
        self.smtp.start()
        return {"DFM_CAMPAIGNS_QUIET_HOURS": dfmtest.quiet_hours(open_now=True),
                "DFM_CAMPAIGNS_TEXTS_PER_SECOND": "2",
                "DFM_SMTP_URL": f"smtp://127.0.0.1:{port}", "DFM_SMTP_USERNAME": alerts.USER,
                "DFM_SMTP_PASSWORD": alerts.PASSWORD, "DFM_SMTP_FROM": "news@acme.example",
                "DFM_SMTP_CA_FILE": cert, "DFM_UNSUBSCRIBE_SECRET": UNSUBSCRIBE_SECRET}

    def tearDown(self):
        if getattr(self, "smtp", None):
            self.smtp.stop()
        messages.MessagesTest.tearDown(self)

    def test_each_send_goes_once_and_a_stop_or_a_reply_ends_a_persons_steps(self):
        for phone, name in ((ANN, "Ann"), (BO, "Bo"), (CY, "Cy")):
            self.ghl_contact(phone, firstName=name, email=name.lower() + "@example.com")
        self.verity_inbound(CY, "STOP")
        wait_for("Cy's STOP recorded", lambda: any(
            e["type"] == "contact.opted_out" for e in self.dfm.dump()), timeout=15)
        viewer, operator = self.key("viewer"), self.key("operator")
        self.assertEqual(self.api("/v1/customers", operator, "POST", {"id": "acme", "name": "Acme"})[0], 201)
        self.assertEqual(self.api("/v1/customers/acme/payments", operator, "POST",
                                  {"amount": "9", "currency": "USD", "reference": "r1"})[0], 201)
        spec = {"id": "spring", "customer": "acme", "audience": {"members": [ANN, BO, CY]},
                "steps": [{"channel": "sms", "template": "Hi {{first_name|there}}, from {{customer_name}}"},
                          {"channel": "email", "subject": "Spring at {{customer_name}}",
                           "template": "Still there, {{first_name}}?", "delay_s": 8},
                          {"channel": "call", "template": "Ask {{first_name}} about spring", "delay_s": 1}]}
        self.assertEqual(self.api("/v1/campaigns", operator, "POST", spec)[0], 201)
        self.assertEqual(self.api("/v1/campaigns/spring/start", operator, "POST")[0], 200)

        wait_for("the first texts sent", lambda: self.api("/v1/campaigns/spring", viewer)[2]["tasks"]
                 .get("done", 0) == 2, timeout=30)
        self.assertEqual([m["body"] for m in self.verity_sent(ANN)], ["Hi Ann, from Acme"])
        self.assertEqual([m["body"] for m in self.verity_sent(BO)], ["Hi Bo, from Acme"])
        self.assertEqual(self.verity_sent(CY), [], "never to a person who opted out")
        # Bo answers before the second step is due: his steps end there.
        self.verity_inbound(BO, "Thanks, got it")
        s, _, doc = self.api("/v1/campaigns/spring/tasks/reset", operator, "POST", {"reason": "a look"})
        self.assertEqual(s, 200, doc)
        # Ann's email, once, over STARTTLS and AUTH, with the one-click headers.
        wait_for("Ann's email", lambda: len(self.sink.mails) == 1, timeout=60)
        self.assertEqual([(m["to"], m["tls"], m["auth"]) for m in self.sink.mails],
                         [(["ann@example.com"], True, True)])
        mail = email.message_from_string(self.sink.mails[0]["data"])
        self.assertEqual(mail["Subject"], "Spring at Acme")
        self.assertEqual(mail.get_payload().strip(), "Still there, Ann?")
        self.assertEqual(mail["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
        link = mail["List-Unsubscribe"].strip("<>")
        # The link's one-click POST (what a mail client sends) opts her out of email.
        u = urllib.parse.urlsplit(link)
        status, _, _ = dfmtest.request(u.hostname, u.port, "POST", u.path + "?" + u.query,
                                       body="List-Unsubscribe=One-Click",
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200)
        wait_for("Ann opted out of email", lambda: any(
            e["type"] == "contact.opted_out" and e["payload"].get("channel") == "email"
            for e in self.dfm.dump(with_body=True)), timeout=15)
        # The call step puts Ann on Aloware's Power Dialer; its task waits for
        # the agent's call, and is done with the call's disposition.
        wait_for("Ann on the Power Dialer", lambda: [c["phone_number"] for c in self.alo.get(
            "/_sandbox/powerdialer")[1]] == [ANN], timeout=30)
        self.assertEqual(self.api("/v1/campaigns/spring", viewer)[2]["campaign"]["state"], "running")
        status, body = self.alo.post("/_sandbox/powerdialer/call", {"call_disposition": "Interested"})
        self.assertEqual(status, 200, body)
        wait_for("the campaign completed", lambda: self.api("/v1/campaigns/spring", viewer)[2]
                 ["campaign"]["state"] == "completed", timeout=60)
        done = self.api("/v1/campaigns/spring", viewer)[2]
        self.assertEqual(done["tasks"], {"done": 4, "skipped": 2}, done)
        self.assertEqual(done["skipped"], {"opted_out": 1, "replied": 1}, done)
        steps = {(t["step"], t["state"], t.get("reason", "")) for t in
                 self.api("/v1/campaigns/spring/tasks", viewer)[2]["tasks"]}
        self.assertIn((2, "done", ""), steps)
        self.assertEqual([m["body"] for m in self.verity_sent(ANN)], ["Hi Ann, from Acme"])
        self.assertEqual(len(self.verity_sent(BO)), 1)
        self.assertEqual(self.verity_sent(CY), [])
        self.assertEqual(len(self.sink.mails), 1)
        # Each task's send asked for once, each claim once.
        events = self.dfm.dump(with_body=True)
        sends = [e["payload"] for e in events
                 if e["type"] == "push.requested" and e["payload"].get("op") == "send"]
        self.assertEqual(sorted(e["channel"] for e in sends), ["call", "email", "sms", "sms"], sends)
        self.assertEqual(len({e["message_key"] for e in sends}), 4)
        self.assertEqual(len([e for e in events if e["type"] == "task.claimed"]), 4)
        # A completed campaign's tasks are not reset.
        s, _, doc = self.api("/v1/campaigns/spring/tasks/reset", operator, "POST")
        self.assertEqual((s, doc.get("error")), (409, "invalid_transition"))
        r = self.cli("campaigns", "tasks", "spring", "-c", self.dfm.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("(replied)", r.stdout)


class ClusterCampaignTest(clustertest.OnACluster, CampaignTest):
    """The same on three nodes on NATS behind nginx."""
    binary = staticmethod(lambda: base.DFM)
    key = console.ClusterConsoleTest.key


if __name__ == "__main__":
    base.main()
