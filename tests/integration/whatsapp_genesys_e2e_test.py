#!/usr/bin/env python3
"""WhatsApp <-> Genesys Cloud Open Messaging end to end over loopback: `dfm
serve` between a WhatsApp Cloud API sandbox and a Genesys sandbox for each
of two tenants (north, south), each with its own secrets, numbers and
integration.

A customer's text reaches the agent and the agent's reply reaches the
customer; statuses flow both ways (delivered to Genesys, Genesys's read to
WhatsApp); a customer's messages reach Genesys in the order they were
sent; a Genesys token that expires mid-conversation is refreshed once; a
reply outside the 24-hour window fails with 131047 (asynchronously and
synchronously) and Genesys is told why; a WhatsApp STOP opts the person out
of whatsapp and the next reply is refused and reported to Genesys; a block
does the same; two tenants stay apart (a signature or a number of one is
refused at the other's URL); Meta's GET handshake; kill -9 mid-conversation
loses and doubles nothing; the conversation mapping projection rebuilds to
what it was.

Usage: whatsapp_genesys_e2e_test.py --dfm PATH [-k NAME]
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import dfmtest  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import wait_for  # noqa: E402

TENANTS = {
    "north": {"number_id": "100200300400", "display": "15550001111", "wa_token": "wa-north-token",
              "app_secret": "wa-north-app-secret", "verify": "wa-north-verify",
              "integration": "int-north-0001", "client": "gen-north", "secret": "gen-north-secret",
              "hook_secret": "gen-north-hook-secret"},
    "south": {"number_id": "900800700600", "display": "15550002222", "wa_token": "wa-south-token",
              "app_secret": "wa-south-app-secret", "verify": "wa-south-verify",
              "integration": "int-south-0002", "client": "gen-south", "secret": "gen-south-secret",
              "hook_secret": "gen-south-hook-secret"},
}
ANN = "447700900123"  # a customer, as her wa_id
BEN = "447700900456"


class Sandbox(base.Sandbox):
    """A sandbox process under its own label (two of one vendor side by side)."""

    def __init__(self, script, label, workdir, args):
        super().__init__(label, workdir, args)
        self.script = script

    def start(self):
        port_file = os.path.join(self.workdir, self.name + ".port")
        with open(os.path.join(self.workdir, self.name + ".log"), "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.join(base.ROOT, "sandboxes", self.script + ".py"),
                 "--port", str(self.port), "--port-file", port_file, "--state", self.state] + self.args,
                stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.name + " sandbox", lambda: self._up(), timeout=15)

    def _up(self):
        try:
            return self.get("/_sandbox/health")[0] == 200
        except OSError:
            return False


def tenant_config(name, t, wa, gen):
    return f"""
