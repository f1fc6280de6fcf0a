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
- A cancel withdraws the texts still waiting out the sender's outage: they
  never reach it once it is back.
- `dfm campaigns tasks --reset` is accepted for a running campaign and
  refused (409) for a completed one.

Quiet hours are set to hold open now for the test's people (the console
suite sets them closed and sees texts wait).

- SimulatedTimeCampaignTest: 200 people, three steps over three simulated
  days under libfaketime (Debian's faketime), the service killed -9 twice.

Usage: campaigns_e2e_test.py --dfm PATH [-k NAME]
"""
import asyncio
import email
import json
from collections import Counter
import os
import ssl
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import alerts_e2e_test as alerts  # noqa: E402
import clustertest  # noqa: E402
import console_e2e_test as console  # noqa: E402
import dfmtest  # noqa: E402
import messages_e2e_test as messages  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import wait_for  # noqa: E402

from aiosmtpd.controller import Controller  # noqa: E402

ANN, BO, CY = "+12055550501", "+12055550502", "+12055550503"
UNSUBSCRIBE_SECRET = "it-unsubscribe-secret-campaigns-0123456789"


class HoldingSink(alerts.Sink):
    """Takes each mail, then answers its 250 only `hold_s` seconds later
    (a slow server: the mail is in the mailbox before dfm knows it went)."""

    def __init__(self):
        super().__init__()
        self.hold_s = 0.0

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.hold_s)
        return answer


class CampaignTest(unittest.TestCase):
    make_dfm = messages.MessagesTest.make_dfm
    setUp = messages.MessagesTest.setUp
    ghl_contact = messages.MessagesTest.ghl_contact
    ghl_user_creates = base.SyncTest.ghl_user_creates
    verity_inbound = messages.MessagesTest.verity_inbound
    verity_sent = messages.MessagesTest.verity_sent
    erase = messages.MessagesTest.erase
    key = console.ConsoleTest.key
    cli = console.ConsoleTest.cli
    api = console.ConsoleTest.api

    def extra_env(self):
        """Quiet hours open now; the SMTP server (STARTTLS, AUTH) as the mailer."""
        cert, key = os.path.join(self.dir, "smtp-cert.pem"), os.path.join(self.dir, "smtp-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True)
        port = dfmtest.free_port()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
        self.sink = HoldingSink()
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

    def test_a_member_not_yet_a_contact_is_kept_hashed_and_reached_once_one(self):
        """docs/privacy.md: a phone that names no contact when the campaign is
        made is kept as its keyed hash, in no event and no answer in clear;
        the person is reached if they are a contact when it starts."""
        dee = "+12055550507"
        viewer, operator = self.key("viewer"), self.key("operator")
        self.assertEqual(self.api("/v1/customers", operator, "POST", {"id": "acme", "name": "Acme"})[0], 201)
        self.assertEqual(self.api("/v1/customers/acme/payments", operator, "POST",
                                  {"amount": "9", "currency": "USD", "reference": "r1"})[0], 201)
        spec = {"id": "later", "customer": "acme", "audience": {"members": ["(205) 555-0507"]},
                "steps": [{"channel": "sms", "template": "Hi {{first_name|there}}, from {{customer_name}}"}]}
        self.assertEqual(self.api("/v1/campaigns", operator, "POST", spec)[0], 201)
        status, _, doc = self.api("/v1/campaigns/later", viewer)
        self.assertEqual(status, 200, doc)
        members = doc["campaign"]["spec"]["audience"]["members"]
        self.assertEqual(len(members), 1, members)
        self.assertRegex(members[0], r"^#[0-9a-f]{32}$")
        created = [e for e in self.dfm.dump(with_body=True) if e["type"] == "campaign.created"]
        self.assertEqual(len(created), 1)
        self.assertNotIn(dee[2:], json.dumps(created), "the phone is in no event in clear")
        self.ghl_contact(dee, firstName="Dee")
        wait_for("Dee a contact", lambda: any(e["type"] == "contact.created" and
                                              e["payload"]["fields"].get("phone") == dee
                                              for e in self.dfm.dump(with_body=True)), timeout=15)
        self.assertEqual(self.api("/v1/campaigns/later/start", operator, "POST")[0], 200)
        wait_for("Dee's text", lambda: self.verity_sent(dee), timeout=30)
        self.assertEqual([m["body"] for m in self.verity_sent(dee)], ["Hi Dee, from Acme"])

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
                           "template": "Still there, {{first_name}}?", "delay_s": 20},
                          {"channel": "call", "template": "Ask {{first_name}} about spring", "delay_s": 1}]}
        self.assertEqual(self.api("/v1/campaigns", operator, "POST", spec)[0], 201)
        self.assertEqual(self.api("/v1/campaigns/spring/start", operator, "POST")[0], 200)

        wait_for("the first texts sent", lambda: self.api("/v1/campaigns/spring", viewer)[2]["tasks"]
                 .get("done", 0) == 2, timeout=30)
        self.assertEqual([m["body"] for m in self.verity_sent(ANN)], ["Hi Ann, from Acme"])
        self.assertEqual([m["body"] for m in self.verity_sent(BO)], ["Hi Bo, from Acme"])
        self.assertEqual(self.verity_sent(CY), [], "never to a person who opted out")
        # Bo answers before the second step is due (20 s after his first):
        # his steps end there.
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
        dialer = []  # what the Power Dialer held at the last look, for a failure's message

        def only_ann_on_dialer():
            dialer[:] = [c["phone_number"] for c in self.alo.get("/_sandbox/powerdialer")[1]]
            return dialer == [ANN]
        try:
            wait_for("Ann on the Power Dialer", only_ann_on_dialer, timeout=30)
        except AssertionError as e:
            raise AssertionError(f"{e}; the dialer held {dialer}; tasks: "
                                 f"{self.api('/v1/campaigns/spring/tasks', viewer)[2]}") from None
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
        self.erase_ann(viewer)

    def test_an_email_whose_own_link_opted_out_before_its_answer_is_done(self):
        """The person unsubscribes with the email's link while dfm still waits
        for the mail server's 250: the opt-out refuses the send still on its
        way (message.refused), the server took it all the same
        (push.succeeded), and the email step is done, not skipped as opted
        out: the call step after it goes."""
        self.sink.hold_s = 4.0
        self.ghl_contact(ANN, firstName="Ann", email="ann@example.com")
        viewer, operator = self.key("viewer"), self.key("operator")
        self.assertEqual(self.api("/v1/customers", operator, "POST", {"id": "acme", "name": "Acme"})[0], 201)
        self.assertEqual(self.api("/v1/customers/acme/payments", operator, "POST",
                                  {"amount": "9", "currency": "USD", "reference": "r1"})[0], 201)
        spec = {"id": "slow-mail", "customer": "acme", "audience": {"members": [ANN]},
                "steps": [{"channel": "email", "subject": "Spring", "template": "Hi {{first_name}}"},
                          {"channel": "call", "template": "Ask {{first_name}}", "delay_s": 1}]}
        self.assertEqual(self.api("/v1/campaigns", operator, "POST", spec)[0], 201)
        self.assertEqual(self.api("/v1/campaigns/slow-mail/start", operator, "POST")[0], 200)
        mail = wait_for("Ann's email in the mailbox", lambda: self.sink.mails, timeout=30)[0]
        link = email.message_from_string(mail["data"])["List-Unsubscribe"].strip("<>")
        u = urllib.parse.urlsplit(link)
        status, _, _ = dfmtest.request(u.hostname, u.port, "POST", u.path + "?" + u.query,
                                       body="List-Unsubscribe=One-Click",
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200)
        wait_for("Ann on the Power Dialer", lambda: [c["phone_number"] for c in self.alo.get(
            "/_sandbox/powerdialer")[1]] == [ANN], timeout=40)
        steps = [(t["step"], t["state"]) for t in
                 self.api("/v1/campaigns/slow-mail/tasks", viewer)[2]["tasks"]]
        self.assertIn((0, "done"), steps)
        events = self.dfm.dump(with_body=True)
        mail_push = [e["payload"]["push_id"] for e in events if e["type"] == "push.requested"
                     and e["payload"].get("channel") == "email" and e["payload"].get("op") == "send"]
        self.assertEqual(len(mail_push), 1)
        ends = [e["type"] for e in events if e.get("payload", {}).get("push_id") == mail_push[0]
                and e["type"] in ("message.refused", "push.succeeded")]
        self.assertEqual(ends, ["message.refused", "push.succeeded"], "refused on its way, and it went")
        self.assertEqual(len(self.sink.mails), 1)

    def test_a_cancel_withdraws_the_texts_waiting_out_an_outage(self):
        """A cancelled campaign's texts that wait out Verity's outage are
        withdrawn (message.refused naming their pushes, which the connector
        drops) and never reach Verity once it is back."""
        for phone, name in ((ANN, "Ann"), (BO, "Bo")):
            self.ghl_contact(phone, firstName=name)
        status, body = self.verity.post("/_sandbox/faults", {"faults": [
            {"status": 503, "count": 1000, "method": "POST", "path_prefix": messages.SEND_PATH}]})
        self.assertEqual(status, 200, body)
        viewer, operator = self.key("viewer"), self.key("operator")
        self.assertEqual(self.api("/v1/customers", operator, "POST", {"id": "acme", "name": "Acme"})[0], 201)
        self.assertEqual(self.api("/v1/customers/acme/payments", operator, "POST",
                                  {"amount": "9", "currency": "USD", "reference": "r1"})[0], 201)
        spec = {"id": "outage", "customer": "acme", "audience": {"members": [ANN, BO]},
                "steps": [{"channel": "sms", "template": "Hi {{first_name}}, from {{customer_name}}"}]}
        self.assertEqual(self.api("/v1/campaigns", operator, "POST", spec)[0], 201)
        self.assertEqual(self.api("/v1/campaigns/outage/start", operator, "POST")[0], 200)
        wait_for("both texts waiting out the outage", lambda: len({
            e["payload"]["push_id"] for e in self.dfm.dump(with_body=True)
            if e["type"] == "push.attempted" and e["payload"].get("op") == "send"
            and e["payload"].get("outcome") == "retry"}) == 2, timeout=30)
        self.assertEqual(self.api("/v1/campaigns/outage/cancel", operator, "POST")[0], 200)
        refused = wait_for("both withdrawn", lambda: (lambda r: r if len(r) == 2 else None)(
            [e["payload"] for e in self.dfm.dump(with_body=True) if e["type"] == "message.refused"]),
            timeout=30)
        sends = {e["payload"]["push_id"]: e["payload"]["message_key"]
                 for e in self.dfm.dump(with_body=True)
                 if e["type"] == "push.requested" and e["payload"].get("op") == "send"}
        self.assertEqual({r["push_id"]: r["message_key"] for r in refused}, sends)
        for r in refused:
            self.assertEqual(r["reason"], "withdrawn before it was sent (campaign cancelled)")

        def cancelled():  # every node's (on one node, its own)
            _, _, text = dfmtest.request("127.0.0.1", self.dfm.admin_port, "GET",
                                         "/metrics?scope=cluster")
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.decode().splitlines()
                       if line.startswith("dfm_pushes_total{") and 'op="send"' in line
                       and 'outcome="cancelled"' in line)
        wait_for("both pushes dropped by the connector", lambda: cancelled() == 2, timeout=30)
        self.verity.post("/_sandbox/faults", {}, method="DELETE")
        time.sleep(2)
        self.assertEqual(self.verity_sent(ANN) + self.verity_sent(BO), [])
        answered = [r for r in self.verity.requests(messages.SEND_PATH)
                    if r.get("status") is not None and r["status"] != 503]
        self.assertEqual(answered, [], "only the attempts Verity refused while down, none after")
        doc = self.api("/v1/campaigns/outage", viewer)[2]
        self.assertEqual((doc["tasks"], doc["skipped"]), ({"skipped": 2}, {"cancelled": 2}), doc)

    def erase_ann(self, viewer):
        """docs/privacy.md: the texts a campaign rendered for a person go with
        their erasure (its task events are sealed with the person's key), and
        the campaign's progress stops counting their tasks."""
        ann = [e["payload"]["contact_id"] for e in self.dfm.dump(with_body=True)
               if e["type"] == "contact.created" and e["payload"]["fields"].get("phone") == ANN]
        r = self.erase(ann[0], "--reason", "request #7", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_for("Ann's tasks uncounted", lambda: self.api("/v1/campaigns/spring", viewer)[2]
                 ["tasks"] == {"done": 1, "skipped": 2}, timeout=30)
        events = self.dfm.dump(with_body=True)
        tasks = [e for e in events if e["stream"] == "campaign-tasks:spring"]
        self.assertTrue(any(e.get("erased") for e in tasks), tasks)
        self.assertTrue(any(e["payload"].get("body") == "Hi Bo, from Acme" for e in tasks
                            if not e.get("erased")), "another person's stay readable")
        dump = json.dumps(events)
        for text in ("Hi Ann", "Still there, Ann", "Spring at Acme", "Ask Ann", ANN, ANN[1:]):
            self.assertNotIn(text, dump)
        # The campaign was given her phone: it keeps her contact id instead.
        campaign = json.dumps(self.api("/v1/campaigns/spring", viewer)[2])
        self.assertIn(ann[0], campaign)
        self.assertNotIn(ANN[2:], campaign)
        for needle in (b"Hi Ann, from Acme", ANN[2:].encode(), b"ann@example.com"):
            try:
                wait_for("no file with " + needle.decode(),
                         lambda: not self.dfm.files_holding(needle), timeout=45)
            except AssertionError:
                self.assertEqual(self.dfm.files_holding(needle), [])


class AiDraftCampaignTest(unittest.TestCase):
    """A text step drafted by the tenant's classifier model (the OpenAI
    sandbox): the model's whole text goes, its prompt version is in the
    log; a cut answer is never sent and its task fails."""
    make_dfm = messages.MessagesTest.make_dfm
    setUp = messages.MessagesTest.setUp
    tearDown = messages.MessagesTest.tearDown
    ghl_contact = messages.MessagesTest.ghl_contact
    ghl_user_creates = base.SyncTest.ghl_user_creates
    verity_sent = messages.MessagesTest.verity_sent
    key = console.ConsoleTest.key
    cli = console.ConsoleTest.cli
    api = console.ConsoleTest.api

    def extra_env(self):
        self.model = base.Sandbox("openai", self.dir, [])
        self.model.start()
        self.sandboxes = self.sandboxes + (self.model,)
        return {"DFM_CAMPAIGNS_QUIET_HOURS": dfmtest.quiet_hours(open_now=True),
                "DFM_OPENAI_API_BASE_URL": self.model.url + "/v1", "DFM_OPENAI_API_KEY": "sk-sandbox",
                "DFM_OPENAI_SEND_MESSAGE_BODY": "true"}

    def run_campaign(self, operator, viewer, cid, phone):
        spec = {"id": cid, "customer": "acme", "audience": {"members": [phone]},
                "steps": [{"channel": "sms", "draft": "ai",
                           "template": "Invite {{first_name}} to {{customer_name}}'s spring sale"}]}
        self.assertEqual(self.api("/v1/campaigns", operator, "POST", spec)[0], 201)
        self.assertEqual(self.api("/v1/campaigns/" + cid + "/start", operator, "POST")[0], 200)
        return wait_for(cid + " completed", lambda: (lambda doc: doc["tasks"] if doc["campaign"]["state"] ==
                                                     "completed" else None)(
            self.api("/v1/campaigns/" + cid, viewer)[2]), timeout=60)

    def test_only_a_whole_draft_is_sent_and_its_prompt_version_is_recorded(self):
        self.ghl_contact(ANN, firstName="Ann")
        self.ghl_contact(BO, firstName="Bo")
        viewer, operator = self.key("viewer"), self.key("operator")
        self.assertEqual(self.api("/v1/customers", operator, "POST", {"id": "acme", "name": "Acme"})[0], 201)
        self.assertEqual(self.api("/v1/customers/acme/payments", operator, "POST",
                                  {"amount": "9", "currency": "USD", "reference": "r1"})[0], 201)
        tasks = self.run_campaign(operator, viewer, "spring", ANN)
        self.assertEqual(tasks.get("done"), 1, tasks)
        self.assertEqual([m["body"] for m in self.verity_sent(ANN)],
                         ["Hello! Invite Ann to Acme's spring sale."])
        events = self.dfm.dump(with_body=True)
        drafted = [e["payload"] for e in events if e["type"] == "push.succeeded" and
                   e["payload"].get("system") == "openai" and e["payload"].get("op") == "send"]
        self.assertEqual([(d["channel"], d["fields"]["answer.prompt_version"], d["fields"]["answer.model"])
                          for d in drafted], [("draft", "campaign-draft-v1", "gpt-4o-mini-sandbox")])
        claims = [e["payload"] for e in events if e["type"] == "task.claimed"]
        self.assertEqual([(c["agent"], c.get("detail")) for c in claims],
                         [("ai", None), ("sms", "campaign-draft-v1 gpt-4o-mini-sandbox")])
        # The model cuts its answer (finish_reason "length"): nothing goes.
        self.model.post("/_sandbox/settings", {"mode": "cutoff"})
        tasks = self.run_campaign(operator, viewer, "autumn", BO)
        self.assertEqual(tasks.get("failed"), 1, tasks)
        self.assertEqual(self.verity_sent(BO), [], "a cut draft is never sent")
        failed = [e["payload"] for e in self.dfm.dump(with_body=True) if e["type"] == "task.failed"]
        self.assertEqual([(f["reason"], f["detail"]) for f in failed],
                         [("draft_failed", "incomplete draft: answer ended by length")])


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"  # Debian's faketime


def asan_runtime(binary):
    """The ASan runtime `binary` links dynamically (gcc's), which must come
    first in LD_PRELOAD; None when it is linked in (clang's)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "libasan" in line and "=>" in line:
            return line.split("=>")[1].split()[0]
    return None


class SimulatedTimeCampaignTest(CampaignTest):
    """A three-step campaign (a text, an email a day later, a call a day
    after that) over 200 people in simulated time: the service, its tools
    and the sandboxes run under libfaketime, whose offset the test moves on
    (FAKETIME_TIMESTAMP_FILE); timers and timeouts keep real time
    (DONT_FAKE_MONOTONIC). Some people live where it is night when the
    campaign starts (Honolulu's numbers), some reply STOP before their text,
    some reply, one pays; the service is killed -9 while texts go and again
    while emails go, dropping what its agents held. Nothing is sent twice,
    nothing to a person opted out of that channel, nothing in quiet hours,
    and every task ends."""

    def setUp(self):
        self.clock = os.path.join(dfmtest.tempdir(), "faketime")
        # 16:00 UTC next: 10:00 in Chicago, 06:00 in Honolulu (quiet hours).
        now = time.time()
        start = (now // 86400 + 1) * 86400 + 16 * 3600
        self.offset = int(start - now)
        self.set_clock(self.offset)
        # The sandboxes (Python) fake the monotonic clock too: Python sleeps
        # to an absolute monotonic deadline, which libfaketime refuses when
        # only the wall clock is faked (EINVAL).
        faked = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": self.clock,
                 "FAKETIME_CACHE_DURATION": "1"}
        saved = {k: os.environ.get(k) for k in faked}
        os.environ.update(faked)
        try:
            CampaignTest.setUp(self)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def extra_env(self):
        env = CampaignTest.extra_env(self)
        runtime = asan_runtime(self.dfm.binary)
        # The service and its tools (the dfm binary, run with self.env) keep
        # real monotonic time: their timers and timeouts do not jump. An ASan
        # runtime linked in (clang's) asks the time before libfaketime is
        # ready and hangs there unless it never releases memory on a timer.
        asan = dfmtest.environ()["ASAN_OPTIONS"]
        env.update({"DFM_CAMPAIGNS_QUIET_HOURS": "08:00-21:00", "DFM_CAMPAIGNS_TEXTS_PER_SECOND": "20",
                    "DFM_CAMPAIGNS_LEASE_S": "10", "DFM_ALOWARE_RATE_LIMIT": "6000",
                    "LD_PRELOAD": (runtime + ":" if runtime else "") + FAKETIME_LIB,
                    "FAKETIME_TIMESTAMP_FILE": self.clock, "FAKETIME_CACHE_DURATION": "1",
                    "DONT_FAKE_MONOTONIC": "1",
                    "ASAN_OPTIONS": asan + ":allocator_release_to_os_interval_ms=-1"})
        return env

    def set_clock(self, offset_s):
        with open(self.clock + ".tmp", "w") as f:
            f.write("+%d\n" % offset_s)
        os.replace(self.clock + ".tmp", self.clock)
        time.sleep(1.5)  # FAKETIME_CACHE_DURATION

    def advance(self, seconds):
        self.offset += seconds
        self.set_clock(self.offset)

    def restart_killed(self):
        self.dfm.kill9()
        self.dfm.start(env_extra=self.env)

    # The three-person scenario and the cancel are CampaignTest's own, not
    # run again here.
    test_each_send_goes_once_and_a_stop_or_a_reply_ends_a_persons_steps = None
    test_a_cancel_withdraws_the_texts_waiting_out_an_outage = None

    def test_two_hundred_people_in_simulated_time_across_two_kill9s(self):
        chicago = ["+1205556%04d" % i for i in range(180)]
        honolulu = ["+1808556%04d" % i for i in range(20)]
        people = chicago + honolulu
        for i, phone in enumerate(people):
            self.ghl_user_creates(phone, first="P%d" % i, email="p%d@example.com" % i)
        viewer, operator = self.key("viewer"), self.key("operator")
        self.api("/v1/customers", operator, "POST", {"id": "acme", "name": "Acme"})
        self.api("/v1/customers/acme/payments", operator, "POST",
                 {"amount": "9", "currency": "USD", "reference": "r1"})
        spec = {"id": "big", "customer": "acme", "audience": {"members": people},
                "steps": [{"channel": "sms", "template": "Hi {{first_name}}"},
                          {"channel": "email", "subject": "Spring", "template": "Hello {{first_name}}",
                           "delay_s": 86400},
                          {"channel": "call", "template": "Call {{first_name}}", "delay_s": 86400}]}
        self.assertEqual(self.api("/v1/campaigns", operator, "POST", spec)[0], 201)
        wait_for("every person known", lambda: "200 named, 200 reachable" in {
            c["what"]: c["detail"] for c in self.api("/v1/campaigns/big/validate", viewer, "POST")[2]
            ["checks"]}["audience"], timeout=120)
        stopped = honolulu[:5]  # STOP before their text goes (it is night there)
        for phone in stopped:
            self.verity_inbound(phone, "STOP")
        self.assertEqual(self.api("/v1/campaigns/big/start", operator, "POST")[0], 200)

        def counts():
            return self.api("/v1/campaigns/big", viewer)[2]

        def wait_counts(what, pred, timeout):
            try:
                wait_for(what, lambda: pred(counts()), timeout=timeout)
            except AssertionError:
                raise AssertionError(f"{what}: {counts()}")

        wait_for("texts going", lambda: counts()["tasks"].get("done", 0) >= 30, timeout=60)
        self.restart_killed()  # the first kill -9, while texts go
        # Chicago's texts end (a text whose send the kill cut short is
        # failed, never sent again); Honolulu's wait for the morning.
        wait_counts("Chicago's texts ended, Honolulu's waiting", lambda c: self.open_tasks(0, viewer) == 15
                    and c["skipped"].get("opted_out", 0) == 5, timeout=120)
        outbound = self.outbound_texts()
        self.assertEqual(sum(len(outbound.get(p, [])) for p in honolulu), 0, "nothing at night")
        # Replies and a payment before the second step, from people reached.
        reached = set(self.contacts_in(0, "done", viewer))
        chosen = [p for p in chicago if self.contact_of(p, viewer) in reached][:11]
        replied, payer = chosen[:10], chosen[10]
        # Verity's status callbacks that waited out the kill go first (its
        # webhooks go in order); then the replies.
        self.drain(self.verity)
        for phone in replied:
            self.verity_inbound(phone, "Thanks, not now")
        self.assertEqual(self.api("/v1/customers/acme/payments", operator, "POST",
                                  {"amount": "5", "currency": "USD", "reference": "r2",
                                   "contact": self.contact_of(payer, viewer)})[0], 201)
        self.advance(2 * 3600 + 60)  # 08:01 in Honolulu
        wait_counts("Honolulu's texts ended", lambda c: self.open_tasks(0, viewer) == 0, timeout=120)
        reached = set(self.contacts_in(0, "done", viewer))
        self.advance(86400)  # the emails' day
        wait_for("emails going", lambda: len(self.sink.mails) >= 30, timeout=120)
        self.restart_killed()  # the second kill -9, while emails go
        wait_counts("every email step ended", lambda c: self.open_tasks(1, viewer) == 0 and
                    len(self.contacts_in(1, None, viewer)) == len(reached), timeout=180)
        emailed = set(self.contacts_in(1, "done", viewer))
        self.assertEqual(len(self.contacts_in(1, "skipped", viewer)), 11, "10 replied, 1 paid")
        self.advance(86400)  # the calls' day
        try:
            wait_for("the calls queued", lambda: len(self.alo.get("/_sandbox/powerdialer")[1]) ==
                     len(emailed), timeout=180)
        except AssertionError:  # what the dialer was asked, for the one who reads the failure
            states = Counter((t["state"], t.get("reason", "")) for t in self.api(
                "/v1/campaigns/big/tasks?limit=10000", viewer)[2]["tasks"] if t["step"] == 2)
            calls = [(e["type"], e["payload"].get("system"), e["payload"].get("reason"),
                      e["payload"].get("outcome"), e["payload"].get("detail"))
                     for e in self.dfm.dump(with_body=True)
                     if isinstance(e.get("payload"), dict) and e["payload"].get("channel") == "call"]
            print("CALL EVENTS", Counter(calls).most_common(8))
            with open(self.dfm.log_path, errors="replace") as f:
                lines = [ln for ln in f if "aloware" in ln][-15:]
            print("ALOWARE LOG", "".join(lines))
            with open(os.path.join(self.dir, "aloware.log"), errors="replace") as f:
                print("ALOWARE SANDBOX", "".join(f.readlines()[-15:]))
            raise AssertionError(f"queued {len(self.alo.get('/_sandbox/powerdialer')[1])} of "
                                 f"{len(emailed)}; call tasks {dict(states)}")
        while self.alo.get("/_sandbox/powerdialer")[1]:
            self.assertEqual(self.alo.post("/_sandbox/powerdialer/call", {"call_disposition": "Interested"})[0],
                             200)
        wait_counts("the campaign completed", lambda c: c["campaign"]["state"] == "completed", timeout=180)

        final = counts()
        self.assertEqual(final["skipped"], {"opted_out": 5, "replied": 10, "paid": 1}, final)
        self.assertEqual(set(final["tasks"]) - {"done", "skipped", "failed"}, set(), "every task ended")
        self.assertEqual(set(self.contacts_in(2, "done", viewer)), emailed, "each call ended")
        # Nothing twice: one text and one email per person at most.
        outbound = self.outbound_texts()
        self.assertEqual(max(len(v) for v in outbound.values()), 1)
        self.assertEqual(sum(len(outbound.get(p, [])) for p in stopped), 0)
        mails = [tuple(m["to"]) for m in self.sink.mails]
        self.assertEqual(len(mails), len(set(mails)), "no email twice")
        self.assertGreaterEqual(len(mails), len(emailed))
        # Nothing to an opted-out person, nothing in quiet hours: the audit says so.
        r = self.cli("audit", "violations", "-c", self.dfm.config_path, "--json")
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)

    def outbound_texts(self):
        out = {}
        for m in self.verity.get("/_sandbox/messages")[1]:
            if m["direction"] == "outbound":
                out.setdefault(m["to"], []).append(m["body"])
        return out

    def contact_of(self, phone, viewer):
        doc = self.api("/v1/contacts/trace?contact=" + urllib.parse.quote(phone), viewer)[2]
        return [i["contact_id"] for i in doc["items"] if i.get("contact_id")][0]

    def drain(self, sandbox):
        try:
            wait_for(sandbox.name + "'s webhooks delivered", lambda: all(
                d["done"] for d in sandbox.get("/_sandbox/webhooks")[1]), timeout=60)
        except AssertionError:
            waiting = [(d["seq"], d["event"], d["status"], len(d["attempts"]), d["created"])
                       for d in sandbox.get("/_sandbox/webhooks")[1] if not d["done"]]
            raise AssertionError(f"{len(waiting)} waiting: {waiting[:5]}")

    def contacts_in(self, step, state, viewer):
        """The contacts whose task of `step` is in `state` (None: any)."""
        return [t["contact"] for t in self.api("/v1/campaigns/big/tasks?limit=10000", viewer)[2]["tasks"]
                if t["step"] == step and (state is None or t["state"] == state)]

    def open_tasks(self, step, viewer):
        """Tasks of `step` waiting or held, from one read (two reads would
        miss a task released between them)."""
        return len([t for t in self.api("/v1/campaigns/big/tasks?limit=10000", viewer)[2]["tasks"]
                    if t["step"] == step and t["state"] in ("pending", "in_progress")])


class ClusterCampaignTest(clustertest.OnACluster, CampaignTest):
    """The same on three nodes on NATS behind nginx."""
    binary = staticmethod(lambda: base.DFM)
    key = console.ClusterConsoleTest.key


if __name__ == "__main__":
    base.main()
