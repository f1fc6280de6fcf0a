#!/usr/bin/env python3
"""The NATS link's security (issue 48; docs/scale-out.md, "Securing the NATS
link"), against a real `nats-server` with JetStream that demands a token, an
NKey, or a `.creds` file (operator mode), over TLS verified against a CA made
here: a node given the right secret joins and takes a webhook into the
replicated stream; one given a wrong secret is refused (the server logs an
"authentication error", the tool says "Authorization Violation"); `dfm config check` names settings that cannot
work. The user-and-password and client-certificate case is the cluster test's
(tests/integration/cluster_test.py)."""
import argparse
import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import unittest

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, os.path.dirname(__file__))
import clustertest as ct  # noqa: E402
import dfmtest as t  # noqa: E402

DFM = None


# NKeys (github.com/nats-io/nkeys): base32 of a prefix byte, the raw key
# and a CRC-16/XMODEM, little-endian; a seed carries two prefix bytes.
PREFIX = {"operator": 14 << 3, "account": 0, "user": 20 << 3}
SEED = 18 << 3


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def b32(raw):
    return base64.b32encode(raw + crc16(raw).to_bytes(2, "little")).decode().rstrip("=")


class NKey:
    def __init__(self, kind):
        self.private = Ed25519PrivateKey.generate()
        raw_seed = self.private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                              serialization.NoEncryption())
        raw_pub = self.private.public_key().public_bytes(serialization.Encoding.Raw,
                                                          serialization.PublicFormat.Raw)
        p = PREFIX[kind]
        self.public = b32(bytes([p]) + raw_pub)
        self.seed = b32(bytes([SEED | (p >> 5), (p & 31) << 3]) + raw_seed)

    def jwt(self, subject, name, nats):
        """A JWT about `subject` this key signs (ed25519-nkey, claims v2)."""
        enc = lambda d: base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).decode().rstrip("=")
        claims = {"iat": int(time.time()), "iss": self.public, "name": name, "sub": subject,
                  "nats": dict(nats, version=2)}
        claims["jti"] = base64.b32encode(hashlib.sha256(json.dumps(claims, separators=(",", ":")).encode())
                                         .digest()).decode().rstrip("=")
        head = enc({"typ": "JWT", "alg": "ed25519-nkey"}) + "." + enc(claims)
        sig = base64.urlsafe_b64encode(self.private.sign(head.encode())).decode().rstrip("=")
        return head + "." + sig


def free_port():
    return t.free_port()


