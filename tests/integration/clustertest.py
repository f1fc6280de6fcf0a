"""Cluster pieces for the tests and benchmarks of cluster mode
(docs/scale-out.md): a NATS JetStream cluster of real `nats-server`
processes on loopback, dfm nodes configured to join it, and nginx in front
of the nodes."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import dfmtest as t


class NatsCluster:
    """`n` nats-server processes with JetStream, routed to each other. With
    `secure`, as production runs them (docs/scale-out.md, "Securing the
    NATS link"): clients must present a certificate of the test's own CA
    (TLS both ways) and a user and password."""

    USER, PASSWORD = "dfm", "nats-test-password-0123456789"

    def __init__(self, workdir, n=3, secure=False):
        self.dir = os.path.join(workdir, "nats")
        self.ports = [t.free_port() for _ in range(n)]
        self.routes = [t.free_port() for _ in range(n)]
        self.procs = [None] * n
        self.secure = secure
        os.makedirs(self.dir, exist_ok=True)
        if secure:
            self.pki = make_pki(os.path.join(self.dir, "pki"))
        for i in range(n):
            os.makedirs(os.path.join(self.dir, f"n{i}"), exist_ok=True)
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.routes) if j != i)
            security = ""
            if secure:
                security = (f'tls {{ cert_file: "{self.pki["server_cert"]}", key_file: "{self.pki["server_key"]}", '
                            f'ca_file: "{self.pki["ca"]}", verify: true, timeout: 5 }}\n'
                            f'authorization {{ users: [ {{ user: "{self.USER}", password: "{self.PASSWORD}" }} ] }}\n')
            # One server alone runs JetStream without a cluster block.
            cluster = f"cluster {{ name: dfm, listen: 127.0.0.1:{self.routes[i]}, routes: [{routes}] }}" if n > 1 else ""
            with open(self.conf(i), "w") as f:
                f.write(f"""
server_name: n{i}
listen: 127.0.0.1:{self.ports[i]}
jetstream {{ store_dir: "{self.dir}/n{i}/js", max_memory_store: 64MB, max_file_store: 4GB }}
{cluster}
{security}""")

    def conf(self, i):
        return os.path.join(self.dir, f"n{i}", "nats.conf")

    def urls(self):
        scheme = "tls" if self.secure else "nats"
        return [f"{scheme}://127.0.0.1:{p}" for p in self.ports]

    def start(self, i=None):
        for k in ([i] if i is not None else range(len(self.ports))):
            log = open(os.path.join(self.dir, f"n{k}", "nats.log"), "ab")
            self.procs[k] = subprocess.Popen([shutil.which("nats-server") or "/usr/bin/nats-server",
                                              "-c", self.conf(k)], stdout=log, stderr=subprocess.STDOUT)
        for k in ([i] if i is not None else range(len(self.ports))):
            deadline = time.time() + 15
            while True:
                try:
                    socket.create_connection(("127.0.0.1", self.ports[k]), timeout=0.2).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise RuntimeError(f"nats-server n{k} did not start")
                    time.sleep(0.05)

    def kill9(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            if p:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


def cluster_config(nats, node_id, partitions=6, lease_ttl_s=3):
    urls = ", ".join(f'"{u}"' for u in nats.urls())
    conf = (f'[cluster]\nenabled = true\nnats_urls = [{urls}]\nnode_id = "{node_id}"\n'
            f'partitions = {partitions}\nlease_ttl_s = {lease_ttl_s}\n')
    if nats.secure:
        conf += (f'nats_user = "{nats.USER}"\nnats_ca_file = "{nats.pki["ca"]}"\n'
                 f'nats_cert_file = "{nats.pki["client_cert"]}"\nnats_key_file = "{nats.pki["client_key"]}"\n')
    return conf


def cluster_env(nats):
    """The variables a node of `nats` is given its secrets by."""
    return {"DFM_CLUSTER_NATS_PASSWORD": nats.PASSWORD} if nats.secure else {}


def make_pki(d):
    """A CA made here, a certificate for the servers (127.0.0.1, localhost)
    and one for the clients, each signed by it (openssl)."""
    os.makedirs(d, exist_ok=True)
    p = {k: os.path.join(d, k + ".pem") for k in ("ca", "ca_key", "server_cert", "server_key",
                                                 "client_cert", "client_key")}

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-subj", "/CN=dfm test CA", "-keyout", p["ca_key"], "-out", p["ca"])
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
                     ("client", "extendedKeyUsage=clientAuth")):
        csr, extfile = os.path.join(d, who + ".csr"), os.path.join(d, who + ".ext")
        with open(extfile, "w") as f:
            f.write(ext + "\n")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN=dfm {who}",
            "-keyout", p[who + "_key"], "-out", csr)
        run("x509", "-req", "-in", csr, "-CA", p["ca"], "-CAkey", p["ca_key"], "-CAcreateserial", "-days", "2",
            "-extfile", extfile, "-out", p[who + "_cert"])
    for k in ("ca_key", "server_key", "client_key"):
        os.chmod(p[k], 0o600)
    return p


class ClusterNginx(t.Nginx):
    """nginx spreading requests over the nodes; a node that refuses or
    is gone is skipped for the next one (a webhook's retry is safe: it is
    de-duplicated by its id)."""

    def __init__(self, workdir, ports, port=None):
        self.workdir = self.dir = os.path.join(workdir, "nginx")
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        self.port = port or t.free_port()
        self.conf = os.path.join(self.dir, "nginx.conf")
        servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in ports)
        with open(self.conf, "w") as f:
            f.write(f"""
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {self.dir}/body;
  proxy_temp_path {self.dir}/proxy;
  fastcgi_temp_path {self.dir}/fastcgi;
  uwsgi_temp_path {self.dir}/uwsgi;
  scgi_temp_path {self.dir}/scgi;
  upstream dfm {{
{servers}
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{self.port};
    keepalive_requests 10000000;
    location / {{
      proxy_pass http://dfm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_connect_timeout 1s;
      proxy_read_timeout 3s;  # dfm answers in milliseconds: longer is a node that hangs
    }}
  }}
}}
""")
        self.proc = None


class OnACluster:
    """Mixin: a user's suite's scenarios against a ClusterDfm instead of one
    node (issue 48's proof). `binary` answers the suite's --dfm when the
    suite runs."""

    binary = None
    cluster_extra = ""  # more of each node's [cluster] table

    def make_dfm(self, extra_config=""):
        return ClusterDfm(type(self).binary(), self.dir, extra_config=extra_config,
                          cluster_extra=self.cluster_extra,
                          other_tenants=getattr(self, "other_tenants", True))

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.dfm.close()


def on_each(nodes, call):
    """`call(node)` for every node at once; their answers in order. The
    first exception raised is raised again once every call has ended."""
    if not nodes:
        return []
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        futures = [pool.submit(call, n) for n in nodes]
    return [f.result() for f in futures]


class ClusterDfm:
    """Three `dfm serve` nodes on one NATS server behind nginx, with the face
    of one dfmtest.Dfm, so that a suite written for a single node runs
    against a cluster (issue 48's proof): `port` is nginx's; `admin_port`,
    `config_path` and `log_path` are node0's; dump() reads the default
    tenant's partition as `dfm cluster pull` copies it from NATS, and
    `data_dir` is that copy; kill9() kills -9 the node running that
    partition and start() brings it back; stop() stops every node."""

    def __init__(self, binary, workdir, extra_config="", nodes=3, partitions=2, cluster_extra="",
                 other_tenants=True):
        self.binary = binary
        self.workdir = workdir
        self.nats = NatsCluster(workdir, n=1)
        self.partitions = partitions
        self.port = t.free_port()  # nginx's: the URL vendors post to, and sign (Twilio)
        self.nodes = []
        for i in range(nodes):
            d = os.path.join(workdir, f"node{i}")
            os.makedirs(d, exist_ok=True)
            self.nodes.append(t.Dfm(binary, d, public_base_url=f"http://127.0.0.1:{self.port}",
                                    other_tenants=other_tenants, extra_config=(
                extra_config + cluster_config(self.nats, f"node{i}", partitions=partitions, lease_ttl_s=3) +
                "replicas = 1\n" + cluster_extra)))
        self.nginx = ClusterNginx(workdir, [n.port for n in self.nodes], port=self.port)
        self.admin_port = self.nodes[0].admin_port
        self.config_path = self.nodes[0].config_path
        self.log_path = self.nodes[0].log_path
        self.pulled = os.path.join(workdir, "pulled")
        self.proc = None
        self.down = []  # nodes stopped or killed, to start again
        self.env = {}  # the nodes' variables, for the tools run here too
        self._home = None

    STATE_KEY = "5e" * 32  # cluster.state_key, as production sets it

    def start(self, timeout=90, env_extra=None, own_env_only=False):
        self.env = dict(env_extra or {})
        self.env.setdefault("DFM_CLUSTER_STATE_KEY", self.STATE_KEY)
        env_extra = self.env
        if self.proc is None:
            self.nats.start()
            self.down = list(self.nodes)
        # The nodes start together, as a fleet's units do: each one's wait
        # for its /readyz overlaps the others'.
        on_each(self.down, lambda n: n.start(timeout=timeout, env_extra=env_extra, own_env_only=own_env_only))
        if self.proc is None:
            self.nginx.start()
        self.proc = self.nodes[0].proc
        self.down = []
        # Every partition run by a node, and told to the others (the status
        # page shows its systems), before the suite goes on.
        t_end = time.time() + timeout
        while time.time() < t_end:
            owners = self.owners()
            if owners and all(owners) and all(self.told(n) for n in self.nodes if n not in self.down):
                return
            time.sleep(0.1)
        raise RuntimeError(f"partitions not all running: owners {self.owners()}")

    @staticmethod
    def told(node):
        try:
            status, _, page = t.request("127.0.0.1", node.port, "GET", "/docs/visual", timeout=5)
        except OSError:
            return False
        return status == 200 and b"Part of the cluster is not answering" not in page

    def owners(self):
        for n in self.nodes:
            if n in self.down:
                continue
            try:
                status, _, body = t.request("127.0.0.1", n.port, "GET", "/v1/health", timeout=5)
            except OSError:
                continue
            if status == 200:
                return [p["owner"] for p in json.loads(body)["parts"]["cluster"]["partitions"]]
        return None

    def home(self):
        """The default tenant's partition (`dfm cluster partition`, asked
        once: it follows from the tenant's name and cluster.partitions)."""
        if self._home is None:
            r = self.cli("cluster", "partition", "-c", self.config_path, "default")
            assert r.returncode == 0, r.stderr
            self._home = int(r.stdout)
        return self._home

    def kill9(self):
        owner = self.owners()[self.home()]
        victim = self.nodes[int(owner[len("node"):])]
        victim.kill9()
        self.down.append(victim)

    def stop(self, timeout=30):
        codes = on_each([n for n in self.nodes if n not in self.down and n.proc and n.proc.poll() is None],
                        lambda n: n.stop(timeout))
        self.down = list(self.nodes)
        return max(codes, default=0)

    def cli(self, *args):
        """`dfm` with the nodes' variables; a tool given a copy (-d) and no
        configuration gets node0's, as an operator on node0 would give it:
        the copy's sealed payloads open with the cluster's keys."""
        env = t.environ()
        env.update(self.env)
        if ("-d" in args or "--data-dir" in args) and "-c" not in args and args[0] != "cluster":
            args = (*args, "-c", self.config_path)
        return subprocess.run([self.binary, *args], capture_output=True, text=True, env=env)

    @property
    def data_dir(self):
        """The default tenant's partition, pulled from NATS now."""
        shutil.rmtree(self.pulled, ignore_errors=True)
        r = self.cli("cluster", "pull", "-c", self.config_path, "--into", self.pulled, "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        return os.path.join(self.pulled, "p%03d" % self.home())

    def dump(self, with_body=False):
        r = self.cli("log", "dump", "-d", self.data_dir, *(["--with-body"] if with_body else []))
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def webhooks(self):
        return [e for e in self.dump() if e["type"] == "webhook.received"]

    def files_holding(self, needle):
        """The files of every node's data directory and every NATS server's
        directory (streams, buckets, Raft logs) that hold `needle`."""
        found = ["nats/" + f for f in t.files_holding(self.nats.dir, needle)]
        for i, n in enumerate(self.nodes):
            found += [f"node{i}/" + f for f in t.files_holding(n.data_dir, needle)]
        return found

    def close(self):
        for n in self.nodes:
            if n.proc and n.proc.poll() is None:
                n.proc.kill()
        self.nginx.stop()
        self.nats.stop()