[tenants.{name}.roles]
conversations = "genesys"
sender = "whatsapp"
lists = ""
[tenants.{name}.whatsapp]
app_secret = "{t['app_secret']}"
verify_token = "{t['verify']}"
phone_number_id = "{t['number_id']}"
access_token = "{t['wa_token']}"
api_base_url = "{wa.url}"
retry_base_ms = 100
retry_max_ms = 1000
breaker_open_ms = 1000
pair_interval_ms = 200
[tenants.{name}.genesys]
webhook_secret = "{t['hook_secret']}"
integration_id = "{t['integration']}"
client_id = "{t['client']}"
client_secret = "{t['secret']}"
login_base_url = "{gen.url}"
api_base_url = "{gen.url}"
retry_base_ms = 100
retry_max_ms = 1000
breaker_open_ms = 1000
"""


class WhatsAppGenesysTest(unittest.TestCase):
    def setUp(self):
        self.dir = dfmtest.tempdir()
        port = dfmtest.free_port()
        self.wa, self.gen = {}, {}
        config = "[sync]\ncontact_idle_s = 2\n"
        for name, t in TENANTS.items():
            hook = f"http://127.0.0.1:{port}/t/{name}/webhooks/"
            self.wa[name] = Sandbox("whatsapp", "wa-" + name, self.dir, [
                "--webhook-url", hook + "whatsapp", "--phone-number-id", t["number_id"],
                "--display-phone-number", t["display"], "--access-token", t["wa_token"],
                "--app-secret", t["app_secret"], "--verify-token", t["verify"]])
            self.gen[name] = Sandbox("genesys", "gen-" + name, self.dir, [
                "--webhook-url", hook + "genesys", "--integration-id", t["integration"],
                "--client-id", t["client"], "--client-secret", t["secret"],
                "--webhook-secret", t["hook_secret"]])
            config += tenant_config(name, t, self.wa[name], self.gen[name])
        self.dfm = dfmtest.Dfm(base.DFM, self.dir, port=port, extra_config=config)
        self.sandboxes = list(self.wa.values()) + list(self.gen.values())
        for s in self.sandboxes:
            s.start()
        self.dfm.start()

    def tearDown(self):
        base.tear_down(self.dfm, self.dir, self.sandboxes, self)

    # --- helpers ---------------------------------------------------------

    def customer_says(self, text, tenant="north", wa_id=ANN, **extra):
        status, body = self.wa[tenant].post("/_sandbox/inbound", dict({"from": wa_id, "text": text}, **extra))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["webhook"]["status"], 200, body)
        return body["id"]

    def agent_messages(self, tenant="north", wa_id=ANN):
        conv = self.gen[tenant].get("/_sandbox/conversations")[1].get(wa_id)
        return [m for m in (conv or {}).get("messages", []) if m["direction"] == "Inbound"]

    def agent_texts(self, tenant="north", wa_id=ANN):
        return [m.get("text") for m in self.agent_messages(tenant, wa_id)]

    def agent_replies(self, text, tenant="north", wa_id=ANN, **extra):
        status, body = self.gen[tenant].post("/_sandbox/agent_reply", dict({"to": wa_id, "text": text}, **extra))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["webhook"]["status"], 200, body)
        return body["id"]

    def receipts(self, mid, tenant="north"):
        return self.gen[tenant].get("/_sandbox/agent_messages")[1][mid]["receipts"]

    def sent(self, tenant="north", wa_id=ANN):
        return [m for m in self.wa[tenant].get("/_sandbox/messages")[1] if m["to"] == wa_id]

    def events(self, type_=None):
        return [e for e in self.dfm.dump(with_body=True) if type_ is None or e["type"] == type_]

    # --- scenarios -------------------------------------------------------

    def test_a_text_reaches_the_agent_and_the_reply_the_customer_with_statuses_both_ways(self):
        wamid = self.customer_says("Hi, has my order shipped?")
        wait_for("the text at the agent", lambda: self.agent_texts() == ["Hi, has my order shipped?"])
        msg = self.agent_messages()[0]
        self.assertEqual(msg["channel"]["from"], {"id": ANN, "idType": "Phone"})
        self.assertEqual(msg["channel"]["messageId"], "whatsapp:" + wamid)
        mid = self.agent_replies("Yes, it left today.")
        sent = wait_for("the reply on WhatsApp", lambda: self.sent())
        self.assertEqual(sent[0]["body"]["text"]["body"], "Yes, it left today.")
        self.assertEqual(sent[0]["body"]["to"], ANN)
        # Delivered flows back to Genesys as a receipt; sent is not one.
        wait_for("Delivered at Genesys", lambda: [r for r in self.receipts(mid) if r["status"] == "Delivered"])
        # Genesys read the customer's message: WhatsApp is told (blue ticks).
        genesys_id = msg["id"]
        status, _ = self.gen["north"].post("/_sandbox/receipt", {"id": genesys_id, "to": ANN, "status": "Read"})
        self.assertEqual(status, 200)
        wait_for("the read receipt at WhatsApp", lambda: any(
            r["path"].endswith("/messages") and isinstance(r["body"], dict) and r["body"].get("status") == "read"
            and r["body"].get("message_id") == wamid for r in self.wa["north"].requests("/v")))
        # Media by reference: an agent's image goes as a link with its caption.
        self.agent_replies("Your label", attachment={"mediaType": "Image", "url": "https://files.example/l.png",
                                                     "mime": "image/png", "filename": "l.png"})
        img = wait_for("the image on WhatsApp", lambda: [m for m in self.sent() if m["type"] == "image"])
        self.assertEqual(img[0]["body"]["image"], {"link": "https://files.example/l.png", "caption": "Your label"})
        # A customer's photo WhatsApp holds by id: the agent is told what came.
        self.customer_says("", type="image", caption="the box", media_id="555", mime_type="image/jpeg")
        wait_for("the photo noted at the agent", lambda: any(
            t and "the box" in t and "wa-media:555" in t for t in self.agent_texts()))
        # One contact, one history: every message is on the contact's stream.
        logged = self.events("message.logged")
        self.assertGreaterEqual(len({e["payload"]["message_key"] for e in logged}), 4)
        self.assertEqual(len({e["stream"] for e in logged}), 1)

    def test_one_customers_messages_reach_genesys_in_order_under_retries(self):
        self.customer_says("first")
        wait_for("the first at the agent", lambda: self.agent_texts() == ["first"])
        # The next answers fail twice (500, then 429), then Genesys is fine.
        self.gen["north"].post("/_sandbox/faults", {"faults": [{"status": 500}, {"status": 429, "retry_after": 1}]})
        words = ["one", "two", "three", "four", "five", "six"]
        for w in words:
            self.customer_says(w)
        wait_for("all at the agent", lambda: len(self.agent_texts()) == 7, timeout=90)
        self.assertEqual(self.agent_texts(), ["first"] + words)

    def test_a_batched_notification_reaches_the_agent_whole_in_order_once(self):
        # Issue 52: three messages in one change, then two changes of one
        # message each in the same entry; Meta answered 200 is never retried.
        texts = ["one", "two", "three", "four", "five"]
        specs = [{"from": ANN, "text": t, "id": "wamid.batch-" + t, "at": 1764000000 + i}
                 for i, t in enumerate(texts)]
        batch = {"changes": [specs[0:3], [specs[3]], [specs[4]]]}
        status, body = self.wa["north"].post("/_sandbox/inbound_batch", batch)
        self.assertEqual((status, body["webhook"]["status"]), (200, 200), body)
        wait_for("all five at the agent", lambda: len(self.agent_texts()) >= 5)
        # Meta's retry of the same notification, and a later one that
        # repeats the last message with a new one.
        status, body = self.wa["north"].post("/_sandbox/inbound_batch", batch)
        self.assertEqual(body["webhook"]["status"], 200, body)
        six = {"from": ANN, "text": "six", "id": "wamid.batch-six", "at": 1764000010}
        status, body = self.wa["north"].post("/_sandbox/inbound_batch", {"changes": [[specs[4], six]]})
        self.assertEqual(body["webhook"]["status"], 200, body)
        wait_for("the sixth at the agent", lambda: len(self.agent_texts()) >= 6)
        time.sleep(1)  # nothing more comes
        self.assertEqual(self.agent_texts(), texts + ["six"])
        logged = [e for e in self.events("message.logged")]
        self.assertEqual(len(logged), 6, logged)
        # The audit counts batched webhooks and their facts.
        r = self.dfm.cli("audit", "webhooks", "-c", self.dfm.config_path, "--tenant", "north", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        wa = [x for x in rows if x["system"] == "whatsapp"][0]
        self.assertEqual((wa["webhooks"], wa["batched"], wa["facts"]), (2, 2, 7), rows)

    def test_an_expired_genesys_token_is_refreshed_once_mid_conversation(self):
        self.customer_says("hello")
        wait_for("hello at the agent", lambda: self.agent_texts() == ["hello"])
        self.assertEqual(self.gen["north"].get("/_sandbox/tokens")[1]["requests"], 1)
        self.gen["north"].post("/_sandbox/expire_tokens", {})
        self.customer_says("still there?")
        wait_for("the second at the agent", lambda: self.agent_texts() == ["hello", "still there?"])
        self.assertEqual(self.gen["north"].get("/_sandbox/tokens")[1]["requests"], 2)
        attempts = [e["payload"] for e in self.events("push.attempted") if e["payload"]["system"] == "genesys"]
        self.assertEqual([a["http_status"] for a in attempts].count(401), 1)

    def test_a_reply_outside_the_24_hour_window_fails_and_genesys_is_told_why(self):
        self.customer_says("hi")
        wait_for("hi at the agent", lambda: self.agent_texts() == ["hi"])
        day_ago = int(time.time()) - 25 * 3600
        self.wa["north"].post("/_sandbox/last_inbound", {"wa_id": ANN, "at": day_ago})
        mid = self.agent_replies("Are you still interested?")  # Meta: 200, then a failed status
        failed = wait_for("a Failed receipt", lambda: [r for r in self.receipts(mid) if r["status"] == "Failed"])
        self.assertEqual(failed[0]["reasons"][0]["code"], "MessageExpired")
        self.assertIn("131047", failed[0]["reasons"][0]["message"])
        statuses = [e["payload"] for e in self.events("message.status") if e["payload"].get("outcome") == "failed"]
        self.assertIn("131047", statuses[0]["reason"])
        # The same refusal as the send's answer: never retried, reported.
        self.wa["north"].post("/_sandbox/settings", {"window_error": "sync"})
        mid2 = self.agent_replies("Hello again?")
        failed = wait_for("a Failed receipt", lambda: [r for r in self.receipts(mid2) if r["status"] == "Failed"])
        self.assertEqual(failed[0]["reasons"][0]["code"], "MessageExpired")
        posts = [r for r in self.wa["north"].requests("/v")
                 if isinstance(r["body"], dict) and r["body"].get("text", {}).get("body") == "Hello again?"]
        self.assertEqual(len(posts), 1, "a 131047 is never retried")

    def test_a_whatsapp_stop_opts_out_and_the_next_reply_is_refused(self):
        self.customer_says("hi")
        wait_for("hi at the agent", lambda: self.agent_texts() == ["hi"])
        self.customer_says("STOP")
        opted = wait_for("the opt-out", lambda: self.events("contact.opted_out"))
        self.assertEqual(opted[0]["payload"]["channel"], "whatsapp")
        mid = self.agent_replies("One more thing...")
        failed = wait_for("a Failed receipt", lambda: [r for r in self.receipts(mid) if r["status"] == "Failed"])
        self.assertEqual(failed[0]["reasons"][0]["code"], "RecipientOptedOut")
        self.assertEqual(self.sent(), [])
        refused = self.events("message.refused")
        self.assertIn("whatsapp opted out", refused[0]["payload"]["reason"])
        r = self.dfm.cli("audit", "opt-outs", "-c", self.dfm.config_path, "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("whatsapp", r.stdout)
        self.assertIn("keyword STOP", r.stdout)
        # START opts back in: replies go again. WhatsApp's timestamps are whole
        # seconds, and at equal times an opt-out wins (docs/sync-rules.md):
        # a START in the same second as the STOP would not count.
        time.sleep(1.1)
        self.customer_says("START")
        wait_for("the opt-in", lambda: self.events("contact.opted_in"))
        self.agent_replies("Welcome back")
        wait_for("the reply on WhatsApp", lambda: self.sent())

    def test_a_block_is_an_opt_out_of_whatsapp(self):
        self.customer_says("hi")
        wait_for("hi at the agent", lambda: self.agent_texts() == ["hi"])
        self.wa["north"].post("/_sandbox/block", {"wa_id": ANN})
        mid = self.agent_replies("hello?")
        failed = wait_for("a Failed receipt", lambda: [r for r in self.receipts(mid) if r["status"] == "Failed"])
        self.assertEqual(failed[0]["reasons"][0]["code"], "RecipientOptedOut")
        opted = wait_for("the opt-out", lambda: self.events("contact.opted_out"))
        self.assertEqual((opted[0]["payload"]["channel"], opted[0]["payload"]["actor"]), ("whatsapp", "carrier"))

    def test_two_tenants_side_by_side_never_mix(self):
        self.customer_says("north here", tenant="north")
        self.customer_says("south here", tenant="south", wa_id=BEN)
        wait_for("north's text", lambda: self.agent_texts("north") == ["north here"])
        wait_for("south's text", lambda: self.agent_texts("south", BEN) == ["south here"])
        self.assertEqual(self.agent_texts("south", ANN), [])
        self.assertEqual(self.agent_texts("north", BEN), [])
        self.agent_replies("hi south", tenant="south", wa_id=BEN)
        wait_for("south's reply", lambda: self.sent("south", BEN))
        self.assertEqual(self.sent("north", BEN), [])
        # A notification about south's number at north's URL: the number
        # chooses the tenant (one Meta app may post every number's to one
        # URL), and south's own app secret must verify it.
        def about(number, text):
            return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
                {"field": "messages", "value": {"metadata": {"phone_number_id": number,
                                                             "display_phone_number": TENANTS["south"]["display"]},
                 "messages": [{"from": BEN, "id": "wamid." + text, "timestamp": "1", "type": "text",
                               "text": {"body": text}}]}}]}]}).encode()
        for number, text, secret, answer_has in (
                (TENANTS["south"]["number_id"], "x", TENANTS["north"]["app_secret"], "does not match"),
                ("555000555", "y", TENANTS["north"]["app_secret"], "unknown_account"),
                (TENANTS["south"]["number_id"], "z", TENANTS["south"]["app_secret"], "accepted")):
            body = about(number, text)
            sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            status, _, answer = dfmtest.request("127.0.0.1", self.dfm.port, "POST", "/t/north/webhooks/whatsapp",
                                                body=body, headers={"Content-Type": "application/json",
                                                                    "X-Hub-Signature-256": sig})
            self.assertEqual(status, 200 if answer_has == "accepted" else 401, answer)
            self.assertIn(answer_has, answer.decode())
        wait_for("south's own notification, posted at north's URL, at south's agent",
                 lambda: self.agent_texts("south", BEN) == ["south here", "z"])
        self.assertEqual(self.agent_texts("north", BEN), [])
        # A Genesys reply signed with north's secret at south's URL.
        reply = json.dumps({"id": "g1", "type": "Text", "direction": "Outbound", "text": "x",
                            "channel": {"id": TENANTS["north"]["integration"], "to": {"id": BEN},
                                        "time": "2026-01-01T00:00:00.000Z"}}).encode()
        sig = "sha256=" + base64.b64encode(hmac.new(TENANTS["north"]["hook_secret"].encode(), reply,
                                                     hashlib.sha256).digest()).decode()
        status, _, answer = dfmtest.request("127.0.0.1", self.dfm.port, "POST", "/t/south/webhooks/genesys",
                                            body=reply, headers={"Content-Type": "application/json",
                                                                 "X-Hub-Signature-256": sig})
        self.assertEqual(status, 401, answer)
        # The tools show one tenant only.
        r = self.dfm.cli("events", "-c", self.dfm.config_path, "--tenant", "south", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn('"tenant":"north"', r.stdout)
        self.assertIn('"tenant":"south"', r.stdout)
        r = self.dfm.cli("conversations", "-c", self.dfm.config_path, "--tenant", "south", "--json", "--reveal")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        self.assertEqual([(x["tenant"], x["person"]) for x in rows], [("south", "+" + BEN)])

    def test_meta_verifies_the_callback_url(self):
        status, body = self.wa["north"].post("/_sandbox/verify", {})
        self.assertTrue(body["ok"], body)
        status, body = self.wa["north"].post("/_sandbox/verify", {"verify_token": "wrong"})
        self.assertEqual(body["status"], 403, body)
        self.assertEqual(self.dfm.webhooks(), [], "a handshake records nothing")

    def test_kill9_mid_conversation_loses_and_doubles_nothing(self):
        self.customer_says("before")
        wait_for("before at the agent", lambda: self.agent_texts() == ["before"])
        # Genesys and WhatsApp go down; messages both ways are acknowledged.
        self.gen["north"].post("/_sandbox/down", {"seconds": 3600})
        words = [f"m{i}" for i in range(8)]
        for w in words:
            self.customer_says(w)
        reply = self.agent_replies("answer while down")  # acknowledged; WhatsApp is up
        self.wa["north"].post("/_sandbox/down", {"seconds": 3600})
        self.agent_replies("second answer")
        time.sleep(1.0)
        self.dfm.kill9()
        self.gen["north"].post("/_sandbox/down", {"seconds": 0})
        self.wa["north"].post("/_sandbox/down", {"seconds": 0})
        self.dfm.start()
        wait_for("every message at the agent", lambda: len(self.agent_texts()) == 9, timeout=90)
        self.assertEqual(self.agent_texts(), ["before"] + words)
        # Each reply was tried while WhatsApp took requests and never answered
        # them, or once it was back. WhatsApp's sends have no idempotency, so
        # one left unanswered is not sent again (it may have gone): it is
        # dead-lettered, and an operator re-drives it.
        def settled():
            on_wa = len(self.sent())
            dead = [e for e in self.events("push.dead_lettered")
                    if e["payload"].get("op") == "send" and "no answer" in e["payload"].get("reason", "")]
            return on_wa + len(dead) >= 2
        wait_for("both replies sent or dead-lettered", settled, timeout=60)
        if len(self.sent()) < 2:
            r = self.dfm.cli("replay", "dead-letters", "--execute", "-c", self.dfm.config_path)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            wait_for("the replies re-driven", lambda: len(self.sent()) == 2, timeout=60)
        time.sleep(2)
        self.assertEqual(sorted(m["body"]["text"]["body"] for m in self.sent()),
                         ["answer while down", "second answer"], "each once")
        self.assertEqual(len(self.agent_texts()), 9)
        self.assertTrue(reply)

    def test_the_conversation_mapping_rebuilds_to_what_it_was(self):
        self.customer_says("hello", tenant="north")
        self.customer_says("hola", tenant="south", wa_id=BEN)
        wait_for("both at the agents", lambda: self.agent_texts("north") and self.agent_texts("south", BEN))
        r = self.dfm.cli("conversations", "-c", self.dfm.config_path, "--json")
        wait_for("two mappings", lambda: len([l for l in self.dfm.cli(
            "conversations", "-c", self.dfm.config_path, "--json").stdout.splitlines() if l.strip()]) == 2)
        before = self.dfm.cli("conversations", "-c", self.dfm.config_path, "--json").stdout
        conv = self.gen["north"].get("/_sandbox/conversations")[1][ANN]["id"]
        self.assertIn(conv, before)
        self.dfm.stop()
        r = self.dfm.cli("projections", "rebuild", "conversations", "-c", self.dfm.config_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        after = self.dfm.cli("conversations", "-c", self.dfm.config_path, "--json").stdout
        self.assertEqual(before, after)
        self.dfm.start()


    def test_a_tenant_added_on_sighup_without_dropping_requests_and_a_bad_reload_refused(self):
        east = dict(TENANTS["north"], number_id="300300300300", display="15550003333", wa_token="wa-east-token",
                    app_secret="wa-east-app-secret", verify="wa-east-verify", integration="int-east-0003",
                    client="gen-east", secret="gen-east-secret", hook_secret="gen-east-hook-secret")
        hook = f"http://127.0.0.1:{self.dfm.port}/t/east/webhooks/"
        self.wa["east"] = Sandbox("whatsapp", "wa-east", self.dir, [
            "--webhook-url", hook + "whatsapp", "--phone-number-id", east["number_id"],
            "--display-phone-number", east["display"], "--access-token", east["wa_token"],
            "--app-secret", east["app_secret"], "--verify-token", east["verify"]])
        self.gen["east"] = Sandbox("genesys", "gen-east", self.dir, [
            "--webhook-url", hook + "genesys", "--integration-id", east["integration"],
            "--client-id", east["client"], "--client-secret", east["secret"], "--webhook-secret", east["hook_secret"]])
        for s in (self.wa["east"], self.gen["east"]):
            s.start()
            self.sandboxes.append(s)
        # Before the reload, east is nobody: its URL answers 404.
        status, body = self.wa["east"].post("/_sandbox/inbound", {"from": BEN, "text": "too early", "wait": True})
        self.assertEqual(body["webhook"]["status"], 404, body)
        # North keeps talking while the configuration is read again.
        words = [f"w{i}" for i in range(30)]
        errors = []

        def talk():
            for w in words:
                st, b = self.wa["north"].post("/_sandbox/inbound", {"from": ANN, "text": w})
                if st != 200 or b["webhook"]["status"] != 200:
                    errors.append(b)
        import threading
        t = threading.Thread(target=talk)
        t.start()
        with open(self.dfm.config_path, "a") as f:
            f.write(tenant_config("east", east, self.wa["east"], self.gen["east"]))
        self.dfm.proc.send_signal(__import__("signal").SIGHUP)
        t.join()
        self.assertEqual(errors, [], "no request dropped during the reload")
        wait_for("east's URL taking webhooks", lambda: self.wa["east"].post(
            "/_sandbox/inbound", {"from": BEN, "text": "hello east"})[1]["webhook"]["status"] == 200)
        wait_for("east's text at its agent", lambda: "hello east" in self.agent_texts("east", BEN))
        self.agent_replies("hi from east", tenant="east", wa_id=BEN)
        wait_for("east's reply", lambda: self.sent("east", BEN))
        wait_for("north's 30 texts", lambda: len(self.agent_texts()) == 30, timeout=90)
        self.assertEqual(self.agent_texts(), words)
        # A bad configuration is refused whole: east and north stay as they were.
        with open(self.dfm.config_path) as f:
            good = f.read()
        with open(self.dfm.config_path, "w") as f:
            f.write(good.replace('[tenants.east.genesys]\n', '[tenants.east.genesys]\nrate_limit = "lots"\n'))
        with open(os.path.join(self.dfm.data_dir, "admin.token")) as f:
            token = f.read().strip()

        def reload():
            st, _, answer = dfmtest.request("127.0.0.1", self.dfm.admin_port, "POST", "/v1/admin/reload",
                                            body=b"", headers={"Authorization": "Bearer " + token})
            return st, json.loads(answer)
        st, answer = reload()
        self.assertEqual((st, answer["error"]), (422, "reload_refused"), answer)
        self.assertIn("tenants.east.genesys.rate_limit", answer["detail"])
        self.customer_says("still east", tenant="east", wa_id=BEN)
        wait_for("east still served", lambda: "still east" in self.agent_texts("east", BEN))
        # Changing where the service listens needs a restart: refused too.
        with open(self.dfm.config_path, "w") as f:
            f.write(good.replace("max_body_bytes = 65536", "max_body_bytes = 1000"))
        st, answer = reload()
        self.assertEqual(st, 422, answer)
        self.assertIn("server.max_body_bytes changes only with a restart", answer["detail"])
        with open(self.dfm.config_path, "w") as f:
            f.write(good)
        st, answer = reload()
        self.assertEqual(st, 200, answer)
        self.assertEqual(answer["summary"], "nothing changed")
        # A changed credential is used from the next request on: a token
        # WhatsApp refuses, then the right one again, without a restart.
        with open(self.dfm.config_path, "w") as f:
            f.write(good.replace('access_token = "wa-east-token"', 'access_token = "wa-east-revoked"'))
        st, answer = reload()
        self.assertEqual((st, answer["summary"]), (200, "systems changed: east/whatsapp"), answer)
        bad = self.agent_replies("with the old token", tenant="east", wa_id=BEN)
        wait_for("a Failed receipt", lambda: [r for r in self.receipts(bad, "east") if r["status"] == "Failed"])
        with open(self.dfm.config_path, "w") as f:
            f.write(good)
        self.assertEqual(reload()[0], 200)
        self.agent_replies("with the new token", tenant="east", wa_id=BEN)
        wait_for("the reply sent", lambda: [m for m in self.sent("east", BEN)
                                            if m["body"]["text"]["body"] == "with the new token"])


if __name__ == "__main__":
    base.main()
