#!/usr/bin/env python3
"""Campaigns' texts end to end (docs/campaigns.md, "Texts"): `dfm serve`
between the GoHighLevel, Aloware, Verity and Twilio sandboxes, a campaign
made and started through the keyed API, its texts delivered by the Verity
sandbox.

- Each person's text goes once, rendered for them; a person who replied
  STOP gets none; a reply ends the person's later steps; the campaign
  completes when every task ended.
- `dfm campaigns tasks --reset` is accepted for a running campaign and
  refused (409) for a completed one.

Quiet hours are set to hold open now for the test's people (the console
suite sets them closed and sees texts wait).

Usage: campaigns_e2e_test.py --dfm PATH [-k NAME]
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clustertest  # noqa: E402
import console_e2e_test as console  # noqa: E402
import dfmtest  # noqa: E402
import messages_e2e_test as messages  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import wait_for  # noqa: E402

ANN, BO, CY = "+12055550501", "+12055550502", "+12055550503"


class CampaignTest(unittest.TestCase):
    make_dfm = messages.MessagesTest.make_dfm
    setUp = messages.MessagesTest.setUp
    tearDown = messages.MessagesTest.tearDown
    ghl_contact = messages.MessagesTest.ghl_contact
    verity_inbound = messages.MessagesTest.verity_inbound
    verity_sent = messages.MessagesTest.verity_sent
    key = console.ConsoleTest.key
    cli = console.ConsoleTest.cli
    api = console.ConsoleTest.api

    def extra_env(self):
        return {"DFM_CAMPAIGNS_QUIET_HOURS": dfmtest.quiet_hours(open_now=True),
                "DFM_CAMPAIGNS_TEXTS_PER_SECOND": "2"}

    def test_each_text_goes_once_and_a_stop_or_a_reply_ends_a_persons_steps(self):
        for phone, name in ((ANN, "Ann"), (BO, "Bo"), (CY, "Cy")):
            self.ghl_contact(phone, firstName=name)
        self.verity_inbound(CY, "STOP")
        wait_for("Cy's STOP recorded", lambda: any(
            e["type"] == "contact.opted_out" for e in self.dfm.dump()), timeout=15)
        viewer, operator = self.key("viewer"), self.key("operator")
        self.assertEqual(self.api("/v1/customers", operator, "POST", {"id": "acme", "name": "Acme"})[0], 201)
        self.assertEqual(self.api("/v1/customers/acme/payments", operator, "POST",
                                  {"amount": "9", "currency": "USD", "reference": "r1"})[0], 201)
        spec = {"id": "spring", "customer": "acme", "audience": {"members": [ANN, BO, CY]},
                "steps": [{"channel": "sms", "template": "Hi {{first_name|there}}, from {{customer_name}}"},
                          {"channel": "sms", "template": "Still there, {{first_name}}?", "delay_s": 8}]}
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
        wait_for("the campaign completed", lambda: self.api("/v1/campaigns/spring", viewer)[2]
                 ["campaign"]["state"] == "completed", timeout=60)
        done = self.api("/v1/campaigns/spring", viewer)[2]
        self.assertEqual(done["tasks"], {"done": 3, "skipped": 2}, done)
        self.assertEqual(done["skipped"], {"opted_out": 1, "replied": 1}, done)
        self.assertEqual([m["body"] for m in self.verity_sent(ANN)],
                         ["Hi Ann, from Acme", "Still there, Ann?"])
        self.assertEqual(len(self.verity_sent(BO)), 1)
        self.assertEqual(self.verity_sent(CY), [])
        # Each task's text asked for once, each claim once.
        events = self.dfm.dump(with_body=True)
        sends = [e["payload"] for e in events
                 if e["type"] == "push.requested" and e["payload"].get("op") == "send"]
        self.assertEqual(len(sends), 3, sends)
        self.assertEqual(len({e["message_key"] for e in sends}), 3)
        self.assertEqual(len([e for e in events if e["type"] == "task.claimed"]), 3)
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
