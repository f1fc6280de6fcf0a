#!/usr/bin/env python3
"""Benchmark (m): cluster mode (docs/scale-out.md) against the embedded
default, on this machine's two shared cores.

  bench/cluster_bench.py [--seconds 8] [--rounds 3] [--connections 16] [--nodes 0,1,2,3]
                         [--dfm PATH]
  bench/cluster_bench.py --idle [--seconds 8] [--rounds 3] [--dfm PATH]

Each round runs, one after the other, with the sync on and nginx in front:
- embedded: one `dfm serve`, RocksDB only;
- cluster 1, 2, 3: that many dfm nodes on a three-server NATS JetStream
  cluster (every stream with three replicas), six partitions.
The load is bench/ingest_client, closed loop, one process per tenant (six
tenants, so the partitions spread over the nodes), CONNECTIONS each. For
each run: webhooks acknowledged per second; the time after the load until
every webhook is in its partition's log and decided by its sync; and CPU per webhook,
dfm's and NATS's apart, over the load and that drain. As every process
shares the same two cores, more nodes cannot add throughput here: the
figure that carries to real machines is CPU per webhook, and from it the
projected rate of one node with two cores of its own.
NATS's messages per webhook are counted too (each server's monitoring
port): those dfm's connections sent, those the servers sent each other
(replication, and requests and answers forwarded to a stream's leader),
and those the ingest streams and logs hold.
Then the failover time (not with --no-failover): three nodes under a light open load (100
webhooks/s per tenant), kill -9 the node holding the default tenant's
partition, and time until another node holds it with nothing left to take
(median of --rounds).
Medians over the rounds are printed last, as JSON.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import clustertest as ct  # noqa: E402
import dfmtest as t  # noqa: E402

DFM = os.path.join(ROOT, "build", "release", "app", "dfm")
CLIENT = os.path.join(ROOT, "build", "release", "bench", "ingest_client")
TENANTS = ["default", "t1", "t2", "t3", "t4", "t5"]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / TICK


def secret(tenant):
    return "bench-secret" if tenant == "default" else f"bench-secret-{tenant}"


def node_config(work, i, nats):
    tenants = "".join(f'[tenants.{tn}.verity]\nwebhook_secret = "{secret(tn)}"\n'
                      f'timestamp_tolerance_s = 3153600000\n' for tn in TENANTS[1:])
    cluster = ct.cluster_config(nats, f"node{i}") if nats else ""
    port, admin = t.free_port(), t.free_port()
    path = os.path.join(work, f"node{i}.toml")
    with open(path, "w") as f:
        f.write(f"""[server]
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin}"
threads = 1
[storage]
data_dir = "{work}/node{i}"
[log]
level = "warn"
[verity]
webhook_secret = "bench-secret"
timestamp_tolerance_s = 3153600000
{tenants}{cluster}""")
    return path, port


class Node:
    def __init__(self, work, i, nats):
        self.config, self.port = node_config(work, i, nats)
        self.log = os.path.join(work, f"node{i}.log")
        self.proc = None
        # A cluster seals personal data as the embedded default does, given
        # the state key production sets (docs/privacy.md, "In cluster mode").
        self.env = dict(os.environ, DFM_CLUSTER_STATE_KEY=ct.ClusterDfm.STATE_KEY) if nats else None

    def start(self):
        self.proc = subprocess.Popen([DFM, "serve", "-c", self.config], stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"), env=self.env)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if t.request("127.0.0.1", self.port, "GET", "/readyz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("dfm did not start: " + open(self.log).read()[-2000:])

    def health(self):
        return json.loads(t.request("127.0.0.1", self.port, "GET", "/v1/health", timeout=5)[2])["parts"]


def load(port, seconds, connections, rate=None, tag="r"):
    procs = []
    for tn in TENANTS:
        path = "/webhooks/verity" if tn == "default" else f"/t/{tn}/webhooks/verity"
        args = [CLIENT, "--port", str(port), "--connections", str(connections), "--seconds", str(seconds),
                "--secret", secret(tn), "--prefix", f"{tag}-{tn}-", "--path", path]
        if rate:
            args += ["--rate", str(rate)]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    return procs


def finish(procs):
    out = [json.loads(p.communicate()[0]) for p in procs]
    return sum(o["ok"] for o in out), sum(o["errors"] for o in out)


def wait_drained(nodes, timeout=300):
    """Until every webhook is in its partition's log and every partition's
    sync has taken in all of its log (embedded: the projections and the
    router are at the log's head)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = True
        for n in nodes:
            h = n.health()
            if "cluster" in h:
                for p in h["cluster"]["partitions"]:
                    done &= bool(p["owner"]) and p.get("lag", 1) == 0 and p.get("sync_behind", 0) == 0
            else:
                done &= h["projections"]["behind"] == 0 and h["sync"]["router"]["behind"] == 0
        if done:
            return
        time.sleep(0.1)
    raise RuntimeError("not drained")


def monitor(nats):
    """Gives each NATS server a monitoring port (after NatsCluster made its
    configuration, before it starts); returns the ports."""
    ports = [t.free_port() for _ in nats.ports]
    for i, port in enumerate(ports):
        with open(nats.conf(i), "a") as f:
            f.write(f"\nhttp: 127.0.0.1:{port}\n")
    return ports


def nats_counts(ports):
    """Messages the servers took from clients (dfm's connections) and over
    their routes (one server to another: JetStream's replication, and
    requests and answers between a client's server and a stream's leader),
    and the messages DFM_IN_* and DFM_LOG_* hold."""
    clients = routes = stored = 0
    for port in ports:
        def get(path):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return json.load(r)
        clients += sum(c["in_msgs"] for c in get("/connz?limit=10000")["connections"])
        routes += sum(r["in_msgs"] for r in get("/routez")["routes"])
    js = json.load(urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/jsz?streams=true", timeout=5))
    for acc in js.get("account_details", []):
        for st in acc.get("stream_detail", []):
            if st["name"].startswith(("DFM_IN_", "DFM_LOG_")):
                stored += st["state"]["messages"]
    return {"clients": clients, "routes": routes, "stored": stored}


def stop(nodes, nats, work):
    """Ends a run: its dfm nodes, then its NATS servers (if any), then its files."""
    for n in nodes:
        if n.proc and n.proc.poll() is None:
            n.proc.terminate()
            n.proc.wait(timeout=30)
    if nats:
        nats.stop()
    shutil.rmtree(work, ignore_errors=True)


def throughput(nodes_n, args, rnd):
    work = t.tempdir()
    nats = ct.NatsCluster(work) if nodes_n else None
    ports = monitor(nats) if nats else []
    nodes, nginx = [], None
    try:
        if nats:
            nats.start()
        nodes = [Node(work, i, nats) for i in range(max(1, nodes_n))]
        for n in nodes:
            n.start()
        if nats:  # every partition held
            deadline = time.time() + 60
            while not all(p["owner"] for p in nodes[0].health()["cluster"]["partitions"]):
                if time.time() > deadline:
                    raise RuntimeError("partitions not held")
                time.sleep(0.2)
        nginx = ct.ClusterNginx(work, [n.port for n in nodes])
        nginx.start()
        dfm_pids = [n.proc.pid for n in nodes]
        nats_pids = [p.pid for p in nats.procs] if nats else []
        c0 = nats_counts(ports) if nats else None
        d0, n0, t0 = cpu_s(dfm_pids), cpu_s(nats_pids), time.time()
        ok, errors = finish(load(nginx.port, args.seconds, args.connections, tag=f"r{rnd}"))
        loaded = time.time()
        wait_drained(nodes)
        drained = time.time()
        d1, n1 = cpu_s(dfm_pids), cpu_s(nats_pids)
        msgs = {}
        if nats:
            c1 = nats_counts(ports)
            msgs = {f"nats_{k}_msgs": round((c1[k] - c0[k]) / max(ok, 1), 3) for k in c1}
        return {"nodes": nodes_n, "round": rnd, "ok": ok, "errors": errors, **msgs,
                "acked_per_s": round(ok / (loaded - t0)),
                "drain_s": round(drained - loaded, 2),
                "processed_per_s": round(ok / (drained - t0)),
                "dfm_cpu_us": round((d1 - d0) * 1e6 / max(ok, 1), 1),
                "nats_cpu_us": round((n1 - n0) * 1e6 / max(ok, 1), 1)}
    finally:
        if nginx:
            nginx.stop()
        stop(nodes, nats, work)


def idle(args, rnd):
    """Three nodes and their NATS servers with no load, after they settle
    (every partition held, 10 s): cores each side takes, and the messages
    a second dfm sends and the servers send each other."""
    work = t.tempdir()
    nats = ct.NatsCluster(work)
    ports = monitor(nats)
    nodes = []
    try:
        nats.start()
        nodes = [Node(work, i, nats) for i in range(3)]
        for n in nodes:
            n.start()
        time.sleep(10)
        dfm_pids, nats_pids = [n.proc.pid for n in nodes], [p.pid for p in nats.procs]
        c0, d0, n0, t0 = nats_counts(ports), cpu_s(dfm_pids), cpu_s(nats_pids), time.time()
        time.sleep(args.seconds)
        c1, d1, n1, el = nats_counts(ports), cpu_s(dfm_pids), cpu_s(nats_pids), time.time() - t0
        return {"idle_round": rnd, "dfm_cores": round((d1 - d0) / el, 3), "nats_cores": round((n1 - n0) / el, 3),
                "clients_msgs_per_s": round((c1["clients"] - c0["clients"]) / el),
                "routes_msgs_per_s": round((c1["routes"] - c0["routes"]) / el)}
    finally:
        stop(nodes, nats, work)


def failover(args):
    work = t.tempdir()
    nats = ct.NatsCluster(work)
    nodes = []
    times = []
    try:
        nats.start()
        nodes = [Node(work, i, nats) for i in range(3)]
        for n in nodes:
            n.start()
        part = int(subprocess.run([DFM, "cluster", "partition", "-c", nodes[0].config, "default"],
                                  capture_output=True, text=True).stdout)
        for rnd in range(args.rounds):
            deadline = time.time() + 60
            while True:
                parts = nodes[0].health()["cluster"]["partitions"]
                owners = [p["owner"] for p in parts]
                if all(owners) and all(p.get("lag", 1) == 0 for p in parts):
                    break
                if time.time() > deadline:
                    raise RuntimeError("cluster not settled")
                time.sleep(0.2)
            victim = nodes[int(owners[part][-1])]
            watcher = next(n for n in nodes if n is not victim)
            procs = load(watcher.port, 4, 2, rate=100, tag=f"f{rnd}")
            time.sleep(1)
            killed = time.time()
            victim.proc.kill()
            victim.proc.wait()
            while True:
                p = watcher.health()["cluster"]["partitions"][part]
                if p["owner"] and p["owner"] != f"node{nodes.index(victim)}" and p.get("lag", 1) == 0:
                    break
                if time.time() - killed > 60:
                    raise RuntimeError("no failover")
                time.sleep(0.05)
            times.append(round(time.time() - killed, 2))
            finish(procs)
            victim.start()
        return times
    finally:
        stop(nodes, nats, work)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--no-failover", action="store_true", help="measure the cost only")
    ap.add_argument("--nodes", default="0,1,2,3",
                    help="the runs of each round, comma-separated (0: embedded, always run)")
    ap.add_argument("--dfm", help="this dfm binary, not the release build's (to compare two builds)")
    ap.add_argument("--idle", action="store_true", help="an idle three-node cluster's cost, --seconds long")
    args = ap.parse_args()
    global DFM
    if args.dfm:
        DFM = os.path.abspath(args.dfm)
    if args.idle:
        runs = [idle(args, rnd) for rnd in range(args.rounds)]
        for r in runs:
            print(json.dumps(r), flush=True)
        print(json.dumps({k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "idle_round"}))
        return
    try:
        sizes = sorted({0} | {int(n) for n in args.nodes.split(",") if n.strip()})
    except ValueError:
        ap.error("--nodes takes sizes from 0 to 3, comma-separated")
    if any(n < 0 or n > 3 for n in sizes):
        ap.error("--nodes takes sizes from 0 to 3 (the NATS cluster has three servers)")
    subprocess.run(["cmake", "--build", "--preset", "release", "--target", "dfm", "ingest_client"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    runs = []
    for rnd in range(args.rounds):
        for n in sizes:
            r = throughput(n, args, rnd)
            print(json.dumps(r), flush=True)
            runs.append(r)
    summary = {}
    for n in sizes:
        rs = [r for r in runs if r["nodes"] == n]
        keys = ["acked_per_s", "processed_per_s", "drain_s", "dfm_cpu_us", "nats_cpu_us"]
        if n:
            keys += ["nats_clients_msgs", "nats_routes_msgs", "nats_stored_msgs"]
        med = {k: statistics.median(r[k] for r in rs) for k in keys}
        cpu = med["dfm_cpu_us"] + med["nats_cpu_us"]
        # dfm's CPU per webhook is the whole cluster's: a node with two
        # cores of its own, taking 1/n of the webhooks, runs at this rate
        # (NATS on machines of its own).
        med["projected_per_node_per_s"] = round(2e6 / med["dfm_cpu_us"])
        med["cpu_us_total"] = round(cpu, 1)
        summary["embedded" if n == 0 else f"cluster_{n}"] = med
    base = summary["embedded"]["cpu_us_total"]
    for k, v in summary.items():
        v["cpu_vs_embedded"] = round(v["cpu_us_total"] / base, 2)
    if not args.no_failover:
        times = failover(args)
        summary["failover_s"] = {"runs": times, "median": statistics.median(times)}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
