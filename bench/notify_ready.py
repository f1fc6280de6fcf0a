#!/usr/bin/env python3
"""Start-to-ready of `dfm serve` as systemd sees it (Type=notify):
   bench/notify_ready.py DFM CONFIG [TIMEOUT_S]
starts DFM serve -c CONFIG with NOTIFY_SOCKET set to a socket of its own,
prints the seconds from the spawn to the READY=1 datagram, then stops the
service with SIGTERM (exit 1 if no READY=1 came within TIMEOUT_S)."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def main():
    dfm, config = sys.argv[1], sys.argv[2]
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 600.0
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(1.0)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        start = time.monotonic()
        proc = subprocess.Popen([dfm, "serve", "-c", config], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ready = None
        while ready is None and time.monotonic() - start < timeout and proc.poll() is None:
            try:
                msg = sock.recv(4096).decode()
            except socket.timeout:
                continue
            if "READY=1" in msg.split("\n"):
                ready = time.monotonic() - start
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        if ready is None:
            print("no READY=1", file=sys.stderr)
            sys.exit(1)
        print(f"{ready:.2f}")


if __name__ == "__main__":
    main()
