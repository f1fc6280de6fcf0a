"""Cluster pieces for the tests and benchmarks of cluster mode
(docs/scale-out.md): a NATS JetStream cluster of real `nats-server`
processes on loopback, dfm nodes configured to join it, and nginx in front
of the nodes."""
import os
import shutil
import signal
import socket
import subprocess
import time

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

    def __init__(self, workdir, ports):
        self.workdir = self.dir = os.path.join(workdir, "nginx")
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        self.port = t.free_port()
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
