#!/usr/bin/env python3
"""GET /metrics and the alerting rules with a real Prometheus (docs/metrics.md):
`dfm serve` between the four sandboxes, as in messages_e2e_test.py.

- The scrape passes `promtool check metrics` (Prometheus' naming lint),
  answers only on the admin listener, and carries no phone, name or text.
- A real Prometheus (Debian's) scrapes the service with the repository's
  alerts.yml loaded: the webhook, push and opt-out series arrive with the
  values the actions made, and every rule evaluates without error.
- A stopped sandbox shows in its connector's breaker, backlog and retries,
  and as "down" or "degraded" in /v1/health's services, and clears once it
  is back.
- On three nodes (ClusterMetricsTest), the same through one node's
  scope=cluster; any node answers for all three, a partition's families come
  from its node alone, and a node killed -9 shows only as silent.

Usage: metrics_e2e_test.py --dfm PATH [-k NAME]
"""
import json
import os
import shutil
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import clustertest  # noqa: E402
import dfmtest  # noqa: E402
import messages_e2e_test as messages  # noqa: E402
import sync_e2e_test as base  # noqa: E402
from sync_e2e_test import wait_for  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PHONE = "+12055550301"


def parse(text):
    """{(name, frozenset(labels)): value} of a Prometheus text scrape."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        if "{" in series:
            name, rest = series.split("{", 1)
            labels = frozenset(
                tuple(kv.split("=", 1)) for kv in
                (p for p in rest.rstrip("}").replace('"', "").split(",") if p))
        else:
            name, labels = series, frozenset()
        out[(name, labels)] = float(value)
    return out


def value(samples, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


class MetricsTest(unittest.TestCase):
    setUp = messages.MessagesTest.setUp
    events = messages.MessagesTest.events
    ghl_contact = messages.MessagesTest.ghl_contact
    verity_inbound = messages.MessagesTest.verity_inbound
    sms_dnd = messages.MessagesTest.sms_dnd
    alo_dnc = base.SyncTest.alo_dnc
    ghl_user_creates = base.SyncTest.ghl_user_creates

    def tearDown(self):
        if getattr(self, "prometheus", None):
            self.prometheus.terminate()
            self.prometheus.wait(timeout=30)
        messages.MessagesTest.tearDown(self)

    scope = None  # what Prometheus asks for: GET /metrics?scope=<scope>

    def scrape(self, port=None, scope=None):
        path = "/metrics" + (f"?scope={scope}" if scope else "")
        status, headers, body = dfmtest.request("127.0.0.1", port or self.dfm.admin_port, "GET", path)
        return status, headers, body.decode()

    def admin_ports(self):
        """Where Prometheus scrapes: every node of a cluster."""
        return [self.dfm.admin_port]

    def samples(self):
        """Every scraped node's samples, summed (a cluster's families are
        each node's: docs/scale-out.md, "Health and metrics")."""
        total = {}
        for port in self.admin_ports():
            status, _, text = self.scrape(port, self.scope)
            self.assertEqual(status, 200)
            for k, v in parse(text).items():
                total[k] = total.get(k, 0) + v
        return total

    def test_scrape_is_lint_clean_admin_only_and_without_personal_data(self):
        self.ghl_contact(PHONE, firstName="Ada", lastName="Lovelace", email="ada@example.com")
        self.verity_inbound(PHONE, "running late, see you soon")
        self.verity_inbound(PHONE, "STOP")
        wait_for("GHL SMS DND", lambda: self.sms_dnd(PHONE) == "active")
        scrapes = [(port, scope) for port in self.admin_ports() for scope in {self.scope, "node", "cluster"}]
        for port, scope in scrapes:
            status, headers, text = self.scrape(port, scope)
            self.assertEqual(status, 200)
            self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
            lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                                  text=True)
            self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
            for pii in ("2055550301", "Lovelace", "ada@example", "running late", "Ada"):
                self.assertNotIn(pii, text)
        # Not on the public listener, not by POST, not for a scope it lacks.
        self.assertEqual(self.scrape(self.dfm.port)[0], 404)
        self.assertEqual(self.scrape(self.dfm.admin_port, "everything")[0], 400)
        self.assertEqual(dfmtest.request("127.0.0.1", self.dfm.admin_port, "POST", "/metrics",
                                         body=b"")[0], 405)

    def test_a_real_prometheus_scrapes_the_series_and_evaluates_the_rules(self):
        # A webhook with a wrong signature; a contact; a STOP that reaches
        # GoHighLevel and Aloware.
        status, _, _ = dfmtest.request(
            "127.0.0.1", self.dfm.port, "POST", "/webhooks/verity", body=b"{}",
            headers={"Content-Type": "application/json", "X-Verity-Signature": "t=1,v1=00"})
        self.assertEqual(status, 401)
        self.ghl_contact(PHONE)
        self.verity_inbound(PHONE, "STOP")
        wait_for("GHL SMS DND", lambda: self.sms_dnd(PHONE) == "active")
        wait_for("Aloware DNC", lambda: self.alo_dnc(PHONE))

        work = os.path.join(self.dir, "prometheus")
        os.makedirs(work)
        shutil.copy(os.path.join(ROOT, "etc", "prometheus", "alerts.yml"), work)
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: dfm
    params: {json.dumps({"scope": [self.scope]} if self.scope else {})}
    static_configs:
      - targets: {json.dumps([f"127.0.0.1:{p}" for p in self.admin_ports()])}
