#!/usr/bin/env python3
"""The `dfm` process as an operator runs it.

- `dfm config check FILE` prints each problem with its key (a wrong value,
  an unknown key, a `DFM_*` variable that matches no key) and exits 1; a
  good file prints `FILE: OK` and exits 0.
- Clients that stall halfway through a request, as many as the service
  takes connections (`server.max_connections`), are cut off after
  `server.read_timeout_ms`, and a vendor's webhook gets in.
- SIGTERM while webhooks pour in over keep-alive connections: requests in
  flight are answered, requests after it get 503 `shutting_down` (or find
  the connection gone once the service has drained), dfm exits 0, and
  every webhook answered 2xx is in the log exactly once.

Usage: process_test.py --dfm PATH [unittest args]
"""
import http.client
import os
import shutil
import signal
import socket
import threading
import time
import unittest

import dfmtest as t

BINARY = None


class ConfigCheck(unittest.TestCase):
    def setUp(self):
        self.dir = t.tempdir()

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def check(self, text, **env):
        path = os.path.join(self.dir, "dfm.toml")
        with open(path, "w") as f:
            f.write(text)
        r = t.subprocess.run([BINARY, "config", "check", path], capture_output=True, text=True,
                             env=dict(t.environ(without_dfm=True), **env))
        return path, r

    def test_good_file_is_ok(self):
        path, r = self.check('[server]\nlisten = "127.0.0.1:8080"\n[verity]\n'
                             'webhook_secret = "s"\n')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.strip(), f"{path}: OK")

    def test_every_problem_with_its_key(self):
        _, r = self.check('[server]\nlisten = "nowhere"\nmax_body_bytes = -5\n'
                          '[verity]\nwebhook_secrett = "s"\n')
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        for key in ("server.listen", "server.max_body_bytes", "verity.webhook_secrett"):
            self.assertTrue(any(line.startswith(f"error: {key}: ") for line in lines),
                            f"{key} not reported:\n{r.stdout}")
        self.assertNotIn("OK", r.stdout)

    def test_the_data_directory_is_its_owners_alone(self):
        """It was 0755 with a 0644 WAL, holding webhook bodies and OAuth grants."""
        d = t.Dfm(BINARY, self.dir)
        d.start(own_env_only=True)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
            resp, doc = t.post_verity(conn, "mode-1", "hello")
            self.assertEqual(resp.status, 200, doc)
            conn.close()
        finally:
            self.assertEqual(d.stop(), 0)
        modes = {}
        for root, dirs, files in os.walk(d.data_dir):
            for name in dirs + files + ["."]:
                path = os.path.join(root, name)
                modes[path] = os.stat(path).st_mode & 0o777
        self.assertIn(os.path.join(d.data_dir, "admin.token"), modes)
        loose = {p: oct(m) for p, m in modes.items() if m & 0o077}
        self.assertEqual(loose, {}, "readable by others")
        self.assertEqual(modes[os.path.join(d.data_dir, ".")], 0o700)

        # A directory made by hand, or by an older build: the check says so.
        os.chmod(d.data_dir, 0o755)
        r = t.subprocess.run([BINARY, "config", "check", d.config_path], capture_output=True,
                             text=True, env=t.environ(without_dfm=True))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("warning: storage.data_dir: " + d.data_dir + " is open to others (mode 0755)",
                      r.stdout)

    def test_mistyped_variable_fails_the_check(self):
        # The secret meant for DFM_VERITY_WEBHOOK_SECRET: `dfm serve` would
        # start without it, so the check fails.
        _, r = self.check('[server]\nlisten = "127.0.0.1:8080"\n', DFM_VERITY_SECRET="s")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("warning: DFM_VERITY_SECRET: environment variable matches no configuration key",
                      r.stdout)
        _, r = self.check('[server]\nlisten = "127.0.0.1:8080"\n', DFM_VERITY_WEBHOOK_SECRET="s")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class StalledClients(unittest.TestCase):
    def setUp(self):
        self.dir = t.tempdir()
        self.dfm = t.Dfm(BINARY, self.dir,
                         server_config="read_timeout_ms = 1000\nmax_connections = 4")
        self.dfm.start(own_env_only=True)
        self.stalled = []

    def tearDown(self):
        for s in self.stalled:
            s.close()
        try:
            code = self.dfm.stop()
        finally:
            if self.dfm.proc.poll() is None:
                self.dfm.proc.kill()
            shutil.rmtree(self.dir, ignore_errors=True)
        self.assertEqual(code, 0)

    def test_stalled_clients_cannot_hold_every_connection(self):
        # As many clients as the service takes connections, each stalled
        # halfway through a webhook's body.
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", self.dfm.port))
            self.stalled.append(s)
            s.sendall(b"POST /webhooks/verity HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        # A vendor's webhook still gets in once the stalled ones time out.
        start = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.dfm.port, timeout=15)
        resp, answer = t.post_verity(conn, "after-stall-1", "hello")
        conn.close()
        self.assertEqual(resp.status, 200, answer)
        self.assertEqual(answer["status"], "accepted")
        waited = time.monotonic() - start
        # It waited for a connection (max_connections held), not forever.
        self.assertGreater(waited, 0.5)
        self.assertLess(waited, 10)
        print(f"the webhook waited {waited:.1f} s for a connection", flush=True)
        # Each stalled client was disconnected, without an answer.
        for s in self.stalled:
            s.settimeout(10)
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b""
            self.assertEqual(data, b"", "a stalled client got bytes instead of being cut off")
        self.assertEqual([e["payload"]["provider_event_id"] for e in self.dfm.webhooks()],
                         ["message.received:after-stall-1"])


