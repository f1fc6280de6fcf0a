#!/usr/bin/env python3
"""(l) Opt-out precision and recall on the labelled corpus
(tests/fixtures/classifier/corpus.tsv): the keyword rule alone, and the
keyword rule with the classifier's second opinion on what it flags.

Starts `dfm serve` and the OpenAI-compatible sandbox on loopback, posts each
text as an inbound Twilio message from its own number, waits until every
flagged text has its verdict (consent.classified) or gave up, and reads the
log: a number with contact.opted_out is predicted opt_out. The sandbox's
model is a deterministic stand-in, so the figure measures the pipeline and
that stand-in, not a real model: with a real endpoint, set
DFM_OPENAI_API_BASE_URL, DFM_OPENAI_API_KEY and DFM_OPENAI_MODEL.

Usage: bench/classifier_corpus.py [--dfm build/release/app/dfm]
"""
import argparse
import os
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import dfmtest  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import Sandbox, wait_for  # noqa: E402

CORPUS = os.path.join(ROOT, "tests", "fixtures", "classifier", "corpus.tsv")


def corpus():
    rows = []
    with open(CORPUS, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            label, text = line.rstrip("\n").split("\t", 1)
            rows.append((label, text))
    return rows


def post_twilio(port, sid, phone, text):
    form = urllib.parse.urlencode({"MessageSid": sid, "From": phone, "To": "+12055550100",
                                   "Body": text, "SmsStatus": "received"}).encode()
    url = f"http://127.0.0.1:{port}/webhooks/twilio"
    status, _, answer = dfmtest.request("127.0.0.1", port, "POST", "/webhooks/twilio", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Host": f"127.0.0.1:{port}",
        "X-Twilio-Signature": dfmtest.twilio_signature(url, form)})
    assert status == 200, answer


def measure(dfm, rows, first_phone=5550000):
    """Posts the rows; returns (keyword-only, combined) as (precision, recall, tp, fp, fn)."""
    phones = {}
    for i, (label, text) in enumerate(rows):
        phone = "+1205%07d" % (first_phone + i)
        phones[phone] = (label, text)
        post_twilio(dfm.port, "SMcorpus%06d" % i, phone, text)

    def events():
        return dfm.dump(with_body=True)

    # Settled: every webhook decided (each text's number has a contact) and
    # every classify push answered or given up, and nothing new for a second.
    last = {"n": -1, "since": 0.0}

    def settled():
        ev = events()
        contacts = {e["payload"].get("fields", {}).get("phone") for e in ev
                    if e["type"] in ("contact.created", "contact.opt_out_flagged", "contact.opted_out")}
        flagged = {e["payload"].get("push_id") for e in ev
                   if e["type"] == "push.requested" and e["payload"].get("op") == "classify"}
        done = {e["payload"].get("push_id") for e in ev if e["type"] in ("consent.classified", "push.dead_lettered")}
        if not (set(phones) <= contacts or len(ev) > 0) or not flagged <= done:
            return None
        if len(ev) != last["n"]:
            last["n"], last["since"] = len(ev), time.time()
            return None
        return ev if time.time() - last["since"] >= 1.0 else None

    ev = wait_for("every flagged text answered", settled, timeout=120)
    by_contact = {}
    for e in ev:
        p = e["payload"]
        if e["type"] == "contact.opted_out":
            by_contact.setdefault(p.get("fields", {}).get("phone"), []).append(p.get("reason", ""))

    def score(predict):
        tp = fp = fn = 0
        for phone, (label, _) in phones.items():
            yes = predict(by_contact.get(phone, []))
            tp += yes and label == "opt_out"
            fp += yes and label != "opt_out"
            fn += (not yes) and label == "opt_out"
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        return precision, recall, tp, fp, fn

    # The keyword rule's own statements; later ones (the systems' echoes of a
    # classifier's opt-out) are not the rule's.
    keyword = score(lambda reasons: any(r.startswith(("keyword ", "OptOutType ")) for r in reasons))
    combined = score(lambda reasons: bool(reasons))
    return keyword, combined


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dfm", default=os.path.join(ROOT, "build", "release", "app", "dfm"))
    args = ap.parse_args()
    workdir = dfmtest.tempdir()
    dfm = dfmtest.Dfm(os.path.abspath(args.dfm), workdir)
    model = Sandbox("openai", workdir, [])
    model.start()
    env = {"DFM_OPENAI_API_BASE_URL": model.url + "/v1", "DFM_OPENAI_API_KEY": "sk-sandbox",
           "DFM_OPENAI_SEND_MESSAGE_BODY": "true"}
    env.update({k: v for k, v in os.environ.items() if k.startswith("DFM_OPENAI_")})
    dfm.start(env_extra=env)
    try:
        rows = corpus()
        t0 = time.time()
        keyword, combined = measure(dfm, rows)
        n_out = sum(1 for label, _ in rows if label == "opt_out")
        print(f"corpus: {len(rows)} texts, {n_out} opt-outs ({time.time() - t0:.1f} s)")
        for name, (p, r, tp, fp, fn) in (("keyword rule", keyword), ("keyword + classifier", combined)):
            print(f"{name:22s} precision {p:.3f}  recall {r:.3f}  (tp {tp}, fp {fp}, fn {fn})")
    finally:
        base.tear_down(dfm, workdir, (model,))


if __name__ == "__main__":
    main()
