#!/usr/bin/env python3
"""Cluster mode end to end on loopback (docs/scale-out.md): three
nats-server processes with JetStream, three `dfm serve` nodes, nginx in
front of them, and the GoHighLevel and Verity sandboxes posting through
nginx.

Under load (Verity texts for six tenants, spread over the partitions), a
dfm node is killed with -9 (the one running the default tenant's
partition), then, separately, a NATS server. Then:

- every webhook answered 2xx is in its partition's log exactly once (read
  back with `dfm cluster pull`, chains checked with `dfm log verify`);
- no partition was written by two nodes at once (the lease revision each
  frame of the replicated log carries never goes back), even by a node
  paused (SIGSTOP) past its lease and woken up;
- nobody who texted STOP is texted afterwards, and each text asked of a
  person who did not is sent exactly once;
- the sync resumes after each failure within a bound; the time is
  measured and printed;
- the tools work on the pulled copies (`dfm events` lists the webhooks,
  `dfm trace` tells a STOP's story, the opt-out audit lists every STOP,
  projections rebuild), and /metrics shows ownership and lag and passes
  `promtool check metrics`;
- a node that leaves (SIGTERM) hands its partitions over, and one that
  joins takes its share, without a restart of the others;
- a rolling upgrade under load (each node in turn stopped and started
  from the new binary) loses, doubles and misdirects nothing of the above.

Usage: cluster_test.py --dfm PATH [--seconds N]
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import clustertest as ct  # noqa: E402
import dfmtest as t  # noqa: E402
from sync_e2e_test import GHL_PUBLIC_KEY, Sandbox, wait_for  # noqa: E402

TENANTS = ["default", "t1", "t2", "t3", "t4", "t5"]
SECRET = {tn: (t.VERITY_SECRET if tn == "default" else f"{tn}-verity-secret-0123456789abcdef")
          for tn in TENANTS}
VERITY_KEY = "cluster-verity-key"


def verity_text(message_id, phone, text):
    doc = json.loads(t.fixture("verity/message.received.json"))
    doc["messageId"] = message_id
    doc["from"] = phone
    doc["body"] = text
    doc["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return json.dumps(doc).encode()


def post_text(port, tenant, message_id, phone, text, conn=None):
    body = verity_text(message_id, phone, text)
    path = "/webhooks/verity" if tenant == "default" else f"/t/{tenant}/webhooks/verity"
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        resp, answer = t.post_json(conn, path, body, {
            "Content-Type": "application/json",
            "X-Texting-Signature": t.verity_signature(body, SECRET[tenant])})
        return resp.status, answer
    finally:
        if own:
            conn.close()


class Load:
    """Threads posting texts for every tenant through nginx; a text whose
    answer was lost is sent again with the same id, as Verity would."""

    def __init__(self, port, threads=4):
        self.port = port
        self.acked = set()  # (tenant, message id)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.n = 0
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def run(self, i):
        rng = random.Random(i)
        conn, pending = None, None
        while not self.stop.is_set():
            if pending is None:
                with self.lock:
                    self.n += 1
                    n = self.n
                pending = (rng.choice(TENANTS), f"load-{n}", "+1205557%04d" % rng.randrange(300))
            tenant, mid, phone = pending
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                status, _ = post_text(self.port, tenant, mid, phone, "hello there", conn)
                if status == 200:
                    with self.lock:
                        self.acked.add((tenant, "message.received:" + mid))
                    pending = None
                else:
                    time.sleep(0.05)
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
            time.sleep(0.005)


def health(node):
    status, _, body = t.request("127.0.0.1", node.port, "GET", "/v1/health", timeout=5)
    return json.loads(body)["parts"]["cluster"] if status == 200 else None


def show_cluster_log(nodes, lines=60):
    """Prints each node's last warnings and errors: what a failed CI run
    leaves to read (the work folder is gone with the machine)."""
    for i, n in enumerate(nodes):
        try:
            with open(n.log_path, errors="replace") as f:
                bad = [ln.rstrip() for ln in f if re.search(r" (warning|error|critical) \[", ln)]
        except OSError:
            continue
        print(f"--- node{i}: last {min(lines, len(bad))} of {len(bad)} warnings and errors", flush=True)
        for ln in bad[-lines:]:
            print(ln[:400], flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dfm", required=True)
    ap.add_argument("--seconds", type=float, default=6, help="load between the failures")
    args = ap.parse_args()
    failures = []
    work = t.tempdir()
    # The NATS servers as production runs them: TLS both ways with a CA made
    # here, and a user and password (issue 48).
    nats = ct.NatsCluster(work, secure=True)
    os.environ.update(ct.cluster_env(nats))  # for the nodes and every dfm command run here
    extra = "".join(f'[tenants.{tn}.verity]\nwebhook_secret = "{SECRET[tn]}"\n' for tn in TENANTS[1:])
    nodes = []
    for i in range(3):
        d = os.path.join(work, f"node{i}")
        os.makedirs(d)
        nodes.append(t.Dfm(args.dfm, d, extra_config=(
            f'[ghl]\ned25519_public_key_file = "{GHL_PUBLIC_KEY}"\nlocation_id = "loc_sandbox"\n' + extra +
            ct.cluster_config(nats, f"node{i}", lease_ttl_s=4) + '[sync]\ncontact_idle_s = 5\n')))
    nginx = ct.ClusterNginx(work, [n.port for n in nodes])
    hook = f"http://127.0.0.1:{nginx.port}/webhooks/"
    ghl = Sandbox("ghl", work, ["--webhook-url", hook + "ghl", "--conversation-provider-id", "prov"])
    verity = Sandbox("verity", work, ["--webhook-url", hook + "verity",
                                      "--webhook-secret", t.VERITY_SECRET, "--api-key", VERITY_KEY])
    env = {"DFM_GHL_API_BASE_URL": ghl.url, "DFM_GHL_LOCATION_ID": "loc_sandbox",
           "DFM_GHL_ACCESS_TOKEN": "sandbox-ghl-token", "DFM_GHL_CONVERSATION_PROVIDER_ID": "prov",
           "DFM_VERITY_API_BASE_URL": verity.url, "DFM_VERITY_CONTACTS_API": "true",
           "DFM_VERITY_API_KEY": VERITY_KEY}
    for system in ("GHL", "VERITY"):
        env[f"DFM_{system}_RATE_LIMIT"] = "2000"
        env[f"DFM_{system}_RETRY_BASE_MS"] = "100"
        env[f"DFM_{system}_RETRY_MAX_MS"] = "1000"
        env[f"DFM_{system}_BREAKER_OPEN_MS"] = "1000"
    load = None
    try:
        nats.start()
        ghl.start()
        verity.start()
        for n in nodes:
            n.start(timeout=90, env_extra=env)
        nginx.start()
        wait_for("every partition owned, two by each node", lambda: all(
            (h := health(n)) and len(h["nodes"]) == 3 and
            sorted(p["owner"] for p in h["partitions"]).count(f"node{i}") == 2
            for i, n in enumerate(nodes)), timeout=60)

        # People GoHighLevel knows, texted later through its conversation provider.
        people = ["+1205558%04d" % i for i in range(12)]
        ids = {}
        for i, phone in enumerate(people):
            status, body = ghl.post("/_sandbox/contacts", {"firstName": f"P{i}", "phone": phone})
            assert status in (200, 201), body
            ids[phone] = body["contact"]["id"]
        wait_for("the people in Verity", lambda: len(
            {c.get("phone") for c in verity.contacts() if c.get("phone") in people}) == len(people), timeout=90)

        stopped, texted, deliveries, maybe = set(), {}, {}, {}

        def stop_and_text(stop, text):
            for phone in stop:
                # Retried until answered 2xx, as Verity retries.
                deadline, status, answer = time.time() + 60, None, None
                while status != 200 and time.time() < deadline:
                    try:
                        status, answer = post_text(nginx.port, "default", f"stop-{phone}", phone, "STOP")
                    except (OSError, http.client.HTTPException) as e:
                        status, answer = None, e
                    if status != 200:
                        time.sleep(0.2)
                assert status == 200, (status, answer)
                stopped.add(phone)
            for phone in text:
                # Asked again until GoHighLevel's request to text
                # (ProviderOutboundMessage) was answered 2xx, as a person
                # whose text failed sends it again. Each retry is a new
                # message: one answered 5xx that was stored all the same (its
                # publish unanswered for the engine's whole retry budget,
                # cluster/publish_retry.h) is then texted too, so such answers
                # are counted as "maybe sent".
                deadline = time.time() + 60
                while True:
                    status, body = ghl.post("/_sandbox/provider-outbound", {
                        "contactId": ids[phone], "message": f"Hello {phone[-4:]}", "type": "SMS"})
                    assert status == 200, body
                    answered = (body.get("delivery") or {}).get("status")
                    deliveries.setdefault(phone, []).append(answered)
                    if answered == 200 or time.time() > deadline:
                        break
                    maybe[phone] = maybe.get(phone, 0) + 1
                    time.sleep(0.5)
                texted[phone] = texted.get(phone, 0) + 1

        def texts_to(phone):
            return [m for m in verity.get("/_sandbox/messages")[1]
                    if m["direction"] == "outbound" and m["to"] == phone]

        r = nodes[0].cli("cluster", "partition", "-c", nodes[0].config_path, "default")
        assert r.returncode == 0, r.stderr
        home_partition = int(r.stdout)

        def default_owner():
            """The node running the default tenant's partition, once one does."""
            return wait_for("an owner of the default tenant's partition", lambda: next(
                (p["owner"] for p in (health(nodes[0]) or {"partitions": []})["partitions"]
                 if p["partition"] == home_partition and p["owner"]), None), timeout=60)

        load = Load(nginx.port)
        for th in load.threads:
            th.start()
        stop_and_text(people[0:3], people[0:6])
        wait_for("texts to those who did not stop", lambda: all(texts_to(p) for p in people[3:6]), timeout=60)
        time.sleep(args.seconds / 2)

        # 1. kill -9 the node running the default tenant's partition.
        owner = default_owner()
        victim = nodes[int(owner[-1])]
        killed = time.time()
        victim.kill9()
        stop_and_text(people[6:7], people[6:8])
        wait_for("the text after the node died", lambda: texts_to(people[7]), timeout=60)
        node_failover = time.time() - killed
        print(f"dfm node {owner} killed: the sync texted again after {node_failover:.1f} s", flush=True)
        time.sleep(args.seconds / 2)
        victim.start(timeout=90, env_extra=env)

        # 2. kill -9 a NATS server (the rest keep a quorum).
        killed = time.time()
        nats.kill9(1)
        stop_and_text(people[8:9], people[8:10])
        try:
            wait_for("the text after a NATS server died", lambda: texts_to(people[9]), timeout=90)
        except AssertionError:
            raise AssertionError("no text after a NATS server died; GoHighLevel's request to send it "
                                 f"was answered {deliveries.get(people[9])}")
        nats_failover = time.time() - killed
        print(f"NATS server n1 killed: the sync texted again after {nats_failover:.1f} s", flush=True)
        time.sleep(args.seconds / 2)
        nats.start(1)

        # 3. A node paused past its lease (SIGSTOP: a long GC pause, a VM
        # frozen) wakes up still believing it holds the partition: its
        # next write is refused by the stream (fenced), and the others
        # carried on meanwhile.
        paused = nodes[int(default_owner()[-1])]
        paused.proc.send_signal(signal.SIGSTOP)
        stop_and_text([], people[10:11])
        wait_for("the text while a node was paused", lambda: texts_to(people[10]), timeout=60)
        paused.proc.send_signal(signal.SIGCONT)
        stop_and_text([], people[11:12])
        time.sleep(args.seconds / 2)

        # 4. A rolling upgrade (docs/scale-out.md, "Upgrades"): one node at a
        # time stopped (SIGTERM), its partitions taken over, started again
        # from the new binary (a copy under another path stands for it) and
        # given its share back before the next; the load and the texts go on.
        upgraded = os.path.join(work, "dfm-next")
        shutil.copy2(args.dfm, upgraded)
        rolled = time.time()
        for i, n in enumerate(nodes):
            other = nodes[(i + 1) % 3]
            asked = time.time()
            if n.stop() != 0:
                failures.append(f"node{i} did not exit 0 on SIGTERM during the upgrade")
            print(f"node{i} stopped {time.time() - asked:.1f} s after SIGTERM", flush=True)
            wait_for(f"node{i}'s partitions taken over", lambda i=i, other=other: (h := health(other)) and all(
                p["owner"] and p["owner"] != f"node{i}" for p in h["partitions"]), timeout=30)
            stop_and_text([], people[3:4])  # texted while node i is away
            n.binary = upgraded
            n.start(timeout=90, env_extra=env)
            # The procedure's step 3: the node back in the cluster and every
            # partition owned (under this load the lag is never still at 0;
            # the node's share may come back later).
            wait_for(f"node{i} back, every partition owned",
                     lambda i=i, other=other: (h := health(other)) and len(h["nodes"]) == 3 and all(
                         p["owner"] for p in h["partitions"]), timeout=90)
        print(f"rolling upgrade of 3 nodes under load: {time.time() - rolled:.1f} s", flush=True)
        load.stop.set()
        for th in load.threads:
            th.join(timeout=30)
        print(f"{len(load.acked)} webhooks acknowledged under load", flush=True)

        def behind():
            """Partitions not yet caught up, as each node reports them."""
            late = []
            for i, n in enumerate(nodes):
                h = health(n)
                if not h:
                    late.append(f"node{i}: no health")
                    continue
                late += [f"node{i} sees p{p['partition']} owner={p['owner']} lag={p.get('lag')}"
                         for p in h["partitions"] if p.get("lag", 1) != 0 or not p["owner"]]
            return late

        try:
            wait_for("every partition caught up", lambda: not behind(), timeout=120)
        except AssertionError:
            raise AssertionError(f"partitions not caught up after 120 s: {behind()}")
        # Every request texted: a webhook taken just before the last
        # handover is decided seconds later, after "caught up" above.
        wait_for("a text per request to everyone who did not stop", lambda: all(
            len(texts_to(p)) >= n for p, n in texted.items() if p not in stopped), timeout=90)
        time.sleep(2)  # anything late would show now

        # Nobody who stopped was texted; everyone else once per request
        # (and at most once per request answered 5xx: see stop_and_text).
        for phone, n in sorted(texted.items()):
            got = len(texts_to(phone))
            want = 0 if phone in stopped else n
            extra = 0 if phone in stopped else maybe.get(phone, 0)
            if not want <= got <= want + extra:
                failures.append(f"{phone}: {got} texts sent, {want} expected "
                                f"(GoHighLevel's requests answered {deliveries.get(phone)})")
            elif got > want:
                print(f"{phone}: a request answered 5xx was stored and texted "
                      f"(answers {deliveries.get(phone)})", flush=True)

        # The logs: exactly once, single writer, chains intact.
        pull_dir = os.path.join(work, "pull")
        r = nodes[0].cli("cluster", "pull", "-c", nodes[0].config_path, "--into", pull_dir, "--json")
        if r.returncode != 0:
            failures.append("dfm cluster pull: " + r.stdout[-2000:] + r.stderr[-2000:])
        seen, pushes = {}, {}
        for line in r.stdout.splitlines():
            part = json.loads(line)
            if "overlap" in part:
                failures.append(f"partition {part['partition']}: {part['overlap']}")
            v = nodes[0].cli("log", "verify", "-d", part["dir"], "--json")
            if v.returncode != 0:
                failures.append(f"partition {part['partition']}: " + v.stdout + v.stderr)
            d = nodes[0].cli("log", "dump", "-d", part["dir"], "--with-body")
            for e in (json.loads(x) for x in d.stdout.splitlines() if x.strip()):
                if e["type"] == "webhook.received" and e["payload"]["system"] == "verity":
                    key = (e["tenant"], e["payload"]["provider_event_id"])
                    seen[key] = seen.get(key, 0) + 1
                elif e["type"] == "push.succeeded":
                    pid = e.get("payload", {}).get("push_id")
                    pushes[pid] = pushes.get(pid, 0) + 1
        # The tools on the default tenant's copy: its opt-out audit lists
        # every STOP, and its projections rebuild from it.
        r = nodes[0].cli("cluster", "partition", "-c", nodes[0].config_path, "default")
        home = os.path.join(pull_dir, "p%03d" % int(r.stdout))
        audit = nodes[0].cli("audit", "opt-outs", "-d", home, "--format", "json")
        for phone in stopped:
            if phone not in audit.stdout:
                failures.append(f"dfm audit opt-outs on the pulled log does not list {phone}")
        listed = nodes[0].cli("events", "-d", home, "--type", "webhook.received", "--json")
        if listed.returncode != 0 or len(listed.stdout.splitlines()) < len(stopped):
            failures.append("dfm events on the pulled log: " + listed.stderr[-500:])
        someone = sorted(stopped)[0]
        story = nodes[0].cli("trace", someone, "-d", home, "--reveal")
        if story.returncode != 0 or "opt" not in story.stdout.lower():
            failures.append(f"dfm trace {someone} on the pulled log tells no opt-out: "
                            + story.stdout[-500:] + story.stderr[-500:])
        rebuild = nodes[0].cli("projections", "rebuild", "-d", home)
        if rebuild.returncode != 0:
            failures.append("dfm projections rebuild on the pulled log: " + rebuild.stderr[-500:])
        # /metrics: ownership and lag, and it passes Prometheus' lint.
        _, _, text = t.request("127.0.0.1", nodes[0].admin_port, "GET", "/metrics")
        text = text.decode()
        owned = [ln for ln in text.splitlines() if ln.startswith("dfm_cluster_partition_owned{")]
        if len(owned) != 6 or "dfm_cluster_partition_lag{" not in text:
            failures.append("/metrics lacks the partitions' ownership or lag")
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        if lint.returncode != 0:
            failures.append("promtool check metrics: " + lint.stdout + lint.stderr)

        lost = [k for k in load.acked if seen.get(k, 0) == 0]
        doubled = [k for k, c in seen.items() if c > 1]
        if lost:
            failures.append(f"{len(lost)} acknowledged webhooks missing, e.g. {lost[:3]}")
        if doubled:
            failures.append(f"{len(doubled)} webhooks in a log twice, e.g. {doubled[:3]}")
        twice = [p for p, c in pushes.items() if c > 1]
        if twice:
            failures.append(f"{len(twice)} pushes succeeded twice, e.g. {twice[:3]}")

        # A node leaves: the others take its partitions. It comes back: it
        # gets its share again. Nobody else restarts.
        left = time.time()
        if nodes[2].stop() != 0:
            failures.append("node2 did not exit 0 on SIGTERM")
        wait_for("node2's partitions taken over", lambda: (h := health(nodes[0])) and all(
            p["owner"] in ("node0", "node1") for p in h["partitions"]), timeout=30)
        print(f"node2 left: its partitions moved in {time.time() - left:.1f} s", flush=True)
        nodes[2].start(timeout=90, env_extra=env)
        wait_for("node2 holding its share again", lambda: (h := health(nodes[0])) and sorted(
            p["owner"] for p in h["partitions"]).count("node2") == 2, timeout=60)
        print(f"FAILOVER node_kill_s={node_failover:.1f} nats_kill_s={nats_failover:.1f}", flush=True)
    except BaseException:
        failures.append("the scenario stopped on an exception (above)")
        show_cluster_log(nodes)
        raise
    finally:
        if load:
            load.stop.set()
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.proc.kill()
        nginx.stop()
        ghl.stop()
        verity.stop()
        nats.stop()
        if os.environ.get("DFM_KEEP_TEST_DIRS") or failures:
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print("FAIL: " + f, flush=True)
    print("PASS" if not failures else f"{len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
