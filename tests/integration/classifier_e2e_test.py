#!/usr/bin/env python3
"""A second opinion on ambiguous replies, end to end (docs/classifier.md):
`dfm serve` between the GoHighLevel, Aloware, Verity and Twilio sandboxes and
the OpenAI-compatible sandbox, texts arriving as signed Twilio webhooks.

- "please stop texting me" is flagged at once, classified opt_out with
  confidence 0.95, applied with reason "classifier": SMS DND in GoHighLevel;
  the verdict (model, prompt version) is in the log, the text never in the
  service's log file.
- "can we cancel?" is classified unclear and stays flagged.
- The classifier down, slow, rate-limited, out of quota or answering
  nonsense: the flag is there at once, a STOP still works at once, each
  failure is recorded (retried, or dead-lettered), nothing else changes.
- send_message_body false: the classifier is asked nothing.
- The labelled corpus: the classifier raises recall and keeps precision
  (bench/classifier_corpus.py measures the same).

Usage: classifier_e2e_test.py --dfm PATH [-k NAME]
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
import classifier_corpus  # noqa: E402
import messages_e2e_test as messages  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import Sandbox, wait_for  # noqa: E402


class ClassifierTest(unittest.TestCase):
    def setUp(self):
        messages.MessagesTest.setUp(self)
        self.dfm.stop()
        self.model = Sandbox("openai", self.dir, [])
        self.model.start()
        self.sandboxes = self.sandboxes + (self.model,)
        self.env.update({"DFM_OPENAI_API_BASE_URL": self.model.url + "/v1",
                         "DFM_OPENAI_API_KEY": "sk-sandbox",
                         "DFM_OPENAI_SEND_MESSAGE_BODY": "true",
                         "DFM_OPENAI_REQUEST_TIMEOUT_MS": "700",
                         "DFM_OPENAI_RETRY_BASE_MS": "100",
                         "DFM_OPENAI_RETRY_MAX_MS": "300"})
        self.dfm.start(env_extra=self.env)
        self.seq = 0

    tearDown = messages.MessagesTest.tearDown
    events = messages.MessagesTest.events
    ghl_contact = messages.MessagesTest.ghl_contact
    sms_dnd = messages.MessagesTest.sms_dnd

    def text(self, phone, body):
        self.seq += 1
        classifier_corpus.post_twilio(self.dfm.port, "SMcls%05d" % self.seq, phone, body)
        return "SMcls%05d" % self.seq

    def of(self, type_, **match):
        return [e["payload"] for e in self.events(type_)
                if all(e["payload"].get(k) == v for k, v in match.items())]

    def asked(self):
        return self.model.get("/_sandbox/settings")[1]["asked"]

    def test_a_confident_opt_out_is_applied_with_cause_classifier(self):
        phone = "+12055550501"
        self.ghl_contact(phone)
        sid = self.text(phone, "please stop texting me")
        wait_for("flagged", lambda: self.of("contact.opt_out_flagged"))
        verdict = wait_for("classified", lambda: self.of("consent.classified"))[0]
        self.assertEqual(verdict["outcome"], "opt_out")
        self.assertEqual(verdict["fields"]["verdict"], "opt_out")
        self.assertEqual(verdict["fields"]["confidence"], "0.95")
        self.assertEqual(verdict["fields"]["model"], "gpt-4o-mini-sandbox")
        self.assertEqual(verdict["fields"]["prompt_version"], "optout-v1")
        self.assertEqual(verdict["external_id"], sid)
        out = wait_for("opted out", lambda: self.of("contact.opted_out"))[0]
        self.assertEqual(out["reason"], "classifier")
        self.assertEqual(out["external_id"], sid)
        wait_for("GHL SMS DND", lambda: self.sms_dnd(phone) == "active")
        with open(self.dfm.log_path, errors="replace") as f:
            self.assertNotIn("stop texting me", f.read(), "the text is never in the service's log")

        self.text(phone, "can we cancel?")
        second = wait_for("classified again", lambda: [v for v in self.of("consent.classified")
                                                       if v["fields"]["verdict"] == "unclear"])
        self.assertEqual(second[0]["outcome"], "flagged")
        self.assertEqual(len(self.of("contact.opted_out")), 1, "unclear: left for a person")

    def test_a_classifier_down_slow_or_failing_changes_nothing_else(self):
        phone = "+12055550502"
        self.ghl_contact(phone)
        self.model.post("/_sandbox/down", {"seconds": 30})
        self.text(phone, "please stop texting me")
        wait_for("flagged at once", lambda: self.of("contact.opt_out_flagged"), timeout=5)
        self.text(phone, "STOP")
        wait_for("the keyword path does not wait", lambda: self.sms_dnd(phone) == "active", timeout=10)
        dead = wait_for("given up", lambda: self.of("push.dead_lettered", op="classify"), timeout=30)
        self.assertEqual(len(self.of("push.attempted", op="classify")), 3, "max_attempts")
        self.assertTrue(dead[0].get("reason") or dead[0].get("detail"))
        self.assertEqual(self.of("consent.classified"), [])
        self.model.post("/_sandbox/reset", {})

        # Slow (past the 700 ms timeout) once, then rate-limited once, then an answer.
        self.model.post("/_sandbox/faults", {"faults": [{"latency_ms": 1500}, {"status": 429}]})
        phone2 = "+12055550503"
        self.ghl_contact(phone2)
        self.text(phone2, "please stop texting me")
        wait_for("classified after a timeout and a 429", lambda: self.of("consent.classified"), timeout=30)
        outcomes = [a.get("outcome") for a in self.of("push.attempted", op="classify")][-3:]
        self.assertEqual(len(outcomes), 3, outcomes)
        self.assertEqual(outcomes[-1], "ok")
        wait_for("GHL SMS DND", lambda: self.sms_dnd(phone2) == "active")

    def test_spent_quota_and_nonsense_are_final_and_recorded(self):
        for mode, phone in (("quota", "+12055550504"), ("malformed", "+12055550505"),
                            ("cutoff", "+12055550506"), ("refuse", "+12055550507")):
            self.model.post("/_sandbox/settings", {"mode": mode})
            before = len(self.of("push.attempted", op="classify"))
            self.text(phone, "please stop texting me")
            if mode == "refuse":
                got = wait_for("refusal recorded", lambda: [v for v in self.of("consent.classified")
                                                            if v["fields"]["verdict"] == "refused"])
                self.assertEqual(got[0]["outcome"], "flagged")
            else:
                wait_for(mode + " dead-lettered", lambda: len(self.of("push.dead_lettered", op="classify")) >=
                         (1 if mode == "quota" else 2 if mode == "malformed" else 3))
                time.sleep(0.5)
                self.assertEqual(len(self.of("push.attempted", op="classify")) - before, 1, mode + ": not retried")
        details = " ".join(str(d.get("reason", "")) + str(d.get("detail", ""))
                           for d in self.of("push.dead_lettered", op="classify"))
        self.assertIn("insufficient_quota", details)
        self.assertIn("malformed answer", details)
        self.assertEqual(self.of("contact.opted_out"), [], "no verdict, no opt-out")

    def test_without_send_message_body_it_is_asked_nothing(self):
        self.dfm.stop()
        self.env["DFM_OPENAI_SEND_MESSAGE_BODY"] = "false"
        self.dfm.start(env_extra=self.env)
        self.text("+12055550508", "please stop texting me")
        wait_for("flagged", lambda: self.of("contact.opt_out_flagged"))
        time.sleep(1)
        self.assertEqual(self.of("push.requested", op="classify"), [])
        self.assertEqual(self.asked(), 0)

    def test_the_corpus(self):
        keyword, combined = classifier_corpus.measure(self.dfm, classifier_corpus.corpus())
        print(f"\nkeyword rule: precision {keyword[0]:.3f} recall {keyword[1]:.3f}; with the classifier: "
              f"precision {combined[0]:.3f} recall {combined[1]:.3f}", file=sys.stderr)
        self.assertEqual(keyword[0], 1.0)
        self.assertEqual(combined[0], 1.0, "no false opt-out")
        self.assertGreater(combined[1], keyword[1])
        # Every applied verdict is its contact's own opt-out (two contacts'
        # decisions once shared an idempotency key and the second was dropped).
        applied = [v for v in self.of("consent.classified") if v["outcome"] == "opt_out"]
        self.assertGreater(len(applied), 3)
        self.assertEqual(len(self.of("contact.opted_out", reason="classifier")), len(applied))


if __name__ == "__main__":
    base.main()