class NatsServer:
    """One nats-server with JetStream, TLS (the test's CA) and `auth`, its
    config text."""

    def __init__(self, work, pki, auth):
        self.dir = os.path.join(work, "nats")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.log = os.path.join(self.dir, "nats.log")
        with open(os.path.join(self.dir, "nats.conf"), "w") as f:
            f.write(f"""
listen: 127.0.0.1:{self.port}
jetstream {{ store_dir: "{self.dir}/js", max_memory_store: 64MB, max_file_store: 1GB }}
tls {{ cert_file: "{pki['server_cert']}", key_file: "{pki['server_key']}", timeout: 5 }}
{auth}
""")
        self.proc = subprocess.Popen([shutil.which("nats-server") or "/usr/bin/nats-server", "-c",
                                      os.path.join(self.dir, "nats.conf")],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("nats-server did not start")
                time.sleep(0.05)

    def said(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class NatsSecurityTest(unittest.TestCase):
    def setUp(self):
        self.work = t.tempdir()
        self.pki = ct.make_pki(os.path.join(self.work, "pki"))
        self.nats = None
        self.node = None

    def tearDown(self):
        if self.node and self.node.proc and self.node.proc.poll() is None:
            self.node.proc.kill()
        if self.nats:
            self.nats.stop()

    def config(self, security):
        return (f'[cluster]\nenabled = true\nnats_urls = ["tls://127.0.0.1:{self.nats.port}"]\n'
                f'node_id = "solo"\npartitions = 2\nreplicas = 1\n'
                f'nats_ca_file = "{self.pki["ca"]}"\n' + security)

    def joins_and_takes_a_webhook(self, security, env=None):
        d = os.path.join(self.work, "node")
        os.makedirs(d, exist_ok=True)
        self.node = t.Dfm(DFM, d, extra_config=self.config(security))
        self.node.start(timeout=60, env_extra=env or {})
        health = json.loads(t.request("127.0.0.1", self.node.port, "GET", "/v1/health")[2])
        self.assertEqual(health["parts"]["cluster"]["nats"], "connected", health)
        conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
        resp, answer = t.post_verity(conn, "msg-nats-security", "over TLS")
        self.assertEqual(resp.status, 200, answer)
        self.assertEqual(answer["status"], "accepted", answer)
        self.assertEqual(self.node.stop(), 0)

    def refused(self, security, env=None):
        """`dfm cluster pull` with these settings: refused by the server."""
        d = os.path.join(self.work, "wrong")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "dfm.toml")
        with open(path, "w") as f:
            f.write(f'[storage]\ndata_dir = "{d}/data"\n' + self.config(security))
        r = subprocess.run([DFM, "cluster", "pull", "-c", path, "--into", os.path.join(d, "pull")],
                           capture_output=True, text=True, env=dict(t.environ(without_dfm=True), **(env or {})),
                           timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("Authorization Violation", r.stderr)
        deadline = time.time() + 10
        while "authentication error" not in self.nats.said() and time.time() < deadline:
            time.sleep(0.1)
        self.assertIn("authentication error", self.nats.said())

    def test_a_token(self):
        self.nats = NatsServer(self.work, self.pki, 'authorization { token: "nats-token-0123456789abcdef" }')
        self.joins_and_takes_a_webhook("", env={"DFM_CLUSTER_NATS_TOKEN": "nats-token-0123456789abcdef"})
        self.refused("", env={"DFM_CLUSTER_NATS_TOKEN": "not-the-token"})

    def test_an_nkey_and_its_seed_file(self):
        user, other = NKey("user"), NKey("user")
        self.nats = NatsServer(self.work, self.pki, f'authorization {{ users: [ {{ nkey: "{user.public}" }} ] }}')
        for key in (user, other):
            with open(os.path.join(self.work, key.public + ".nk"), "w") as f:
                f.write(key.seed + "\n")
            os.chmod(os.path.join(self.work, key.public + ".nk"), 0o600)
        self.joins_and_takes_a_webhook(f'nats_nkey = "{user.public}"\n'
                                       f'nats_nkey_seed_file = "{self.work}/{user.public}.nk"\n')
        self.refused(f'nats_nkey = "{other.public}"\nnats_nkey_seed_file = "{self.work}/{other.public}.nk"\n')

    def test_a_creds_file_in_operator_mode(self):
        operator, account, system, user = NKey("operator"), NKey("account"), NKey("account"), NKey("user")
        op_jwt = operator.jwt(operator.public, "op", {"type": "operator", "system_account": system.public})
        unlimited = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True,
                     "conn": -1, "leaf": -1, "mem_storage": -1, "disk_storage": -1, "streams": -1,
                     "consumer": -1}
        acc_jwt = operator.jwt(account.public, "dfm", {"type": "account", "limits": unlimited})
        sys_jwt = operator.jwt(system.public, "SYS", {"type": "account", "limits": {"conn": -1, "subs": -1}})
        user_jwt = account.jwt(user.public, "node", {"type": "user", "pub": {}, "sub": {}, "subs": -1,
                                                     "data": -1, "payload": -1})
        with open(os.path.join(self.work, "op.jwt"), "w") as f:
            f.write(op_jwt)
        self.nats = NatsServer(self.work, self.pki, (
            f'operator: "{self.work}/op.jwt"\nsystem_account: "{system.public}"\nresolver: MEMORY\n'
            f'resolver_preload: {{ {account.public}: "{acc_jwt}", {system.public}: "{sys_jwt}" }}'))
        creds = os.path.join(self.work, "node.creds")
        with open(creds, "w") as f:
            f.write(f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
                    f"-----BEGIN USER NKEY SEED-----\n{user.seed}\n------END USER NKEY SEED------\n")
        os.chmod(creds, 0o600)
        self.joins_and_takes_a_webhook(f'nats_creds_file = "{creds}"\n')
        # A user the account never signed: refused.
        stranger = NKey("user")
        forged = os.path.join(self.work, "forged.creds")
        with open(forged, "w") as f:
            f.write(f"-----BEGIN NATS USER JWT-----\n{stranger.jwt(stranger.public, 'x', {'type': 'user'})}\n"
                    f"------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n{stranger.seed}\n"
                    "------END USER NKEY SEED------\n")
        r = subprocess.run([DFM, "cluster", "pull", "-c", self.write_config(f'nats_creds_file = "{forged}"\n'),
                            "--into", os.path.join(self.work, "forged")],
                           capture_output=True, text=True, env=t.environ(without_dfm=True), timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stdout)

    def write_config(self, security):
        path = os.path.join(self.work, "check.toml")
        with open(path, "w") as f:
            f.write(f'[storage]\ndata_dir = "{self.work}/check-data"\n' + self.config(security))
        return path

    def test_config_check_names_settings_that_cannot_work(self):
        self.nats = NatsServer(self.work, self.pki, "")
        for security, key, words in (
                ('nats_user = "dfm"\nnats_token = "t"\n', "cluster.nats_token", "one way to authenticate"),
                ('nats_user = "dfm"\n', "cluster.nats_password", "goes with cluster.nats_user"),
                ('nats_nkey = "UABC"\n', "cluster.nats_nkey_seed_file", "goes with cluster.nats_nkey"),
                ('nats_nkey = "SUABC"\nnats_nkey_seed_file = "/etc/hostname"\n', "cluster.nats_nkey", "starts with U"),
                ('nats_creds_file = "/nonexistent/node.creds"\n', "cluster.nats_creds_file", "cannot read"),
                ('nats_cert_file = "/etc/hostname"\n', "cluster.nats_key_file", "goes with cluster.nats_cert_file"),
                ('ingest_max_age_s = 60\n', "cluster.ingest_max_age_s", "at least cluster.dedup_window_s")):
            r = subprocess.run([DFM, "config", "check", self.write_config(security)], capture_output=True,
                               text=True, env=t.environ(without_dfm=True))
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn(key, r.stdout)
            self.assertIn(words, r.stdout)
        # The CA given: nothing to say. None: the system's store is asked,
        # and it does not know the test's CA.
        r = subprocess.run([DFM, "config", "check", self.write_config("")], capture_output=True, text=True,
                           env=t.environ(without_dfm=True))
        self.assertEqual(r.returncode, 0, r.stdout)
        path = self.write_config("")
        with open(path) as f:
            text = f.read().replace(f'nats_ca_file = "{self.pki["ca"]}"\n', "")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([DFM, "config", "check", path], capture_output=True, text=True,
                           env=t.environ(without_dfm=True))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("cluster.nats_ca_file", r.stdout)
        self.assertIn("does not verify", r.stdout)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dfm", required=True)
    args, rest = ap.parse_known_args()
    DFM = os.path.abspath(args.dfm)
    unittest.main(argv=[sys.argv[0]] + rest)