""")
        port = dfmtest.free_port()
        with open(os.path.join(work, "log"), "wb") as log:
            self.prometheus = subprocess.Popen(
                ["prometheus", "--config.file", os.path.join(work, "prometheus.yml"),
                 "--storage.tsdb.path", os.path.join(work, "data"),
                 "--web.listen-address", f"127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT)

        def query(q):
            try:
                status, _, body = dfmtest.request(
                    "127.0.0.1", port, "GET", "/api/v1/query?query=" + urllib.parse.quote(q))
            except OSError:
                return None
            if status != 200:
                return None
            result = json.loads(body)["data"]["result"]
            return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in result}

        def one(q):
            r = query(q)
            return list(r.values())[0] if r else None

        wait_for("dfm up in Prometheus", lambda: one('min(up{job="dfm"})') == 1
                 and one('count(up{job="dfm"})') == len(self.admin_ports()), timeout=60)
        self.assertEqual(one('sum(dfm_webhooks_total{system="verity",tenant="default",'
                             'outcome="unauthorized"})'), 1)
        self.assertGreaterEqual(one('sum(dfm_webhooks_total{outcome="accepted"})'), 3)
        self.assertEqual(one('sum(dfm_pushes_total{system="ghl",op="opt_out",outcome="succeeded"})'), 1)
        self.assertEqual(one('sum(dfm_opt_out_propagation_seconds_count)'), 2, "GHL and Aloware")
        self.assertGreaterEqual(one('sum(dfm_pushes_total{system="aloware",outcome="succeeded"})'), 2)
        self.assertEqual(one('max(dfm_opt_out_oldest_undelivered_seconds)'), 0)
        self.assertGreater(one('sum(dfm_event_append_duration_seconds_count)'), 0)
        self.assertGreater(one('sum(dfm_event_log_commit_duration_seconds_count)'), 0)
        self.assertGreater(one('sum(dfm_event_log_disk_bytes)'), 0)
        self.assertEqual(one('min(dfm_sync_enabled)'), 1)

        def rules():
            status, _, body = dfmtest.request("127.0.0.1", port, "GET", "/api/v1/rules")
            groups = json.loads(body)["data"]["groups"] if status == 200 else []
            return [r for g in groups for r in g["rules"] if r.get("lastEvaluation", "").startswith("2")
                    and not r["lastEvaluation"].startswith("0001")]
        with open(os.path.join(ROOT, "etc", "prometheus", "alerts.yml")) as f:
            count = sum(1 for line in f if line.strip().startswith("- alert:"))
        evaluated = wait_for("every rule evaluated", lambda: (lambda rs: rs if len(rs) == count else None)(
            rules()), timeout=30)
        self.assertEqual([r["name"] for r in evaluated if r["health"] != "ok"], [])
        self.assertEqual([r["name"] for r in evaluated if r["state"] != "inactive"], [],
                         "nothing is wrong, so nothing fires")

    def test_a_stopped_sandbox_shows_in_breaker_backlog_and_retries_then_clears(self):
        self.alo.stop()
        for i in range(3):
            self.ghl_user_creates("+1205555031%d" % i)
        key = dict(tenant="default", system="aloware")
        s = wait_for("breaker open", lambda: (lambda s: s if value(
            s, "dfm_connector_breaker_open", **key) == 1 else None)(self.samples()))
        self.assertEqual(value(s, "dfm_connector_pushes_held", **key), 3)
        self.assertGreater(value(s, "dfm_push_attempts_total", outcome="retry", **key), 0)
        self.assertEqual(value(s, "dfm_pushes_total", outcome="succeeded", **key), 0)
        # A cluster's health page shows what the partition's node last said,
        # up to a second after the breaker the scrape just read.
        wait_for("Aloware down on the health page",
                 lambda: self.services()["default/aloware"] in ("down", "degraded"), timeout=10)
        self.assertEqual(self.services()["default/ghl"], "connected")
        self.alo.start()
        # One scrape is not a snapshot: the counter and the gauge are read
        # apart, so the last push may count as succeeded while still held.
        s = wait_for("all delivered, none held", lambda: (lambda s: s if value(
            s, "dfm_pushes_total", outcome="succeeded", op="upsert", **key) == 3 and value(
                s, "dfm_connector_pushes_held", **key) == 0 else None)(
                self.samples()), timeout=90)
        wait_for("breaker closed", lambda: value(
            self.samples(), "dfm_connector_breaker_open", **key) == 0)
        self.assertGreater(value(s, "dfm_connector_last_success_timestamp_seconds", **key),
                           time.time() - 120)
        wait_for("Aloware connected on the health page",
                 lambda: self.services()["default/aloware"] == "connected", timeout=10)
        self.assertEqual(self.services()["event_log"], "connected")

    def services(self):
        status, _, body = dfmtest.request("127.0.0.1", self.dfm.admin_port, "GET", "/v1/health")
        self.assertEqual(status, 200)
        return json.loads(body)["services"]


class ClusterMetricsTest(clustertest.OnACluster, MetricsTest):
    """The same against three nodes on NATS behind nginx (issue 48), one
    node scraped for the whole cluster (scope=cluster): one that does not
    run the default tenant's partition."""

    binary = staticmethod(lambda: base.DFM)
    scope = "cluster"

    def admin_ports(self):
        if not getattr(self, "answering", None):
            home = self.dfm.owners()[self.dfm.home()]
            self.answering = [n for i, n in enumerate(self.dfm.nodes) if f"node{i}" != home][0]
        return [self.answering.admin_port]

    def cluster_view(self, node):
        status, _, text = self.scrape(node.admin_port, "cluster")
        self.assertEqual(status, 200)
        return parse(text)

    def test_any_node_answers_for_every_node_and_a_dead_one_shows(self):
        nodes = {f"node{i}" for i in range(len(self.dfm.nodes))}

        def owned(s):
            return {dict(ls)["partition"]: dict(ls)["node"] for (n, ls), v in s.items()
                    if n == "dfm_cluster_partition_owned" and v == 1}

        def whole(s):
            connected = {dict(ls)["node"] for (n, ls), v in s.items()
                         if n == "dfm_cluster_nats_connected" and v == 1}
            return s if connected == nodes and len(owned(s)) == self.dfm.partitions else None

        for node in self.dfm.nodes:  # any node answers for all three
            s = wait_for("every node and partition", lambda: whole(self.cluster_view(node)))
        # A partition's own families come from its node alone.
        lag_from = {dict(ls)["partition"]: dict(ls)["node"] for (n, ls) in s
                    if n == "dfm_cluster_partition_sync_lag"}
        self.assertEqual(lag_from, owned(s))
        home = str(self.dfm.home())
        victim = owned(s)[home]
        self.dfm.kill9()
        survivor = [n for i, n in enumerate(self.dfm.nodes) if f"node{i}" != victim][0]

        def dead_shows(s):
            moved = owned(s).get(home) not in (None, victim)
            return s if moved and value(s, "dfm_cluster_node_metrics_age_seconds", node=victim) > 10 else None
        s = wait_for("the dead node silent, its partition on a live one",
                     lambda: dead_shows(self.cluster_view(survivor)), timeout=60)
        self.assertEqual([n for (n, ls) in s if dict(ls).get("node") == victim and
                          n != "dfm_cluster_node_metrics_age_seconds"], [], "only its silence")


if __name__ == "__main__":
    base.main()
