"""Helpers for tests that run the real `dfm` binary over loopback.

Signs webhooks as each vendor does, starts dfm and nginx on free ports in a
temporary folder, and reads the log back with `dfm log dump`.
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

VERITY_SECRET = "it-verity-secret"
ACME_VERITY_SECRET = "it-verity-secret-acme"  # each tenant its own (dfm config check says so)
# The GoHighLevel location of the fixtures' bodies, which a test's dfm is
# bound to unless it says otherwise.
GHL_LOCATION = "ve9EPM428h8vShlRW1KT"
TWILIO_TOKEN = "it-twilio-token"
ALOWARE_TOKEN = "it-aloware-token"
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read().rstrip(b"\r\n")


_PORT_CLAIMS = os.path.join(tempfile.gettempdir(), "dfm-test-ports")
_PORT_CLAIM_TTL_S = 1800


def _claim(port):
    """True when `port` was not handed out in the last half hour, by this
    process or another test of the suite running beside it; claims it."""
    os.makedirs(_PORT_CLAIMS, exist_ok=True)
    path = os.path.join(_PORT_CLAIMS, str(port))
    try:
        if time.time() - os.stat(path).st_mtime > _PORT_CLAIM_TTL_S:
            os.unlink(path)
    except OSError:
        pass
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        return True
    except FileExistsError:
        return False


def free_port():
    """A loopback port free now, for a server started later.

    Drawn below Linux's ephemeral range (32768 and up by default): a port
    the kernel handed out for bind(0) is also where it places outgoing
    connections, and one of the suite's own clients took such a port
    between this check and the server's bind ("Address already in use").
    Ports below the range are only taken by an explicit bind. A port is
    claimed (a file under the temp folder) before it is handed out, so two
    draws -- in this process or in a test running beside it -- never give
    the same port while the first server has yet to bind it.
    """
    for _ in range(200):
        port = random.randint(20000, 32000)
        if not _claim(port):
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port found in 20000-32000")


class Keys:
    def __init__(self):
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def pem(self, key):
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def ghl_ed25519(self, body):
        return base64.b64encode(self.ed.sign(body)).decode()

    def ghl_rsa(self, body):
        return base64.b64encode(
            self.rsa.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


def verity_signature(body, secret=VERITY_SECRET):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def environ(without_dfm=False):
    """This process's environment for a dfm it starts; `without_dfm`: no
    DFM_* variables (a developer's shell may hold some), so nothing
    overrides the config the test wrote."""
    env = {k: v for k, v in os.environ.items() if not (without_dfm and k.startswith("DFM_"))}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    return env


def post_verity(conn, message_id, text):
    """Posts a Verity webhook for `message_id` with `text`, signed as Verity
    signs it, on the keep-alive connection `conn`; returns the response
    (read) and its JSON answer (None when it is not JSON). Raises what
    http.client raises."""
    body = verity_body(message_id, text=text)
    return post_json(conn, "/webhooks/verity", body, {
        "Content-Type": "application/json", "X-Texting-Signature": verity_signature(body)})


def post_json(conn, path, body, headers):
    """POSTs `body` on the keep-alive connection `conn`; returns the response
    (read) and its JSON answer (None when it is not JSON)."""
    conn.request("POST", path, body, headers)
    resp = conn.getresponse()
    data = resp.read()
    try:
        return resp, json.loads(data)
    except ValueError:
        return resp, None


def dfm_args():
    """A test script's command line: `--dfm PATH` and unittest's own
    arguments; returns the path and unittest's argv."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--dfm", required=True)
    args, rest = ap.parse_known_args()
    return args.dfm, [sys.argv[0]] + rest


def twilio_signature(url, form_body, token=TWILIO_TOKEN):
    params = urllib.parse.parse_qsl(form_body.decode(), keep_blank_values=True)
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def ghl_body(webhook_id, kind="ContactCreate"):
    """A GoHighLevel body with a fresh timestamp (the window is enforced)."""
    doc = json.loads(fixture("ghl/ContactCreate.json"))
    doc["type"] = kind
    doc["webhookId"] = webhook_id
    doc["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return json.dumps(doc).encode()


def verity_body(message_id, text="Sounds good"):
    """A Verity body with a fresh timestamp (the window is enforced)."""
    doc = json.loads(fixture("verity/message.received.json"))
    doc["messageId"] = message_id
    doc["body"] = text
    doc["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return json.dumps(doc).encode()


def print_stacks(pid, why):
    """Every thread's stack of process `pid` on stderr, by gdb when present."""
    print(f"--- {why}: the stacks of pid {pid}", file=sys.stderr, flush=True)
    if not shutil.which("gdb"):
        print("(gdb is not installed)", file=sys.stderr, flush=True)
        return
    r = subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx", "-ex", "set pagination off",
                        "-ex", "thread apply all bt 30"], capture_output=True, text=True, timeout=120)
    frames = [line for line in r.stdout.splitlines()
              if line.startswith(("Thread ", "#")) or not line.strip()]
    print("\n".join(frames), file=sys.stderr, flush=True)


class Dfm:
    """A `dfm serve` process with its own config and data folder.
    `server_config`: lines for its [server] table in place of the default
    `read_timeout_ms = 5000`; `extra_config`: tables after the others;
    `public_base_url`: the URL vendors post to (Twilio signs it), by
    default dfm's own on loopback; `other_tenants`: the tenant "acme"
    besides "default" (False: one company's service, where the status page
    searches for anybody not signed in)."""

    def __init__(self, binary, workdir, keys=None, extra_config="", port=None, server_config="",
                 public_base_url=None, other_tenants=True):
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.admin_port = free_port()
        self.data_dir = os.path.join(workdir, "data")
        self.config_path = os.path.join(workdir, "dfm.toml")
        self.log_path = os.path.join(workdir, "dfm.log")
        self.proc = None
        ghl = ""
        if keys:
            with open(os.path.join(workdir, "ghl-ed.pem"), "w") as f:
                f.write(keys.pem(keys.ed))
            with open(os.path.join(workdir, "ghl-rsa.pem"), "w") as f:
                f.write(keys.pem(keys.rsa))
            ghl = ('[ghl]\ned25519_public_key_file = "ghl-ed.pem"\n'
                   'rsa_public_key_file = "ghl-rsa.pem"\n'
                   f'location_id = "{GHL_LOCATION}"\n')
        acme = f'[tenants.acme.verity]\nwebhook_secret = "{ACME_VERITY_SECRET}"\n' if other_tenants else ""
        with open(self.config_path, "w") as f:
            f.write(f"""
[server]
listen = "127.0.0.1:{self.port}"
public_base_url = "{public_base_url or f'http://127.0.0.1:{self.port}'}"
admin_listen = "127.0.0.1:{self.admin_port}"
max_body_bytes = 65536
trusted_proxies = ["127.0.0.1"]
{server_config or "read_timeout_ms = 5000"}
[storage]
data_dir = "{self.data_dir}"
[log]
level = "info"
{ghl}
[verity]
webhook_secret = "{VERITY_SECRET}"
[twilio]
auth_token = "{TWILIO_TOKEN}"
[aloware]
auth = "bearer"
token = "{ALOWARE_TOKEN}"
{acme}{extra_config}
""")

    def start(self, timeout=30, env_extra=None, own_env_only=False):
        """Starts `dfm serve`; `own_env_only`: without the caller's DFM_*
        variables, so nothing overrides this object's config."""
        env = environ(without_dfm=own_env_only)
        env.update(env_extra or {})
        self.logfile = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "serve", "-c", self.config_path],
                                     stdout=self.logfile, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.logfile.close()
                with open(self.log_path) as f:
                    raise RuntimeError("dfm exited early:\n" + f.read()[-4000:])
            try:
                status, _, _ = request("127.0.0.1", self.port, "GET", "/readyz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("dfm did not become ready")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.logfile.close()

    def stop(self, timeout=30):
        """SIGTERM and the exit code. A dfm still running after `timeout`
        seconds has its threads' stacks written to stderr (gdb) and is
        killed before TimeoutExpired is raised: a hung stop says where."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print_stacks(self.proc.pid, f"dfm {self.config_path} still running {timeout} s after SIGTERM")
            self.kill9()
            raise
        self.logfile.close()
        return code

    def cli(self, *args):
        return subprocess.run([self.binary, *args], capture_output=True, text=True, env=environ())

    def webhooks(self):
        """The webhook.received events (the sync appends its decisions beside them)."""
        return [e for e in self.dump() if e["type"] == "webhook.received"]

    def files_holding(self, needle):
        """The files of the service's data directory that hold `needle`."""
        return files_holding(self.data_dir, needle)

    def dump(self, with_body=False):
        r = self.cli("log", "dump", "-d", self.data_dir, *(["--with-body"] if with_body else []))
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def request(host, port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


class Nginx:
    """nginx as the reverse proxy: TLS is assumed terminated in front of it, so
    it forwards X-Forwarded-Proto https, as such a proxy would."""

    def __init__(self, workdir, upstream_port, port=None):
        self.workdir = os.path.join(workdir, "nginx")
        os.makedirs(os.path.join(self.workdir, "logs"), exist_ok=True)
        self.port = port or free_port()
        self.admin_port = free_port()
        self.conf = os.path.join(self.workdir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(f"""
worker_processes 1;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/logs/error.log warn;
daemon off;
events {{ worker_connections 256; }}
http {{
  access_log {self.workdir}/logs/access.log;
  client_body_temp_path {self.workdir}/body;
  proxy_temp_path {self.workdir}/proxy;
  fastcgi_temp_path {self.workdir}/fastcgi;
  uwsgi_temp_path {self.workdir}/uwsgi;
  scgi_temp_path {self.workdir}/scgi;
  client_max_body_size 1m;
  client_body_buffer_size 2m;
  proxy_buffering off;
  map $http_x_request_id $req_id {{ default $http_x_request_id; "" $request_id; }}
  server {{
    listen 127.0.0.1:{self.port};
    location /dfm/ {{
      proxy_pass http://127.0.0.1:{upstream_port}/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Prefix /dfm;
      proxy_set_header X-Request-ID $req_id;
    }}
  }}
}}
""")
        self.proc = None

    def start(self):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-c", self.conf, "-p", self.workdir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def damage_wal(data_dir):
    """Flips one byte in the middle of the newest WAL of a stopped service's
    log: a WAL damaged before its end."""
    wals = sorted(f for f in os.listdir(data_dir) if f.endswith(".log"))
    wal = os.path.join(data_dir, wals[-1])
    with open(wal, "r+b") as f:
        f.seek(os.path.getsize(wal) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x40]))


def files_holding(root, needle):
    """The files under `root` whose bytes hold `needle`, relative to it."""
    found = []
    for parent, _, files in os.walk(root):
        for f in files:
            path = os.path.join(parent, f)
            try:
                with open(path, "rb") as fh:
                    if needle in fh.read():
                        found.append(os.path.relpath(path, root))
            except OSError:
                pass  # gone meanwhile (a WAL cut and removed)
    return found


def tempdir():
    return tempfile.mkdtemp(prefix="dfm-it-")


def quiet_hours(open_now):
    """A `campaigns.quiet_hours` window that holds now, or one that does not,
    for the tests' people (+1205 numbers: America/Chicago in
    libphonenumber's map; UTC when the map is missing): 16 hours around
    Chicago's time now, or an hour starting 9 hours after it (UTC is 5 or 6
    hours ahead of Chicago: inside the first, outside the second)."""
    import datetime
    import zoneinfo
    local = datetime.datetime.now(zoneinfo.ZoneInfo("America/Chicago"))
    start, end = (local - datetime.timedelta(hours=8), local + datetime.timedelta(hours=8)) if open_now \
        else (local + datetime.timedelta(hours=9), local + datetime.timedelta(hours=10))
    return f"{start:%H:%M}-{end:%H:%M}"