class Post:
    """One request's fate: when it was sent and answered (monotonic), and how."""

    def __init__(self, msg, sent):
        self.msg, self.sent, self.answered = msg, sent, None
        self.status, self.error, self.answer = None, None, None


class GracefulStop(unittest.TestCase):
    THREADS = 8

    def setUp(self):
        self.dir = t.tempdir()
        self.dfm = t.Dfm(BINARY, self.dir)
        self.dfm.start(own_env_only=True)
        self.posts = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def tearDown(self):
        self.stop.set()
        if self.dfm.proc and self.dfm.proc.poll() is None:
            self.dfm.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def load(self, n):
        conn, i = None, 0
        # Until dfm has exited: its port is free then, and another test's
        # server could take it.
        while not self.stop.is_set() and self.dfm.proc.poll() is None:
            i += 1
            p = Post(f"term-{n}-{i}", time.monotonic())
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.dfm.port, timeout=10)
                resp, p.answer = t.post_verity(conn, p.msg, f"load {n} {i}")
                p.status = resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                p.error = type(e).__name__
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.01)
            p.answered = time.monotonic()
            with self.lock:
                self.posts.append(p)
        if conn is not None:
            conn.close()

    def test_sigterm_answers_what_is_in_flight_and_loses_nothing(self):
        threads = [threading.Thread(target=self.load, args=(n,), daemon=True)
                   for n in range(self.THREADS)]
        for th in threads:
            th.start()
        time.sleep(1.5)
        term = time.monotonic()
        self.dfm.proc.send_signal(signal.SIGTERM)
        code = self.dfm.proc.wait(timeout=60)
        self.dfm.logfile.close()
        self.stop.set()
        for th in threads:
            th.join(timeout=30)
        self.assertEqual(code, 0, "dfm's exit status on SIGTERM")

        posts = list(self.posts)
        accepted = [p for p in posts if p.status == 200]
        self.assertGreater(len(accepted), 50, "the load ran")
        for p in posts:
            if p.status is not None:
                self.assertIn(p.status, (200, 503), p.answer)
                if p.status == 503:
                    self.assertEqual((p.answer or {}).get("error"), "shutting_down")
                    self.assertGreaterEqual(p.answered, term)
            else:
                # A request can find the connection gone only once the
                # service was told to stop.
                self.assertGreaterEqual(p.answered, term, f"{p.msg}: {p.error} before SIGTERM")
        in_flight = [p for p in accepted if p.sent < term < p.answered]
        self.assertTrue(in_flight, "no request in flight at SIGTERM was answered")

        # Every webhook answered 2xx is in the log, once; the chain holds.
        seen = {}
        for e in self.dfm.webhooks():
            msg = e["payload"]["provider_event_id"].split(":", 1)[1]
            seen[msg] = seen.get(msg, 0) + 1
        for p in accepted:
            self.assertEqual(seen.get(p.msg), 1, f"{p.msg} answered 200 but in the log "
                                                 f"{seen.get(p.msg, 0)} times")
        self.assertEqual(sum(seen.values()), len(seen), "a webhook appended twice")
        verify = self.dfm.cli("log", "verify", "-d", self.dfm.data_dir)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        with open(self.dfm.log_path) as f:
            log = f.read()
        self.assertIn("event=shutdown_begin", log)
        self.assertIn("event=shutdown_done", log)
        print(f"{len(accepted)} accepted, {len(in_flight)} of them in flight at SIGTERM, "
              f"{sum(1 for p in posts if p.status == 503)} answered 503 after it, "
              f"{sum(1 for p in posts if p.error)} found the connection gone", flush=True)


if __name__ == "__main__":
    BINARY, argv = t.dfm_args()
    unittest.main(argv=argv, verbosity=2)
